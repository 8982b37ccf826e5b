"""Prometheus metrics (SPEC §13), with prometheus-client.

The counters and histograms live in this process (or, with PROMETHEUS_MULTIPROC_DIR set, in the client's
multiprocess files, which `roster serve --workers N` sets up so that a scrape of any API process sees the
sum of all of them). Values read from the database at scrape time (jobs by status, live workers) come from
collectors handed to `registry()`. Labels never hold anything a client chose: routes are templates and
unknown methods are `OTHER`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "roster_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "roster_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
HTTP_WAITING = Gauge(
    "roster_http_requests_waiting",
    "Requests waiting for an admission slot (roster.admission), summed over processes",
    multiprocess_mode="livesum",
)
BULK_ROWS = Counter("roster_bulk_rows_total", "Bulk rows a worker finished, by outcome", ["outcome"])
JOB_DURATION = Histogram(
    "roster_job_duration_seconds",
    "Running time of finished jobs, from first start to end, by type",
    ["type"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "OTHER"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


class _ThisProcess:
    """This process's own metrics (the default registry: ours, plus the client's process and GC ones)."""

    def collect(self):
        return REGISTRY.collect()


def registry(collectors: Iterable[Collector] = ()) -> CollectorRegistry:
    """What a scrape shows: this process's metrics (or all processes' in multiprocess mode) and `collectors`."""
    reg = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(reg)
    else:
        reg.register(_ThisProcess())
    for collector in collectors:
        reg.register(collector)
    return reg


def exposition(reg: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(reg), CONTENT_TYPE_LATEST


def install(app, collectors: Iterable[Collector] = ()) -> None:
    """`GET /metrics`, left out of the OpenAPI document (it is not part of the REST API)."""
    from fastapi import Response

    reg = registry(collectors)

    def metrics() -> Response:
        body, media_type = exposition(reg)
        return Response(body, media_type=media_type)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)


def serve(port: int, collectors: Iterable[Collector] = (), addr: str = "0.0.0.0") -> None:  # noqa: S104 (a container's port)
    """`roster worker --metrics-port N`: the same exposition on its own small HTTP server thread."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=registry(collectors))


def prepare_multiprocess() -> str | None:
    """Before several API processes start: the directory their metrics files share, emptied (files of
    earlier runs would add old counts). PROMETHEUS_MULTIPROC_DIR when set, else a fresh temporary one,
    which the caller removes with `cleanup_multiprocess`. Must run before prometheus_client is imported
    in the processes that count, i.e. before they start."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
        return None
    path = tempfile.mkdtemp(prefix="roster-metrics-")
    os.environ[MULTIPROC_ENV] = path
    return path


def cleanup_multiprocess(created: str | None) -> None:
    if created:
        shutil.rmtree(created, ignore_errors=True)
