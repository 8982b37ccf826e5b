from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from roster.db import Base, UTCDateTime, utcnow

AVAILABLE = "available"
LOCKED = "locked"


def oid_key(oid: str) -> str:
    """OIDs are matched case-insensitively: every lookup goes through this key."""
    return oid.strip().upper()


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    oid: Mapped[str] = mapped_column(String(100))
    oid_key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default=AVAILABLE)
    participant_id_method: Mapped[str] = mapped_column(String(10), default="manual")
    participant_id_template: Mapped[str | None] = mapped_column(String(60))
    # Next number for system-generated IDs; only ever grows.
    id_counter: Mapped[int] = mapped_column(Integer, default=0)
    # Moved by every transaction that writes this study's participants (participants.writer.lock_study):
    # a bulk batch decided ahead of its transaction can tell whether anyone wrote in between.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    participate_active: Mapped[bool] = mapped_column(Boolean, default=False)
    enrollment_cap: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    sites: Mapped[list[Site]] = relationship(back_populates="study", order_by="Site.id")


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    oid: Mapped[str] = mapped_column(String(100))
    # Site OIDs are unique across Roster, as OpenClinica's are.
    oid_key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default=AVAILABLE)
    enrollment_cap: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    study: Mapped[Study] = relationship(back_populates="sites")
