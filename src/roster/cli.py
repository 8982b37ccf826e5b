"""The `roster` command (SPEC §3)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from roster import __version__
from roster.config import ConfigError, Settings, get_settings


def _config_error(message: str) -> NoReturn:
    print(f"roster: configuration error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        _config_error(str(exc))


def _require_shared_secret(settings: Settings) -> None:
    """Settings' own rule (create_app enforces it too), checked here before the database is migrated."""
    try:
        settings.require_shared_secret()
    except ConfigError as exc:
        _config_error(str(exc))


def _database(settings: Settings, migrate: bool = True, *, worker: bool = False, threads: int = 1):
    from roster.db import Database, api_limits, worker_limits
    from roster.migrate import upgrade

    # A worker's pool is sized for its threads (each runs a planner, a batch writer and a lease renewal).
    limits = (
        worker_limits(settings.job_lease_seconds, threads) if worker else api_limits(settings.max_concurrent_requests)
    )
    db = Database(settings.database_url, limits)
    if migrate:
        try:
            upgrade(db)
        except Exception as exc:
            print(
                f"roster: cannot reach or migrate the database: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
    return db


def _logging(settings: Settings) -> dict:
    """One format for every line of the process (ROSTER_LOG_FORMAT); returns the config for uvicorn too."""
    from roster import logs

    return logs.configure(settings)


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from roster import logs, metrics
    from roster.app import create_app

    settings = _settings()
    _require_shared_secret(settings)
    _logging(settings)
    db = _database(settings)
    try:
        app = create_app(settings, db=db)
    except ConfigError as exc:
        _config_error(str(exc))
    # Uvicorn's access log prints query strings, which may hold search terms: ours prints paths only.
    # Its own lines go through Roster's logging config (applied again in each process of --workers N).
    server = {
        "host": args.host,
        "port": args.port,
        "access_log": False,
        "log_level": settings.log_level.lower(),
        "log_config": logs.logging_config(settings),
        "proxy_headers": args.proxy_headers,
        "forwarded_allow_ips": args.forwarded_allow_ips,
        "root_path": args.root_path,
    }
    if args.workers == 1:
        uvicorn.run(app, **server)
        return
    # Several processes, each building its own app from the same ROSTER_* settings; their metrics are
    # summed through prometheus-client's multiprocess files (docs/operations.md).
    db.dispose()
    created = metrics.prepare_multiprocess() if settings.metrics else None
    try:
        uvicorn.run("roster.app:create_app", factory=True, workers=args.workers, **server)
    finally:
        metrics.cleanup_multiprocess(created)


def cmd_worker(args: argparse.Namespace) -> None:
    from roster.bulk.worker import run_forever

    settings = _settings()
    if args.check:
        _check_worker(settings)
    _logging(settings)
    db = _database(settings, worker=True, threads=max(1, args.concurrency))
    if args.metrics_port is not None:
        from roster import metrics
        from roster.bulk.jobstats import JobsCollector

        metrics.serve(args.metrics_port, [JobsCollector(db, settings.job_lease_seconds)])
    run_forever(settings, db, concurrency=args.concurrency)


def _check_worker(settings: Settings) -> NoReturn:
    """`roster worker --check`: exit 0 when a worker on this host beat within its lease, else 1 (health check)."""
    from roster.bulk import heartbeat

    db = _database(settings, migrate=False)
    try:
        live = heartbeat.check(db, settings.job_lease_seconds)
    except Exception as exc:
        print(f"roster: cannot reach the database: {type(exc).__name__}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        db.dispose()
    if not live:
        print(f"roster: no worker on {heartbeat.HOST} beat within {settings.job_lease_seconds}s", file=sys.stderr)
        raise SystemExit(1)
    print(f"roster: a worker on {heartbeat.HOST} is live")
    raise SystemExit(0)


def cmd_db_purge(_args: argparse.Namespace) -> None:
    from roster.bulk.retention import purge

    settings = _settings()
    _logging(settings)
    result = purge(_database(settings, worker=True), settings, wait=True)
    print(f"roster: purged {result}")


def cmd_db_upgrade(_args: argparse.Namespace) -> None:
    settings = _settings()
    _database(settings)
    print("roster: database is up to date")


def cmd_create_user(args: argparse.Namespace) -> None:
    from pydantic import ValidationError

    from roster.auth import schemas, service
    from roster.errors import DomainError

    settings = _settings()
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else os.environ.get("ROSTER_PASSWORD", "")
    if not password:
        print("roster: give the password with --password-stdin or ROSTER_PASSWORD", file=sys.stderr)
        raise SystemExit(2)
    db = _database(settings)
    try:
        with db.transaction() as session:
            service.create_user(
                session, schemas.UserCreate(username=args.username, password=password, admin=args.admin)
            )
    except ValidationError as exc:
        print(f"roster: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
    except DomainError as exc:
        print(f"roster: {exc.code}: {exc.detail}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"roster: created user {args.username}{' (admin)' if args.admin else ''}")


def cmd_demo(args: argparse.Namespace) -> None:
    from roster import demo

    settings = _settings()
    _require_shared_secret(settings)  # else the printed token would not work against `roster serve`
    try:
        base_url = (args.base_url or os.environ.get("ROSTER_URL") or f"http://127.0.0.1:{args.port}").rstrip("/")
        result = demo.run(settings, _database(settings), base_url)
    except ConfigError as exc:
        _config_error(str(exc))
    print(f"Demo study {demo.STUDY_OID} with sites {', '.join(o for o, _ in demo.SITES)}; {demo.cap_sentence()}")
    print(f"Server: {base_url} (start it with `roster serve{'' if args.port == 8000 else f' --port {args.port}'}`)")
    print(f"Users (password '{demo.DEMO_PASSWORD}', for this demo only): {', '.join(u[0] for u in demo.DEMO_USERS)}")
    if result.token is None:
        print(
            "\nTokens come from the configured identity provider (ROSTER_JWT_ALGORITHMS names public-key algorithms)."
        )
        return
    print(f"\nA token for 'datamanager' (valid {settings.token_ttl_minutes} minutes):\n{result.token}\n")
    print(f"Upload the sample file {result.csv_path} once `roster serve` runs:\n{result.curl}\n")
    print("Or with the client:")
    for line in result.client_commands:
        print(f"  {line}")
    print(f"\nAPI reference, to try every call: {base_url}/docs")


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roster", description="Roster participant registry: the server, and a client of it"
    )
    parser.add_argument(
        "--version", action="version", version=f"roster {__version__}", help="print the version and exit"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="migrate the database if needed and start the API (and embedded workers)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=_positive, default=1, help="API processes (metrics summed across them)")
    serve.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="trust X-Forwarded-For/-Proto from --forwarded-allow-ips (behind a proxy)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        default=None,
        metavar="IPS",
        help="comma-separated proxy addresses to trust, or *; default $FORWARDED_ALLOW_IPS or 127.0.0.1",
    )
    serve.add_argument("--root-path", default="", metavar="PATH", help="the path prefix a proxy serves Roster under")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run job workers only")
    worker.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="worker threads in this process (default 1)"
    )
    worker.add_argument(
        "--metrics-port", type=int, default=None, metavar="N", help="serve Prometheus metrics on this port"
    )
    worker.add_argument(
        "--check", action="store_true", help="exit 0 when a worker on this host beat within its lease (health check)"
    )
    worker.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)
    db_sub.add_parser("purge", help="delete what retention says is due, now").set_defaults(func=cmd_db_purge)

    admin = sub.add_parser("admin", help="administration")
    admin_sub = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    cu = admin_sub.add_parser("create-user", help="create a user (password from --password-stdin or ROSTER_PASSWORD)")
    cu.add_argument("username", metavar="USERNAME", help="letters, digits and . _ @ + -")
    cu.add_argument("--admin", action="store_true", help="the user manages studies, sites, users and roles")
    cu.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (else ROSTER_PASSWORD)",
    )
    cu.set_defaults(func=cmd_create_user)

    demo = sub.add_parser("demo", help="create demo data and print a token, curl and client commands")
    demo.add_argument("--port", type=int, default=8000, help="the port `roster serve` listens on (default 8000)")
    demo.add_argument(
        "--base-url",
        metavar="URL",
        help="the server's URL in the printed commands (default: $ROSTER_URL, else http://127.0.0.1:PORT)",
    )
    demo.set_defaults(func=cmd_demo)

    from roster import client

    client.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
