"""Every error code Roster answers with, in one place (SPEC §1–§7)."""

# Authentication and request-level checks (SPEC §2, §4)
UNAUTHORIZED = "errorCode.unauthorized"
INVALID_CREDENTIALS = "errorCode.invalidCredentials"
STUDY_NOT_EXIST = "errorCode.studyNotExist"
INVALID_SITE_IDENTIFIER = "errorCode.invalidSiteIdentifier"
STUDY_NOT_AVAILABLE = "errorCode.studyNotAvailable"
SITE_NOT_AVAILABLE = "errorCode.siteNotAvailable"
NO_ROLE_SET_UP = "errorCode.noRoleSetUp"
NO_SUFFICIENT_PRIVILEGES = "errorCode.noSufficientPrivileges"
INVALID_REGISTER_PARAMETER = "errorCode.invalidRegisterParameter"
INVALID_DRY_RUN_PARAMETER = "errorCode.invalidDryRunParameter"
PARTICIPATE_INACTIVE = "errorCode.participateInactive"
MISSING_FILE = "errorCode.missingFile"
FILE_TOO_LARGE = "errorCode.fileTooLarge"
NOT_SUPPORTED_FILE_FORMAT = "errorCode.notSupportedFileFormat"
INVALID_FILE_ENCODING = "errorCode.invalidFileEncoding"
BLANK_FILE = "errorCode.blankFile"
MISSING_PARTICIPANT_ID_COLUMN = "errorCode.missingParticipantIDColumn"
DUPLICATE_COLUMN = "errorCode.duplicateColumn"

# Generic request errors
VALIDATION_FAILED = "errorCode.validationFailed"
NOT_FOUND = "errorCode.notFound"
METHOD_NOT_ALLOWED = "errorCode.methodNotAllowed"
INTERNAL_ERROR = "errorCode.internalError"
# 503 with Retry-After: saturated, or a lock held elsewhere; nothing was done (SPEC §10)
SERVER_BUSY = "errorCode.serverBusy"

# Setup (SPEC §3)
STUDY_ALREADY_EXISTS = "errorCode.studyAlreadyExists"
SITE_ALREADY_EXISTS = "errorCode.siteAlreadyExists"
USER_ALREADY_EXISTS = "errorCode.userAlreadyExists"
ROLE_ALREADY_ASSIGNED = "errorCode.roleAlreadyAssigned"
USER_NOT_FOUND = "errorCode.userNotFound"
ROLE_NOT_FOUND = "errorCode.roleNotFound"

# Jobs (SPEC §6)
JOB_NOT_FOUND = "errorCode.jobNotFound"
JOB_NOT_CANCELLABLE = "errorCode.jobNotCancellable"
JOB_ATTEMPTS_EXHAUSTED = "errorCode.jobAttemptsExhausted"
JOB_UPLOAD_UNREADABLE = "errorCode.jobUploadUnreadable"
# Revert (SPEC §11.2) and extract download (§11.3)
JOB_NOT_FINISHED = "errorCode.jobNotFinished"
JOB_NOT_REVERTIBLE = "errorCode.jobNotRevertible"
CHANGED_SINCE_JOB = "errorCode.changedSinceJob"
FILE_EXPIRED = "errorCode.fileExpired"
# Extract jobs (SPEC §11.3)
INVALID_INCLUDE_PARTICIPATE_INFO = "errorCode.invalidIncludeParticipateInfoParameter"
EXTRACT_NOT_COMPLETED = "errorCode.extractNotCompleted"
JOB_HAS_NO_UPLOAD = "errorCode.jobHasNoUpload"

# Per-record rules (SPEC §5)
MALFORMED_ROW = "errorCode.malformedRow"
MISSING_PARTICIPANT_ID = "errorCode.missingParticipantID"
PARTICIPANT_ID_TOO_LONG = "errorCode.participantIDLongerThan30Characters"
PARTICIPANT_ID_HTML = "errorCode.participantIDContainsUnsupportedHTMLCharacter"
UNSUPPORTED_CHARACTER = "errorCode.unsupportedCharacter"
FIRST_NAME_TOO_LONG = "errorCode.firstNameTooLong"
LAST_NAME_TOO_LONG = "errorCode.lastNameTooLong"
IDENTIFIER_TOO_LONG = "errorCode.identifierTooLong"
EMAIL_TOO_LONG = "errorCode.emailAddressTooLong"
INVALID_EMAIL = "errorCode.invalidEmailAddress"
MOBILE_TOO_LONG = "errorCode.mobileNumberTooLong"
INVALID_MOBILE = "errorCode.invalidMobileNumber"
PARTICIPANT_ID_DUPLICATED_IN_FILE = "errorCode.participantIDDuplicatedInFile"
PARTICIPANT_ID_AT_ANOTHER_SITE = "errorCode.participantIDExistsAtAnotherSite"
PARTICIPANT_ID_NOT_AVAILABLE = "errorCode.participantIDNotAvailable"
ENROLLMENT_CAP_REACHED = "errorCode.participantsEnrollmentCapReached"

