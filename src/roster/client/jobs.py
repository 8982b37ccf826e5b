"""`roster login`, `upload`, `jobs`, `job …` and `extract` (SPEC §12): the bulk workflow over HTTP."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from roster.client.http import EXIT_REFUSED, P, Server, fail, path_part

# upload --wait (SPEC §12): 0 every row applied, 1 some rows failed, 3 the job FAILED or CANCELLED.
EXIT_ROWS_FAILED = 1
EXIT_JOB_FAILED = 3
FINISHED = ("COMPLETED", "FAILED", "CANCELLED")
POLL_SECONDS = 0.5
LOG_PAGE = 1000

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def cmd_login(args: argparse.Namespace) -> None:
    username = args.username or input("Username: ")
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else getpass.getpass("Password: ")
    server = Server(args.url, with_token=False)
    # The OAuth 2 password form (SPEC §12); the JSON body works as well.
    body = server.json(
        "POST",
        "/user-service/api/oauth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    server.store.put(server.url, username, body["access_token"], int(body["expires_in"]))
    minutes = int(body["expires_in"]) // 60
    print(
        f"Signed in to {server.url} as {username}; the token is valid for {minutes} minutes (kept in "
        f"{server.store.path})."
    )


def _yes(flag: bool) -> str:
    return "y" if flag else "n"


def cmd_upload(args: argparse.Namespace) -> None:
    path = Path(args.file)
    if not path.is_file():
        fail(f"{path}: no such file")
    server = Server(args.url)
    params = {"register": _yes(args.register)}
    if args.dry_run:
        params["dryRun"] = "y"  # validate only (SPEC §11.1); a server without it answers as it does
    url = f"{P}/clinicaldata/studies/{path_part(args.study)}/sites/{path_part(args.site)}/participants/bulk"
    with path.open("rb") as handle:
        files: dict[str, tuple[str, BinaryIO, str]] = {"file": (path.name, handle, _content_type(path))}
        job_uuid = job_uuid_of(server.request("POST", url, params=params, files=files, headers=ACCEPT_JSON))
    print(f"job uuid: {job_uuid}")
    if args.wait:
        raise SystemExit(wait_for(server, job_uuid))


ACCEPT_JSON = {"Accept": "application/json"}


def job_uuid_of(response: httpx.Response) -> str:
    """`{"jobUuid": …}` when the server honours Accept, else its plain `job uuid: <uuid>`."""
    if "json" in response.headers.get("content-type", ""):
        return response.json()["jobUuid"]
    return response.text.strip().removeprefix("job uuid:").strip()


def _content_type(path: Path) -> str:
    if path.suffix.lower() == ".xlsx":
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return "text/csv"


def wait_for(server: Server, job_uuid: str, out: TextIO | None = None) -> int:
    """Polls the job with a progress bar (rows done, rows/s, ETA, on stderr); prints the counts (to `out`,
    default stdout); the exit status."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("IN_QUEUE", total=None, rate="", eta="")
        while True:
            job = server.json("GET", f"{P}/jobs/{job_uuid}")
            counts = job["counts"]
            rate = job.get("rowsPerSecond") if job["status"] not in FINISHED else average_rate(job)
            eta = job.get("etaSeconds")
            progress.update(
                task,
                description=job["status"],
                total=counts.get("rows"),
                completed=counts["processed"],
                rate=f"{rate:,.0f} rows/s" if rate is not None else "",
                eta=f"ETA {_duration(eta)}" if eta is not None else "",
            )
            if job["status"] in FINISHED:
                break
            time.sleep(POLL_SECONDS)
    print(summary(job), file=out or sys.stdout)
    if job["status"] != "COMPLETED":
        if job.get("error"):
            print(f"{job['error']}: {job.get('errorMessage') or ''}", file=sys.stderr)
        return EXIT_JOB_FAILED
    return EXIT_ROWS_FAILED if counts["failed"] else 0


def average_rate(job: dict[str, Any]) -> float | None:
    """A finished job's rows per second over its whole run (the server gives a rate only while it runs)."""
    if not (job.get("dateStarted") and job.get("dateCompleted")):
        return None
    seconds = (
        dt.datetime.fromisoformat(job["dateCompleted"]) - dt.datetime.fromisoformat(job["dateStarted"])
    ).total_seconds()
    return job["counts"]["processed"] / seconds if seconds > 0 else None


def _duration(seconds: int) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def summary(job: dict[str, Any]) -> str:
    counts = job["counts"]
    # A revert job's own counts; a bulk job's are always 0 there.
    kinds = (
        ("deleted", "restored", "failed")
        if job.get("type") == "REVERT_BULK_ADD_PARTICIPANTS"
        else ("created", "updated", "unchanged", "failed")
    )
    parts = ", ".join(f"{counts[k]} {k}" for k in kinds if k in counts)
    return f"{job['status']}: {counts['processed']} of {counts.get('rows')} rows processed ({parts})"


