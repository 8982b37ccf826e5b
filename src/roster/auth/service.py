"""Users and role assignments. Flushes, never commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from roster import codes
from roster.auth import passwords, schemas
from roster.auth.models import Role, RoleAssignment, User
from roster.auth.passwords import PasswordHashing
from roster.auth.permissions import Action, StudyAccess, study_access
from roster.auth.revocation import end_all_tokens
from roster.auth.tokens import can_name_a_user
from roster.errors import Conflict, NotFound
from roster.studies import service as studies
from roster.studies.models import Study


def find_user(session: Session, username: str) -> User | None:
    # A NUL (from a URL's %00 or a token claim) or a lone surrogate can match no user, and the database
    # refuses them as parameters.
    if not can_name_a_user(username):
        return None
    return session.scalar(select(User).where(User.username_key == username.lower()))


def get_user(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise NotFound(codes.USER_NOT_FOUND, {"username": username})
    return user


def create_user(session: Session, body: schemas.UserCreate, hashing: PasswordHashing | None = None) -> User:
    passwords.check_strength(body.username, body.password)
    if find_user(session, body.username) is not None:
        raise Conflict(codes.USER_ALREADY_EXISTS, {"username": body.username})
    password_hash = (hashing or passwords.default()).hash(body.password)
    user = User(
        username=body.username,
        username_key=body.username.lower(),
        password_hash=password_hash,
        admin=body.admin,
        display_name=body.display_name,
        email=body.email,
        enabled=True,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        # Lost a race with a concurrent request creating the same username.
        raise Conflict(codes.USER_ALREADY_EXISTS, {"username": body.username}) from None
    return user


def update_user(session: Session, user: User, body: schemas.UserUpdate, hashing: PasswordHashing | None = None) -> User:
    # The schema refuses null for enabled/admin/password; null for displayName/email clears them.
    changes = body.model_dump(exclude_unset=True)
    if "password" in changes:
        password = changes.pop("password")
        passwords.check_strength(user.username, password)
        user.password_hash = (hashing or passwords.default()).hash(password)
        end_all_tokens(user)  # SPEC §14: a password change ends every token issued before it
    if changes.get("enabled") is False:
        end_all_tokens(user)  # ... and so does a disable, for good: re-enabling does not revive them
    for field, value in changes.items():
        setattr(user, field, value)
    session.flush()
    return user


def user_roles(session: Session, user: User) -> list[RoleAssignment]:
    return list(
        session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == user.id).order_by(RoleAssignment.id))
    )


def role_out(ra: RoleAssignment) -> schemas.RoleOut:
    return schemas.RoleOut(
        id=ra.id, study_oid=ra.study.oid, site_oid=ra.site.oid if ra.site else None, role=Role(ra.role)
    )


def assign_role(session: Session, user: User, body: schemas.RoleCreate) -> RoleAssignment:
    study = studies.get_study(session, body.study_oid)
    site = studies.get_site(session, study, body.site_oid) if body.site_oid else None
    existing = session.scalar(
        select(RoleAssignment.id).where(
            RoleAssignment.user_id == user.id,
            RoleAssignment.study_id == study.id,
            RoleAssignment.site_id.is_(None) if site is None else RoleAssignment.site_id == site.id,
            RoleAssignment.role == body.role.value,
        )
    )
    if existing is not None:
        raise Conflict(codes.ROLE_ALREADY_ASSIGNED, {"id": existing})
    ra = RoleAssignment(user_id=user.id, study_id=study.id, site_id=site.id if site else None, role=body.role.value)
    session.add(ra)
    session.flush()
    session.refresh(ra)
    return ra


def remove_role(session: Session, user: User, role_id: int) -> None:
    ra = session.get(RoleAssignment, role_id)
    if ra is None or ra.user_id != user.id:
        raise NotFound(codes.ROLE_NOT_FOUND, {"id": role_id})
    session.delete(ra)
    session.flush()


def _study_ref(session: Session, study: Study, access: StudyAccess) -> schemas.StudyRef:
    readable = access.site_ids(Action.READ)
    study_level = next((g.role for g in access.grants if g.site_id is None), None)
    sites = [
        schemas.SiteRef(
            oid=s.oid,
            name=s.name,
            status=s.status,
            enrollment_cap=s.enrollment_cap,
            can_write=access.can(Action.WRITE, s.id),
            can_read_pii=access.can(Action.READ_PII, s.id),
        )
        for s in study.sites
        if readable is None or s.id in readable
    ]
    return schemas.StudyRef(
        oid=study.oid,
        name=study.name,
        status=study.status,
        participate_active=study.participate_active,
        participant_id_method=study.participant_id_method,
        study_level_role=study_level,
        sites=sites,
    )


def me(session: Session, user: User) -> schemas.MeOut:
    assignments = user_roles(session, user)
    study_ids = list(dict.fromkeys(ra.study_id for ra in assignments))
    studies_out = [
        _study_ref(session, session.get_one(Study, sid), study_access(session, user, sid)) for sid in study_ids
    ]
    return schemas.MeOut(
        username=user.username,
        display_name=user.display_name,
        admin=user.admin,
        roles=[role_out(ra) for ra in assignments],
        studies=studies_out,
    )
