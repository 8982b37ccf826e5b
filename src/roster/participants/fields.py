"""The participant's fields, written once: API name (SPEC §5, §7), CSV header, participants column, length
limit, error codes, format check and permissible values. The CSV reader, the rules, the profile rules,
the service, the extract and the bulk writer derive what they need from here.

The contact fields (`CONTACT`) are what a bulk row and the single endpoint may set; the profile fields
(`PROFILE`) only the participant API may. `pmis` (medical record numbers) is a field of the API but rows
of its own table (`participant_mrns`), so it is not in the table: `PMIS` names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from roster import codes
from roster.participants import formats


class Kind(Enum):
    TEXT = "text"
    DATE = "date"  # `invalid` when not a date
    CHOICE = "choice"  # one of `choices`, else `invalid`
    CHOICES = "choices"  # a list, each one of `choices`, else `invalid`


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # API name; also the field's name in audit events
    column: str  # participants column
    kind: Kind = Kind.TEXT
    max_length: int | None = None  # in characters (code points)
    too_long: str | None = None  # code when longer than max_length
    valid: Callable[[str], bool] | None = None  # format check, after the length and control characters
    invalid: str | None = None  # code when `valid` fails, a choice is not permitted, or a date unreadable
    choices: tuple[str, ...] = ()
    key_column: str | None = None  # column of its case-insensitive key (unique in the study)
    headers: tuple[str, ...] = ()  # CSV upload headers naming it, matched case-insensitively
    extract: str | None = None  # the extract file's header (PII columns)

    def __post_init__(self) -> None:
        # A half-described field would be checked half: refused when the module is imported.
        if (self.max_length is None) != (self.too_long is None):
            raise ValueError(f"{self.name}: max_length and too_long go together")
        if (self.valid is not None or self.kind is not Kind.TEXT) and self.invalid is None:
            raise ValueError(f"{self.name}: a check needs its `invalid` code")
        if bool(self.choices) != (self.kind in (Kind.CHOICE, Kind.CHOICES)):
            raise ValueError(f"{self.name}: choices go with the CHOICE kinds only")


# Permissible values (SPEC §7).
GENDERS = ("Male Gender", "Female Gender", "Unknown", "Unspecified")
RACES = (
    "American Indian or Alaska Native",
    "Asian",
    "Black or African American",
    "Native Hawaiian or other Pacific Islander",
    "Not Reported",
    "Unknown",
    "White",
)
ETHNICITIES = ("Hispanic or Latino", "Not Hispanic or Latino", "Not Reported", "Unknown")
SEX_GENOTYPES = (
    "XX Genotype",
    "XY Genotype",
    "XXX",
    "Klinefelter's Syndrome",
    "XXXY syndrome",
    "XXYY syndrome",
    "Mosaic including XXXXY",
    "Penta X syndrome",
)
VITAL_STATUSES = ("Alive", "Dead", "Unknown")
ACTIVITY_STATUSES = ("Active", "Disabled")

PARTICIPANT_ID = Field(
    "ParticipantID",
    "participant_id",
    max_length=30,
    too_long=codes.PARTICIPANT_ID_TOO_LONG,
    valid=formats.has_no_markup,
    invalid=codes.PARTICIPANT_ID_HTML,
    headers=("ParticipantID",),
)

FIRST_NAME = Field(
    "firstName",
    "first_name",
    max_length=35,
    too_long=codes.FIRST_NAME_TOO_LONG,
    headers=("firstName",),
    extract="First Name",
)
LAST_NAME = Field(
    "lastName",
    "last_name",
    max_length=35,
    too_long=codes.LAST_NAME_TOO_LONG,
    headers=("lastName",),
    extract="Last Name",
)
EMAIL = Field(
    "emailAddress",
    "email_address",
    max_length=255,
    too_long=codes.EMAIL_TOO_LONG,
    valid=formats.is_valid_email,
    invalid=codes.INVALID_EMAIL,
    headers=("emailAddress",),
    extract="Email",
)
MOBILE = Field(
    "mobileNumber",
    "mobile_number",
    max_length=17,
    too_long=codes.MOBILE_TOO_LONG,
    valid=formats.is_valid_mobile,
    invalid=codes.INVALID_MOBILE,
    headers=("mobileNumber",),
    extract="Mobile",
)
IDENTIFIER = Field(
    "identifier",
    "identifier",
    max_length=35,
    too_long=codes.IDENTIFIER_TOO_LONG,
    headers=("identifier",),
    extract="Identifier",
)

MIDDLE_NAME = Field("middleName", "middle_name", max_length=255, too_long=codes.MIDDLE_NAME_TOO_LONG)
UID = Field("uid", "uid", max_length=255, too_long=codes.UID_TOO_LONG, key_column="uid_key")
EMPI = Field("empi", "empi", max_length=255, too_long=codes.EMPI_TOO_LONG, key_column="empi_key")
BIRTH_DATE = Field("birthDate", "birth_date", Kind.DATE, invalid=codes.INVALID_BIRTH_DATE)
DEATH_DATE = Field("deathDate", "death_date", Kind.DATE, invalid=codes.INVALID_DEATH_DATE)
VITAL_STATUS = Field(
    "vitalStatus", "vital_status", Kind.CHOICE, invalid=codes.INVALID_VITAL_STATUS, choices=VITAL_STATUSES
)
GENDER = Field("gender", "gender", Kind.CHOICE, invalid=codes.INVALID_GENDER, choices=GENDERS)
RACE = Field("race", "race", Kind.CHOICES, invalid=codes.INVALID_RACE, choices=RACES)
ETHNICITY = Field("ethnicities", "ethnicities", Kind.CHOICES, invalid=codes.INVALID_ETHNICITIES, choices=ETHNICITIES)
SEX_GENOTYPE = Field(
    "sexGenotype", "sex_genotype", Kind.CHOICE, invalid=codes.INVALID_SEX_GENOTYPE, choices=SEX_GENOTYPES
)
ACTIVITY_STATUS = Field(
    "activityStatus", "activity_status", Kind.CHOICE, invalid=codes.INVALID_ACTIVITY_STATUS, choices=ACTIVITY_STATUSES
)

# In this order everywhere: the file's columns of a template, the extract's, the rules' screen.
CONTACT = (FIRST_NAME, LAST_NAME, EMAIL, MOBILE, IDENTIFIER)
# The columns of a bulk upload: the ID and the contact fields.
BULK = (PARTICIPANT_ID, *CONTACT)
PROFILE = (
    MIDDLE_NAME,
    UID,
    EMPI,
    BIRTH_DATE,
    DEATH_DATE,
    VITAL_STATUS,
    GENDER,
    RACE,
    ETHNICITY,
    SEX_GENOTYPE,
    ACTIVITY_STATUS,
)
# What a profile update (PUT/PATCH) may change: every field but the ID.
EDITABLE = (*CONTACT, *PROFILE)
PMIS = "pmis"

CONTACT_NAMES = tuple(f.name for f in CONTACT)
PROFILE_NAMES = (*(f.name for f in PROFILE), PMIS)
# The participants columns a bulk row writes, in CONTACT order (the bulk writer's rows follow it).
WRITABLE_COLUMNS = tuple(f.column for f in CONTACT)
# API name -> column, for the contact fields.
CONTACT_COLUMNS = {f.name: f.column for f in CONTACT}
BY_NAME = {f.name: f for f in (*BULK, *PROFILE)}