def cmd_jobs(args: argparse.Namespace) -> None:
    server = Server(args.url)
    if args.site and not args.study:
        fail("--site needs --study")
    studies = [args.study] if args.study else [s["oid"] for s in server.json("GET", f"{P}/me")["studies"]]
    header = ("uuid", "status", "study", "site", "file", "rows", "processed", "failed", "created by", "created (UTC)")
    rows: list[tuple[str, ...]] = []
    for study in studies:
        base = f"{P}/studies/{path_part(study)}" + (f"/sites/{path_part(args.site)}" if args.site else "")
        params: dict[str, Any] = {"pageSize": args.limit}
        if args.status:
            params["status"] = args.status
        for job in server.json("GET", f"{base}/jobs", params=params)["items"]:
            counts = job["counts"]
            rows.append(
                (
                    job["uuid"],
                    job["status"],
                    job["studyOid"],
                    job["siteOid"],
                    job["sourceFileName"],
                    str(counts.get("rows") or ""),
                    str(counts["processed"]),
                    str(counts["failed"]),
                    job["createdBy"],
                    job["dateCreated"][:19].replace("T", " "),
                )
            )
    if not out.is_terminal:
        # Piped: tab-separated and never shortened, for scripts (`cut -f1`).
        for row in (header, *rows):
            print("\t".join(row))
        return
    table = Table(*header, box=None)
    for row in rows:
        table.add_row(*row, style=None)
    out.print(table)


def cmd_job_show(args: argparse.Namespace) -> None:
    job = Server(args.url).json("GET", f"{P}/jobs/{path_part(args.uuid)}")
    if args.json:
        import json

        print(json.dumps(job, indent=2))
        return
    for key in (
        "uuid",
        "type",
        "status",
        "studyOid",
        "siteOid",
        "register",
        "sourceFileName",
        "createdBy",
        "dateCreated",
        "dateStarted",
        "dateCompleted",
        "progress",
        "rowsPerSecond",
        "etaSeconds",
        "error",
        "errorMessage",
    ):
        if key in job:
            print(f"{key}: {'' if job[key] is None else job[key]}")
    print("counts: " + ", ".join(f"{k} {v}" for k, v in job["counts"].items()))
    for warning in job.get("warnings") or []:
        print(f"warning: {warning}")


def cmd_job_log(args: argparse.Namespace) -> None:
    """One line per row: row, line, participant ID, OID, outcome, then its codes (column: code)."""
    server = Server(args.url)
    page = 1
    while True:
        params: dict[str, Any] = {"page": page, "pageSize": LOG_PAGE}
        if args.outcome:
            params["outcome"] = args.outcome
        body = server.json("GET", f"{P}/jobs/{path_part(args.uuid)}/log", params=params)
        for entry in body["items"]:
            codes = "; ".join(f"{e['column']}: {e['code']}" if e.get("column") else e["code"] for e in entry["errors"])
            fields = [
                f"row {entry['row']}",
                f"line {entry['line']}",
                entry["participantId"] or "-",
                entry["participantOid"] or "-",
                entry["outcome"],
            ]
            print("\t".join(fields + ([codes] if codes else [])))
        if page * LOG_PAGE >= body["total"]:
            return
        page += 1


def _download(args: argparse.Namespace, path: str) -> None:
    server = Server(args.url)
    target = open(args.output, "wb") if args.output else nullcontext(sys.stdout.buffer)  # noqa: SIM115
    with server.stream("GET", path) as response, target as sink:
        for chunk in response.iter_bytes():
            sink.write(chunk)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)


def cmd_job_download(args: argparse.Namespace) -> None:
    _download(args, f"{P}/jobs/{path_part(args.uuid)}/downloadFile")


def cmd_job_failed_rows(args: argparse.Namespace) -> None:
    _download(args, f"{P}/jobs/{path_part(args.uuid)}/failedRows")


def cmd_job_cancel(args: argparse.Namespace) -> None:
    job = Server(args.url).json("POST", f"{P}/jobs/{path_part(args.uuid)}/cancel")
    note = " (stops after its current batch)" if job.get("cancelRequested") and job["status"] == "IN_PROGRESS" else ""
    print(f"{job['uuid']}: {job['status']}{note}")


def cmd_job_delete(args: argparse.Namespace) -> None:
    Server(args.url).request("DELETE", f"{P}/jobs/{path_part(args.uuid)}")
    print(f"{args.uuid}: deleted")


def cmd_job_revert(args: argparse.Namespace) -> None:
    """SPEC §11.2: queues a revert job; the server's refusal (or its absence) is reported as any other."""
    job = Server(args.url).json("POST", f"{P}/jobs/{path_part(args.uuid)}/revert")
    print(f"job uuid: {job['uuid']}")


