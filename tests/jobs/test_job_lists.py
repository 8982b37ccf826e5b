"""GET P/studies/{studyOID}/jobs and …/sites/{siteOID}/jobs: visibility, order, paging, status filter."""

from __future__ import annotations

import pytest

from roster import codes
from roster.bulk.models import CANCELLED, COMPLETED, IN_PROGRESS, IN_QUEUE
from tests.jobs.conftest import SITE_A, SITE_B, STUDY


def uuids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [j["uuid"] for j in response.json()["items"]]


@pytest.fixture
def jobs(world):
    """Two jobs at site A (by crc_a, then dm), one at site B (by crc_b), in that order of creation."""
    return {
        "a1": world.add_job("crc_a", SITE_A, status=COMPLETED),
        "a2": world.add_job("dm", SITE_A, status=IN_PROGRESS),
        "b1": world.add_job("crc_b", SITE_B, status=IN_QUEUE),
    }


def test_study_level_writer_sees_every_job_of_the_study_newest_first(world, jobs):
    r = world.get(f"/studies/{STUDY}/jobs", "dm")
    assert uuids(r) == [jobs["b1"], jobs["a2"], jobs["a1"]]
    assert {k: r.json()[k] for k in ("page", "pageSize", "total")} == {"page": 1, "pageSize": 50, "total": 3}


def test_site_level_writer_sees_the_jobs_of_its_site_including_those_of_others(world, jobs):
    assert uuids(world.get(f"/studies/{STUDY}/jobs", "crc_a")) == [jobs["a2"], jobs["a1"]]
    assert uuids(world.get(f"/studies/{STUDY}/jobs", "crc_a2")) == [jobs["a2"], jobs["a1"]]
    assert uuids(world.get(f"/studies/{STUDY}/jobs", "crc_b")) == [jobs["b1"]]


def test_site_list_is_limited_to_that_site_and_to_what_the_caller_may_see(world, jobs):
    assert uuids(world.get(f"/studies/{STUDY}/sites/{SITE_A}/jobs", "dm")) == [jobs["a2"], jobs["a1"]]
    assert uuids(world.get(f"/studies/{STUDY}/sites/{SITE_B}/jobs", "dm")) == [jobs["b1"]]
    assert uuids(world.get(f"/studies/{STUDY}/sites/{SITE_B}/jobs", "crc_a")) == []


def test_monitors_viewers_outsiders_and_admins_see_no_jobs_of_others(world, jobs):
    for user in ("monitor", "viewer_a", "outsider", "admin"):
        r = world.get(f"/studies/{STUDY}/jobs", user)
        assert uuids(r) == [] and r.json()["total"] == 0, user


def test_a_creator_who_lost_its_role_still_lists_its_own_jobs(world):
    mine = world.add_job("outsider", SITE_B)
    world.add_job("crc_b", SITE_B)
    assert uuids(world.get(f"/studies/{STUDY}/jobs", "outsider")) == [mine]
    assert uuids(world.get(f"/studies/{STUDY}/sites/{SITE_B}/jobs", "outsider")) == [mine]


def test_oids_are_matched_case_insensitively(world, jobs):
    assert len(uuids(world.get(f"/studies/{STUDY.lower()}/sites/{SITE_A.lower()}/jobs", "dm"))) == 2


def test_pages_walk_the_list_without_overlap(world):
    made = [world.add_job("crc_a") for _ in range(7)]
    seen = []
    for page in (1, 2, 3):
        r = world.get(f"/studies/{STUDY}/jobs", "crc_a", page=page, pageSize=3)
        assert r.json()["total"] == 7 and r.json()["page"] == page and r.json()["pageSize"] == 3
        seen += uuids(r)
    assert seen == made[::-1]
    assert uuids(world.get(f"/studies/{STUDY}/jobs", "crc_a", page=4, pageSize=3)) == []


@pytest.mark.parametrize("params", [{"pageSize": 1001}, {"pageSize": 0}, {"page": 0}, {"page": "x"}])
def test_bad_paging_answers_422(world, params):
    r = world.get(f"/studies/{STUDY}/jobs", "dm", **params)
    assert r.status_code == 422 and r.json()["message"] == codes.VALIDATION_FAILED


def test_status_filter_is_case_insensitive_and_takes_several_values(world, jobs):
    assert uuids(world.get(f"/studies/{STUDY}/jobs", "dm", status="completed")) == [jobs["a1"]]
    assert uuids(world.get(f"/studies/{STUDY}/jobs", "dm", status="IN_QUEUE,IN_PROGRESS")) == [jobs["b1"], jobs["a2"]]
    r = world.api.client.get(
        f"/pages/auth/api/studies/{STUDY}/jobs?status=IN_QUEUE&status=COMPLETED", headers=world.h("dm")
    )
    assert uuids(r) == [jobs["b1"], jobs["a1"]]
    assert world.get(f"/studies/{STUDY}/jobs", "dm", status=CANCELLED).json()["total"] == 0


def test_an_unknown_status_answers_422_naming_the_parameter(world, jobs):
    r = world.get(f"/studies/{STUDY}/jobs", "dm", status="DONE")
    assert r.status_code == 422
    assert r.json()["message"] == codes.VALIDATION_FAILED and r.json()["params"]["errors"][0]["field"] == "status"


def test_unknown_study_or_site_answers_404_with_its_code(world, jobs):
    r = world.get("/studies/S_NOPE/jobs", "dm")
    assert (r.status_code, r.json()["message"]) == (404, codes.STUDY_NOT_EXIST)
    r = world.get(f"/studies/{STUDY}/sites/S_NOPE/jobs", "dm")
    assert (r.status_code, r.json()["message"]) == (404, codes.INVALID_SITE_IDENTIFIER)


def test_a_site_of_another_study_is_not_a_site_of_this_one(world, jobs):
    world.api.setup_study("S_OTHER", ("S_OTHER_SITE",))
    r = world.get(f"/studies/{STUDY}/sites/S_OTHER_SITE/jobs", "dm")
    assert (r.status_code, r.json()["message"]) == (404, codes.INVALID_SITE_IDENTIFIER)


def test_lists_need_a_bearer_token(world, jobs):
    r = world.api.client.get(f"/pages/auth/api/studies/{STUDY}/jobs")
    assert (r.status_code, r.json()["message"]) == (401, codes.UNAUTHORIZED)
