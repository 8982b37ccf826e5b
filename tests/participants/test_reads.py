"""Reading participants: the study and site lists, one participant, and what monitors and viewers see."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest

from roster import codes
from roster.participants.schemas import NON_PII_KEYS
from tests.participants.conftest import SITE_A, SITE_B, STUDY_PATH, World
from tests.support import P

PII_VALUES = (
    "Annabel",
    "Zyx",
    "annabel@example.org",
    "+1 6175550000",
    "ID-SECRET",
    "Quillon",
    "UID-77",
    "EMPI-88",
    "MRN-99",
    "1970-05-06",
)


def _seed(world: World) -> None:
    world.created(
        "P-1",
        SITE_A,
        firstName="Annabel",
        lastName="Zyx",
        emailAddress="annabel@example.org",
        mobileNumber="+1 6175550000",
        identifier="ID-SECRET",
        register="y",
    )
    r = world.patch(
        "P-1",
        {
            "middleName": "Quillon",
            "uid": "UID-77",
            "empi": "EMPI-88",
            "birthDate": "1970-05-06",
            "gender": "Female Gender",
            "pmis": [{"mrn": "MRN-99", "siteName": f"Site {SITE_A}"}],
        },
    )
    assert r.status_code == 200, r.text
    world.created("P-2", SITE_A, firstName="Bob")
    world.created("Q-3", SITE_B, firstName="Cy")


def _list(world: World, user: str, path: str = "/participants", **params):
    return world.client.get(f"{STUDY_PATH}{path}", headers=world.h(user), params=params)


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["participantId"] for item in response.json()["items"]]


def test_one_participant_is_found_by_its_id_in_any_case(world: World):
    _seed(world)
    record = world.record("p-1")
    assert record["participantId"] == record["subjectKey"] == "P-1"
    assert record["subjectOid"] == "SS_P1" and record["siteOid"] == SITE_A
    assert record["status"] == "available" and record["participateStatus"] == "Created"
    assert record["pmis"] == [{"mrn": "MRN-99", "siteName": f"Site {SITE_A}"}]
    assert record["birthDate"] == "1970-05-06" and record["activityStatus"] == "Active"
    assert record["createdBy"] == record["updatedBy"] == "dm"
    assert record["createdAt"].endswith("Z") and record["updatedAt"] >= record["createdAt"]
    assert isinstance(record["id"], int)


def test_an_unknown_id_is_404_and_a_stranger_gets_no_role(world: World):
    r = world.get("NOPE")
    assert (r.status_code, r.json()["message"]) == (404, codes.PARTICIPANT_NOT_FOUND_OC)
    world.created("P-1")
    assert world.get("P-1", "outsider").json()["message"] == codes.NO_ROLE_SET_UP
    assert (
        world.client.get(f"{P}/clinicaldata/studies/S_NOPE/participants/P-1", headers=world.h("dm")).json()["message"]
        == codes.STUDY_NOT_EXIST
    )


def test_a_site_level_role_does_not_see_other_sites_participants(world: World):
    _seed(world)
    r = world.get("Q-3", "crc_a")
    assert (r.status_code, r.json()["message"]) == (404, codes.PARTICIPANT_NOT_FOUND_OC)
    assert world.record("Q-3", "inv_b")["firstName"] == "Cy"


def test_ids_with_a_slash_are_served(world: World):
    world.created("A/B")
    assert world.record("a/b")["participantId"] == "A/B"
    assert world.get("A/B", suffix="/audit").status_code == 200


@pytest.mark.parametrize("name", ["audit", "accessLink", "remove", "restore"])
def test_an_encoded_slash_is_part_of_the_id_even_before_a_sub_resource_name(world: World, name: str):
    """SPEC §5 allows `/` in an ID. `X%2Faudit` names participant "X/audit"; `X/audit` is X's audit trail."""
    world.created("X", firstName="Xavier")
    assert world.patch("X", {"middleName": "M"}).status_code == 200  # X: two audit events, "X/<name>": one
    created = world.created(f"X/{name}", firstName="Slashy")
    assert created["subjectKey"] == f"X/{name}"
    record = world.record(f"X/{name}")  # GET …/participants/X%2F<name>
    assert (record["participantId"], record["firstName"]) == (f"X/{name}", "Slashy")
    if name in ("remove", "restore"):
        # POST …/X%2Fremove is a POST on participant "X/remove", which has none; X is not touched.
        r = world.client.post(world.path(f"X/{name}"), headers=world.h("dm"))
        assert (r.status_code, r.json()["message"]) == (405, codes.METHOD_NOT_ALLOWED)
        assert world.record("X")["status"] == "available" and world.record(f"X/{name}")["status"] == "available"
    # The sub-resource itself, with a literal slash (also when its name is percent-encoded).
    audit = world.client.get(f"{STUDY_PATH}/participants/X/aud%69t", headers=world.h("dm"))
    assert audit.status_code == 200 and len(audit.json()["items"]) == 2, audit.text
    removed = world.post(f"X/{name}", "remove")
    assert removed.status_code == 200 and removed.json()["participantId"] == f"X/{name}"
    assert world.record("X")["status"] == "available"


