"""Participant search benchmark: the list's `q` at a million participants, old query shape against new.

    python bench/search.py [--rows 1000000] [--backends sqlite,postgresql] [--repeat 30]
                           [--baseline-repeat 3] [--explain]

Per backend: a fresh database migrated to head, one study with four sites and --rows participants written
with plain SQL (COPY on PostgreSQL), every tenth with a uid and an MRN; then PostgreSQL is ANALYZEd (what
autovacuum would do) and SQLite is not (Roster never analyzes it). Each term is searched as three callers: a
data manager (personal data everywhere), a monitor (none) and a mixed user (monitor at site 1, coordinator
at site 2), with the statements the list endpoint runs: the count and the first page of 50, oldest first.

"old" is the query before migration 0008 (substring LIKE over ID, OID and the personal fields, kept below
as the baseline); "new" is roster.participants.search through reads.list_filters. Timings are per search
(count + page), in ms.
See bench/README.md for the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bulk import PG_URL, create_pg_database, pg_reachable  # noqa: E402  (sibling module)

from roster.auth.permissions import Action, Grant, Role, StudyAccess  # noqa: E402
from roster.db import Database  # noqa: E402
from roster.migrate import upgrade  # noqa: E402
from roster.participants import reads  # noqa: E402
from roster.participants.models import Participant, ParticipantMrn  # noqa: E402
from roster.schemas import PageParams  # noqa: E402
from roster.studies.models import Study  # noqa: E402

SITES = 4
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ra",
    "ne",
    "to",
    "su",
    "vi",
    "de",
    "an",
    "el",
    "or",
    "ba",
    "ch",
    "is",
    "um",
    "wa",
    "ye",
    "zo",
    "pe",
]
FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Dmitri",
    "Elif",
    "Fatima",
    "George",
    "Hana",
    "Ivan",
    "Jane",
    "Kofi",
    "Lena",
    "Mateo",
    "Nora",
]
CHUNK = 20_000


# ------------------------------------------------------------------------------------------------ data
def person(i: int, rng: random.Random) -> tuple:
    """Participant i: ID BP-i, every 50th a Smith, else one of 8,000 made-up last names."""
    last = "Smith" if i % 50 == 0 else "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
    first = FIRST[i % len(FIRST)]
    pid = f"BP-{i:07d}"
    uid = f"UID-{i:07d}" if i % 10 == 0 else None
    return (
        1,
        1 + i % SITES,
        pid,
        pid.casefold(),
        f"SS_BP{i:07d}",
        "available",
        "Active",
        "2026-01-01",
        "2026-01-01",
        first,
        last,
        f"{first.lower()}.{i}@example.org",
        uid,
        uid.casefold() if uid else None,
    )


COLUMNS = (
    "study_id",
    "site_id",
    "participant_id",
    "participant_key",
    "oid",
    "status",
    "activity_status",
    "created_at",
    "updated_at",
    "first_name",
    "last_name",
    "email_address",
    "uid",
    "uid_key",
)


def rows(n: int) -> Iterator[tuple]:
    rng = random.Random(13)
    for i in range(1, n + 1):
        yield person(i, rng)


def fill(url: str, n: int) -> float:
    started = time.perf_counter()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO studies (oid, oid_key, name, status, participant_id_method, id_counter, "
                "participate_active, created_at, updated_at) "
                "VALUES ('S_SEARCH', 's_search', 'Search', 'available', 'manual', 0, false, '2026-01-01', '2026-01-01')"
            )
        )
        for s in range(1, SITES + 1):
            conn.execute(
                sa.text(
                    "INSERT INTO sites (study_id, oid, oid_key, name, status, created_at, updated_at) "
                    f"VALUES (1, 'S_SITE_{s}', 's_site_{s}', 'Site {s}', 'available', '2026-01-01', '2026-01-01')"
                )
            )
        raw = conn.connection.driver_connection
        columns = ", ".join(COLUMNS)
        if url.startswith("postgresql"):
            with raw.cursor() as cur, cur.copy(f"COPY participants ({columns}) FROM STDIN") as copy:
                for row in rows(n):
                    copy.write_row(row)
                mrns = ((i, 1 + i % SITES, f"MRN-{i:07d}", f"mrn-{i:07d}") for i in range(10, n + 1, 10))
            with (
                raw.cursor() as cur,
                cur.copy("COPY participant_mrns (participant_id, site_id, mrn, mrn_key) FROM STDIN") as copy,
            ):
                for row in mrns:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(COLUMNS))
            batch: list[tuple] = []
            for row in rows(n):
                batch.append(row)
                if len(batch) == CHUNK:
                    raw.executemany(f"INSERT INTO participants ({columns}) VALUES ({marks})", batch)
                    batch.clear()
            raw.executemany(f"INSERT INTO participants ({columns}) VALUES ({marks})", batch)
            raw.executemany(
                "INSERT INTO participant_mrns (participant_id, site_id, mrn, mrn_key) VALUES (?, ?, ?, ?)",
                [(i, 1 + i % SITES, f"MRN-{i:07d}", f"mrn-{i:07d}") for i in range(10, n + 1, 10)],
            )
    if url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE participants"))
            conn.execute(sa.text("VACUUM ANALYZE participant_mrns"))
    engine.dispose()
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------------ queries
def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def old_condition(q: str, access: StudyAccess) -> ColumnElement[bool]:
    """The search before migration 0008 (roster.participants.service._search then), the baseline."""
    pattern = _like(q.casefold())
    clause = or_(Participant.participant_key.like(pattern, escape="\\"), Participant.oid.ilike(_like(q), escape="\\"))
    pii_sites = access.site_ids(Action.READ_PII)
    if pii_sites is not None and not pii_sites:
        return clause
    text_pattern = _like(q)
    personal = or_(
        *(
            getattr(Participant, attr).ilike(text_pattern, escape="\\")
            for attr in ("first_name", "middle_name", "last_name", "email_address", "mobile_number", "identifier")
        ),
        Participant.uid_key.like(pattern, escape="\\"),
        Participant.empi_key.like(pattern, escape="\\"),
        exists().where(
            ParticipantMrn.participant_id == Participant.id, ParticipantMrn.mrn_key.like(pattern, escape="\\")
        ),
    )
    if pii_sites is not None:
        personal = personal & Participant.site_id.in_(sorted(pii_sites))
    return or_(clause, personal)


def old_filters(session: Session, study: Study, access: StudyAccess, q: str) -> list[ColumnElement[bool]]:
    """The list's WHERE before migration 0008."""
    where = [Participant.study_id == study.id]
    sites = access.site_ids(Action.READ)
    if sites is not None:
        where.append(Participant.site_id.in_(sorted(sites)))
    return [*where, old_condition(q, access)]


