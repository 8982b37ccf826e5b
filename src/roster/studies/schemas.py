from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, ValidationInfo, field_validator
from pydantic.config import JsonDict

from roster.schemas import MAX_INT32, ApiModel, OutModel, PlainText, not_null

# Printable ASCII without whitespace, without / \ ? # %, which cannot travel safely in a URL path even
# when encoded (proxies decode %2F, '%' invites double-decoding), and without " ' < > ` (OIDs end up in
# HTML, CSV and header values). Parentheses are fine: `S_JU0(TEST)`. ASCII also keeps the upper-cased
# lookup key exactly as long as the OID.
Oid = Annotated[
    str,
    Field(min_length=1, max_length=100, pattern=r"^[\x21\x24\x26\x28-\x2E\x30-\x3B\x3D\x40-\x5B\x5D-\x5F\x61-\x7E]+$"),
]
Name = Annotated[PlainText, Field(min_length=1, max_length=255)]
# JSON Schema counts 806.0 as an integer (what OpenAPI promises); other floats and strings stay refused.
Cap = Annotated[
    StrictInt,
    Field(ge=0, le=MAX_INT32),
    BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v),
]
Status = Literal["available", "locked"]
IdMethod = Literal["manual", "system"]
# A generated ID is at least as long as its template, and participant IDs hold 30 characters.
Template = Annotated[
    PlainText,
    Field(
        min_length=1,
        max_length=30,
        json_schema_extra={"pattern": r"^[^#<>\x00-\x1f\x7f-\x9f]*#+[^#<>\x00-\x1f\x7f-\x9f]*$"},
    ),
]
# OpenAPI: participantIdMethod "system" needs a template (checked by check_template).
_SYSTEM_NEEDS_TEMPLATE: JsonDict = {
    "if": {"properties": {"participantIdMethod": {"const": "system"}}, "required": ["participantIdMethod"]},
    "then": {"required": ["participantIdTemplate"], "properties": {"participantIdTemplate": {"type": "string"}}},
}
_TEMPLATE_RUN = re.compile(r"#+")


def check_template(method: str | None, template: str | None) -> None:
    if template is not None:
        if len(_TEMPLATE_RUN.findall(template)) != 1:
            raise ValueError("participantIdTemplate needs exactly one run of '#', e.g. JUNO-####")
        if "<" in template or ">" in template:
            raise ValueError("participantIdTemplate may not contain < or >, which participant IDs may not hold")
    if method == "system" and not template:
        raise ValueError("participantIdMethod 'system' needs a participantIdTemplate")


def no_nulls(model: ApiModel, *fields: str) -> None:
    """PATCH: a field may be left out, but these may not be cleared (kept for callers; see `not_null`)."""
    for name in fields:
        if name in model.model_fields_set and getattr(model, name) is None:
            raise ValueError(f"{name} may not be null")


class StudyCreate(ApiModel):
    model_config = ApiModel.model_config | ConfigDict(json_schema_extra=_SYSTEM_NEEDS_TEMPLATE)
    oid: Oid
    name: Name
    status: Status = "available"
    participant_id_method: IdMethod = "manual"
    # validate_default: "system" without any template must fail on this field, not pass silently.
    participant_id_template: Template | None = Field(None, validate_default=True)
    participate_active: StrictBool = False
    enrollment_cap: Cap | None = None

    @field_validator("participant_id_template")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A method that failed its own validation is absent here and reported on its own field.
        check_template(info.data.get("participant_id_method"), value)
        return value


class StudyUpdate(ApiModel):
    name: Name | None = None
    status: Status | None = None
    participant_id_method: IdMethod | None = None
    participant_id_template: Template | None = None
    participate_active: StrictBool | None = None
    enrollment_cap: Cap | None = None

    _not_null = not_null("name", "status", "participant_id_method", "participate_active")

    @field_validator("participant_id_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        # The method may be changed by the same PATCH or not at all: the service checks the pair.
        check_template(None, value)
        return value


class SiteCreate(ApiModel):
    oid: Oid
    name: Name
    status: Status = "available"
    enrollment_cap: Cap | None = None


class SiteUpdate(ApiModel):
    name: Name | None = None
    status: Status | None = None
    enrollment_cap: Cap | None = None

    _not_null = not_null("name", "status")


class SiteOut(OutModel):
    oid: str
    name: str
    status: Status
    enrollment_cap: int | None
    study_oid: str
    created_at: dt.datetime
    updated_at: dt.datetime


class StudyOut(OutModel):
    oid: str
    name: str
    status: Status
    participant_id_method: IdMethod
    participant_id_template: str | None
    participate_active: bool
    enrollment_cap: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    sites: list[SiteOut] = []
