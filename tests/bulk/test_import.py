"""What a bulk job does to participants (SPEC §5): outcomes, the database rules, system IDs, access
codes, and one log entry per data row — whatever the batch size."""

from __future__ import annotations

import re

from sqlalchemy import select

from roster import codes
from roster.bulk.worker import drain
from roster.participants.identifiers import ACCESS_CODE_ALPHABET
from roster.participants.models import AuditEvent
from tests.bulk.conftest import SITE_A, SITE_B, csv_of, error_codes, outcomes

ROWS = (
    "P-1,Ann,Lee,ann@example.org,+1 6175551234,X1",
    "P-2,Bob,Ray,bob@example.org,+44 2071234567,X2",
)


def test_new_ids_create_participants_with_their_fields_and_an_oid(bulk):
    job, log = bulk.run(csv_of(*ROWS))
    assert job["status"] == "COMPLETED"
    assert job["counts"] == {
        "rows": 2,
        "processed": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "deleted": 0,
        "restored": 0,
    }
    assert job["dateStarted"] and job["dateCompleted"] and job["progress"] == 1
    assert [(e["row"], e["line"], e["participantId"], e["participantOid"], e["outcome"]) for e in log] == [
        (1, 2, "P-1", "SS_P1", "created"),
        (2, 3, "P-2", "SS_P2", "created"),
    ]
    stored = bulk.participants()["P-1"]
    assert (
        stored["first_name"],
        stored["last_name"],
        stored["email_address"],
        stored["mobile_number"],
        stored["identifier"],
    ) == ("Ann", "Lee", "ann@example.org", "+1 6175551234", "X1")
    assert stored["status"] == "available" and stored["created_by"] == "dm" and stored["participate_status"] is None


def test_uploading_the_same_file_again_changes_nothing(bulk):
    bulk.run(csv_of(*ROWS))
    before = bulk.participants()
    job, log = bulk.run(csv_of(*ROWS))
    assert outcomes(log) == ["unchanged", "unchanged"]
    assert job["counts"]["unchanged"] == 2
    assert bulk.participants() == before


def test_a_changed_value_updates_and_an_empty_cell_keeps_the_stored_value(bulk):
    bulk.run(csv_of(*ROWS))
    _job, log = bulk.run(csv_of("P-1,Anna,,,,", "P-2,,,,,"))
    assert outcomes(log) == ["updated", "unchanged"]
    stored = bulk.participants()["P-1"]
    assert stored["first_name"] == "Anna" and stored["last_name"] == "Lee" and stored["identifier"] == "X1"


def test_columns_may_come_in_any_order_and_be_left_out(bulk):
    _job, log = bulk.run(b"lastName, participantid ,Extra\nLee,P-9,zzz\n")
    assert outcomes(log) == ["created"]
    assert bulk.participants()["P-9"]["last_name"] == "Lee"


def test_ids_match_case_insensitively_and_keep_their_first_case(bulk):
    bulk.run(csv_of(*ROWS))
    _job, log = bulk.run(csv_of("p-1,Annie,,,,"))
    assert [(e["participantId"], e["outcome"]) for e in log] == [("P-1", "updated")]
    assert set(bulk.participants()) == {"P-1", "P-2"}


def test_audit_events_carry_the_job_uuid_and_the_changes(bulk):
    first, _ = bulk.run(csv_of(*ROWS))
    second, _ = bulk.run(csv_of("P-1,Anna,,,,"))
    pk = bulk.participants()["P-1"]["id"]
    with bulk.db.read_sessions() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.participant_id == pk).order_by(AuditEvent.id)).all()
    assert [(e.action, e.source, e.username) for e in events] == [
        ("create", first["uuid"], "dm"),
        ("update", second["uuid"], "dm"),
    ]
    assert {"field": "firstName", "old": None, "new": "Ann"} in events[0].changes
    assert events[1].changes == [{"field": "firstName", "old": "Ann", "new": "Anna"}]


def test_an_id_of_another_site_is_refused(bulk):
    bulk.run(csv_of(*ROWS), site=SITE_B)
    _job, log = bulk.run(csv_of("p-1,Changed,,,,", "P-3,New,,,,"))
    assert outcomes(log) == ["failed", "created"]
    assert error_codes(log[0]) == [codes.PARTICIPANT_ID_AT_ANOTHER_SITE]
    assert log[0]["errors"][0]["column"] == "ParticipantID" and log[0]["participantOid"] is None
    assert bulk.participants()["P-1"]["first_name"] == "Ann"


def test_a_removed_participant_is_refused(bulk):
    bulk.run(csv_of(*ROWS))
    bulk.set_status("P-1", "removed")
    _job, log = bulk.run(csv_of("P-1,Changed,,,,"))
    assert error_codes(log[0]) == [codes.PARTICIPANT_ID_NOT_AVAILABLE]
    assert bulk.participants()["P-1"]["first_name"] == "Ann"