def new_filters(session: Session, study: Study, access: StudyAccess, q: str) -> list[ColumnElement[bool]]:
    return reads.list_filters(session, study, access, q=q)


Filters = Callable[[Session, Study, StudyAccess, str], list[ColumnElement[bool]]]
PAGE = PageParams(page=1, page_size=50)


def statements(session: Session, q: str, access: StudyAccess, filters: Filters) -> tuple[sa.Select, sa.Select]:
    """The list endpoint's two statements (roster.participants.reads.list_participants)."""
    where = filters(session, session.get(Study, 1), access, q)
    return select(func.count(Participant.id)).where(*where), reads.page_of(where, PAGE)


def one_search(session: Session, q: str, access: StudyAccess, filters: Filters) -> tuple[float, int]:
    started = time.perf_counter()
    count, page = statements(session, q, access, filters)
    total = session.scalar(count) or 0
    list(session.scalars(page))
    elapsed = (time.perf_counter() - started) * 1000
    session.expunge_all()
    return elapsed, total


ROLES = {
    "dm": StudyAccess(1, 1, (Grant(Role("data_manager"), None),)),
    "monitor": StudyAccess(2, 1, (Grant(Role("monitor"), None),)),
    "mixed": StudyAccess(3, 1, (Grant(Role("monitor"), 1), Grant(Role("clinical_research_coordinator"), 2))),
}


def terms(n: int) -> dict[str, str]:
    k = n // 2 // 10 * 10 or 10  # a participant with an MRN and a uid, mid-table
    return {
        "ID exact": f"bp-{k:07d}",
        "ID prefix (100)": f"BP-{k:07d}"[:-2],
        "OID exact": f"ss_bp{k:07d}",
        "last name prefix": "kalo",
        "Smith (2 %)": "smith",
        "email exact": f"{FIRST[k % len(FIRST)].upper()}.{k}@example.org",
        "MRN exact": f"MRN-{k:07d}",
        "no match": "zzqx",
    }


def explain(session: Session, q: str, access: StudyAccess) -> str:
    """The plans of the statements one new search runs, as run: with their bound parameters."""
    engine = session.get_bind()
    plans: list[str] = []
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        cursor.execute(prefix + statement, parameters)
        plans.append("\n".join("    " + str(r[-1]) for r in cursor.fetchall()))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        one_search(session, q, access, new_filters)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    return "\n  --\n".join(plans)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'search.db'}"
        return
    url, drop = create_pg_database(PG_URL, "roster_bench_search")
    try:
        yield url
    finally:
        drop()


def run(backend: str, n: int, repeat: int, baseline_repeat: int, show_plans: bool) -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp)) as url:
        db = Database(url)
        upgrade(db)
        fill_s = fill(url, n)
        print(f"{backend}: {n:,} participants written in {fill_s:.0f} s", flush=True)
        with db.read_sessions() as session:  # the API reads lists in such a session
            if show_plans:
                for role in ("dm", "mixed"):
                    print(f"  plan, {role}, q=kalo:\n{explain(session, 'kalo', ROLES[role])}", flush=True)
            for label, q in terms(n).items():
                for role, access in ROLES.items():
                    for shape, filters, times in (("new", new_filters, repeat), ("old", old_filters, baseline_repeat)):
                        if not times or (shape == "old" and role == "mixed"):
                            continue
                        one_search(session, q, access, filters)  # warm
                        samples = [one_search(session, q, access, filters) for _ in range(times)]
                        ms = [s[0] for s in samples]
                        line = (
                            f"{backend:<10} {label:<18} {role:<8} {shape:<4} total {samples[0][1]:>7,}  "
                            f"median {statistics.median(ms):>8.1f} ms  p99 {percentile(ms, 99):>8.1f} ms  (n={times})"
                        )
                        print(line, flush=True)
                        lines.append(line)
        db.dispose()
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--repeat", type=int, default=30, help="timed runs of each new search (p99 of 30 is the slowest)"
    )
    parser.add_argument(
        "--baseline-repeat", type=int, default=3, help="timed runs of each old search (0: skip the baseline)"
    )
    parser.add_argument("--explain", action="store_true", help="print the new statements' plans for a name search")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(
        f"roster search benchmark  {time.strftime('%Y-%m-%dT%H:%M:%S')}  {os.cpu_count()} CPUs  load {load[0]:.2f}",
        flush=True,
    )
    for backend in args.backends.split(","):
        if backend == "postgresql" and not pg_reachable():
            print("postgresql: not reachable, skipped")
            continue
        run(backend, args.rows, args.repeat, args.baseline_repeat, args.explain)
    print(f"load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
