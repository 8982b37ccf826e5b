"""The one module that decides who may do what (SPEC §1). Nothing else decides permissions."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from roster import codes
from roster.auth.models import Role, RoleAssignment, User
from roster.errors import Forbidden
from roster.studies.models import Site, Study


class Action(enum.Enum):
    READ = "read"  # participant ID, OID, site, status, timestamps
    READ_PII = "read_pii"  # the above plus personal data
    WRITE = "write"  # create, update, remove, upload

    def allowed_by(self, role: Role) -> bool:
        if self is Action.READ:
            return True
        if self is Action.READ_PII:
            return role.may_read_pii
        return role.may_write


@dataclass(frozen=True)
class Grant:
    role: Role
    site_id: int | None  # None: study level, covers every site


@dataclass(frozen=True)
class StudyAccess:
    """What one user may do in one study; built once per request."""

    user_id: int
    study_id: int
    grants: tuple[Grant, ...]

    @property
    def has_role(self) -> bool:
        return bool(self.grants)

    def can(self, action: Action, site_id: int) -> bool:
        return any(g.site_id in (None, site_id) and action.allowed_by(g.role) for g in self.grants)

    def require(self, action: Action, site_id: int) -> None:
        """noRoleSetUp when the user holds nothing in the study, noSufficientPrivileges when nothing covers this."""
        if not self.grants:
            raise Forbidden(codes.NO_ROLE_SET_UP)
        if not self.can(action, site_id):
            raise Forbidden(codes.NO_SUFFICIENT_PRIVILEGES)

    def site_ids(self, action: Action) -> frozenset[int] | None:
        """Sites where `action` is allowed; None means every site of the study (a study-level grant)."""
        allowed = [g for g in self.grants if action.allowed_by(g.role)]
        if any(g.site_id is None for g in allowed):
            return None
        return frozenset(g.site_id for g in allowed if g.site_id is not None)

    def require_study(self, action: Action = Action.READ) -> None:
        """For study-wide lists: any role in the study; the list is then limited to `site_ids`."""
        if not self.grants:
            raise Forbidden(codes.NO_ROLE_SET_UP)
        if self.site_ids(action) == frozenset():
            raise Forbidden(codes.NO_SUFFICIENT_PRIVILEGES)


def study_access(session: Session, user: User, study: Study | int) -> StudyAccess:
    study_id = study if isinstance(study, int) else study.id
    rows = session.execute(
        select(RoleAssignment.role, RoleAssignment.site_id).where(
            RoleAssignment.user_id == user.id, RoleAssignment.study_id == study_id
        )
    ).all()
    return StudyAccess(user.id, study_id, tuple(Grant(Role(role), site_id) for role, site_id in rows))


def require_site_action(session: Session, user: User, study: Study, site: Site, action: Action) -> StudyAccess:
    access = study_access(session, user, study)
    access.require(action, site.id)
    return access
