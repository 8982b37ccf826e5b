"""`GET`/`PUT /rest/ng/participants/{id}`: OpenSpecimen's shapes (seed 004) and its error list."""

from __future__ import annotations

import pytest

from roster import codes
from tests.participants.conftest import SITE_A, STUDY, World, codes_of

# The seed's request body, as its page shows it.
SEED_REQUEST = {
    "firstName": "Jhon",
    "gender": "Male Gender",
    "lastName": "Dep",
    "pmis": [{"mrn": "324r6", "siteName": "Lab2"}],
    "race": ["Asian"],
    "ethnicities": ["Hispanic or Latino"],
    "uid": "123-45-6789",
}


@pytest.fixture
def lab2(api, world: World) -> World:
    api.site(STUDY, "S_LAB2", name="Lab2")
    world.created("P-1", firstName="Someone", emailAddress="p1@example.org", identifier="ID-1")
    return world


def test_the_seeds_example_round_trips(lab2: World):
    pk = lab2.pk("P-1")
    r = lab2.os_put(pk, SEED_REQUEST)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer == {
        "id": str(pk),
        "firstName": "Jhon",
        "middleName": None,
        "lastName": "Dep",
        "uid": "123-45-6789",
        "empi": None,
        "birthDate": None,
        "deathDate": None,
        "vitalStatus": None,
        "gender": "Male Gender",
        "race": ["Asian"],
        "ethnicities": ["Hispanic or Latino"],
        "sexGenotype": None,
        "pmis": [{"mrn": "324r6", "siteName": "Lab2"}],
        "activityStatus": "Active",
    }
    assert lab2.os_get(pk).json() == answer
    # The answer sent back as it is changes nothing.
    events = len(lab2.audit("P-1"))
    assert lab2.os_put(pk, answer).json() == answer
    assert len(lab2.audit("P-1")) == events
    # The same participant at the OpenClinica-style path; fields outside OpenSpecimen's resource stay.
    record = lab2.record("P-1")
    assert (record["firstName"], record["uid"], record["emailAddress"], record["identifier"]) == (
        "Jhon",
        "123-45-6789",
        "p1@example.org",
        "ID-1",
    )


def test_put_replaces_the_profile(lab2: World):
    pk = lab2.pk("P-1")
    lab2.os_put(
        pk, {**SEED_REQUEST, "middleName": "M", "empi": "E-1", "birthDate": "1970-01-01", "activityStatus": "Disabled"}
    )
    answer = lab2.os_put(pk, {"lastName": "Depp"}).json()
    assert answer["lastName"] == "Depp"
    assert [answer[k] for k in ("firstName", "middleName", "uid", "empi", "birthDate", "gender")] == [None] * 6
    assert (answer["race"], answer["pmis"], answer["activityStatus"]) == ([], [], "Active")


def test_rule_errors_are_a_list_of_code_and_message(lab2: World):
    pk = lab2.pk("P-1")
    r = lab2.os_put(
        pk,
        {"gender": "M", "race": ["Asian", "Other"], "pmis": [{"mrn": "1", "siteName": "Lab9"}], "firstName": "F" * 36},
    )
    assert r.status_code == 400
    assert isinstance(r.json(), list)
    assert all(set(e) == {"code", "message"} for e in r.json())
    assert sorted(codes_of(r)) == sorted(
        [codes.INVALID_GENDER, codes.INVALID_RACE, codes.SITE_NOT_FOUND, codes.FIRST_NAME_TOO_LONG]
    )


def test_duplicates_are_400(lab2: World):
    lab2.created("P-2")
    lab2.os_put(lab2.pk("P-1"), SEED_REQUEST)
    r = lab2.os_put(lab2.pk("P-2"), {"uid": "123-45-6789", "pmis": [{"mrn": "324R6", "siteName": "lab2"}]})
    assert (r.status_code, sorted(codes_of(r))) == (400, sorted([codes.DUP_UID, codes.DUP_MRN]))


def test_a_malformed_body_is_a_400_list(lab2: World):
    pk = lab2.pk("P-1")
    for body in ({"nickname": "x"}, {"race": "Asian"}, ["x"]):
        r = lab2.os_put(pk, body)
        assert r.status_code == 400 and codes_of(r) == [codes.VALIDATION_FAILED], body
    raw = lab2.client.put(
        f"/rest/ng/participants/{pk}", content=b"{", headers={**lab2.h("dm"), "Content-Type": "application/json"}
    )
    assert raw.status_code == 400 and codes_of(raw) == [codes.VALIDATION_FAILED]


def test_without_a_valid_token_the_answer_is_401(lab2: World):
    pk = lab2.pk("P-1")
    for headers in ({}, {"Authorization": "Bearer nope"}):
        r = lab2.client.get(f"/rest/ng/participants/{pk}", headers=headers)
        assert r.status_code == 401 and codes_of(r) == [codes.UNAUTHORIZED]
        assert r.headers["www-authenticate"] == "Bearer"
        put = lab2.client.put(f"/rest/ng/participants/{pk}", content=b"{", headers=headers)
        assert put.status_code == 401 and codes_of(put) == [codes.UNAUTHORIZED]


def test_an_unknown_or_invisible_participant_is_404(lab2: World):
    pk = lab2.pk("P-1")
    for value in ("999999", "abc", "0", "-1", "99999999999999999999", "1.0"):
        r = lab2.os_get(value)
        assert (r.status_code, codes_of(r)) == (404, [codes.PARTICIPANT_NOT_FOUND]), value
    for user in ("outsider", "inv_b"):
        assert codes_of(lab2.os_get(pk, user)) == [codes.PARTICIPANT_NOT_FOUND]
        assert codes_of(lab2.os_put(pk, SEED_REQUEST, user)) == [codes.PARTICIPANT_NOT_FOUND]


def test_read_only_roles_get_403(lab2: World):
    pk = lab2.pk("P-1")
    for user in ("monitor", "viewer_a"):
        for r in (lab2.os_get(pk, user), lab2.os_put(pk, SEED_REQUEST, user)):
            assert (r.status_code, codes_of(r)) == (403, [codes.NO_SUFFICIENT_PRIVILEGES])
    assert lab2.os_get(pk, "crc_a").status_code == 200
    assert lab2.os_put(pk, SEED_REQUEST, "crc_a").status_code == 200


def test_a_locked_site_or_a_removed_participant_refuses_changes(lab2: World):
    pk = lab2.pk("P-1")
    lab2.post("P-1", "remove")
    assert codes_of(lab2.os_put(pk, SEED_REQUEST)) == [codes.PARTICIPANT_ID_NOT_AVAILABLE]
    assert lab2.os_get(pk).status_code == 200
    lab2.post("P-1", "restore")
    lab2.set_site(SITE_A, status="locked")
    r = lab2.os_put(pk, SEED_REQUEST)
    assert (r.status_code, codes_of(r)) == (400, [codes.SITE_NOT_AVAILABLE])


def test_other_endpoints_keep_their_error_shape(lab2: World):
    r = lab2.patch("P-1", {"gender": "M"})
    assert r.json()["message"] == codes.INVALID_GENDER and isinstance(r.json()["errors"], list)