# Participants (SPEC §7)
PARTICIPANT_NOT_FOUND_OC = "errorCode.participantNotFound"
PARTICIPANT_NOT_REGISTERED = "errorCode.participantNotRegistered"
# OpenSpecimen-style profile codes
PARTICIPANT_NOT_FOUND = "PARTICIPANT_NOT_FOUND"
INVALID_GENDER = "INVALID_GENDER"
INVALID_RACE = "INVALID_RACE"
INVALID_ETHNICITIES = "INVALID_ETHNICITIES"
INVALID_SEX_GENOTYPE = "INVALID_SEX_GENOTYPE"
INVALID_VITAL_STATUS = "INVALID_VITAL_STATUS"
INVALID_ACTIVITY_STATUS = "INVALID_ACTIVITY_STATUS"
INVALID_BIRTH_DATE = "INVALID_BIRTH_DATE"
INVALID_DEATH_DATE = "INVALID_DEATH_DATE"
DUP_UID = "DUP_UID"
DUP_EMPI = "DUP_EMPI"
DUP_MRN = "DUP_MRN"
DUP_MRN_SITE = "DUP_MRN_SITE"
SITE_NOT_FOUND = "SITE_NOT_FOUND"
MIDDLE_NAME_TOO_LONG = "MIDDLE_NAME_TOO_LONG"
UID_TOO_LONG = "UID_TOO_LONG"
EMPI_TOO_LONG = "EMPI_TOO_LONG"
MRN_TOO_LONG = "MRN_TOO_LONG"
MRN_REQUIRED = "MRN_REQUIRED"
INVALID_INCLUDE_ACCESS_CODE = "errorCode.invalidIncludeAccessCodeParameter"

# Hardening (SPEC §14)
TOO_MANY_ATTEMPTS = "errorCode.tooManyAttempts"
WEAK_PASSWORD = "errorCode.weakPassword"
BODY_TOO_LARGE = "errorCode.bodyTooLarge"
MALFORMED_MULTIPART = "errorCode.malformedMultipart"