def cmd_extract(args: argparse.Namespace) -> None:
    """SPEC §11.3: queue the extract, wait for it, write its CSV to -o FILE or stdout."""
    server = Server(args.url)
    site_path = f"{P}/clinicaldata/studies/{path_part(args.study)}/sites/{path_part(args.site)}"
    url = f"{site_path}/participants/extractParticipantsInfo"
    job_uuid = job_uuid_of(
        server.request(
            "POST", url, params={"includeParticipateInfo": _yes(args.include_participate_info)}, headers=ACCEPT_JSON
        )
    )
    print(f"job uuid: {job_uuid}", file=sys.stderr)
    status = wait_for(server, job_uuid, out=sys.stderr)  # stdout may be the CSV itself
    if status == EXIT_JOB_FAILED:
        raise SystemExit(status)
    _download(args, f"{P}/jobs/{path_part(job_uuid)}/downloadFile")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    login = sub.add_parser("login", parents=[common], help="sign in to a Roster server and keep the token (mode 0600)")
    login.add_argument("--username", "-u", help="Roster username (asked for when left out)")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin instead of asking"
    )
    login.set_defaults(func=cmd_login)

    upload = sub.add_parser("upload", parents=[common], help="upload a CSV or .xlsx of participants (bulk endpoint)")
    upload.add_argument("file", metavar="FILE", help="the CSV (UTF-8) or Excel workbook to upload")
    upload.add_argument("--study", required=True, metavar="STUDY_OID", help="the study's OID, e.g. 'S_DEMO(TEST)'")
    upload.add_argument("--site", required=True, metavar="SITE_OID", help="the site's OID, e.g. 'S_BOSTON(TEST)'")
    upload.add_argument(
        "--register", action="store_true", help="register the participants for Participate (register=y)"
    )
    upload.add_argument(
        "--dry-run", action="store_true", help="only validate: log what each row would do, change nothing (dryRun=y)"
    )
    upload.add_argument(
        "--wait",
        action="store_true",
        help="follow the job with a progress bar; exit 0 all rows applied, 1 some failed, 3 job failed or cancelled",
    )
    upload.set_defaults(func=cmd_upload)

    jobs = sub.add_parser("jobs", parents=[common], help="list jobs you may see, newest first")
    jobs.add_argument("--study", metavar="STUDY_OID", help="only this study (default: every study you have a role in)")
    jobs.add_argument("--site", metavar="SITE_OID", help="only this site of --study")
    jobs.add_argument(
        "--status",
        metavar="STATUS",
        help="only jobs in these statuses, comma-separated (IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED)",
    )
    jobs.add_argument(
        "--limit", type=int, default=50, metavar="N", help="at most N jobs per study (1-1000, default 50)"
    )
    jobs.set_defaults(func=cmd_jobs)

    job = sub.add_parser("job", help="one job: show, log, failed-rows, download, cancel, delete, revert")
    job_sub = job.add_subparsers(dest="job_command", metavar="ACTION", required=True)
    actions = (
        ("show", cmd_job_show, "the job: status, counts, rate and ETA while running"),
        ("log", cmd_job_log, "one line per row with its outcome and codes"),
        ("failed-rows", cmd_job_failed_rows, "the failed rows as a CSV to fix and upload again"),
        ("download", cmd_job_download, "the log as OpenClinica's CSV"),
        ("cancel", cmd_job_cancel, "stop a queued or running job after its current batch"),
        ("delete", cmd_job_delete, "delete the job, its log and its stored upload"),
        ("revert", cmd_job_revert, "undo what a finished import changed (queues a revert job)"),
    )
    for name, func, text in actions:
        action = job_sub.add_parser(name, parents=[common], help=text)
        action.add_argument("uuid", metavar="UUID", help="the job's UUID")
        if name in ("failed-rows", "download"):
            action.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
        if name == "show":
            action.add_argument("--json", action="store_true", help="print the job as the API answers it (JSON)")
        if name == "log":
            action.add_argument(
                "--outcome", metavar="OUTCOME", help="only rows with this outcome (created, updated, unchanged, failed)"
            )
        action.set_defaults(func=func)

    extract = sub.add_parser(
        "extract", parents=[common], help="extract a site's participants (and access codes) as CSV"
    )
    extract.add_argument("--study", required=True, metavar="STUDY_OID", help="the study's OID")
    extract.add_argument("--site", required=True, metavar="SITE_OID", help="the site's OID")
    extract.add_argument(
        "--include-participate-info", action="store_true", help="add access codes (where you may read personal data)"
    )
    extract.add_argument("-o", "--output", metavar="FILE", help="write the CSV to FILE instead of stdout")
    extract.set_defaults(func=cmd_extract)


__all__ = ["EXIT_JOB_FAILED", "EXIT_REFUSED", "EXIT_ROWS_FAILED", "register"]
