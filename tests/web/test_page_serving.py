"""The page's files are served by Roster itself, with headers that forbid inline script and framing,
and the page's code never turns data into HTML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import roster.web.router as web

STATIC = Path(web.__file__).parent / "static"


def test_root_serves_the_page_with_a_strict_content_security_policy(client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert '<script type="module" src="/static/app.js"></script>' in r.text


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_static_files_are_served_with_their_type_and_the_same_headers(client, name: str, content_type: str) -> None:
    r = client.get(f"/static/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == content_type
    assert r.content == (STATIC / name).read_bytes()
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_every_module_the_page_imports_is_served(client) -> None:
    pending, seen = ["app.js"], set()
    while pending:
        name = pending.pop()
        seen.add(name)
        r = client.get(f"/static/{name}")
        assert r.status_code == 200, name
        for imported in re.findall(r'from "\./([\w.-]+)"', r.text):
            if imported not in seen:
                pending.append(imported)
    assert {"app.js", "api.js", "dom.js", "jobs.js", "log.js", "upload.js"} <= seen


def test_unchanged_files_answer_304_to_a_conditional_request(client) -> None:
    first = client.get("/static/app.js")
    again = client.get("/static/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert first.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    [
        "/static/missing.js",
        "/static/router.py",
        "/static/..%2Frouter.py",
        "/static/.hidden.js",
        "/static/%2e%2e%2f__init__.py",
    ],
)
def test_anything_but_a_page_file_is_not_found(client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["message"] == "errorCode.notFound"


def test_the_page_has_no_inline_script_style_or_event_handlers() -> None:
    html = (STATIC / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all('src="' in tag for tag in scripts)
    assert re.search(r"<script\b[^>]*>\s*[^<\s]", html) is None  # no inline code between script tags
    assert re.search(r"\sstyle\s*=", html) is None
    assert re.search(r"\son[a-z]+\s*=", html) is None


def test_the_page_code_never_builds_html_from_strings() -> None:
    # The XSS guarantee in the source: data only ever reaches the DOM as text nodes.
    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|\beval\(|new Function\("
    )
    for path in STATIC.glob("*.js"):
        assert forbidden.search(path.read_text()) is None, path.name


def test_the_page_names_the_unauthorized_code_once_as_the_api_spells_it() -> None:
    from roster import codes

    source = (STATIC / "api.js").read_text()
    assert re.findall(r'"errorCode\.[A-Za-z]+"', source) == [f'"{codes.UNAUTHORIZED}"']
    assert f'const UNAUTHORIZED = "{codes.UNAUTHORIZED}";' in source
    assert source.count("new ApiError(401, UNAUTHORIZED,") == 2  # no token: the same code as the API's 401
