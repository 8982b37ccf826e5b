"""Domain exceptions and the one place that turns them into HTTP answers."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic.alias_generators import to_camel
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from roster import codes
from roster.db import is_busy

log = logging.getLogger("roster.errors")


class DomainError(Exception):
    """A failure with a code the client can act on: `{"message": code, "params", "detail"}`."""

    def __init__(
        self,
        code: str,
        status: int = 400,
        params: dict[str, Any] | None = None,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.params = params or {}
        self.detail = detail or codes.message_for(code)
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"message": self.code, "params": self.params, "detail": self.detail}


class Unauthorized(DomainError):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(codes.UNAUTHORIZED, 401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


class NotFound(DomainError):
    def __init__(self, code: str = codes.NOT_FOUND, params: dict[str, Any] | None = None) -> None:
        super().__init__(code, 404, params)


class Forbidden(DomainError):
    def __init__(self, code: str = codes.NO_SUFFICIENT_PRIVILEGES, params: dict[str, Any] | None = None) -> None:
        super().__init__(code, 403, params)


class Conflict(DomainError):
    def __init__(self, code: str, params: dict[str, Any] | None = None) -> None:
        super().__init__(code, 409, params)


def _wire_name(part: object, last: bool, err_type: object) -> str:
    """Pydantic names a defaulted field by its Python name; clients know the camelCase one."""
    if not isinstance(part, str) or (last and err_type == "extra_forbidden"):
        return str(part)  # an unknown field is named exactly as the client sent it
    return to_camel(part) if "_" in part.strip("_") else part


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        # A JSON syntax error's location is a character offset, not a field.
        parts = (
            []
            if err.get("type") == "json_invalid"
            else [p for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        )
        loc = [_wire_name(p, last=i == len(parts) - 1, err_type=err.get("type")) for i, p in enumerate(parts)]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append({"field": ".".join(loc) or "body", "message": message, "type": err.get("type")})
    return out


async def _domain_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc)
    body = {
        "message": codes.VALIDATION_FAILED,
        "params": {"errors": errors},
        "detail": "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        or codes.message_for(codes.VALIDATION_FAILED),
    }
    return JSONResponse(body, status_code=422)


_HTTP_CODES = {404: codes.NOT_FOUND, 405: codes.METHOD_NOT_ALLOWED, 401: codes.UNAUTHORIZED, 413: codes.BODY_TOO_LARGE}


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's "error parsing the body" (not UTF-8, nested too deep): a body that cannot be read is
        # invalid like any malformed one, 422 validationFailed (decisions.md), not a bare 400.
        error = {
            "field": "body",
            "message": "the body cannot be parsed (not UTF-8 JSON, or nested too deeply)",
            "type": "json_invalid",
        }
        return JSONResponse(
            {"message": codes.VALIDATION_FAILED, "params": {"errors": [error]}, "detail": f"body: {error['message']}"},
            status_code=422,
        )
    code = _HTTP_CODES.get(exc.status_code, codes.VALIDATION_FAILED if exc.status_code < 500 else codes.INTERNAL_ERROR)
    detail = exc.detail if isinstance(exc.detail, str) else codes.message_for(code)
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request)}
    return JSONResponse({"message": code, "params": {}, "detail": detail}, status_code=exc.status_code, headers=headers)


def allowed_methods(request: Request) -> str:
    """RFC 9110 §15.5.6: every method the path answers, not only those of the first route Starlette tried
    (GET and POST on one path are two routes)."""

    def answers(method: str) -> bool:
        probe = {**request.scope, "method": method}
        return any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes)

    return ", ".join(m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS") if answers(m))


# A route template names what was asked for without the IDs in it; an unmatched path is never logged.
UNMATCHED_ROUTE = "<unmatched>"
_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/…/participants/{participantID}`), for logs: request paths hold
    participant IDs and usernames."""
    path = getattr(scope.get("route"), "path", None)
    return _CONVERTER.sub(r"{\1}", path) if isinstance(path, str) else UNMATCHED_ROUTE


def busy_response(retry_after: int, detail: str) -> JSONResponse:
    """503 with Retry-After: the request was not carried out and may be sent again as it is."""
    return JSONResponse(
        {"message": codes.SERVER_BUSY, "params": {"retryAfter": retry_after}, "detail": detail},
        status_code=503,
        headers={"Retry-After": str(retry_after)},
    )


async def _database_handler(request: Request, exc: Exception) -> JSONResponse:
    if is_busy(exc):
        # A lock held elsewhere (a bulk batch, a frozen process) or every connection in use: the transaction
        # was rolled back, nothing was written.
        log.warning(
            "busy: %s on %s %s",
            type(getattr(exc, "orig", None) or exc).__name__,
            request.method,
            route_template(request.scope),
        )
        return busy_response(2, "Roster is busy with other work on the same data; try again shortly.")
    return await _unhandled(request, exc)


def internal_error_response() -> JSONResponse:
    return JSONResponse(
        {"message": codes.INTERNAL_ERROR, "params": {}, "detail": codes.message_for(codes.INTERNAL_ERROR)},
        status_code=500,
    )


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # Only reached when an exception escapes app.RequestLog, which answers and logs every other one.
    # The type and route only: exception text may carry personal data from a row or a body.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, route_template(request.scope))
    return internal_error_response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(SQLAlchemyTimeoutError, _database_handler)
    app.add_exception_handler(OperationalError, _database_handler)
    app.add_exception_handler(Exception, _unhandled)
