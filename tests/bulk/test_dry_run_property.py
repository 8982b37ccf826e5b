"""SPEC §11.1's guarantee as a property: over a random starting registry (participants at both sites, some
removed, study and site caps, manual or generated IDs) a random small file's dry run writes nothing, and the
real upload right after logs the same outcome and codes for every row."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from roster.bulk.models import DryRunCreation
from roster.bulk.worker import drain
from roster.participants.models import AuditEvent, Participant
from roster.studies.models import Study
from tests.bulk.conftest import csv_of, error_codes
from tests.support import P

_studies = itertools.count(1)
TEMPLATE = "P-##"
NAMES = ("", "Ann", "Bob")
EMAILS = ("", "a@example.org", "not-an-email")


@st.composite
def registries(draw: st.DrawFn) -> dict[str, Any]:
    """The study's settings and the participants it starts with: (ID, site 0|1, removed, first name)."""
    system = draw(st.booleans())
    # In a system study some existing IDs look generated (the generator must skip them), others are free: a
    # file's empty IDs get them, and later rows may name them.
    pool = ["E-1", "E-2", "E-3", "E-4", *(("P-02", "P-04") if system else ())]
    ids = draw(st.lists(st.sampled_from(pool), unique=True, max_size=5))
    return {
        "system": system,
        # Caps as room left above the participants it starts with: the file's creations meet them.
        "study_room": draw(st.none() | st.integers(0, 3)),
        "site_room": draw(st.none() | st.integers(0, 3)),
        "register": draw(st.sampled_from(("y", "n"))),
        "existing": [(pid, draw(st.integers(0, 1)), draw(st.booleans()), draw(st.sampled_from(NAMES))) for pid in ids],
    }


# IDs a file row may carry: existing ones (any site, maybe removed), new ones, generated-looking ones, another
# case of either, an empty ID (generated, or missing in a manual study), and one the rules refuse.
ROW_IDS = st.sampled_from(
    ("", "", "", "P-01", "p-01", "P-02", "p-03", "N-1", "n-1", "N-2", "E-1", "e-2", "E-3", "B<1>")
)


@st.composite
def files(draw: st.DrawFn) -> list[str]:
    rows = draw(
        st.lists(
            st.tuples(
                ROW_IDS, st.sampled_from(NAMES), st.sampled_from(EMAILS), st.integers(0, 9).map(lambda n: n == 0)
            ),
            min_size=1,
            max_size=9,
        )
    )
    lines = [
        "x,y,z" if malformed else f"{pid},{name},,{email},,"  # a malformed row: too few cells
        for pid, name, email, malformed in rows
    ]
    return lines


class Registry:
    """A study of its own per example, on the bulk fixture's API and database."""

    def __init__(self, bulk, spec: dict[str, Any]) -> None:
        n = next(_studies)
        self.bulk, self.spec = bulk, spec
        self.study, self.sites = f"S_DRYPROP{n}", (f"S_DPA{n}", f"S_DPB{n}")
        fields: dict[str, Any] = {"participateActive": True}
        if spec["system"]:
            fields |= {"participantIdMethod": "system", "participantIdTemplate": TEMPLATE}
        bulk.api.setup_study(self.study, self.sites, **fields)
        bulk.api.grant("dm", "data_manager", self.study)
        for site in (0, 1):
            rows = [f"{pid},{name},,,," for pid, at, _removed, name in spec["existing"] if at == site]
            if rows:
                job, _log = self.run(csv_of(*rows), site=site, register="n")
                assert job["counts"]["created"] == len(rows), job
        removed = [pid for pid, _at, gone, _name in spec["existing"] if gone]
        with bulk.db.transaction() as s:
            study_id = s.scalar(select(Study.id).where(Study.oid == self.study))
            s.execute(
                update(Participant)
                .where(Participant.study_id == study_id, Participant.participant_id.in_(removed))
                .values(status="removed")
            )
        self.study_id = study_id
        active = [at for _pid, at, gone, _name in spec["existing"] if not gone]
        admin = f"{P}/admin/studies/{quote(self.study, safe='')}"
        for url, room, now in (
            (admin, spec["study_room"], len(active)),
            (f"{admin}/sites/{quote(self.sites[0], safe='')}", spec["site_room"], active.count(0)),
        ):
            cap = None if room is None else now + room
            bulk.api.ok(bulk.client.patch(url, json={"enrollmentCap": cap}, headers=bulk.api.admin))

    def run(self, data: bytes, *, site: int = 0, **params: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        job = self.bulk.upload(data, study=self.study, site=self.sites[site], **params)
        drain(self.bulk.db, self.bulk.settings)
        return self.bulk.job(job), self.bulk.log(job)

    def written(self) -> dict[str, Any]:
        with self.bulk.db.read_sessions() as s:
            ids = select(Participant.id).where(Participant.study_id == self.study_id)
            return {
                "participants": sorted(
                    tuple(r)
                    for r in s.execute(select(Participant.__table__).where(Participant.study_id == self.study_id))
                ),
                "audit events": s.scalar(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.participant_id.in_(ids))
                ),
                "id counter": s.scalar(select(Study.id_counter).where(Study.id == self.study_id)),
                "would-be participants": s.scalar(select(func.count()).select_from(DryRunCreation)),
            }


def decided(log: list[dict[str, Any]]) -> list[tuple[int, str, list[str], str | None]]:
    return [(e["row"], e["outcome"], error_codes(e), e["participateStatus"]) for e in log]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=registries(), lines=files(), batch_size=st.integers(1, 3))
# Always tried: a later batch names the ID an earlier one would generate, given IDs meet the generator, a cap.
@example(
    spec={"system": True, "study_room": 3, "site_room": None, "register": "y", "existing": [("P-02", 0, False, "")]},
    lines=[",Ann,,,,", "P-03,,,,,", ",Bob,,,,", "p-01,Ann,,,,", "P-04,Bob,,,,", ",Cy,,,,"],
    batch_size=1,
)
def test_a_dry_run_decides_every_row_as_the_real_upload_right_after(bulk, spec, lines, batch_size):
    bulk.settings = bulk.settings.model_copy(update={"batch_size": batch_size})
    registry = Registry(bulk, spec)
    data = csv_of(*lines)
    before = registry.written()
    dry, dry_log = registry.run(data, register=spec["register"], dry_run="y")
    assert dry["status"] == "COMPLETED" and dry["dryRun"] is True
    assert registry.written() == before
    real, real_log = registry.run(data, register=spec["register"])
    assert real["status"] == "COMPLETED"
    assert decided(dry_log) == decided(real_log)
    # An ID is logged as the real upload logs it, but a generated one is not shown before it is taken.
    assert [e["participantId"] for e in dry_log] == [
        None if r["outcome"] == "created" and not line.split(",")[0] else r["participantId"]
        for line, r in zip(lines, real_log, strict=True)
    ]
    assert {n: dry["counts"][n] for n in ("created", "updated", "unchanged", "failed")} == {
        n: real["counts"][n] for n in ("created", "updated", "unchanged", "failed")
    }
