"""The token endpoint's body: OpenClinica's JSON, or the OAuth 2 password form (RFC 6749 §4.3.2).

Both go through the same model and the same 422 `validationFailed` field errors, so a client gets the
same answer whichever it sends. A form's `grant_type`, when sent, must be `password`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from roster import codes
from roster.auth.schemas import TokenRequest
from roster.errors import DomainError
from roster.openapi import schema_ref

FORM = "application/x-www-form-urlencoded"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _invalid(loc: tuple[Any, ...], kind: str, msg: str, **extra: Any) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": ("body", *loc), "msg": msg, "input": None, **extra}])


async def token_request(request: Request) -> TokenRequest:
    if _media_type(request) == FORM:
        form = await request.form()
        data: Any = {key: value for key, value in form.items() if isinstance(value, str)}
        grant = data.pop("grant_type", None)
        if grant is not None and grant != "password":
            # Named as the form names it (field errors of bodies are otherwise camelCased).
            error = {"field": "grant_type", "message": "Input should be 'password'", "type": "literal_error"}
            raise DomainError(
                codes.VALIDATION_FAILED, 422, {"errors": [error]}, detail="grant_type: Input should be 'password'"
            )
    else:
        # As FastAPI reads a JSON body: empty is a missing body, bad syntax a json_invalid error.
        raw = await request.body()
        if not raw:
            raise _invalid((), "missing", "Field required")
        media = _media_type(request)
        if media and not (media == "application/json" or media.endswith("+json")):
            raise _invalid(
                (), "model_attributes_type", "Input should be a valid dictionary or object to extract fields from"
            )
        try:
            data = json.loads(raw)
        except RecursionError:  # nested too deeply to parse: unreadable, as FastAPI's own bodies (roster.errors)
            raise _invalid((), "json_invalid", "JSON nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            position = getattr(exc, "pos", 0)
            raise _invalid((position,), "json_invalid", "JSON decode error", ctx={"error": str(exc)}) from None
    try:
        return TokenRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def _form_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["username", "password"],
        "properties": {
            "grant_type": {"type": "string", "enum": ["password"]},
            "username": {"type": "string", "maxLength": 200},
            "password": {"type": "string", "maxLength": 1000, "format": "password"},
        },
    }


REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": schema_ref(TokenRequest)}, FORM: {"schema": _form_schema()}},
    }
}