def test_a_row_with_field_errors_is_logged_with_every_error_and_not_applied(bulk):
    _job, log = bulk.run(csv_of("P<1>,Ann,Lee,not-an-email,12345,X", "P-2,Bob,,,,"))
    assert outcomes(log) == ["failed", "created"]
    assert error_codes(log[0]) == [codes.PARTICIPANT_ID_HTML, codes.INVALID_EMAIL, codes.INVALID_MOBILE]
    assert log[0]["participantId"] == "P<1>"
    assert set(bulk.participants()) == {"P-2"}


def test_a_duplicate_id_in_the_file_is_refused_even_when_the_first_row_failed(bulk):
    _job, log = bulk.run(csv_of("P-1,Ann,,bad-email,,", "p-1,Bob,,,,", "P-2,Cy,,,,", "P-1 ,Dan,,,,"))
    assert outcomes(log) == ["failed", "failed", "created", "failed"]
    assert error_codes(log[0]) == [codes.INVALID_EMAIL]
    assert error_codes(log[1]) == error_codes(log[3]) == [codes.PARTICIPANT_ID_DUPLICATED_IN_FILE]
    assert set(bulk.participants()) == {"P-2"}


def test_every_data_row_gets_one_log_entry_including_malformed_ones(bulk):
    data = (
        b'ParticipantID,firstName\r\nP-1,Ann\r\n\r\nP-2\r\nP-3,"Multi\r\nline"\r\nP-4,a,b\r\n"P-5,broken\r\nP-6,Fay\r\n'
    )
    job, log = bulk.run(data)
    assert [(e["row"], e["line"]) for e in log] == [(i + 1, line) for i, line in enumerate((2, 4, 5, 7, 8, 9))]
    assert outcomes(log) == ["created", "failed", "failed", "failed", "failed", "created"]
    assert error_codes(log[1]) == error_codes(log[3]) == error_codes(log[4]) == [codes.MALFORMED_ROW]
    # A quoted line break is read as part of the cell, and a name may not hold one.
    assert error_codes(log[2]) == [codes.UNSUPPORTED_CHARACTER]
    assert job["counts"] == {
        "rows": 6,
        "processed": 6,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "failed": 4,
        "deleted": 0,
        "restored": 0,
    }


def test_a_malformed_row_s_id_is_read_like_any_other_for_the_duplicate_check(bulk):
    # Roster escapes a leading "-" as "'-" in its downloads; the malformed row and the fixed one name the same ID.
    _job, log = bulk.run(b"ParticipantID,firstName\r\n'-P1,Ann,extra\r\n-P1,Ann\r\n")
    assert outcomes(log) == ["failed", "failed"]
    assert log[0]["participantId"] == "-P1"
    assert error_codes(log[0]) == [codes.MALFORMED_ROW]
    assert error_codes(log[1]) == [codes.PARTICIPANT_ID_DUPLICATED_IN_FILE]


def test_unknown_columns_are_named_in_the_warnings(bulk):
    job, _ = bulk.run(b"ParticipantID,Shoe size,firstName\nP-1,42,Ann\n")
    assert job["warnings"] and "Shoe size" in job["warnings"][0]


def test_oids_are_made_unique_within_the_study(bulk):
    _job, log = bulk.run(csv_of("P-1,,,,,", "P1,,,,,", "p_1,,,,,", "P1_2,,,,,"))
    oids = [e["participantOid"] for e in log]
    assert oids[0] == "SS_P1" and len(set(oids)) == 4 and all(re.fullmatch(r"SS_[A-Z0-9_]+", o) for o in oids)


# -- enrollment caps ---------------------------------------------------------------------------------


def test_the_study_cap_stops_creations_but_not_updates(bulk):
    bulk.set_study(enrollmentCap=2)
    bulk.run(csv_of("P-1,,,,,"), site=SITE_B)
    job, log = bulk.run(csv_of("P-2,,,,,", "P-3,,,,,", "P-4,,,,,"))
    assert outcomes(log) == ["created", "failed", "failed"]
    assert error_codes(log[1]) == [codes.ENROLLMENT_CAP_REACHED]
    _job, log = bulk.run(csv_of("P-2,Changed,,,,"))
    assert outcomes(log) == ["updated"]


def test_the_site_cap_counts_only_that_site(bulk):
    bulk.set_site(SITE_A, enrollmentCap=1)
    _job, log = bulk.run(csv_of("P-1,,,,,", "P-2,,,,,"))
    assert outcomes(log) == ["created", "failed"]
    _job, log = bulk.run(csv_of("P-3,,,,,", "P-4,,,,,"), site=SITE_B)
    assert outcomes(log) == ["created", "created"]


def test_removed_participants_do_not_count_towards_a_cap(bulk):
    bulk.set_study(enrollmentCap=1)
    bulk.run(csv_of("P-1,,,,,"))
    bulk.set_status("P-1", "removed")
    _job, log = bulk.run(csv_of("P-2,,,,,", "P-3,,,,,"))
    assert outcomes(log) == ["created", "failed"]


# -- system IDs ----------------------------------------------------------------------------------------


