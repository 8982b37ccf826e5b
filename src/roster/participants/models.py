from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from roster.db import Base, UTCDateTime, codepoint_string, utcnow

AVAILABLE = "available"
REMOVED = "removed"


# Keys past this are stored as a digest: the same equality in a bounded column. Only a too-long ID (a
# failed row in a job's log) comes near it: a valid ID's key is at most 3 × 30 characters.
_MAX_KEY = 200


def participant_key(participant_id: str) -> str:
    """The one ID key, of participants and of job log entries: IDs are unique within a study regardless
    of case."""
    key = participant_id.casefold()
    return key if len(key) <= _MAX_KEY else "#" + hashlib.sha256(key.encode()).hexdigest()


def _not_null(column: str) -> dict[str, Any]:
    """A partial index's condition, on both backends."""
    condition = text(f"{column} IS NOT NULL")
    return {"postgresql_where": condition, "sqlite_where": condition}


class Participant(Base):
    # On PostgreSQL migration 0005 sets fillfactor 50: room on each page for updates that touch no index.
    # Not stated here: SQLAlchemy 2.0, which pyproject.toml allows, has no table option for it.
    __tablename__ = "participants"
    __table_args__ = (
        # Key first: the bulk writer looks up a batch's keys (and OIDs) through these indexes, and an index
        # led by study_id would tempt the planner into scanning a whole study per batch (roster.fastsql).
        UniqueConstraint("participant_key", "study_id"),
        UniqueConstraint("oid", "study_id"),
        # A site's participants by status, in ID order: the extract reads it a page at a time (roster.bulk.extract).
        Index("ix_participants_site_status_key", "site_id", "status", "participant_key"),
        # Columns a bulk row never sets: indexing their NULLs would cost every bulk insert for nothing.
        Index("uq_participants_access_code", "access_code", unique=True, **_not_null("access_code")),
        Index("ix_participants_study_uid", "study_id", "uid_key", **_not_null("uid_key")),
        Index("ix_participants_study_empi", "study_id", "empi_key", **_not_null("empi_key")),
        # Search (roster.participants.search, migration 0008): name prefixes and the email, folded as lower()
        # folds. The only indexes search adds to the bulk path; the ID and OID use the unique keys above.
        Index("ix_participants_last_name_lower", func.lower(text("last_name")), "study_id"),
        Index("ix_participants_first_name_lower", func.lower(text("first_name")), "study_id"),
        Index("ix_participants_email_lower", func.lower(text("email_address")), "study_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Integrity first (SPEC §14): restored by migration 0006 after 0004 dropped them for speed. No cascade:
    # a study or site with participants cannot be deleted.
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    participant_id: Mapped[str] = mapped_column(String(30))
    # casefold() can triple a character's length (e.g. 'ΐ'): 30 characters may need 90.
    participant_key: Mapped[str] = mapped_column(codepoint_string(100))
    oid: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default=AVAILABLE)
    participate_status: Mapped[str | None] = mapped_column(String(20))
    access_code: Mapped[str | None] = mapped_column(String(20))
    # Contact fields (OpenClinica)
    first_name: Mapped[str | None] = mapped_column(codepoint_string(35))
    last_name: Mapped[str | None] = mapped_column(codepoint_string(35))
    email_address: Mapped[str | None] = mapped_column(codepoint_string(255))
    mobile_number: Mapped[str | None] = mapped_column(String(17))
    identifier: Mapped[str | None] = mapped_column(String(35))
    # Profile fields (OpenSpecimen)
    middle_name: Mapped[str | None] = mapped_column(String(255))
    uid: Mapped[str | None] = mapped_column(String(255))
    uid_key: Mapped[str | None] = mapped_column(String(255))
    empi: Mapped[str | None] = mapped_column(String(255))
    empi_key: Mapped[str | None] = mapped_column(String(255))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    death_date: Mapped[dt.date | None] = mapped_column(Date)
    vital_status: Mapped[str | None] = mapped_column(String(20))
    gender: Mapped[str | None] = mapped_column(String(40))
    race: Mapped[list[str] | None] = mapped_column(JSON)
    ethnicities: Mapped[list[str] | None] = mapped_column(JSON)
    sex_genotype: Mapped[str | None] = mapped_column(String(40))
    activity_status: Mapped[str] = mapped_column(String(20), default="Active")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(100))


class ParticipantMrn(Base):
    """A medical record number (OpenSpecimen `pmis`), unique per site."""

    __tablename__ = "participant_mrns"
    # The unique key serves a site's look-ups; search looks an MRN up in any site (migration 0008).
    __table_args__ = (UniqueConstraint("site_id", "mrn_key"), Index("ix_participant_mrns_mrn_key", "mrn_key"))

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    mrn: Mapped[str] = mapped_column(String(100))
    mrn_key: Mapped[str] = mapped_column(String(100))


class AuditEvent(Base):
    """Append-only: the API never updates or deletes these."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_participant_at", "participant_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key: events are written with their participant, Roster never deletes participants, and
    # a trail outlives what it describes (migration 0003).
    participant_id: Mapped[int]
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    username: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    # "api" or the bulk job's UUID
    source: Mapped[str] = mapped_column(String(40))
    # [{"field", "old", "new"}, ...]
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
