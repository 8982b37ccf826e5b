"""Imports every model so that Base.metadata knows all tables (Alembic and tests use it)."""

from roster.auth.models import RevokedToken, RoleAssignment, SignInFailure, User
from roster.bulk.models import Job, LogEntry, UploadChunk, WorkerHeartbeat
from roster.db import Base
from roster.participants.models import AuditEvent, Participant, ParticipantMrn
from roster.studies.models import Site, Study

__all__ = [
    "AuditEvent",
    "Base",
    "Job",
    "LogEntry",
    "Participant",
    "ParticipantMrn",
    "RevokedToken",
    "RoleAssignment",
    "SignInFailure",
    "Site",
    "Study",
    "UploadChunk",
    "User",
    "WorkerHeartbeat",
]
