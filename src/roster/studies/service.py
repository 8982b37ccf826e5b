"""Studies and sites: case-insensitive lookups and the setup operations. Flushes, never commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from roster import codes
from roster.errors import Conflict, DomainError, NotFound
from roster.studies import schemas
from roster.studies.models import AVAILABLE, Site, Study, oid_key


def _lookup_key(oid: str) -> str | None:
    """The key to look an OID up by, or None when no stored OID can match it.

    PostgreSQL refuses a NUL in a query parameter, and a URL can carry one (%00).
    """
    key = oid_key(oid)
    return None if "\x00" in key or len(key) > 100 else key


def find_study(session: Session, oid: str) -> Study | None:
    key = _lookup_key(oid)
    return None if key is None else session.scalar(select(Study).where(Study.oid_key == key))


def get_study(session: Session, oid: str) -> Study:
    study = find_study(session, oid)
    if study is None:
        raise NotFound(codes.STUDY_NOT_EXIST, {"studyOID": oid})
    return study


def get_site(session: Session, study: Study, oid: str) -> Site:
    """The site must exist and belong to this study; both failures answer invalidSiteIdentifier."""
    key = _lookup_key(oid)
    site = None if key is None else session.scalar(select(Site).where(Site.oid_key == key))
    if site is None or site.study_id != study.id:
        raise NotFound(codes.INVALID_SITE_IDENTIFIER, {"siteOID": oid})
    return site


def require_available(study: Study, site: Site | None = None) -> None:
    check_available(
        study.oid, study.status, site.oid if site is not None else None, site.status if site is not None else None
    )


def check_available(
    study_oid: str, study_status: str, site_oid: str | None = None, site_status: str | None = None
) -> None:
    """require_available on statuses read elsewhere (the participant writer reads them under the study lock)."""
    if study_status != AVAILABLE:
        raise DomainError(codes.STUDY_NOT_AVAILABLE, 400, {"studyOID": study_oid})
    if site_oid is not None and site_status != AVAILABLE:
        raise DomainError(codes.SITE_NOT_AVAILABLE, 400, {"siteOID": site_oid})


def _flush_unique(session: Session, conflict: Conflict) -> None:
    """Flushes; a unique-key race lost to a concurrent request answers the same 409 as the pre-check."""
    try:
        session.flush()
    except IntegrityError:
        raise conflict from None


def create_study(session: Session, body: schemas.StudyCreate) -> Study:
    conflict = Conflict(codes.STUDY_ALREADY_EXISTS, {"oid": body.oid})
    if find_study(session, body.oid) is not None:
        raise conflict
    study = Study(oid=body.oid, oid_key=oid_key(body.oid), **body.model_dump(exclude={"oid"}))
    session.add(study)
    _flush_unique(session, conflict)
    return study


def update_study(session: Session, study: Study, body: schemas.StudyUpdate) -> Study:
    changes = body.model_dump(exclude_unset=True)
    method = changes.get("participant_id_method", study.participant_id_method)
    template = changes.get("participant_id_template", study.participant_id_template)
    try:
        schemas.check_template(method, template)
    except ValueError as exc:
        raise DomainError(
            codes.VALIDATION_FAILED, 422, {"errors": [{"field": "participantIdTemplate", "message": str(exc)}]}
        ) from None
    for field, value in changes.items():
        setattr(study, field, value)
    session.flush()
    return study


def create_site(session: Session, study: Study, body: schemas.SiteCreate) -> Site:
    conflict = Conflict(codes.SITE_ALREADY_EXISTS, {"oid": body.oid})
    if session.scalar(select(Site.id).where(Site.oid_key == oid_key(body.oid))) is not None:
        raise conflict
    site = Site(study_id=study.id, oid=body.oid, oid_key=oid_key(body.oid), **body.model_dump(exclude={"oid"}))
    session.add(site)
    _flush_unique(session, conflict)
    return site


def update_site(session: Session, site: Site, body: schemas.SiteUpdate) -> Site:
    # Participant writers read a site's status and cap under its study's row lock (participants.writer):
    # taking that lock puts this change before or after a batch, never in the middle of one.
    session.execute(select(Study.id).where(Study.id == site.study_id).with_for_update())
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(site, field, value)
    session.flush()
    return site


def site_out(site: Site) -> schemas.SiteOut:
    return schemas.SiteOut(
        oid=site.oid,
        name=site.name,
        status=site.status,
        enrollment_cap=site.enrollment_cap,
        study_oid=site.study.oid,
        created_at=site.created_at,
        updated_at=site.updated_at,
    )


def study_out(study: Study) -> schemas.StudyOut:
    return schemas.StudyOut(
        oid=study.oid,
        name=study.name,
        status=study.status,
        participant_id_method=study.participant_id_method,
        participant_id_template=study.participant_id_template,
        participate_active=study.participate_active,
        enrollment_cap=study.enrollment_cap,
        created_at=study.created_at,
        updated_at=study.updated_at,
        sites=[site_out(s) for s in study.sites],
    )
