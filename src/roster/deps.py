"""Request dependencies: the transaction (one per request, its only owner) and the caller."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from roster.auth.models import User
from roster.auth.revocation import require_live
from roster.auth.tokens import TokenService
from roster.config import Settings
from roster.db import Database
from roster.errors import Forbidden, Unauthorized

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_tokens(request: Request) -> TokenService:
    return request.app.state.tokens


def get_session(request: Request) -> Iterator[Session]:
    """Commits when the endpoint returns, before the answer is sent; rolls back on any error."""
    db: Database = request.app.state.db
    maker = db.read_sessions if request.method in READ_METHODS else db.sessions
    with maker() as session, session.begin():
        yield session


def get_read_session(request: Request) -> Iterator[Session]:
    """For endpoints that only read, whatever their method (the token endpoint is a POST)."""
    with request.app.state.db.read_sessions() as session, session.begin():
        yield session


# scope="function": the commit runs as the endpoint returns, so a 2xx means the data is stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
# On SQLite a write session takes the database lock at BEGIN: read-only work should not queue behind a writer.
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_db)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required")
    return token.strip()


# Documents the scheme in OpenAPI (Swagger's Authorize button); auto_error=False so that a missing or
# non-bearer header answers our 401 (errorCode.unauthorized, WWW-Authenticate), not FastAPI's.
bearer_scheme = HTTPBearer(
    auto_error=False, bearerFormat="JWT", description="A token from POST /user-service/api/oauth/token"
)


def bearer_credentials(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> str:
    if credentials is None:
        raise Unauthorized("a bearer token is required")
    return credentials.credentials


BearerToken = Annotated[str, Depends(bearer_credentials)]


def load_user(session: Session, tokens: TokenService, token: str) -> User:
    verified = tokens.verify(token)  # its username is one the database can take (no NUL, valid UTF-8)
    user = session.scalar(select(User).where(User.username_key == verified.username.lower()))
    if user is None or not user.enabled:
        # Checked on every request, so disabling a user stops its tokens at once.
        raise Unauthorized("unknown or disabled user")
    require_live(session, user, verified)
    return user


def current_user(session: SessionDep, tokens: Annotated[TokenService, Depends(get_tokens)], token: BearerToken) -> User:
    return load_user(session, tokens, token)


CurrentUser = Annotated[User, Depends(current_user)]


class TokenFirstRoute(APIRoute):
    """A route that rejects a missing or bad token before the request body is read.

    FastAPI reads and parses a JSON or form body before it runs any dependency, so without this a
    request with no token and a malformed body would answer 422 instead of 401. The dependencies
    (`CurrentUser`, `AdminUser`) still run as usual. Use as `APIRouter(route_class=TokenFirstRoute)`.
    """

    admin_only = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        check = self.check_caller

        async def token_first(request: Request) -> Response:
            # In a thread: it may query the database, or fetch keys from a JWKS URL.
            await run_in_threadpool(check, request)
            return await handler(request)

        return token_first

    def check_caller(self, request: Request) -> None:
        tokens: TokenService = request.app.state.tokens
        token = bearer_token(request)
        if not self.admin_only:
            tokens.username_from(token)
            return
        with request.app.state.db.read_sessions() as session:
            if not load_user(session, tokens, token).admin:
                raise Forbidden()


class AdminFirstRoute(TokenFirstRoute):
    """Setup endpoints: 401, then 403 for non-admins, and only then is the body read (422)."""

    admin_only = True


def admin_user(user: CurrentUser) -> User:
    if not user.admin:
        raise Forbidden()
    return user


AdminUser = Annotated[User, Depends(admin_user)]
