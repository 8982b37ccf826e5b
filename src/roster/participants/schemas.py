"""Wire shapes of the participant API (SPEC §7), OpenClinica-style and OpenSpecimen-style.

Request bodies are parsed after the request-level checks (see router), so these models only say what
a well-formed body looks like; the field rules (lengths, permissible values, dates, uniqueness) live in
`rules.py` (contact fields) and `profile.py` (profile fields), where every error is collected, each with
its code: limits here would answer a 422 without them. The fields themselves are `fields.py`'s table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from roster import codes
from roster.errors import DomainError
from roster.participants import fields
from roster.schemas import ApiModel, OutModel

# The models below spell the fields out, typed; tests/participants/test_fields.py holds them to the table.
CONTACT_FIELDS = fields.CONTACT_NAMES
PROFILE_FIELDS = fields.PROFILE_NAMES
# What OpenSpecimen's participant resource carries (seed 004): the OS path reads and replaces only these.
OPENSPECIMEN_FIELDS = (fields.FIRST_NAME.name, fields.LAST_NAME.name, *PROFILE_FIELDS)
# Monitors and viewers see only these keys of a participant (SPEC §1): ID, OID, site, status, timestamps.
NON_PII_KEYS = frozenset(
    {
        "id",
        "participantId",
        "subjectKey",
        "subjectOid",
        "siteOid",
        "status",
        "participateStatus",
        "activityStatus",
        "createdAt",
        "createdBy",
        "updatedAt",
        "updatedBy",
    }
)

# A date may come as an ISO date, an ISO date-time, or (as OpenSpecimen clients send it) epoch milliseconds.
DateValue = StrictStr | StrictInt | None


M = TypeVar("M", bound=BaseModel)


class BodyInvalid(DomainError):
    """A body that is not the JSON object the endpoint takes: 422 with field errors (as every endpoint's)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(codes.VALIDATION_FAILED, 422, {"errors": errors}, detail or None)
        self.errors = errors


def parse_body(model: type[M], raw: bytes) -> M:
    """Bodies are parsed by the endpoint, after its request checks, so that a bad body never answers
    before a missing role or an unknown study does. Messages name fields, never echo values."""
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"], "type": err["type"]}
            for err in exc.errors(include_input=False, include_url=False)
        ]
        raise BodyInvalid(errors) from None


class SingleParticipantIn(ApiModel):
    """`POST …/sites/{siteOID}/participants`: one record, the same fields as a bulk row."""

    subject_key: StrictStr | None = None
    first_name: StrictStr | None = None
    last_name: StrictStr | None = None
    identifier: StrictStr | None = None
    email_address: StrictStr | None = None
    mobile_number: StrictStr | None = None
    # OpenClinica's own name for the mobile number.
    phone_number: StrictStr | None = None

    @model_validator(mode="after")
    def _one_phone(self) -> Self:
        mobile, phone = (self.mobile_number or "").strip(), (self.phone_number or "").strip()
        if mobile and phone and mobile != phone:
            raise ValueError("give mobileNumber or its alias phoneNumber, not two different values")
        return self


class SingleParticipantOut(OutModel):
    subject_key: str | None
    subject_oid: str | None
    status: Literal["available", "removed"] | None
    participate_status: str | None
    outcome: Literal["created", "updated", "unchanged"]


class PmiIn(ApiModel):
    mrn: StrictStr | None = None
    site_name: StrictStr | None = None


class PmiOut(OutModel):
    mrn: str
    site_name: str