def test_a_participant_read_logs_the_route_template_not_the_id(world: World, caplog):
    world.created("ADA-LOVELACE-7")
    caplog.set_level(logging.INFO, logger="roster.access")
    assert world.get("ADA-LOVELACE-7").status_code == 200
    assert world.get("ADA-LOVELACE-7", suffix="/audit").status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("roster")]
    template = f"{P}/clinicaldata/studies/{{studyOID}}/participants/{{participantID}}"
    assert [line.split()[:3] for line in lines] == [["GET", template, "200"], ["GET", f"{template}/audit", "200"]]
    assert not any("LOVELACE" in line.upper() or "S_PART" in line for line in lines)


def test_the_study_list_is_paginated_oldest_first(world: World):
    _seed(world)
    body = _list(world, "dm", page=1, pageSize=2).json()
    assert [i["participantId"] for i in body["items"]] == ["P-1", "P-2"]
    assert (body["page"], body["pageSize"], body["total"]) == (1, 2, 3)
    assert _ids(_list(world, "dm", page=2, pageSize=2)) == ["Q-3"]
    assert _list(world, "dm", page=3, pageSize=2).json()["items"] == []
    assert _list(world, "dm", pageSize=1001).status_code == 422


def test_the_study_list_filters_by_site_status_and_search(world: World):
    _seed(world)
    assert _ids(_list(world, "dm", siteOID=SITE_B)) == ["Q-3"]
    assert _ids(_list(world, "dm", siteOID=SITE_B.lower())) == ["Q-3"]
    world.post("P-2", "remove")
    assert _ids(_list(world, "dm", status="removed")) == ["P-2"]
    assert _ids(_list(world, "dm", status="available")) == ["P-1", "Q-3"]
    assert _ids(_list(world, "dm", q="q-")) == ["Q-3"]
    assert _ids(_list(world, "dm", q="ss_p1")) == ["P-1"]
    assert _ids(_list(world, "dm", q="annab")) == ["P-1"]
    assert _ids(_list(world, "dm", q="mrn-99")) == ["P-1"]
    assert _ids(_list(world, "dm", q="%")) == []
    assert _ids(_list(world, "dm", q="p", status="available")) == ["P-1"]
    assert _list(world, "dm", status="gone").status_code == 422
    assert _list(world, "dm", siteOID="S_NOPE").json()["message"] == codes.INVALID_SITE_IDENTIFIER


def test_the_site_list_holds_that_sites_participants(world: World):
    _seed(world)
    assert _ids(_list(world, "dm", f"/sites/{quote(SITE_A)}/participants")) == ["P-1", "P-2"]
    assert _ids(_list(world, "crc_a", f"/sites/{quote(SITE_A)}/participants", q="bob")) == ["P-2"]
    r = _list(world, "crc_a", f"/sites/{quote(SITE_B)}/participants")
    assert (r.status_code, r.json()["message"]) == (403, codes.NO_SUFFICIENT_PRIVILEGES)
    assert _list(world, "outsider", f"/sites/{quote(SITE_A)}/participants").json()["message"] == codes.NO_ROLE_SET_UP