def test_system_ids_follow_the_template_and_grow_past_its_width(bulk):
    bulk.set_study(participantIdMethod="system", participantIdTemplate="JU-##-X")
    _job, log = bulk.run(csv_of(*([",Ann,,,,"] * 101)))
    ids = [e["participantId"] for e in log]
    assert outcomes(log) == ["created"] * 101
    assert ids[:2] == ["JU-01-X", "JU-02-X"] and ids[98] == "JU-99-X" and ids[99:] == ["JU-100-X", "JU-101-X"]


def test_system_ids_skip_existing_ids_and_given_ids_are_used_as_they_are(bulk):
    bulk.set_study(participantIdMethod="system", participantIdTemplate="JU-###")
    bulk.run(csv_of("ju-002,Given,,,,"))
    _job, log = bulk.run(csv_of(",A,,,,", ",B,,,,", "MINE-1,C,,,,", ",D,,,,"))
    assert [e["participantId"] for e in log] == ["JU-001", "JU-003", "MINE-1", "JU-004"]
    assert bulk.participants()["ju-002"]["first_name"] == "Given"


def test_a_given_id_equal_to_one_generated_earlier_in_the_file_updates_it(bulk):
    bulk.set_study(participantIdMethod="system", participantIdTemplate="JU-#")
    _job, log = bulk.run(csv_of(",A,,,,", "JU-1,B,,,,", ",C,,,,"))
    assert [(e["participantId"], e["outcome"]) for e in log] == [
        ("JU-1", "created"),
        ("JU-1", "updated"),
        ("JU-2", "created"),
    ]


def test_a_manual_study_needs_an_id(bulk):
    _job, log = bulk.run(csv_of(",Ann,,,,"))
    assert error_codes(log[0]) == [codes.MISSING_PARTICIPANT_ID]


# -- registration --------------------------------------------------------------------------------------


def test_register_gives_unique_access_codes_that_re_registration_keeps(bulk):
    rows = [f"P-{i},,,,," for i in range(50)]
    _job, log = bulk.run(csv_of(*rows), register="y")
    assert {e["participateStatus"] for e in log} == {"Created"}
    stored = bulk.participants()
    codes_ = [p["access_code"] for p in stored.values()]
    assert len(set(codes_)) == 50
    assert all(len(c) == 9 and set(c) <= set(ACCESS_CODE_ALPHABET) for c in codes_)
    assert not set("01OILoil") & set(ACCESS_CODE_ALPHABET)
    _job, log = bulk.run(csv_of(*rows), register="y")
    assert set(outcomes(log)) == {"unchanged"}
    assert {k: p["access_code"] for k, p in bulk.participants().items()} == {
        k: p["access_code"] for k, p in stored.items()
    }


def test_register_yes_registers_existing_participants_and_no_leaves_them(bulk):
    bulk.run(csv_of(*ROWS))
    _job, log = bulk.run(csv_of(*ROWS), register="n")
    assert outcomes(log) == ["unchanged", "unchanged"] and bulk.participants()["P-1"]["access_code"] is None
    _job, log = bulk.run(csv_of(*ROWS), register="y")
    assert outcomes(log) == ["updated", "updated"]
    assert [e["participateStatus"] for e in log] == ["Created", "Created"]
    assert bulk.participants()["P-1"]["access_code"]


# -- batch size ----------------------------------------------------------------------------------------


def test_results_do_not_depend_on_the_batch_size(bulk):
    """The same file, in three studies set up alike, with batches of 1, 7 and 1000 rows."""
    rows = []
    for i in range(60):
        rows.append(f"P-{i % 45},Name{i},,{'bad' if i % 11 == 0 else ''},,")  # duplicates across batches, some errors
        if i % 9 == 0:
            rows.append(f",Gen{i},,,,")  # a generated ID
        if i % 13 == 0:
            rows.append("broken")
    rows.append("JU-003,Given,,,,")  # equal to an ID generated earlier
    data = csv_of(*rows)
    logs = []
    for n, batch_size in enumerate((1, 7, 1000)):
        study, site = f"S_B{n}", f"S_B{n}_SITE"
        bulk.api.setup_study(
            study,
            (site, f"S_B{n}_OTHER"),
            participantIdMethod="system",
            participantIdTemplate="JU-###",
            enrollmentCap=40,
            participateActive=True,
        )
        bulk.api.grant("dm", "data_manager", study)
        bulk.upload(csv_of("P-43,Other,,,,"), study=study, site=f"S_B{n}_OTHER")
        job_uuid = bulk.upload(data, study=study, site=site, register="y")
        drain(bulk.db, bulk.settings.model_copy(update={"batch_size": batch_size}))
        logs.append([{k: v for k, v in e.items()} for e in bulk.log(job_uuid)])
    assert len(logs[0]) == len(rows)
    assert logs[0] == logs[1] == logs[2]
    assert {"created", "updated", "failed"} <= set(outcomes(logs[0]))
    assert {
        codes.ENROLLMENT_CAP_REACHED,
        codes.PARTICIPANT_ID_DUPLICATED_IN_FILE,
        codes.MALFORMED_ROW,
        codes.PARTICIPANT_ID_AT_ANOTHER_SITE,
    } <= {c for e in logs[0] for c in error_codes(e)}
