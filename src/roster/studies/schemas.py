from __future__ import annotations

import datetime as dt
import re
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from roster.schemas import ApiModel, OutModel

Oid = Field(min_length=1, max_length=100, pattern=r"^[^\s/\\?#%]+$")
Status = Literal["available", "locked"]
IdMethod = Literal["manual", "system"]
_TEMPLATE_RUN = re.compile(r"#+")


def check_template(method: str | None, template: str | None) -> None:
    if template is not None and len(_TEMPLATE_RUN.findall(template)) != 1:
        raise ValueError("participantIdTemplate needs exactly one run of '#', e.g. JUNO-####")
    if method == "system" and not template:
        raise ValueError("participantIdMethod 'system' needs a participantIdTemplate")


class StudyCreate(ApiModel):
    oid: str = Oid
    name: str = Field(min_length=1, max_length=255)
    status: Status = "available"
    participant_id_method: IdMethod = "manual"
    participant_id_template: str | None = Field(None, min_length=1, max_length=60)
    participate_active: bool = False
    enrollment_cap: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _template(self) -> Self:
        check_template(self.participant_id_method, self.participant_id_template)
        return self


def no_nulls(model: ApiModel, *fields: str) -> None:
    """PATCH: a field may be left out, but these may not be cleared."""
    for name in fields:
        if name in model.model_fields_set and getattr(model, name) is None:
            raise ValueError(f"{to_camel(name)} may not be null")


class StudyUpdate(ApiModel):
    name: str | None = Field(None, min_length=1, max_length=255)
    status: Status | None = None
    participant_id_method: IdMethod | None = None
    participant_id_template: str | None = Field(None, min_length=1, max_length=60)
    participate_active: bool | None = None
    enrollment_cap: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _template(self) -> Self:
        no_nulls(self, "name", "status", "participant_id_method", "participate_active")
        check_template(None, self.participant_id_template)
        return self


class SiteCreate(ApiModel):
    oid: str = Oid
    name: str = Field(min_length=1, max_length=255)
    status: Status = "available"
    enrollment_cap: int | None = Field(None, ge=0)


class SiteUpdate(ApiModel):
    name: str | None = Field(None, min_length=1, max_length=255)
    status: Status | None = None
    enrollment_cap: int | None = Field(None, ge=0)


    @model_validator(mode="after")
    def _not_null(self) -> Self:
        no_nulls(self, "name", "status")
        return self


class SiteOut(OutModel):
    oid: str
    name: str
    status: str
    enrollment_cap: int | None
    study_oid: str
    created_at: dt.datetime
    updated_at: dt.datetime


class StudyOut(OutModel):
    oid: str
    name: str
    status: str
    participant_id_method: str
    participant_id_template: str | None
    participate_active: bool
    enrollment_cap: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    sites: list[SiteOut] = []
