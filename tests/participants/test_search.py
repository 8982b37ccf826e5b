"""The list's `q` (roster.participants.search): ID prefix and exact OID for everybody; name prefixes and the
exact email, uid, empi and MRN only at sites where the caller may read personal data."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import sqlalchemy as sa

from roster.auth.models import User
from roster.auth.permissions import study_access
from roster.participants import reads
from roster.participants.models import Participant
from roster.schemas import PageParams
from roster.studies.models import Study, oid_key
from tests.participants.conftest import SITE_A, SITE_B, STUDY, STUDY_PATH, World


def _found(world: World, q: str, user: str = "dm", **params) -> list[str]:
    r = world.client.get(f"{STUDY_PATH}/participants", headers=world.h(user), params={"q": q, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [item["participantId"] for item in body["items"]]
    if body["page"] == 1 and len(ids) < body["pageSize"]:
        assert body["total"] == len(ids), (q, user)  # the count agrees with the rows
    return ids


def test_an_id_is_found_by_its_start_in_any_case_not_by_its_middle(world: World):
    for pid in ("AB-1", "AB-10", "XAB-2", "Ärzt-1", "STRASSE-3"):
        world.created(pid)
    assert _found(world, "ab-1") == ["AB-1", "AB-10"]
    assert _found(world, "AB-10") == ["AB-10"]
    assert _found(world, "b-1") == []
    assert _found(world, "äRZT") == ["Ärzt-1"]
    assert _found(world, "straße") == ["STRASSE-3"]  # IDs compare case-folded, as their uniqueness does
    # OIDs: exact, any case; their start finds nothing (an OID is derived from the ID, which has a prefix search)
    assert _found(world, "ss_ab10") == ["AB-10"]
    assert _found(world, "SS_AB") == []


def test_like_wildcards_in_a_term_are_plain_characters(world: World):
    for pid, last in (("A_1", "O_Neil"), ("AB1", "ORNeil"), ("A%1", "O%Hara"), ("A\\1", "Ob")):
        world.created(pid, lastName=last)
    assert _found(world, "a_") == ["A_1"]
    assert _found(world, "a%") == ["A%1"]
    assert _found(world, "a\\") == ["A\\1"]
    assert _found(world, "o_") == ["A_1"]
    assert _found(world, "o%") == ["A%1"]
    assert _found(world, "_") == _found(world, "%") == []


def test_names_by_their_start_email_uid_empi_and_mrn_exactly(world: World):
    world.created("P-1", firstName="Mary Ann", lastName="Smith", emailAddress="Mary.Smith@Example.org")
    world.created("P-2", firstName="Élodie", lastName="Smithers")
    world.created("P-3", firstName="Zed", lastName="Ömer")
    r = world.patch("P-3", {"uid": "Uid-5", "empi": "E-6", "pmis": [{"mrn": "Mrn-7", "siteName": f"Site {SITE_A}"}]})
    assert r.status_code == 200, r.text
    assert _found(world, "smith") == ["P-1", "P-2"]
    assert _found(world, "SMITHE") == ["P-2"]
    assert _found(world, "mary a") == ["P-1"]
    assert _found(world, "mary.smith@example.ORG") == ["P-1"]
    assert _found(world, "mary.smith@") == _found(world, "ann") == _found(world, "ith") == []
    assert _found(world, "uid-5") == _found(world, "e-6") == _found(world, "MRN-7") == ["P-3"]
    assert _found(world, "uid-") == _found(world, "mrn") == []
    # Case folds A-Z only (SQL lower() on both backends): other letters match in the case they were stored in.
    assert _found(world, "ÉLOD") == ["P-2"]
    assert _found(world, "élod") == []
    assert _found(world, "Öm") == ["P-3"] and _found(world, "öm") == []


def test_personal_fields_are_searched_only_at_sites_where_the_caller_may_read_them(world: World):
    world.created("P-1", SITE_A, lastName="Lovelace", emailAddress="ada@example.org")
    world.created("Q-1", SITE_B, lastName="Lovell", emailAddress="lovell@example.org")
    assert _found(world, "love") == ["P-1", "Q-1"]
    assert _found(world, "love", "crc_a") == ["P-1"]
    assert _found(world, "love", "inv_b") == ["Q-1"]
    assert _found(world, "love", "monitor_a_crc_b") == ["Q-1"]  # a monitor at A, a coordinator at B
    assert _found(world, "ada@example.org", "monitor_a_crc_b") == []
    for user in ("monitor", "viewer_a"):
        assert _found(world, "love", user) == _found(world, "ada@example.org", user) == []
        assert _found(world, "p-", user) == ["P-1"]
    # The site's own list: the same rules.
    r = world.client.get(
        f"{STUDY_PATH}/sites/{quote(SITE_A)}/participants", headers=world.h("viewer_a"), params={"q": "love"}
    )
    assert (r.status_code, r.json()["items"], r.json()["total"]) == (200, [], 0)


def test_a_search_is_counted_and_paged_like_the_whole_list(world: World):
    for i in range(5):
        world.created(f"PG-{i}", lastName="Page")
    world.created("OTHER-1", lastName="Other")
    world.post("PG-4", "remove")
    r = world.client.get(
        f"{STUDY_PATH}/participants", headers=world.h("dm"), params={"q": "pag", "page": 2, "pageSize": 2}
    )
    body = r.json()
    assert ([i["participantId"] for i in body["items"]], body["total"]) == (["PG-2", "PG-3"], 5)
    assert _found(world, "pg-", status="available") == ["PG-0", "PG-1", "PG-2", "PG-3"]
    assert _found(world, "pg-", siteOID=SITE_B) == []


# What shows that each branch of the search (migration 0008 and the unique keys it relies on) reads an index.
BRANCH_INDEXES = {
    "sqlite": (
        "(participant_key>? AND participant_key<?)",
        "(oid=? AND study_id=?)",
        "ix_participants_last_name_lower",
        "ix_participants_first_name_lower",
        "ix_participants_email_lower",
        "ix_participants_study_uid",
        "ix_participants_study_empi",
        "INTEGER PRIMARY KEY (rowid=?)",
    ),
    "postgresql": (
        "uq_participants_participant_key_study_id",
        "uq_participants_oid_study_id",
        "ix_participants_last_name_lower",
        "ix_participants_first_name_lower",
        "ix_participants_email_lower",
        "ix_participants_study_uid",
        "ix_participants_study_empi",
        "pk_participants",
    ),
}


def _filler(world: World, study_id: int, site_id: int, n: int) -> None:
    """n participants written directly, so that PostgreSQL's statistics describe a table worth an index."""
    rows = [
        {
            "study_id": study_id,
            "site_id": site_id,
            "participant_id": f"F-{i}",
            "participant_key": f"f-{i}",
            "oid": f"SS_F{i}",
            "first_name": f"Fn{i}",
            "last_name": f"Ln{i}",
            "email_address": f"f{i}@example.org",
        }
        for i in range(n)
    ]
    with world.db.transaction() as session:
        session.execute(sa.insert(Participant), rows)
    if world.db.dialect == "postgresql":
        with world.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE participants"))


