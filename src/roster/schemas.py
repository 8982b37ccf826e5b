"""Shared schema plumbing: camelCase JSON, strict bodies, the pagination envelope (SPEC §6)."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

T = TypeVar("T")


def _no_control_characters(value: str) -> str:
    # NUL and friends: PostgreSQL refuses NUL in text, and none belongs in a name shown on a page.
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_lone_surrogate(v) for v in value)
    return False


# A single-line human-readable string (names, labels): no control characters (Unicode category Cc).
PlainText = Annotated[
    str, AfterValidator(_no_control_characters), Field(json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f-\x9f]*$"})
]
# Integers stored in 32-bit columns: larger values would make the database, not the client, fail.
MAX_INT32 = 2_147_483_647


def _not_null(cls: type, value: object) -> object:
    if value is None:
        raise ValueError("may not be null")
    return value


def not_null(*fields: str) -> Any:
    """PATCH bodies: these fields may be left out but not sent as null. Use as `_x = not_null("a", "b")`."""
    return field_validator(*fields)(_not_null)


def _not_null_in_schema(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """OpenAPI: a `not_null` field is optional but not nullable, though typed `X | None`."""
    for decorator in cls.__pydantic_decorators__.field_validators.values():
        if getattr(decorator.func, "__func__", decorator.func) is not _not_null:
            continue
        for name in decorator.info.fields:
            field = cls.model_fields[name]
            prop = schema.get("properties", {}).get(field.alias or name, {})
            prop.pop("default", None)
            options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
            if len(options) == 1:
                prop.update(options[0])
            elif options:
                prop["anyOf"] = options


class ApiModel(BaseModel):
    """camelCase on the wire; unknown fields in a request body are an error, not silently dropped."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        from_attributes=True,
        json_schema_extra=_not_null_in_schema,
    )

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        # JSON may carry "\ud800", which decodes to a str that no database (nor argon2) can encode: 422, not 500.
        if _has_lone_surrogate(data):
            raise ValueError("text must be valid Unicode (a lone surrogate such as \\ud800 was sent)")
        return data


class OutModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class Page(OutModel, Generic[T]):
    items: list[T]
    page: int
    page_size: int
    total: int


class PageParams(BaseModel):
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def page_params(
    # Bounded so that the offset always fits the databases' 64-bit integers.
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=1000)] = 50,
) -> PageParams:
    return PageParams(page=page, page_size=page_size)


# OpenAPI only: the values parse_yes_no takes (it answers its own 400 code for others, not a 422).
YES_NO_SCHEMA = {"pattern": r"^\s*([yY]([eE][sS])?|[nN][oO]?)\s*$"}
_YES = frozenset({"y", "yes"})
_NO = frozenset({"n", "no"})


def parse_yes_no(value: str | None, code: str) -> bool:
    """OpenClinica's y/n query parameters (`register`, `includeAccessCode`): `y`/`yes`/`n`/`no` in any case;
    absent means no; anything else is a 400 with `code`."""
    from roster.errors import DomainError

    if value is None:
        return False
    word = value.strip().lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise DomainError(code, 400, {"value": value[:20]})
