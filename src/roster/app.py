"""The FastAPI application: routers, error handlers, health checks, access log, embedded workers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roster import __version__, logs, metrics, openapi, security
from roster.admission import Admission
from roster.auth import passwords
from roster.auth.router import admin as users_admin_router
from roster.auth.router import router as auth_router
from roster.auth.tokens import TokenService
from roster.bulk.extract_router import router as extract_router
from roster.bulk.jobs_router import router as jobs_router
from roster.bulk.jobstats import JobsCollector
from roster.bulk.router import router as bulk_router
from roster.bulk.workers_router import router as workers_router
from roster.config import Settings, get_settings
from roster.db import Database, api_limits
from roster.errors import (
    install_error_handlers,
    internal_error_response,
    route_template,
)
from roster.participants.openspecimen import router as openspecimen_router
from roster.participants.router import router as participants_router
from roster.studies.router import router as studies_router
from roster.web.router import router as web_router

access_log = logging.getLogger("roster.access")


class RequestLog:
    """The access log, and the last word on any exception no handler took, around every HTTP request.

    One line per request: method, route template (`…/participants/{participantID}`, never the path
    itself, which holds participant IDs and usernames), status and time; no query string or body
    either (search terms, personal data). An unhandled exception becomes our 500 JSON answer, and that
    one line, at ERROR, names its type only: its text may quote personal data (a database error quotes
    row values). It is not re-raised, so the server prints no traceback. If the answer had already
    started (a streamed CSV), it is left unfinished, so that the client sees a broken download rather
    than a short one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception as exc:  # everything: the type is logged, never the text
            answered = status is not None
            shown = 500 if status is None else status
            if not answered:
                await internal_error_response()(scope, receive, send)
            access_log.error(
                "%s %s %s %.1fms unhandled %s%s",
                scope["method"],
                route_template(scope),
                shown,
                _ms(started),
                type(exc).__name__,
                " after the answer started" if answered else "",
            )
            metrics.observe_request(scope["method"], route_template(scope), shown, time.perf_counter() - started)
            return
        access_log.info("%s %s %s %.1fms", scope["method"], route_template(scope), status, _ms(started))
        metrics.observe_request(scope["method"], route_template(scope), status or 500, time.perf_counter() - started)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Every admitted request uses one worker thread at a time (roster.admission); streamed answers and
    # token checks take a few more. Never fewer than AnyIO's default.
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, 2 * app.state.settings.max_concurrent_requests + 8)
    workers = app.state.start_workers(app) if app.state.start_workers else None
    try:
        yield
    finally:
        if workers is not None:
            workers.stop()
        app.state.db.dispose()


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    embedded_workers: bool = True,
    hashing: passwords.PasswordHashing | None = None,
) -> FastAPI:
    """Raises ConfigError (one line) for settings that cannot work, e.g. PostgreSQL without ROSTER_JWT_SECRET.
    `hashing`: the password hasher and its bound (default: argon2id's production parameters, one hash per core)."""
    settings = settings or get_settings()
    # First: an unusable or missing secret stops start-up before anything else is set up.
    tokens = TokenService(settings)
    app = FastAPI(
        title="Roster",
        version=__version__,
        lifespan=lifespan,
        # /docs is served by roster.openapi from local assets; no ReDoc (it would load from a CDN).
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.db = db or Database(settings.database_url, api_limits(settings.max_concurrent_requests))
    app.state.tokens = tokens
    app.state.hashing = hashing or passwords.default()
    app.state.start_workers = None
    if embedded_workers and settings.worker_count > 0:
        from roster.bulk.worker import start_embedded

        app.state.start_workers = start_embedded
    install_error_handlers(app)

    app.add_middleware(
        Admission,
        limit=settings.max_concurrent_requests,
        queue_seconds=settings.request_queue_seconds,
        max_queued=settings.max_queued_requests,
    )
    app.add_middleware(RequestLog)
    security.install(app, settings)
    # After RequestLog, so outside it: its lines (500s included) name the request's ID, answers carry it.
    logs.add_request_ids(app)
    if settings.metrics:
        metrics.install(app, [JobsCollector(app.state.db, settings.job_lease_seconds)])

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        # async: answered on the event loop, with no thread or connection, however busy the process is
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        try:
            with app.state.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not ready"
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok", "database": app.state.db.dialect})

    routers = (
        auth_router,
        users_admin_router,
        studies_router,
        bulk_router,
        extract_router,
        jobs_router,
        participants_router,
        openspecimen_router,
        web_router,
        workers_router,
    )
    for router in routers:
        app.include_router(router)
    openapi.install(app)
    return app