def _plans(world: World, username: str, q: str) -> list[str]:
    """The plans of the participant statements of one study-list search, as run (bound parameters)."""
    plans: list[str] = []
    pg = world.db.dialect == "postgresql"

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM participants" in statement and not statement.startswith("EXPLAIN"):
            cursor.execute(("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + statement, parameters)
            plans.append("\n".join(str(row[-1]) for row in cursor.fetchall()))

    with world.db.read_sessions() as session, session.begin():
        study = session.scalar(sa.select(Study).where(Study.oid_key == oid_key(STUDY)))
        access = study_access(session, session.scalar(sa.select(User).where(User.username_key == username)), study)
        sa.event.listen(session.connection().engine, "before_cursor_execute", capture)
        try:
            reads.list_participants(session, study, access, PageParams(page=1, page_size=50), q=q)
        finally:
            sa.event.remove(session.connection().engine, "before_cursor_execute", capture)
    return plans


@pytest.mark.parametrize("username", ["dm", "monitor_a_crc_b"])
def test_every_branch_of_a_search_is_read_through_an_index(world: World, username: str):
    """SQLite as Roster runs it (no statistics); PostgreSQL after ANALYZE of a few thousand rows."""
    world.created("P-1", SITE_B, lastName="Smith")
    assert world.patch("P-1", {"pmis": [{"mrn": "M-1", "siteName": f"Site {SITE_B}"}]}).status_code == 200
    record = world.record("P-1")
    with world.db.read_sessions() as session:
        study_id, site_id = session.execute(
            sa.select(Participant.study_id, Participant.site_id).where(Participant.id == record["id"])
        ).one()
    _filler(world, study_id, site_id, 3000)
    plans = _plans(world, username, "m-1")  # an MRN, so that its branch is there too
    count, page = [p for p in plans if "participant_mrns" not in p]
    for plan in (count, page):
        assert "SCAN participants" not in plan and "Seq Scan on participants" not in plan, plan
        assert "MULTI-INDEX OR" in plan or "BitmapOr" in plan, plan
    for index in BRANCH_INDEXES[world.db.dialect]:
        assert index in count, (index, count)
