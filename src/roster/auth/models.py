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
    # Tokens issued before this moment are ended (a password change, a disable); None: none ended.
    tokens_valid_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

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


class RevokedToken(Base):
    """A token ended through the revoke endpoint (RFC 7009), kept until it would have expired anyway."""

    __tablename__ = "revoked_tokens"

    # The token's `jti`, or a hash of its claims when it has none (an identity provider's token).
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class SignInFailure(Base):
    """One failed (or still running) sign-in, counted per username and per client address (SPEC §14)."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (
        Index("ix_sign_in_failures_username_at", "username_key", "at"),
        Index("ix_sign_in_failures_address_at", "client_address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username_key: Mapped[str] = mapped_column(String(200))
    client_address: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
