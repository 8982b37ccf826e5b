from __future__ import annotations

import datetime as dt

from pydantic import EmailStr, Field

from roster.auth.models import Role
from roster.schemas import ApiModel, OutModel

Username = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@+-]+$")


class TokenRequest(ApiModel):
    # Lenient on purpose: wrong credentials of any shape answer 401, not 422.
    model_config = ApiModel.model_config | {"extra": "ignore"}
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class TokenOut(ApiModel):
    model_config = ApiModel.model_config | {"alias_generator": None}
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class UserCreate(ApiModel):
    username: str = Username
    password: str = Field(min_length=8, max_length=1000)
    admin: bool = False
    display_name: str | None = Field(None, max_length=200)
    email: EmailStr | None = None


class UserUpdate(ApiModel):
    enabled: bool | None = None
    password: str | None = Field(None, min_length=8, max_length=1000)
    admin: bool | None = None
    display_name: str | None = Field(None, max_length=200)
    email: EmailStr | None = None


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
    status: str
    # What the caller may do here: the web page offers upload only where canWrite.
    can_write: bool
    can_read_pii: bool
    enrollment_cap: int | None


class StudyRef(OutModel):
    oid: str
    name: str
    status: str
    participate_active: bool
    participant_id_method: str
    study_level_role: Role | None
    sites: list[SiteRef]


class MeOut(OutModel):
    username: str
    display_name: str | None
    admin: bool
    roles: list[RoleOut]
    studies: list[StudyRef]
