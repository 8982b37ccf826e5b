"""One logging pipeline for every line of a process (SPEC §13): Roster's records and uvicorn's go through
the same handler, as `text` (default) or `json` (python-json-logger: one object per line with `time`,
`level`, `logger`, `message` and context fields such as `request_id` or a job's counts).

Request IDs come from asgi-correlation-id: the client's `X-Request-ID` when well-formed, else a new one;
the middleware answers with it and keeps it in a context variable that `RequestIdFilter` puts on every
record written while the request is served. Nothing personal is logged (SPEC §10): messages name route
templates, job UUIDs, counts and exception types only.
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from roster.config import Settings

REQUEST_ID_HEADER = "X-Request-ID"
# A client's ID is kept when it is 1-128 characters of letters, digits and `._:-` (UUIDs, nginx's
# $request_id, trace IDs); anything else (too long, spaces, quotes) could garble or flood a log line.
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"
# Uvicorn adds an ANSI-coloured copy of some messages; a JSON line needs only the plain one.
_NOT_CONTEXT = (*RESERVED_ATTRS, "color_message")


def well_formed_request_id(value: str) -> bool:
    return _WELL_FORMED_ID.fullmatch(value) is not None


def add_request_ids(app) -> None:
    """Outermost middleware but Starlette's own: every answer (500s from RequestLog included) carries
    the ID, and every line logged while serving it names it."""
    app.add_middleware(CorrelationIdMiddleware, header_name=REQUEST_ID_HEADER, validator=well_formed_request_id)


class RequestIdFilter(logging.Filter):
    """Puts the current request's ID on the record (`request_id`); lines outside a request get none."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = correlation_id.get()
        if request_id is not None:
            record.request_id = request_id
        return True


def text_formatter() -> logging.Formatter:
    return logging.Formatter(TEXT_FORMAT, defaults={"request_id": "-"})


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        JSON_FIELDS,
        rename_fields={"levelname": "level", "name": "logger"},
        reserved_attrs=_NOT_CONTEXT,
        timestamp="time",  # ISO 8601 in UTC
    )


def logging_config(settings: Settings) -> dict[str, Any]:
    """A dictConfig for this process, also handed to uvicorn, which applies it in each of its worker
    processes (`roster serve --workers N`), so that they log exactly as the parent does."""
    level = settings.log_level
    factory = json_formatter if settings.log_format == "json" else text_formatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"roster": {"()": factory}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "roster",
                "filters": ["request_id"],
            },
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # Uvicorn's records go to the one handler above (its own config would add a second format).
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            # Its access lines print query strings (search terms): Roster's own access log (app.RequestLog) prints
            # templates.
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
            # Alembic narrates every plugin and context at INFO; its warnings and errors still show.
            "alembic": {"level": max(logging.WARNING, logging.getLevelName(level))},
        },
    }


def configure(settings: Settings) -> dict[str, Any]:
    config = logging_config(settings)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)  # a Python warning is a log line too, in the same format
    return config