class ProfileIn(ApiModel):
    """`PUT`/`PATCH …/participants/{participantID}`: contact and profile fields; `null` clears one."""

    first_name: StrictStr | None = None
    last_name: StrictStr | None = None
    email_address: StrictStr | None = None
    mobile_number: StrictStr | None = None
    identifier: StrictStr | None = None
    middle_name: StrictStr | None = None
    uid: StrictStr | None = None
    empi: StrictStr | None = None
    birth_date: DateValue = None
    death_date: DateValue = None
    vital_status: StrictStr | None = None
    gender: StrictStr | None = None
    race: list[StrictStr] | None = None
    ethnicities: list[StrictStr] | None = None
    sex_genotype: StrictStr | None = None
    pmis: list[PmiIn] | None = None
    activity_status: StrictStr | None = None

    def sent(self) -> dict[str, Any]:
        """The fields the client sent, by API name (PATCH semantics)."""
        return _sent(self)


class OpenSpecimenParticipantIn(BaseModel):
    """`PUT /rest/ng/participants/{id}` (seed 004). `id` is accepted so that a GET answer can be sent back."""

    model_config = ConfigDict(extra="forbid")

    id: StrictInt | StrictStr | None = None
    firstName: StrictStr | None = None  # noqa: N815 - the seed's own names
    middleName: StrictStr | None = None  # noqa: N815
    lastName: StrictStr | None = None  # noqa: N815
    uid: StrictStr | None = None
    empi: StrictStr | None = None
    birthDate: DateValue = None  # noqa: N815
    deathDate: DateValue = None  # noqa: N815
    vitalStatus: StrictStr | None = None  # noqa: N815
    gender: StrictStr | None = None
    race: list[StrictStr] | None = None
    ethnicities: list[StrictStr] | None = None
    sexGenotype: StrictStr | None = None  # noqa: N815
    pmis: list[PmiIn] | None = None
    activityStatus: StrictStr | None = None  # noqa: N815


def _sent(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in model.model_fields_set:
        field = type(model).model_fields[name]
        key = field.alias or name
        if key == "id":
            continue
        value = getattr(model, name)
        if key == "pmis" and value is not None:
            value = [{"mrn": p.mrn, "siteName": p.site_name} for p in value]
        out[key] = value
    return out


def openspecimen_sent(model: OpenSpecimenParticipantIn) -> dict[str, Any]:
    return _sent(model)


class ParticipantOut(OutModel):
    """The whole record; `NON_PII_KEYS` is what monitors and viewers get of it."""

    id: int
    participant_id: str
    subject_key: str
    subject_oid: str
    site_oid: str
    status: Literal["available", "removed"]
    participate_status: str | None
    first_name: str | None
    last_name: str | None
    email_address: str | None
    mobile_number: str | None
    identifier: str | None
    middle_name: str | None
    uid: str | None
    empi: str | None
    birth_date: dt.date | None
    death_date: dt.date | None
    vital_status: str | None
    gender: str | None
    race: list[str]
    ethnicities: list[str]
    sex_genotype: str | None
    pmis: list[PmiOut]
    activity_status: str
    created_at: dt.datetime
    created_by: str | None
    updated_at: dt.datetime
    updated_by: str | None


class OpenSpecimenParticipantOut(BaseModel):
    """The seed's answer shape: `id` as a string, as in the seed's example."""

    id: str
    firstName: str | None  # noqa: N815
    middleName: str | None  # noqa: N815
    lastName: str | None  # noqa: N815
    uid: str | None
    empi: str | None
    birthDate: dt.date | None  # noqa: N815
    deathDate: dt.date | None  # noqa: N815
    vitalStatus: str | None  # noqa: N815
    gender: str | None
    race: list[str]
    ethnicities: list[str]
    sexGenotype: str | None  # noqa: N815
    pmis: list[PmiOut]
    activityStatus: str  # noqa: N815


class AccessLinkOut(OutModel):
    access_code: str | None
    host: str
    access_link: str


class AuditChangeOut(BaseModel):
    field: str
    old: Any = None
    new: Any = None
    # True for a monitor or viewer: the field changed, its values are personal data they may not see.
    redacted: bool = False


class AuditEventOut(OutModel):
    id: int
    at: dt.datetime
    username: str
    action: str
    source: str
    changes: list[AuditChangeOut] = Field(default_factory=list)
