from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from roster.db import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    DATA_MANAGER = "data_manager"
    INVESTIGATOR = "investigator"
    CLINICAL_RESEARCH_COORDINATOR = "clinical_research_coordinator"
    MONITOR = "monitor"
    VIEWER = "viewer"

    @property
    def may_write(self) -> bool:
        return self in WRITE_ROLES

    @property
    def may_read_pii(self) -> bool:
        # SPEC §1: exactly the roles that may write may read PII.
        return self in WRITE_ROLES


WRITE_ROLES = frozenset({Role.DATA_MANAGER, Role.INVESTIGATOR, Role.CLINICAL_RESEARCH_COORDINATOR})


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    # Lower-cased username: usernames are unique regardless of case.
    username_key: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    roles: Mapped[list[RoleAssignment]] = relationship(back_populates="user", cascade="all, delete-orphan")


class RoleAssignment(Base):
    __tablename__ = "role_assignments"
    __table_args__ = (Index("ix_role_assignments_user_study", "user_id", "study_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="roles")
    study = relationship("Study", lazy="joined")
    site = relationship("Site", lazy="joined")
