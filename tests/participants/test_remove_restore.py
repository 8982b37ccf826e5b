"""Remove and restore: a removed participant stays readable, its ID is refused by the single endpoint
and by bulk rows, and it does not count towards an enrollment cap."""

from __future__ import annotations

from roster import codes
from tests.participants.conftest import SITE_A, SITE_B, World, codes_of


def test_remove_then_restore(world: World):
    world.created("P-1", firstName="Ann")
    r = world.post("p-1", "remove")
    assert r.status_code == 200 and r.json()["status"] == "removed" and r.json()["firstName"] == "Ann"
    assert world.record("P-1")["status"] == "removed"
    r = world.post("P-1", "restore")
    assert r.status_code == 200 and r.json()["status"] == "available"
    assert [e["action"] for e in world.audit("P-1")][-2:] == ["remove", "restore"]


def test_remove_and_restore_are_idempotent(world: World):
    world.created("P-1")
    world.post("P-1", "remove")
    events = len(world.audit("P-1"))
    assert world.post("P-1", "remove").json()["status"] == "removed"
    assert world.post("P-2", "remove").status_code == 404
    assert len(world.audit("P-1")) == events
    world.post("P-1", "restore")
    assert world.post("P-1", "restore").json()["status"] == "available"
    assert len(world.audit("P-1")) == events + 1


def test_remove_and_restore_need_write_permission_at_the_site(world: World):
    world.created("P-1")
    for user, status, code in (
        ("monitor", 403, codes.NO_SUFFICIENT_PRIVILEGES),
        ("viewer_a", 403, codes.NO_SUFFICIENT_PRIVILEGES),
        ("outsider", 403, codes.NO_ROLE_SET_UP),
        ("inv_b", 404, codes.PARTICIPANT_NOT_FOUND_OC),
    ):
        for action in ("remove", "restore"):
            r = world.post("P-1", action, user)
            assert (r.status_code, r.json()["message"]) == (status, code), (user, action)
    assert world.post("P-1", "remove", "crc_a").status_code == 200
    world.set_study(status="locked")
    assert world.post("P-1", "restore").json()["message"] == codes.STUDY_NOT_AVAILABLE


def test_a_removed_id_is_refused_by_bulk_rows(world: World):
    world.created("P-1", firstName="Ann")
    world.post("P-1", "remove")
    job, log = world.bulk("ParticipantID,firstName\r\np-1,Bea\r\nP-2,Cy\r\n")
    assert [(e["participantId"], e["outcome"]) for e in log] == [("p-1", "failed"), ("P-2", "created")]
    assert log[0]["errors"][0]["code"] == codes.PARTICIPANT_ID_NOT_AVAILABLE
    assert world.record("P-1")["firstName"] == "Ann"
    world.post("P-1", "restore")
    _job, log = world.bulk("ParticipantID,firstName\r\nP-1,Bea\r\n")
    assert log[0]["outcome"] == "updated"


def test_removed_participants_do_not_count_towards_caps(world: World):
    world.set_site(SITE_A, enrollmentCap=2)
    world.created("P-1")
    world.created("P-2")
    assert codes_of(world.add("P-3")) == [codes.ENROLLMENT_CAP_REACHED]
    world.post("P-1", "remove")
    world.created("P-3")
    _job, log = world.bulk("ParticipantID\r\nP-4\r\n")
    assert log[0]["errors"][0]["code"] == codes.ENROLLMENT_CAP_REACHED
    # Restoring would make three: refused while the site is full.
    r = world.post("P-1", "restore")
    assert (r.status_code, r.json()["message"]) == (400, codes.ENROLLMENT_CAP_REACHED)
    world.post("P-2", "remove")
    assert world.post("P-1", "restore").status_code == 200


def test_the_study_cap_counts_every_site(world: World):
    world.set_study(enrollmentCap=1)
    world.created("P-1", SITE_A)
    world.post("P-1", "remove")
    world.created("P-2", SITE_B)
    assert world.post("P-1", "restore").json()["message"] == codes.ENROLLMENT_CAP_REACHED
