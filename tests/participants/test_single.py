"""`POST …/sites/{siteOID}/participants`: one participant, the bulk row's checks, rules and codes, at once."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from roster import codes
from tests.participants.conftest import SITE_A, SITE_B, STUDY, STUDY_PATH, World, codes_of
from tests.support import P


def test_creates_then_updates_then_reports_unchanged(world: World):
    first = world.created("P-1", firstName="Ann", lastName="Lee", emailAddress="ann@example.org")
    assert first == {
        "subjectKey": "P-1",
        "subjectOid": "SS_P1",
        "status": "available",
        "participateStatus": None,
        "outcome": "created",
    }
    again = world.created("p-1", firstName="Ann")
    assert again["outcome"] == "unchanged" and again["subjectKey"] == "P-1"
    changed = world.created("P-1", lastName="Lee-Smith")
    assert changed["outcome"] == "updated"
    record = world.record("P-1")
    assert (record["firstName"], record["lastName"], record["emailAddress"]) == ("Ann", "Lee-Smith", "ann@example.org")


def test_empty_or_null_fields_keep_the_stored_values(world: World):
    world.created("P-1", firstName="Ann", identifier="X-9")
    r = world.created("P-1", firstName="", identifier=None, lastName="  ")
    assert r["outcome"] == "unchanged"
    assert world.record("P-1")["identifier"] == "X-9"


def test_values_are_trimmed(world: World):
    world.created("  P-2  ", firstName="  Bo  ")
    record = world.record("P-2")
    assert (record["participantId"], record["firstName"]) == ("P-2", "Bo")


def test_phone_number_is_an_alias_of_mobile_number(world: World):
    world.created("P-1", phoneNumber="+1 6175551234")
    assert world.record("P-1")["mobileNumber"] == "+1 6175551234"
    world.created("P-1", mobileNumber="+44 2071234567", phoneNumber="+44 2071234567")
    assert world.record("P-1")["mobileNumber"] == "+44 2071234567"


def test_phone_number_errors_name_the_alias_column(world: World):
    r = world.add("P-1", phoneNumber="12345")
    assert r.status_code == 400
    assert r.json()["errors"] == [
        {"code": codes.INVALID_MOBILE, "column": "phoneNumber", "message": codes.message_for(codes.INVALID_MOBILE)}
    ]


def test_two_different_phone_values_are_refused(world: World):
    r = world.add("P-1", phoneNumber="+1 1", mobileNumber="+1 2")
    assert r.status_code == 422 and r.json()["message"] == codes.VALIDATION_FAILED


@pytest.mark.parametrize(
    ("fields", "code", "column"),
    [
        ({"subjectKey": ""}, codes.MISSING_PARTICIPANT_ID, "subjectKey"),
        ({"subjectKey": None}, codes.MISSING_PARTICIPANT_ID, "subjectKey"),
        ({"subjectKey": "X" * 31}, codes.PARTICIPANT_ID_TOO_LONG, "subjectKey"),
        ({"subjectKey": "P<1>"}, codes.PARTICIPANT_ID_HTML, "subjectKey"),
        ({"subjectKey": "P\x001"}, codes.UNSUPPORTED_CHARACTER, "subjectKey"),
        ({"firstName": "F" * 36}, codes.FIRST_NAME_TOO_LONG, "firstName"),
        ({"lastName": "L" * 36}, codes.LAST_NAME_TOO_LONG, "lastName"),
        ({"identifier": "I" * 36}, codes.IDENTIFIER_TOO_LONG, "identifier"),
        ({"emailAddress": "a" * 250 + "@x.org"}, codes.EMAIL_TOO_LONG, "emailAddress"),
        ({"emailAddress": "not-an-address"}, codes.INVALID_EMAIL, "emailAddress"),
        ({"mobileNumber": "+1 " + "2" * 15}, codes.MOBILE_TOO_LONG, "mobileNumber"),
        ({"mobileNumber": "6175551234"}, codes.INVALID_MOBILE, "mobileNumber"),
        ({"lastName": "Lee\x07"}, codes.UNSUPPORTED_CHARACTER, "lastName"),
    ],
)
def test_each_field_rule_answers_its_code(world: World, fields, code, column):
    body = {"subjectKey": "P-1", **fields}
    r = world.client.post(f"{STUDY_PATH}/sites/{quote(SITE_A)}/participants", json=body, headers=world.h("dm"))
    assert r.status_code == 400, r.text
    assert r.json()["message"] == code
    assert r.json()["errors"] == [{"code": code, "column": column, "message": codes.message_for(code)}]
    assert world.get("P-1").status_code == 404


def test_limits_count_characters_not_bytes(world: World):
    world.created("Ü" * 30, firstName="é" * 35, lastName="ß" * 35)


def test_every_error_of_the_record_comes_back_together(world: World):
    r = world.add("P<1>", firstName="F" * 36, emailAddress="bad", mobileNumber="bad")
    assert r.status_code == 400
    body = r.json()
    assert body["message"] == codes.PARTICIPANT_ID_HTML
    assert [e["code"] for e in body["errors"]] == [
        codes.PARTICIPANT_ID_HTML,
        codes.FIRST_NAME_TOO_LONG,
        codes.INVALID_EMAIL,
        codes.INVALID_MOBILE,
    ]
    assert "bad" not in r.text.replace('"message"', "")


def test_an_id_of_another_site_is_refused(world: World):
    world.created("P-1", SITE_B)
    r = world.add("p-1", SITE_A)
    assert (r.status_code, codes_of(r)) == (400, [codes.PARTICIPANT_ID_AT_ANOTHER_SITE])
    assert r.json()["errors"][0]["column"] == "subjectKey"


def test_a_removed_participants_id_is_refused(world: World):
    world.created("P-1")
    assert world.post("P-1", "remove").status_code == 200
    r = world.add("P-1", firstName="Ann")
    assert (r.status_code, codes_of(r)) == (400, [codes.PARTICIPANT_ID_NOT_AVAILABLE])


def test_caps_refuse_creations_but_not_updates(world: World):
    world.set_site(SITE_A, enrollmentCap=1)
    world.created("P-1")
    r = world.add("P-2")
    assert (r.status_code, codes_of(r)) == (400, [codes.ENROLLMENT_CAP_REACHED])
    assert world.created("P-1", firstName="Ann")["outcome"] == "updated"
    world.created("P-2", SITE_B)
    world.set_study(enrollmentCap=2)
    r = world.add("P-3", SITE_B)
    assert codes_of(r) == [codes.ENROLLMENT_CAP_REACHED]


def test_system_ids_are_generated_for_an_empty_subject_key(api, world: World):
    api.setup_study("S_SYS", ("S_SYS_SITE",), participantIdMethod="system", participantIdTemplate="SYS-###")
    api.grant("dm", "data_manager", "S_SYS")
    url = f"{P}/clinicaldata/studies/S_SYS/sites/S_SYS_SITE/participants"
    first = world.client.post(url, json={"firstName": "Ann"}, headers=world.h("dm")).json()
    second = world.client.post(url, json={"subjectKey": ""}, headers=world.h("dm")).json()
    given = world.client.post(url, json={"subjectKey": "MINE-1"}, headers=world.h("dm")).json()
    assert [first["subjectKey"], second["subjectKey"], given["subjectKey"]] == ["SYS-001", "SYS-002", "MINE-1"]
    assert {first["outcome"], second["outcome"], given["outcome"]} == {"created"}


def test_register_gives_an_access_code_once(world: World):
    r = world.created("P-1", register="y")
    assert (r["participateStatus"], r["outcome"]) == ("Created", "created")
    code = world.get("P-1", suffix="/accessLink", includeAccessCode="y").json()["accessCode"]
    again = world.created("P-1", register="YES")
    assert again["outcome"] == "unchanged"
    assert world.get("P-1", suffix="/accessLink", includeAccessCode="y").json()["accessCode"] == code
    assert world.created("P-2", register="no")["participateStatus"] is None
    later = world.created("P-2", register="Y")
    assert (later["participateStatus"], later["outcome"]) == ("Created", "updated")


# ---------------------------------------------------------------------------------- request checks, in order


def _post(world: World, user: str | None, study=STUDY, site=SITE_A, register=None, body=None, raw=None):
    url = f"{P}/clinicaldata/studies/{quote(study)}/sites/{quote(site)}/participants"
    headers = world.h(user) if user else {}
    params = {"register": register} if register is not None else {}
    if raw is not None:
        return world.client.post(
            url, content=raw, headers={**headers, "Content-Type": "application/json"}, params=params
        )
    return world.client.post(
        url, json=body if body is not None else {"subjectKey": "P-1"}, headers=headers, params=params
    )


def test_without_a_token_the_answer_is_401_even_for_a_broken_body(world: World):
    r = _post(world, None, raw=b"{not json")
    assert (r.status_code, r.json()["message"]) == (401, codes.UNAUTHORIZED)
    assert r.headers["www-authenticate"] == "Bearer"
    bad = world.client.post(
        f"{STUDY_PATH}/sites/{quote(SITE_A)}/participants", json={}, headers={"Authorization": "Bearer nope"}
    )
    assert bad.status_code == 401


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("unknown study", 404, codes.STUDY_NOT_EXIST),
        ("unknown site", 404, codes.INVALID_SITE_IDENTIFIER),
        ("site of another study", 404, codes.INVALID_SITE_IDENTIFIER),
        ("study locked", 400, codes.STUDY_NOT_AVAILABLE),
        ("site locked", 400, codes.SITE_NOT_AVAILABLE),
        ("no role", 403, codes.NO_ROLE_SET_UP),
        ("monitor", 403, codes.NO_SUFFICIENT_PRIVILEGES),
        ("viewer", 403, codes.NO_SUFFICIENT_PRIVILEGES),
        ("role at another site", 403, codes.NO_SUFFICIENT_PRIVILEGES),
        ("bad register", 400, codes.INVALID_REGISTER_PARAMETER),
        ("participate inactive", 400, codes.PARTICIPATE_INACTIVE),
        ("broken body", 422, codes.VALIDATION_FAILED),
        ("unknown field", 422, codes.VALIDATION_FAILED),
        ("number for a name", 422, codes.VALIDATION_FAILED),
    ],
)
def test_each_request_check_answers_its_code(api, world: World, case, status, code):
    # Every case also carries the failures of the later checks (bad register, broken body), to prove the order.
    args = {"user": "dm", "register": "maybe", "raw": b"{broken"}
    if case == "unknown study":
        args["study"] = "S_NOPE"
    elif case == "unknown site":
        args["site"] = "S_NOPE"
    elif case == "site of another study":
        api.setup_study("S_OTHER", ("S_OTHER_SITE",))
        args["site"] = "S_OTHER_SITE"
    elif case == "study locked":
        world.set_study(status="locked")
        world.set_site(SITE_A, status="locked")
    elif case == "site locked":
        world.set_site(SITE_A, status="locked")
    elif case == "no role":
        args["user"] = "outsider"
    elif case == "monitor":
        args["user"] = "monitor"
    elif case == "viewer":
        args["user"] = "viewer_a"
    elif case == "role at another site":
        args["user"] = "inv_b"
    elif case == "bad register":
        pass
    elif case == "participate inactive":
        world.set_study(participateActive=False)
        args["register"] = "y"
    elif case == "broken body":
        args["register"] = "n"
    elif case == "unknown field":
        args.update(register=None, raw=None, body={"subjectKey": "P-1", "nickname": "x"})
    elif case == "number for a name":
        args.update(register=None, raw=None, body={"subjectKey": "P-1", "firstName": 7})
    r = _post(world, **args)
    assert (r.status_code, r.json()["message"]) == (status, code), r.text
    assert world.get("P-1").status_code == 404


def test_a_site_level_writer_adds_at_its_own_site(world: World):
    assert world.add("P-1", SITE_A, user="crc_a").status_code == 200
    assert world.add("P-2", SITE_B, user="inv_b").status_code == 200
    assert world.add("P-3", SITE_B, user="monitor_a_crc_b").status_code == 200
    assert world.add("P-4", SITE_A, user="monitor_a_crc_b").json()["message"] == codes.NO_SUFFICIENT_PRIVILEGES
