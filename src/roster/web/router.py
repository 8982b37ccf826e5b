"""The Bulk Actions Log page (issue 5): `/` serves index.html, `/static/<name>` its modules and styles.

The page is plain static files shipped inside the package (no build step). It calls the public API
like any client, so this router only serves files — with headers that forbid inline script, framing
and content sniffing.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, Request, Response

from roster.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# One flat directory: a name with a slash, a leading dot or an unknown extension is simply not found.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)+$")

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

router = APIRouter(include_in_schema=False)


def _serve(request: Request, name: str) -> Response:
    path = STATIC_DIR / name
    content_type = CONTENT_TYPES.get(path.suffix.lower())
    if not SAFE_NAME.match(name) or content_type is None or not path.is_file():
        raise NotFound()
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    # no-cache = revalidate every time: after an upgrade the browser never mixes old and new modules.
    headers = {**SECURITY_HEADERS, "ETag": etag, "Cache-Control": "no-cache"}
    if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        return Response(headers={**headers, "Content-Length": str(len(body))}, media_type=content_type)
    return Response(body, media_type=content_type, headers=headers)


@router.api_route("/", methods=["GET", "HEAD"])
def index(request: Request) -> Response:
    return _serve(request, "index.html")


@router.api_route("/static/{name}", methods=["GET", "HEAD"])
def static(request: Request, name: str) -> Response:
    return _serve(request, name)


@router.api_route("/favicon.ico", methods=["GET", "HEAD"])
def favicon(request: Request) -> Response:
    # Browsers ask for /favicon.ico before reading the page's <link rel=icon>.
    return _serve(request, "favicon.svg")
