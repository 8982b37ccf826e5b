"""`GET …/participants/{participantID}/accessLink`: built from PUBLIC_BASE_URL, 404 until registered."""

from __future__ import annotations

import logging
import re

from roster import codes
from tests.participants.conftest import World


def test_a_registered_participant_has_an_access_link(world: World):
    world.settings.public_base_url = "https://participate.example.org"
    world.created("P-1", register="y")
    body = world.get("P-1", suffix="/accessLink", includeAccessCode="y").json()
    assert re.fullmatch(r"[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{9}", body["accessCode"])
    assert body["host"] == "https://participate.example.org"
    assert (
        body["accessLink"]
        == f"https://participate.example.org/participate/S_PART%28TEST%29/login?accessCode={body['accessCode']}"
    )


def test_the_code_is_left_out_unless_asked_for(world: World):
    world.created("P-1", register="y")
    for params in ({}, {"includeAccessCode": "n"}, {"includeAccessCode": "NO"}):
        body = world.get("P-1", suffix="/accessLink", **params).json()
        assert body["accessCode"] is None and "accessCode=" not in body["accessLink"]
    r = world.get("P-1", suffix="/accessLink", includeAccessCode="maybe")
    assert (r.status_code, r.json()["message"]) == (400, codes.INVALID_INCLUDE_ACCESS_CODE)


def test_an_unregistered_participant_has_no_link(world: World):
    world.created("P-1")
    r = world.get("P-1", suffix="/accessLink")
    assert (r.status_code, r.json()["message"]) == (404, codes.PARTICIPANT_NOT_REGISTERED)
    assert world.get("NOPE", suffix="/accessLink").json()["message"] == codes.PARTICIPANT_NOT_FOUND_OC


def test_codes_are_kept_across_re_registration_by_any_path(world: World):
    world.created("P-1", register="y")
    code = world.get("P-1", suffix="/accessLink", includeAccessCode="y").json()["accessCode"]
    world.created("P-1", register="y", firstName="Ann")
    _job, log = world.bulk("ParticipantID,firstName\r\nP-1,Bea\r\nP-2,Cy\r\n", register="y")
    assert [e["participateStatus"] for e in log] == ["Created", "Created"]
    world.put("P-1", {"lastName": "Lee"})
    assert world.get("P-1", suffix="/accessLink", includeAccessCode="y").json()["accessCode"] == code
    other = world.get("P-2", suffix="/accessLink", includeAccessCode="y").json()["accessCode"]
    assert other != code


def test_access_codes_never_reach_the_server_log(world: World, caplog):
    caplog.set_level(logging.DEBUG, logger="roster")
    caplog.set_level(logging.INFO)
    world.created("P-1", register="y")
    world.bulk("ParticipantID\r\nP-2\r\n", register="y")
    found = [world.get(p, suffix="/accessLink", includeAccessCode="y").json()["accessCode"] for p in ("P-1", "P-2")]
    world.get("P-1")
    world.client.get(f"{world.path('P-1')}/audit", headers=world.h("dm"))
    assert caplog.records, "the access log should have recorded the requests"
    for code in found:
        assert code not in caplog.text
    assert "accessCode" not in str([e for p in ("P-1", "P-2") for e in world.audit(p)])
