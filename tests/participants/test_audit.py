"""The audit trail (SPEC §8): one event per change, from every path, with old and new values."""

from __future__ import annotations

import datetime as dt

from tests.participants.conftest import STUDY, World


def _changes(event: dict) -> dict[str, tuple]:
    return {c["field"]: (c["old"], c["new"]) for c in event["changes"]}


def test_every_kind_of_change_is_an_event_with_old_and_new_values(api, world: World):
    api.site(STUDY, "S_LAB2", name="Lab2")
    world.created("P-1", firstName="Ann", register="y")
    world.created("P-1", firstName="Bea", user="crc_a")
    world.patch("P-1", {"gender": "Female Gender", "pmis": [{"mrn": "M-1", "siteName": "Lab2"}]})
    world.put("P-1", {"firstName": "Bea", "gender": "Unknown", "birthDate": "1990-01-02"})
    world.os_put(world.pk("P-1"), {"firstName": "Cy", "uid": "U-1"})
    world.post("P-1", "remove")
    world.post("P-1", "restore")
    job, _log = world.bulk("ParticipantID,lastName\r\nP-1,Lee\r\n")
    events = world.audit("P-1")
    assert [(e["action"], e["username"], e["source"]) for e in events] == [
        ("create", "dm", "api"),
        ("register", "dm", "api"),
        ("update", "crc_a", "api"),
        ("profile_update", "dm", "api"),
        ("profile_update", "dm", "api"),
        ("profile_update", "dm", "api"),
        ("remove", "dm", "api"),
        ("restore", "dm", "api"),
        ("update", "dm", job),
    ]
    create, register, update, patch, put, os_put, remove, restore, bulk = map(_changes, events)
    assert create["participantId"] == (None, "P-1") and create["firstName"] == (None, "Ann")
    assert register == {"participateStatus": (None, "Created")}
    assert update == {"firstName": ("Ann", "Bea")}
    assert patch == {"gender": (None, "Female Gender"), "pmis": ([], [{"mrn": "M-1", "siteName": "Lab2"}])}
    assert put == {
        "gender": ("Female Gender", "Unknown"),
        "birthDate": (None, "1990-01-02"),
        "pmis": ([{"mrn": "M-1", "siteName": "Lab2"}], []),
    }
    assert os_put == {
        "firstName": ("Bea", "Cy"),
        "gender": ("Unknown", None),
        "birthDate": ("1990-01-02", None),
        "uid": (None, "U-1"),
    }
    assert remove == {"status": ("available", "removed")} and restore == {"status": ("removed", "available")}
    assert bulk == {"lastName": (None, "Lee")}
    stamps = [dt.datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in events]
    assert stamps == sorted(stamps) and all(s.utcoffset() == dt.timedelta(0) for s in stamps)


def test_a_bulk_creation_names_its_job(world: World):
    job, _log = world.bulk("ParticipantID,firstName\r\nP-9,Ann\r\n", register="y")
    events = world.audit("P-9")
    assert [(e["action"], e["source"]) for e in events] == [("create", job), ("register", job)]


def test_the_trail_is_paginated_oldest_first(world: World):
    world.created("P-1")
    for name in ("A", "B", "C", "D"):
        world.patch("P-1", {"middleName": name})
    r = world.get("P-1", suffix="/audit", page=2, pageSize=2)
    body = r.json()
    assert (body["total"], body["page"], body["pageSize"]) == (5, 2, 2)
    assert [_changes(e)["middleName"] for e in body["items"]] == [("A", "B"), ("B", "C")]


def test_the_trail_cannot_be_changed_through_the_api(world: World):
    world.created("P-1")
    before = world.audit("P-1")
    url = world.path("P-1", "/audit")
    for method in ("put", "patch", "delete", "post"):
        # 405, or 404 where the method exists for a participant (no participant "P-1/audit")
        assert getattr(world.client, method)(
            url, headers=world.h("dm"), **({"json": {}} if method in ("put", "patch") else {})
        ).status_code in (404, 405)
    assert world.audit("P-1") == before


def test_read_only_roles_see_that_fields_changed_but_not_their_values(world: World):
    world.created("P-1", firstName="Ann")
    world.post("P-1", "remove")
    create, remove = world.audit("P-1", "monitor")
    first_name = next(c for c in create["changes"] if c["field"] == "firstName")
    assert first_name == {"field": "firstName", "old": None, "new": None, "redacted": True}
    assert remove["changes"] == [{"field": "status", "old": "available", "new": "removed", "redacted": False}]
    assert world.get("P-1", "outsider", "/audit").status_code == 403
    assert world.get("P-1", "inv_b", "/audit").status_code == 404
    assert world.get("P-1", "crc_a", "/audit").status_code == 200
