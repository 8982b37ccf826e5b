"""Profile updates (`PUT` replaces, `PATCH` changes what is sent) and the profile rules of SPEC §7."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from roster import codes
from roster.participants import fields, service
from roster.studies.models import Study, oid_key
from tests.participants.conftest import SITE_A, SITE_B, STUDY, World, codes_of

SITE_A_NAME = f"Site {SITE_A}"
SITE_B_NAME = f"Site {SITE_B}"
FULL = {
    "firstName": "Ann",
    "lastName": "Lee",
    "emailAddress": "ann@example.org",
    "mobileNumber": "+1 6175551234",
    "identifier": "X-1",
    "middleName": "Q",
    "uid": "123-45-6789",
    "empi": "E-1",
    "birthDate": "1980-01-02",
    "deathDate": "2020-03-04",
    "vitalStatus": "Dead",
    "gender": "Female Gender",
    "race": ["Asian", "White"],
    "ethnicities": ["Not Reported"],
    "sexGenotype": "XX Genotype",
    "pmis": [{"mrn": "M-1", "siteName": SITE_A_NAME}],
    "activityStatus": "Disabled",
}


@pytest.fixture
def p1(world: World) -> World:
    world.created("P-1", firstName="Ann", emailAddress="ann@example.org")
    return world


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def test_put_replaces_every_field_and_answers_the_record(p1: World):
    record = _ok(p1.put("P-1", FULL))
    assert {k: record[k] for k in FULL} == FULL
    assert record["participantId"] == "P-1" and record["updatedBy"] == "dm"
    again = _ok(p1.put("P-1", {"lastName": "Lee", "gender": "Unknown"}))
    cleared = {k: again[k] for k in FULL}
    assert cleared == {
        **dict.fromkeys(FULL),
        "lastName": "Lee",
        "gender": "Unknown",
        "race": [],
        "ethnicities": [],
        "pmis": [],
        "activityStatus": "Active",
    }


def test_patch_changes_only_what_is_sent_and_null_clears(p1: World):
    _ok(p1.put("P-1", FULL))
    record = _ok(p1.patch("P-1", {"gender": "Male Gender", "identifier": None, "race": None, "middleName": ""}))
    assert (record["gender"], record["identifier"], record["race"], record["middleName"]) == (
        "Male Gender",
        None,
        [],
        None,
    )
    untouched = {k: v for k, v in FULL.items() if k not in ("gender", "identifier", "race", "middleName")}
    assert {k: record[k] for k in untouched} == untouched
    assert _ok(p1.patch("P-1", {}))["updatedAt"] == record["updatedAt"]


def test_an_update_that_changes_nothing_writes_no_event(p1: World):
    _ok(p1.patch("P-1", {"race": ["Asian", "White"], "uid": "U-1"}))
    before = len(p1.audit("P-1"))
    stamp = p1.record("P-1")["updatedAt"]
    _ok(p1.patch("P-1", {"race": ["White", "Asian"], "uid": "U-1", "firstName": "Ann"}))
    assert len(p1.audit("P-1")) == before
    assert p1.record("P-1")["updatedAt"] == stamp


def test_contact_fields_follow_the_bulk_rules(p1: World):
    r = p1.patch(
        "P-1",
        {
            "firstName": "F" * 36,
            "emailAddress": "nope",
            "mobileNumber": "123",
            "lastName": "L" * 36,
            "identifier": "I" * 36,
        },
    )
    assert r.status_code == 400
    assert sorted(codes_of(r)) == sorted(
        [
            codes.FIRST_NAME_TOO_LONG,
            codes.INVALID_EMAIL,
            codes.INVALID_MOBILE,
            codes.LAST_NAME_TOO_LONG,
            codes.IDENTIFIER_TOO_LONG,
        ]
    )
    assert {e["column"] for e in r.json()["errors"]} == {
        "firstName",
        "emailAddress",
        "mobileNumber",
        "lastName",
        "identifier",
    }
    assert p1.record("P-1")["firstName"] == "Ann"
    record = _ok(p1.patch("P-1", {"firstName": "  Bea  ", "emailAddress": None}))
    assert (record["firstName"], record["emailAddress"]) == ("Bea", None)


@pytest.mark.parametrize(
    ("field", "values", "many"),
    [
        ("gender", fields.GENDERS, False),
        ("vitalStatus", fields.VITAL_STATUSES, False),
        ("sexGenotype", fields.SEX_GENOTYPES, False),
        ("activityStatus", fields.ACTIVITY_STATUSES, False),
        ("race", fields.RACES, True),
        ("ethnicities", fields.ETHNICITIES, True),
    ],
)
def test_every_permissible_value_is_accepted(p1: World, field, values, many):
    if many:
        assert _ok(p1.patch("P-1", {field: list(values)}))[field] == list(values)
    else:
        for value in values:
            assert _ok(p1.patch("P-1", {field: value}))[field] == value


def test_the_permissible_value_lists_are_exactly_the_specs():
    assert fields.GENDERS == ("Male Gender", "Female Gender", "Unknown", "Unspecified")
    assert fields.RACES == (
        "American Indian or Alaska Native",
        "Asian",
        "Black or African American",
        "Native Hawaiian or other Pacific Islander",
        "Not Reported",
        "Unknown",
        "White",
    )
    assert fields.ETHNICITIES == ("Hispanic or Latino", "Not Hispanic or Latino", "Not Reported", "Unknown")
    assert fields.SEX_GENOTYPES == (
        "XX Genotype",
        "XY Genotype",
        "XXX",
        "Klinefelter's Syndrome",
        "XXXY syndrome",
        "XXYY syndrome",
        "Mosaic including XXXXY",
        "Penta X syndrome",
    )
    assert fields.VITAL_STATUSES == ("Alive", "Dead", "Unknown")
    assert fields.ACTIVITY_STATUSES == ("Active", "Disabled")


def test_the_seeds_typographic_apostrophe_means_the_same_genotype(p1: World):
    assert (
        _ok(p1.patch("P-1", {"sexGenotype": "Klinefelter\u2019s Syndrome"}))["sexGenotype"] == "Klinefelter's Syndrome"
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"gender": "male gender"}, codes.INVALID_GENDER),
        ({"gender": "Other"}, codes.INVALID_GENDER),
        ({"race": ["Asian", "Martian"]}, codes.INVALID_RACE),
        ({"ethnicities": ["Latino"]}, codes.INVALID_ETHNICITIES),
        ({"sexGenotype": "XYY"}, codes.INVALID_SEX_GENOTYPE),
        ({"vitalStatus": "Alive and well"}, codes.INVALID_VITAL_STATUS),
        ({"activityStatus": "Closed"}, codes.INVALID_ACTIVITY_STATUS),
        ({"birthDate": "2001-02-30"}, codes.INVALID_BIRTH_DATE),
        ({"birthDate": "yesterday"}, codes.INVALID_BIRTH_DATE),
        ({"deathDate": "not a date", "vitalStatus": "Dead"}, codes.INVALID_DEATH_DATE),
        ({"middleName": "M" * 256}, codes.MIDDLE_NAME_TOO_LONG),
        ({"uid": "U" * 256}, codes.UID_TOO_LONG),
        ({"empi": "E" * 256}, codes.EMPI_TOO_LONG),
        ({"uid": "ß" * 128}, codes.UID_TOO_LONG),  # its case-insensitive key, "ss" * 128, would not fit
        ({"pmis": [{"mrn": "ß" * 51, "siteName": SITE_A_NAME}]}, codes.MRN_TOO_LONG),
        ({"uid": "U\x00"}, codes.UNSUPPORTED_CHARACTER),
        ({"pmis": [{"mrn": "M" * 101, "siteName": SITE_A_NAME}]}, codes.MRN_TOO_LONG),
        ({"pmis": [{"mrn": "", "siteName": SITE_A_NAME}]}, codes.MRN_REQUIRED),
        ({"pmis": [{"mrn": "M-1", "siteName": "Lab 9"}]}, codes.SITE_NOT_FOUND),
        ({"pmis": [{"mrn": "M-1"}]}, codes.SITE_NOT_FOUND),
    ],
)
def test_each_profile_rule_answers_its_code(p1: World, body, code):
    r = p1.patch("P-1", body)
    assert (r.status_code, codes_of(r)) == (400, [code]), r.text
    assert r.json()["message"] == code


def test_length_limits_are_inclusive(p1: World):
    record = _ok(
        p1.patch(
            "P-1",
            {
                "middleName": "M" * 255,
                "uid": "U" * 255,
                "empi": "É" * 255,
                "pmis": [{"mrn": "m" * 100, "siteName": SITE_A_NAME}],
            },
        )
    )
    assert (len(record["middleName"]), len(record["uid"]), len(record["empi"]), len(record["pmis"][0]["mrn"])) == (
        255,
        255,
        255,
        100,
    )


def test_dates(p1: World):
    today = dt.datetime.now(dt.UTC).date()
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    assert codes_of(p1.patch("P-1", {"birthDate": tomorrow})) == [codes.INVALID_BIRTH_DATE]
    assert codes_of(p1.patch("P-1", {"deathDate": tomorrow, "vitalStatus": "Dead"})) == [codes.INVALID_DEATH_DATE]
    assert codes_of(p1.patch("P-1", {"birthDate": "2000-01-02", "deathDate": "2000-01-01", "vitalStatus": "Dead"})) == [
        codes.INVALID_DEATH_DATE
    ]
    # A death date needs vital status Dead, in the request or already stored.
    assert codes_of(p1.patch("P-1", {"deathDate": "2000-01-01"})) == [codes.INVALID_DEATH_DATE]
    assert codes_of(p1.patch("P-1", {"deathDate": "2000-01-01", "vitalStatus": "Alive"})) == [codes.INVALID_DEATH_DATE]
    record = _ok(
        p1.patch("P-1", {"birthDate": today.isoformat(), "deathDate": today.isoformat(), "vitalStatus": "Dead"})
    )
    assert record["birthDate"] == record["deathDate"] == today.isoformat()
    assert codes_of(p1.patch("P-1", {"vitalStatus": "Alive"})) == [codes.INVALID_DEATH_DATE]
    assert codes_of(
        p1.patch(
            "P-1",
            {
                "birthDate": (today + dt.timedelta(days=-1)).isoformat(),
                "deathDate": (today - dt.timedelta(days=2)).isoformat(),
            },
        )
    ) == [codes.INVALID_DEATH_DATE]


def test_dates_may_come_as_datetimes_or_epoch_milliseconds(p1: World):
    assert _ok(p1.patch("P-1", {"birthDate": "1990-06-15T23:00:00Z"}))["birthDate"] == "1990-06-15"
    assert _ok(p1.patch("P-1", {"birthDate": 645408000000}))["birthDate"] == "1990-06-15"


def test_uid_and_empi_are_unique_in_the_study_regardless_of_case(p1: World):
    p1.created("P-2", SITE_B)
    _ok(p1.patch("P-1", {"uid": "ssn-1", "empi": "Empi-1"}))
    r = p1.patch("P-2", {"uid": "SSN-1", "empi": "EMPI-1"})
    assert (r.status_code, codes_of(r)) == (400, [codes.DUP_UID, codes.DUP_EMPI])
    # The participant's own values are no duplicates.
    _ok(p1.put("P-1", {"uid": "SSN-1", "empi": "empi-1"}))
    # A removed participant still holds its values.
    p1.post("P-1", "remove")
    assert codes_of(p1.patch("P-2", {"uid": "ssn-1"})) == [codes.DUP_UID]


def test_uid_may_repeat_across_studies(api, p1: World):
    api.setup_study("S_OTHER", ("S_OTHER_SITE",))
    api.grant("dm", "data_manager", "S_OTHER")
    url = "/pages/auth/api/clinicaldata/studies/S_OTHER"
    assert (
        p1.client.post(
            f"{url}/sites/S_OTHER_SITE/participants", json={"subjectKey": "P-1"}, headers=p1.h("dm")
        ).status_code
        == 200
    )
    _ok(p1.patch("P-1", {"uid": "U-1"}))
    assert p1.client.patch(f"{url}/participants/P-1", json={"uid": "U-1"}, headers=p1.h("dm")).status_code == 200


def test_an_mrn_is_unique_per_site_regardless_of_case(p1: World):
    p1.created("P-2")
    _ok(p1.patch("P-1", {"pmis": [{"mrn": "mrn-7", "siteName": SITE_A_NAME}]}))
    r = p1.patch("P-2", {"pmis": [{"mrn": "MRN-7", "siteName": SITE_A_NAME}]})
    assert (r.status_code, codes_of(r)) == (400, [codes.DUP_MRN])
    # The same MRN at another site is another patient's record number.
    record = _ok(p1.patch("P-2", {"pmis": [{"mrn": "MRN-7", "siteName": SITE_B_NAME}]}))
    assert record["pmis"] == [{"mrn": "MRN-7", "siteName": SITE_B_NAME}]
    # Re-sending one's own MRN is fine; freeing it lets another participant take it.
    _ok(p1.put("P-1", {"pmis": [{"mrn": "MRN-7", "siteName": SITE_A_NAME}]}))
    _ok(p1.patch("P-1", {"pmis": []}))
    _ok(p1.patch("P-2", {"pmis": [{"mrn": "mrn-7", "siteName": SITE_A_NAME}]}))


def test_two_mrns_for_one_site_in_a_request_are_refused(p1: World):
    r = p1.patch(
        "P-1", {"pmis": [{"mrn": "A", "siteName": SITE_A_NAME}, {"mrn": "B", "siteName": SITE_A_NAME.lower()}]}
    )
    assert (r.status_code, codes_of(r)) == (400, [codes.DUP_MRN_SITE])


def test_a_site_is_named_by_its_name_or_its_oid_in_any_case(p1: World):
    record = _ok(
        p1.patch(
            "P-1", {"pmis": [{"mrn": "A", "siteName": SITE_A_NAME.upper()}, {"mrn": "B", "siteName": SITE_B.lower()}]}
        )
    )
    assert record["pmis"] == [{"mrn": "A", "siteName": SITE_A_NAME}, {"mrn": "B", "siteName": SITE_B_NAME}]
    # Empty entries (as forms send them) are ignored.
    assert _ok(p1.patch("P-1", {"pmis": [{"mrn": "", "siteName": ""}, {}]}))["pmis"] == []


def test_every_error_of_a_request_comes_back_together(p1: World):
    p1.created("P-2")
    _ok(p1.patch("P-2", {"uid": "U-1", "empi": "E-1", "pmis": [{"mrn": "M-1", "siteName": SITE_A_NAME}]}))
    r = p1.put(
        "P-1",
        {
            "firstName": "F" * 36,
            "gender": "?",
            "race": ["?"],
            "ethnicities": ["?"],
            "sexGenotype": "?",
            "vitalStatus": "?",
            "activityStatus": "?",
            "birthDate": "3000-01-01",
            "deathDate": "bad",
            "uid": "u-1",
            "empi": "e-1",
            "pmis": [
                {"mrn": "m-1", "siteName": SITE_A_NAME},
                {"mrn": "X", "siteName": SITE_A_NAME},
                {"mrn": "Y", "siteName": "Nowhere"},
            ],
        },
    )
    assert r.status_code == 400
    assert sorted(codes_of(r)) == sorted(
        [
            codes.FIRST_NAME_TOO_LONG,
            codes.INVALID_GENDER,
            codes.INVALID_RACE,
            codes.INVALID_ETHNICITIES,
            codes.INVALID_SEX_GENOTYPE,
            codes.INVALID_VITAL_STATUS,
            codes.INVALID_ACTIVITY_STATUS,
            codes.INVALID_BIRTH_DATE,
            codes.INVALID_DEATH_DATE,
            codes.DUP_UID,
            codes.DUP_EMPI,
            codes.DUP_MRN,
            codes.DUP_MRN_SITE,
            codes.SITE_NOT_FOUND,
        ]
    )
    assert p1.record("P-1")["gender"] is None


def test_a_body_of_the_wrong_shape_is_422(p1: World):
    for body in ({"subjectKey": "P-9"}, {"race": "Asian"}, {"gender": 1}, {"pmis": [{"mrn": "M", "site": "x"}]}, [1]):
        r = p1.patch("P-1", body)
        assert (r.status_code, r.json()["message"]) == (422, codes.VALIDATION_FAILED), body


def test_writes_need_write_permission_and_an_available_site(p1: World):
    for user, code in (
        ("monitor", codes.NO_SUFFICIENT_PRIVILEGES),
        ("viewer_a", codes.NO_SUFFICIENT_PRIVILEGES),
        ("outsider", codes.NO_ROLE_SET_UP),
    ):
        for r in (p1.patch("P-1", {"gender": "Unknown"}, user), p1.put("P-1", {}, user)):
            assert (r.status_code, r.json()["message"]) == (403, code)
    assert p1.patch("P-1", {"gender": "Unknown"}, "inv_b").json()["message"] == codes.PARTICIPANT_NOT_FOUND_OC
    assert p1.patch("P-1", {"gender": "Unknown"}, "crc_a").status_code == 200
    p1.set_site(SITE_A, status="locked")
    r = p1.patch("P-1", {"gender": "Unknown"})
    assert (r.status_code, r.json()["message"]) == (400, codes.SITE_NOT_AVAILABLE)
    assert p1.get("P-1").status_code == 200


def test_a_removed_participant_is_read_only_until_restored(p1: World):
    p1.post("P-1", "remove")
    r = p1.patch("P-1", {"gender": "Unknown"})
    assert (r.status_code, r.json()["message"]) == (400, codes.PARTICIPANT_ID_NOT_AVAILABLE)
    p1.post("P-1", "restore")
    assert _ok(p1.patch("P-1", {"gender": "Unknown"}))["gender"] == "Unknown"


def test_two_concurrent_updates_cannot_both_take_one_uid(p1: World):
    """Writers of a study are serialised (study row lock on PostgreSQL, BEGIN IMMEDIATE on SQLite), so the
    second update sees the first one's uid once it may proceed."""
    p1.created("P-2")
    db = p1.db
    holding, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def update(participant_id: str, uid: str, hold: bool) -> None:
        try:
            with db.transaction() as s:
                study = s.scalar(select(Study).where(Study.oid_key == oid_key(STUDY)))
                participant = service.find(s, study, participant_id)
                service.update_profile(s, study, participant, {"uid": uid}, replace=None, username="dm")
                if hold:
                    holding.set()
                    release.wait(10)
            results[participant_id] = "ok"
        except service.RecordErrors as exc:
            results[participant_id] = [e["code"] for e in exc.errors]

    first = threading.Thread(target=update, args=("P-1", "U-1", True))
    first.start()
    assert holding.wait(10)
    second = threading.Thread(target=update, args=("P-2", "u-1", False))
    second.start()
    second.join(0.5)
    assert second.is_alive(), "the second writer should wait for the first"
    release.set()
    first.join(10)
    second.join(10)
    assert results == {"P-1": "ok", "P-2": [codes.DUP_UID]}
