from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import EmailStr, Field, StrictBool

from roster.auth.models import Role
from roster.auth.passwords import MIN_PASSWORD_LENGTH
from roster.schemas import ApiModel, OutModel, PlainText, not_null

Username = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@+-]+$")


class TokenRequest(ApiModel):
    # Extra keys that OAuth-minded clients add (grant_type, client_id) are ignored, not refused.
    model_config = ApiModel.model_config | {"extra": "ignore"}
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class TokenOut(ApiModel):
    model_config = ApiModel.model_config | {"alias_generator": None}
    access_token: str
    token_type: str = "bearer"
    expires_in: int


# Strength (length, not the username) is checked by roster.auth.passwords.check_strength: 422 weakPassword.
# minLength is only documented here: pydantic would answer a short one validationFailed instead of weakPassword.
Password = Annotated[str, Field(max_length=1000, json_schema_extra={"minLength": MIN_PASSWORD_LENGTH})]
DisplayName = Annotated[PlainText, Field(max_length=200)]
# 254: the longest address email-validator (behind EmailStr) accepts (RFC 5321 §4.5.3.1.3).
Email = Annotated[EmailStr, Field(max_length=254)]


class UserCreate(ApiModel):
    username: str = Username
    password: Password
    admin: StrictBool = False
    display_name: DisplayName | None = None
    email: Email | None = None


class UserUpdate(ApiModel):
    enabled: StrictBool | None = None
    password: Password | None = None
    admin: StrictBool | None = None
    # null clears these two
    display_name: DisplayName | None = None
    email: Email | None = None

    _not_null = not_null("enabled", "password", "admin")


class UserOut(OutModel):
    username: str
    display_name: str | None
    email: str | None
    enabled: bool
    admin: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class RoleCreate(ApiModel):
    study_oid: str = Field(min_length=1, max_length=100)
    site_oid: str | None = Field(None, min_length=1, max_length=100)
    role: Role


class RoleOut(OutModel):
    id: int
    study_oid: str
    site_oid: str | None
    role: Role


class SiteRef(OutModel):
    oid: str
    name: str
    status: Literal["available", "locked"]
    # What the caller may do here: the web page offers upload only where canWrite.
    can_write: bool
    can_read_pii: bool
    enrollment_cap: int | None


class StudyRef(OutModel):
    oid: str
    name: str
    status: Literal["available", "locked"]
    participate_active: bool
    participant_id_method: Literal["manual", "system"]
    study_level_role: Role | None
    sites: list[SiteRef]


class MeOut(OutModel):
    username: str
    display_name: str | None
    admin: bool
    roles: list[RoleOut]
    studies: list[StudyRef]