# Plain-words explanations, for `detail` and the web page.
MESSAGES: dict[str, str] = {
    UNAUTHORIZED: "A valid bearer token is required.",
    INVALID_CREDENTIALS: "The username or password is wrong, or the user is disabled.",
    STUDY_NOT_EXIST: "The study OID specified in the request is not found.",
    INVALID_SITE_IDENTIFIER: "The site OID specified in the request is not found in this study.",
    STUDY_NOT_AVAILABLE: "The study is not available (it is locked).",
    SITE_NOT_AVAILABLE: "The site is not available (it is locked).",
    NO_ROLE_SET_UP: "The user has no role assigned for the given study/site.",
    NO_SUFFICIENT_PRIVILEGES: "The user does not have sufficient privileges to perform this operation.",
    INVALID_REGISTER_PARAMETER: "The register parameter must be y or n.",
    INVALID_DRY_RUN_PARAMETER: "The dryRun parameter must be y or n.",
    PARTICIPATE_INACTIVE: "The Participate module is not active for this study, so register=y is not allowed.",
    MISSING_FILE: "The request has no file part named 'file'.",
    FILE_TOO_LARGE: "The file is larger than the configured upload limit.",
    NOT_SUPPORTED_FILE_FORMAT: "The file format is not supported. Only CSV files and Excel workbooks (.xlsx) are "
    "accepted.",
    INVALID_FILE_ENCODING: "The file is not UTF-8 text.",
    BLANK_FILE: "The file needs a header line and at least one data row.",
    MISSING_PARTICIPANT_ID_COLUMN: "The header must have exactly one ParticipantID column.",
    DUPLICATE_COLUMN: "A column is named twice in the header.",
    VALIDATION_FAILED: "The request body or parameters are not valid.",
    NOT_FOUND: "Nothing is found at this address.",
    METHOD_NOT_ALLOWED: "This method is not allowed here.",
    INTERNAL_ERROR: "The server failed to handle the request.",
    SERVER_BUSY: "Roster is busy; try again after the time the Retry-After header names.",
    STUDY_ALREADY_EXISTS: "A study with this OID already exists.",
    SITE_ALREADY_EXISTS: "A site with this OID already exists.",
    USER_ALREADY_EXISTS: "A user with this username already exists.",
    ROLE_ALREADY_ASSIGNED: "The user already holds this role here.",
    USER_NOT_FOUND: "No user has this username.",
    ROLE_NOT_FOUND: "The user holds no role assignment with this id.",
    JOB_NOT_FOUND: "No job with this UUID is visible to you.",
    JOB_NOT_CANCELLABLE: "Only a queued or running job can be cancelled.",
    JOB_ATTEMPTS_EXHAUSTED: "The job was abandoned after too many worker failures.",
    JOB_UPLOAD_UNREADABLE: "The stored upload could not be read.",
    JOB_NOT_REVERTIBLE: "Only a bulk add job that is not a dry run and has not been reverted can be reverted.",
    CHANGED_SINCE_JOB: "The participant was changed after the job, so it was left as it is.",
    FILE_EXPIRED: "The stored file was deleted by retention (ROSTER_UPLOAD_RETENTION_DAYS) after the job ended.",
    INVALID_INCLUDE_PARTICIPATE_INFO: "The includeParticipateInfo parameter must be y or n.",
    JOB_NOT_FINISHED: "The job has not finished yet (only a completed, cancelled or failed job can be reverted or its "
    "file downloaded).",
    EXTRACT_NOT_COMPLETED: "The extract did not complete (it failed or was cancelled), so it has no file.",
    JOB_HAS_NO_UPLOAD: "This job has no uploaded file (it is an extract or a revert).",
    MALFORMED_ROW: "The row has a different number of cells than the header, or broken quoting.",
    MISSING_PARTICIPANT_ID: "Participant ID is empty.",
    PARTICIPANT_ID_TOO_LONG: "Participant ID exceeds 30 characters limit.",
    PARTICIPANT_ID_HTML: "Participant ID contains unsupported HTML (<, >) characters.",
    UNSUPPORTED_CHARACTER: "The value contains a control character.",
    FIRST_NAME_TOO_LONG: "First name value exceeds 35 character limit.",
    LAST_NAME_TOO_LONG: "Last name value exceeds 35 character limit.",
    IDENTIFIER_TOO_LONG: "Identifier value exceeds 35 character limit.",
    EMAIL_TOO_LONG: "Email address value exceeds 255 character limit.",
    INVALID_EMAIL: "Email address value is not a valid email address.",
    MOBILE_TOO_LONG: "Mobile number value exceeds 17 character limit.",
    INVALID_MOBILE: "Mobile number must be + and 1-3 digits, a space, then 1-14 digits.",
    PARTICIPANT_ID_DUPLICATED_IN_FILE: "The same Participant ID appears on an earlier row of this file.",
    PARTICIPANT_ID_AT_ANOTHER_SITE: "The Participant ID belongs to a participant of another site.",
    PARTICIPANT_ID_NOT_AVAILABLE: "The Participant ID belongs to a removed participant.",
    ENROLLMENT_CAP_REACHED: "Participant enrollment limit has been reached. No new participants can be added.",
    PARTICIPANT_NOT_FOUND_OC: "No participant with this ID in the study.",
    PARTICIPANT_NOT_REGISTERED: "The participant is not registered for Participate.",
    PARTICIPANT_NOT_FOUND: "Participant with the given identifier is not present in the system.",
    INVALID_GENDER: "Gender is not one of the permissible values.",
    INVALID_RACE: "Race is not one of the permissible values.",
    INVALID_ETHNICITIES: "Ethnicity is not one of the permissible values.",
    INVALID_SEX_GENOTYPE: "Sex genotype is not one of the permissible values.",
    INVALID_VITAL_STATUS: "Vital status is not one of the permissible values.",
    INVALID_ACTIVITY_STATUS: "Activity status must be Active or Disabled.",
    INVALID_BIRTH_DATE: "Birth date is not a valid date, or is in the future.",
    INVALID_DEATH_DATE: "Death date is not a valid date, is in the future, is before the birth date, or is given "
    "without vital status Dead.",
    DUP_UID: "Another participant of this study has the same uid.",
    DUP_EMPI: "Another participant of this study has the same eMPI.",
    DUP_MRN: "Another participant has the same MRN at this site.",
    DUP_MRN_SITE: "Two MRNs are given for the same site.",
    SITE_NOT_FOUND: "The site name is not a site of this study.",
    MIDDLE_NAME_TOO_LONG: "Middle name value exceeds 255 character limit.",
    UID_TOO_LONG: "uid value exceeds 255 character limit.",
    EMPI_TOO_LONG: "eMPI value exceeds 255 character limit.",
    MRN_TOO_LONG: "MRN value exceeds 100 character limit.",
    MRN_REQUIRED: "A medical record number entry needs an mrn.",
    INVALID_INCLUDE_ACCESS_CODE: "The includeAccessCode parameter must be y or n.",
    TOO_MANY_ATTEMPTS: "Too many failed sign-ins for this username or from this address; try again later.",
    WEAK_PASSWORD: "The password must be at least 12 characters and must not contain the username.",
    BODY_TOO_LARGE: "The request body is larger than 1 MiB.",
    MALFORMED_MULTIPART: "The multipart/form-data body is malformed.",
}


def message_for(code: str) -> str:
    return MESSAGES.get(code, code)
