"""The FastAPI application: routers, error handlers, health checks, access log, embedded workers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from roster import __version__
from roster.auth.router import admin as users_admin_router
from roster.auth.router import router as auth_router
from roster.auth.tokens import TokenService
from roster.config import Settings, get_settings
from roster.db import Database
from roster.errors import install_error_handlers
from roster.bulk.jobs_router import router as jobs_router
from roster.bulk.router import router as bulk_router
from roster.participants.openspecimen import router as openspecimen_router
from roster.participants.router import router as participants_router
from roster.studies.router import router as studies_router
from roster.web.router import router as web_router

access_log = logging.getLogger("roster.access")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    workers = app.state.start_workers(app) if app.state.start_workers else None
    try:
        yield
    finally:
        if workers is not None:
            workers.stop()
        app.state.db.dispose()


def create_app(settings: Settings | None = None, *, db: Database | None = None, embedded_workers: bool = True) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="Roster", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.db = db or Database(settings.database_url)
    app.state.tokens = TokenService(settings)
    app.state.start_workers = None
    if embedded_workers and settings.worker_count > 0:
        from roster.bulk.worker import start_embedded

        app.state.start_workers = start_embedded
    install_error_handlers(app)

    @app.middleware("http")
    async def log_requests(request: Request, call_next) -> Response:
        # Method, path and status only: query strings (search terms) and bodies may carry personal data.
        started = time.perf_counter()
        response = await call_next(request)
        access_log.info("%s %s %s %.1fms", request.method, request.url.path, response.status_code, (time.perf_counter() - started) * 1000)
        return response

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        try:
            with app.state.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not ready"
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok", "database": app.state.db.dialect})

    routers = (auth_router, users_admin_router, studies_router, bulk_router, jobs_router, participants_router, openspecimen_router, web_router)
    for router in routers:
        app.include_router(router)
    return app
