"""Request dependencies: the transaction (one per request, its only owner) and the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from roster.auth.models import User
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


# scope="function": the commit runs as the endpoint returns, so a 2xx means the data is stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_db)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required")
    return token.strip()


def load_user(session: Session, tokens: TokenService, token: str) -> User:
    username = tokens.username_from(token)
    user = session.scalar(select(User).where(User.username_key == username.lower()))
    if user is None or not user.enabled:
        # Checked on every request, so disabling a user stops its tokens at once.
        raise Unauthorized("unknown or disabled user")
    return user


def current_user(
    request: Request, session: SessionDep, tokens: Annotated[TokenService, Depends(get_tokens)]
) -> User:
    return load_user(session, tokens, bearer_token(request))


CurrentUser = Annotated[User, Depends(current_user)]


def admin_user(user: CurrentUser) -> User:
    if not user.admin:
        raise Forbidden()
    return user


AdminUser = Annotated[User, Depends(admin_user)]
