"""HTTP hardening around every request (SPEC §14): safe headers, no caching of API answers, CORS only for
configured origins, and a 1 MiB cap on request bodies other than uploads.

- `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` on every answer.
- `Cache-Control: no-store` on every answer of the API (`/pages/`, `/rest/`, `/user-service/`): they are
  the answers that may hold participant data, and a shared or browser cache must not keep them. An
  endpoint that sets its own Cache-Control keeps it.
- CORS (Starlette's middleware) only when ROSTER_CORS_ORIGINS names origins; no credentials (Roster's
  tokens travel in the Authorization header, never in cookies).
- A body that is not multipart/form-data (JSON, a form) over 1 MiB → 413 bodyTooLarge, by its
  Content-Length before a byte is read, or as it streams when it has none. Uploads have their own limit
  (ROSTER_MAX_UPLOAD_BYTES, checked by roster.bulk.upload).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roster import codes
from roster.config import Settings

MAX_BODY_BYTES = 1024 * 1024
API_PREFIXES = ("/pages/", "/rest/", "/user-service/")
ALWAYS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class BodyTooLarge(HTTPException):
    """Raised from `receive` while a body streams in: an HTTPException, so that FastAPI's body parsing passes
    it on instead of turning it into its own 400."""

    def __init__(self) -> None:
        super().__init__(413, codes.message_for(codes.BODY_TOO_LARGE))


def body_too_large_response() -> JSONResponse:
    body = {
        "message": codes.BODY_TOO_LARGE,
        "params": {"maxBytes": MAX_BODY_BYTES},
        "detail": codes.message_for(codes.BODY_TOO_LARGE),
    }
    return JSONResponse(body, status_code=413)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith(API_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers[name] = value
                if api and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"] if k.lower() in (b"content-type", b"content-length")}
        if headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data"):
            await self.app(scope, receive, send)
            return
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await body_too_large_response()(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge()
            return message

        await self.app(scope, counting_receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Innermost first: the body cap, then CORS, then the headers (on every answer, CORS's own included)."""
    app.add_middleware(BodyLimit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
            expose_headers=["Location", "Retry-After", "Content-Disposition", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)