def test_site_level_roles_see_their_sites_in_the_study_list(world: World):
    _seed(world)
    assert _ids(_list(world, "crc_a")) == ["P-1", "P-2"]
    assert _ids(_list(world, "inv_b")) == ["Q-3"]
    assert _list(world, "crc_a", siteOID=SITE_B).json()["message"] == codes.NO_SUFFICIENT_PRIVILEGES
    assert _list(world, "outsider").json()["message"] == codes.NO_ROLE_SET_UP


# ---------------------------------------------------------------------------------- PII and read-only roles


def _assert_no_pii(text: str) -> None:
    for value in PII_VALUES:
        assert value.lower() not in text.lower(), value


def test_monitors_and_viewers_get_no_personal_data_from_any_read(world: World):
    _seed(world)
    for user in ("monitor", "viewer_a", "monitor_a_crc_b"):
        one = world.get("P-1", user)
        assert one.status_code == 200
        assert set(one.json()) == NON_PII_KEYS
        study_list = _list(world, user)
        site_list = _list(world, user, f"/sites/{quote(SITE_A)}/participants")
        audit = world.get("P-1", user, "/audit")
        for response in (one, study_list, site_list, audit):
            assert response.status_code == 200
            _assert_no_pii(response.text)
        assert all(set(item) == NON_PII_KEYS for item in site_list.json()["items"])
        link = world.get("P-1", user, "/accessLink", includeAccessCode="y")
        assert (link.status_code, link.json()["message"]) == (403, codes.NO_SUFFICIENT_PRIVILEGES)
        os = world.os_get(world.pk("P-1"), user)
        assert os.status_code == 403
        _assert_no_pii(os.text)


def test_search_does_not_match_personal_data_for_read_only_roles(world: World):
    _seed(world)
    # What a PII reader finds P-1 by (roster.participants.search); a monitor or viewer finds nothing, and
    # the count says nothing either.
    for term in ("Annabel", "zy", "ANNABEL@example.org", "UID-77", "empi-88", "MRN-99"):
        for user in ("monitor", "viewer_a"):
            r = _list(world, user, q=term)
            assert (_ids(r), r.json()["total"]) == ([], 0), (user, term)
        assert _ids(_list(world, "dm", q=term)) == ["P-1"], term
    # Searched for nobody: mobile, identifier, middle name, parts of the email, the middle of a name.
    for term in ("+1 6175550000", "6175550000", "ID-SECRET", "Quillon", "annabel@", "example.org", "nabel"):
        assert _ids(_list(world, "dm", q=term)) == [], term
    assert _ids(_list(world, "monitor", q="p-1")) == ["P-1"]
    assert _ids(_list(world, "viewer_a", q="SS_P1")) == ["P-1"]


def test_a_mixed_user_sees_personal_data_only_where_its_role_allows(world: World):
    # monitor at site A, coordinator at site B
    _seed(world)
    items = {i["participantId"]: i for i in _list(world, "monitor_a_crc_b").json()["items"]}
    assert set(items["P-1"]) == NON_PII_KEYS
    assert items["Q-3"]["firstName"] == "Cy"
    r = _list(world, "monitor_a_crc_b", q="annabel")
    assert (_ids(r), r.json()["total"]) == ([], 0)
    assert _ids(_list(world, "monitor_a_crc_b", q="cy")) == ["Q-3"]
    assert _ids(_list(world, "monitor_a_crc_b", q="mrn-99")) == []


def test_write_errors_for_read_only_roles_carry_no_personal_data(world: World):
    _seed(world)
    for r in (
        world.patch("P-1", {"firstName": "Annabel"}, "monitor"),
        world.put("P-1", {}, "viewer_a"),
        world.post("P-1", "remove", "monitor"),
        world.os_put(world.pk("P-1"), {"firstName": "Annabel"}, "monitor"),
    ):
        assert r.status_code == 403
        _assert_no_pii(r.text)
