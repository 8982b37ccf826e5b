"""Setup API for studies and sites (SPEC §3): admins only."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from roster.deps import AdminFirstRoute, AdminUser, SessionDep
from roster.openapi import errors
from roster.studies import schemas, service
from roster.studies.models import Study

router = APIRouter(
    prefix="/pages/auth/api/admin/studies", tags=["setup"], route_class=AdminFirstRoute, responses=errors(403)
)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.StudyOut, responses=errors(409))
def create_study(body: schemas.StudyCreate, session: SessionDep, _admin: AdminUser) -> schemas.StudyOut:
    return service.study_out(service.create_study(session, body))


@router.get("", response_model=list[schemas.StudyOut])
def list_studies(session: SessionDep, _admin: AdminUser) -> list[schemas.StudyOut]:
    return [service.study_out(s) for s in session.scalars(select(Study).order_by(Study.id))]


@router.get("/{study_oid}", response_model=schemas.StudyOut)
def get_study(study_oid: str, session: SessionDep, _admin: AdminUser) -> schemas.StudyOut:
    return service.study_out(service.get_study(session, study_oid))


@router.patch("/{study_oid}", response_model=schemas.StudyOut)
def update_study(study_oid: str, body: schemas.StudyUpdate, session: SessionDep, _admin: AdminUser) -> schemas.StudyOut:
    study = service.update_study(session, service.get_study(session, study_oid), body)
    return service.study_out(study)


@router.post(
    "/{study_oid}/sites", status_code=status.HTTP_201_CREATED, response_model=schemas.SiteOut, responses=errors(409)
)
def create_site(study_oid: str, body: schemas.SiteCreate, session: SessionDep, _admin: AdminUser) -> schemas.SiteOut:
    site = service.create_site(session, service.get_study(session, study_oid), body)
    return service.site_out(site)


@router.get("/{study_oid}/sites", response_model=list[schemas.SiteOut])
def list_sites(study_oid: str, session: SessionDep, _admin: AdminUser) -> list[schemas.SiteOut]:
    return [service.site_out(s) for s in service.get_study(session, study_oid).sites]


@router.patch("/{study_oid}/sites/{site_oid}", response_model=schemas.SiteOut)
def update_site(
    study_oid: str, site_oid: str, body: schemas.SiteUpdate, session: SessionDep, _admin: AdminUser
) -> schemas.SiteOut:
    study = service.get_study(session, study_oid)
    return service.site_out(service.update_site(session, service.get_site(session, study, site_oid), body))
