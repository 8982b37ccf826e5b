"""Token endpoint (SPEC §2), `GET P/me` (SPEC §1) and the user/role setup API (SPEC §3)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import select

from roster import codes
from roster.auth import revocation, schemas, service, signin, throttle, token_form
from roster.auth.models import User
from roster.auth.tokens import TokenService
from roster.deps import AdminFirstRoute, AdminUser, CurrentUser, SessionDep, get_tokens
from roster.errors import DomainError
from roster.openapi import errors, schema_ref
from roster.schemas import MAX_INT32

router = APIRouter(tags=["auth"])
admin = APIRouter(
    prefix="/pages/auth/api/admin/users", tags=["setup"], route_class=AdminFirstRoute, responses=errors(403)
)
RoleId = Annotated[int, Path(ge=1, le=MAX_INT32)]


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


@router.post(
    "/user-service/api/oauth/token",
    openapi_extra=token_form.REQUEST_BODY,
    responses={
        200: {
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "application/json": {"schema": schema_ref(schemas.TokenOut)},
            }
        },
        **errors(401, 404, 429),
    },
)
async def issue_token(
    body: Annotated[schemas.TokenRequest, Depends(token_form.token_request)],
    request: Request,
    tokens: Annotated[TokenService, Depends(get_tokens)],
) -> Response:
    # Async: the request waits for a hashing slot without a thread or a connection (roster.auth.signin).
    if not tokens.can_issue:
        raise DomainError(
            codes.NOT_FOUND, 404, detail="Tokens are issued by the configured identity provider, not by Roster."
        )
    state = request.app.state
    address = request.client.host if request.client else None
    username = await signin.sign_in(
        state.db, state.hashing, throttle.Limits.from_settings(state.settings), body.username, body.password, address
    )
    token, ttl = tokens.issue(username)
    # RFC 6749 §5.1: responses carrying a token must not be cached.
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if wants_json(request):
        return JSONResponse(schemas.TokenOut(access_token=token, expires_in=ttl).model_dump(), headers=headers)
    return PlainTextResponse(token, headers=headers)


@router.post(
    "/user-service/api/oauth/revoke",
    response_class=Response,
    responses={200: {"description": "The token is ended (or was never valid); no body"}},
)
def revoke_token(
    token: Annotated[str, Form(min_length=1, max_length=10_000)],
    session: SessionDep,
    tokens: Annotated[TokenService, Depends(get_tokens)],
    token_type_hint: Annotated[str | None, Form()] = None,
) -> Response:
    """RFC 7009: ends the token in the form body at once. 200 also for a token that is unknown, invalid or
    already expired (§2.2: the client cannot act on the difference, and a probe learns nothing)."""
    try:
        verified = tokens.verify(token)
    except DomainError:
        return Response(status_code=200)
    revocation.revoke(session, verified)
    return Response(status_code=200)


@router.get("/pages/auth/api/me", response_model=schemas.MeOut)
def me(user: CurrentUser, session: SessionDep) -> schemas.MeOut:
    return service.me(session, user)


@admin.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.UserOut, responses=errors(409))
def create_user(body: schemas.UserCreate, request: Request, session: SessionDep, _admin: AdminUser) -> User:
    return service.create_user(session, body, request.app.state.hashing)


@admin.get("", response_model=list[schemas.UserOut])
def list_users(session: SessionDep, _admin: AdminUser) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


@admin.patch("/{username}", response_model=schemas.UserOut)
def update_user(
    username: str, body: schemas.UserUpdate, request: Request, session: SessionDep, _admin: AdminUser
) -> User:
    return service.update_user(session, service.get_user(session, username), body, request.app.state.hashing)


@admin.post(
    "/{username}/roles", status_code=status.HTTP_201_CREATED, response_model=schemas.RoleOut, responses=errors(409)
)
def assign_role(username: str, body: schemas.RoleCreate, session: SessionDep, _admin: AdminUser) -> schemas.RoleOut:
    return service.role_out(service.assign_role(session, service.get_user(session, username), body))


@admin.get("/{username}/roles", response_model=list[schemas.RoleOut])
def list_roles(username: str, session: SessionDep, _admin: AdminUser) -> list[schemas.RoleOut]:
    return [service.role_out(ra) for ra in service.user_roles(session, service.get_user(session, username))]


@admin.delete("/{username}/roles/{role_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_role(username: str, role_id: RoleId, session: SessionDep, _admin: AdminUser) -> Response:
    service.remove_role(session, service.get_user(session, username), role_id)
    return Response(status_code=204)
