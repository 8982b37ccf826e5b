"""The per-record rules of SPEC §5 (one module for bulk rows and the single-participant endpoint)."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from roster import codes
from roster.participants import rules
from roster.participants.rules import RuleError, check_field, check_record

WRITTEN = {
    "ParticipantID": "Participant ID",
    "firstName": "First Name",
    "lastName": "LASTNAME",
    "emailAddress": "email",
    "mobileNumber": "Mobile",
    "identifier": "identifier",
}


def codes_of(values: dict[str, str], id_method: str = "manual") -> list[tuple[str, str]]:
    return [(e.code, e.column) for e in check_record(values, WRITTEN, id_method=id_method)]


def one(field: str, value: str) -> list[str]:
    return [e.code for e in check_record({"ParticipantID": "P1", field: value}, WRITTEN, id_method="manual")]


def test_a_valid_full_record_has_no_errors():
    values = {
        "ParticipantID": "SS-001",
        "firstName": "Zoë",
        "lastName": "O'Neil-Smith",
        "emailAddress": "zoe.oneil+study@hospital.example.org",
        "mobileNumber": "+1 6175551234",
        "identifier": "MRN 12/34",
    }
    assert check_record(values, WRITTEN, id_method="manual") == []


def test_rule_error_as_dict_has_code_column_and_plain_message():
    error = check_record({"ParticipantID": ""}, WRITTEN, id_method="manual")[0]
    assert error == RuleError(
        codes.MISSING_PARTICIPANT_ID, "Participant ID", codes.MESSAGES[codes.MISSING_PARTICIPANT_ID]
    )
    assert error.as_dict() == {
        "code": codes.MISSING_PARTICIPANT_ID,
        "column": "Participant ID",
        "message": "Participant ID is empty.",
    }


def test_empty_participant_id_is_missing_for_manual_and_fine_for_system():
    assert codes_of({"ParticipantID": ""}) == [(codes.MISSING_PARTICIPANT_ID, "Participant ID")]
    assert codes_of({"ParticipantID": ""}, "system") == []
    assert codes_of({}, "manual") == [(codes.MISSING_PARTICIPANT_ID, "Participant ID")]
    assert codes_of({}, "system") == []


def test_a_given_id_follows_the_same_rules_for_system_studies():
    assert codes_of({"ParticipantID": "x" * 31}, "system") == [(codes.PARTICIPANT_ID_TOO_LONG, "Participant ID")]


@pytest.mark.parametrize(
    ("field", "limit", "code"),
    [
        ("ParticipantID", 30, codes.PARTICIPANT_ID_TOO_LONG),
        ("firstName", 35, codes.FIRST_NAME_TOO_LONG),
        ("lastName", 35, codes.LAST_NAME_TOO_LONG),
        ("identifier", 35, codes.IDENTIFIER_TOO_LONG),
        ("mobileNumber", 17, codes.MOBILE_TOO_LONG),
    ],
)
@pytest.mark.parametrize("char", ["a", "é", "李", "😀"], ids=["ascii", "2-byte", "3-byte", "4-byte"])
def test_lengths_count_characters_exactly_at_and_one_past_each_limit(field, limit, code, char):
    values = {"ParticipantID": "P1"}
    at, past = char * limit, char * (limit + 1)
    if field == "mobileNumber":  # keep the value a well-formed number up to the limit
        at, past = "+1 " + "1" * (limit - 3), "+1 " + "1" * (limit - 2)
    assert codes_of({**values, field: at}) == []
    assert codes_of({**values, field: past}) == [(code, WRITTEN[field])]


def test_limits_are_named_constants_for_the_single_endpoint():
    assert (rules.PARTICIPANT_ID_MAX, rules.FIRST_NAME_MAX, rules.LAST_NAME_MAX) == (30, 35, 35)
    assert (rules.IDENTIFIER_MAX, rules.EMAIL_MAX, rules.MOBILE_MAX) == (35, 255, 17)
    assert rules.LIMITS["emailAddress"] == (255, codes.EMAIL_TOO_LONG)


def _email_of_length(n: int) -> str:
    # email-validator checks a local part's length only in strict mode: one long run of letters is valid.
    return "a" * (n - len("@example.org")) + "@example.org"


def test_email_length_limit_is_255_characters_then_syntax():
    assert one("emailAddress", _email_of_length(254)) == []
    # 255 passes the length rule but email-validator caps an address at 254 octets.
    assert one("emailAddress", _email_of_length(255)) == [codes.INVALID_EMAIL]
    assert one("emailAddress", _email_of_length(256)) == [codes.EMAIL_TOO_LONG]
    assert one("emailAddress", "é" * 250 + "@x.org") == [codes.EMAIL_TOO_LONG]


@pytest.mark.parametrize(
    "email",
    [
        "a@b.co",
        "first.last+tag@sub.example.org",
        "zoë@example.org",
        "user@münchen.de",
        "USER@EXAMPLE.ORG",
        "x@xn--mnchen-3ya.de",
    ],
)
def test_valid_email_addresses(email):
    assert one("emailAddress", email) == []


@pytest.mark.parametrize(
    "email",
    [
        "plain",
        "a@b",
        "a@localhost",
        "a..b@example.org",
        ".a@example.org",
        "a@example..org",
        "a b@example.org",
        "a@-x.org",
        '"quoted"@example.org',
        "a@[192.0.2.1]",
        "Ann <a@example.org>",
        "a@example.test",
        "a@@example.org",
        "@example.org",
        "a@",
        "a@example.org.",
    ],
)
def test_invalid_email_addresses_without_any_network(email):
    assert one("emailAddress", email) == [codes.INVALID_EMAIL]


@pytest.mark.parametrize(
    ("mobile", "code"),
    [
        ("+1 1", None),
        ("+1 6175551234", None),
        ("+358 1", None),
        ("+1234 5", codes.INVALID_MOBILE),
        ("+12 12345678901234", codes.MOBILE_TOO_LONG),  # 18 characters: the length rule answers first
        ("+12 123456789012345", codes.MOBILE_TOO_LONG),
        ("+1 12345678901234", None),  # 17 characters, 14 digits
        ("+1  2", codes.INVALID_MOBILE),
        ("+1 2a", codes.INVALID_MOBILE),
        ("1 234", codes.INVALID_MOBILE),
        ("+1-617-555-1234", codes.INVALID_MOBILE),
        ("+16175551234", codes.INVALID_MOBILE),
        ("+ 1", codes.INVALID_MOBILE),
        ("+1 ", codes.INVALID_MOBILE),
        ("+١ ٢٣٤", codes.INVALID_MOBILE),  # Arabic-Indic digits are not ASCII digits
        ("+1 2\n", codes.UNSUPPORTED_CHARACTER),
    ],
)
def test_mobile_number_pattern(mobile, code):
    assert one("mobileNumber", mobile) == ([code] if code else [])


@pytest.mark.parametrize(
    "value",
    [
        "a\x00b",
        "a\x01b",
        "tab\tinside",
        "line\nbreak",
        "cr\rhere",
        "del\x7f",
        "c1\x85",
        "c1\x9f",
        "ls\u2028",
        "ps\u2029",
        "lone\ud800",
    ],
)
@pytest.mark.parametrize(
    "field", ["ParticipantID", "firstName", "lastName", "identifier", "emailAddress", "mobileNumber"]
)
def test_control_characters_are_unsupported_in_every_field(field, value):
    values = {"ParticipantID": "P1", field: value}
    assert codes_of(values) == [(codes.UNSUPPORTED_CHARACTER, WRITTEN[field])]


@pytest.mark.parametrize("value", ["Zoë\u00a0Lee", "\u200fعلي", "a\u200db", "x\u3000y"])
def test_printable_unicode_and_bidi_marks_are_allowed_in_names(value):
    assert one("firstName", value) == []


def test_control_characters_are_checked_in_any_other_field_too():
    errors = check_record({"ParticipantID": "P1", "middleName": "a\x00"}, {}, id_method="manual")
    assert [(e.code, e.column) for e in errors] == [(codes.UNSUPPORTED_CHARACTER, "middleName")]
    assert check_record({"ParticipantID": "P1", "middleName": "x" * 500}, {}, id_method="manual") == []


@pytest.mark.parametrize("value", ["<b>", "a<b", "a>b", ">"])
def test_participant_id_with_html_characters(value):
    assert codes_of({"ParticipantID": value}) == [(codes.PARTICIPANT_ID_HTML, "Participant ID")]


def test_at_most_one_error_per_field_length_first_then_control_then_format():
    assert codes_of({"ParticipantID": "<" * 31 + "\x00"}) == [(codes.PARTICIPANT_ID_TOO_LONG, "Participant ID")]
    assert codes_of({"ParticipantID": "<\x00>"}) == [(codes.UNSUPPORTED_CHARACTER, "Participant ID")]
    assert one("emailAddress", "\x00" * 256) == [codes.EMAIL_TOO_LONG]
    assert one("emailAddress", "a\x01@example.org") == [codes.UNSUPPORTED_CHARACTER]
    assert one("mobileNumber", "+1 2\x00" + "3" * 13) == [codes.MOBILE_TOO_LONG]
    assert one("firstName", "\x00" * 36) == [codes.FIRST_NAME_TOO_LONG]


def test_every_error_of_a_row_is_reported_id_first_then_in_column_order():
    values = {
        "lastName": "x" * 36,
        "mobileNumber": "617-555",
        "ParticipantID": "",
        "emailAddress": "not-an-email",
        "identifier": "y" * 36,
        "firstName": "ok\x00",
    }
    assert codes_of(values) == [
        (codes.MISSING_PARTICIPANT_ID, "Participant ID"),
        (codes.LAST_NAME_TOO_LONG, "LASTNAME"),
        (codes.INVALID_MOBILE, "Mobile"),
        (codes.INVALID_EMAIL, "email"),
        (codes.IDENTIFIER_TOO_LONG, "identifier"),
        (codes.UNSUPPORTED_CHARACTER, "First Name"),
    ]


def test_empty_optional_values_are_no_value_and_no_error():
    values = {
        "ParticipantID": "P1",
        "firstName": "",
        "lastName": "",
        "emailAddress": "",
        "mobileNumber": "",
        "identifier": "",
    }
    assert codes_of(values) == []


def test_column_falls_back_to_the_canonical_name_when_not_written():
    errors = check_record({"ParticipantID": "P1", "firstName": "x" * 36}, {}, id_method="manual")
    assert errors[0].column == "firstName"


def _validator_says(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


EMAILISH = st.emails() | st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(alphabet=st.sampled_from("aZ0._+-!#'~é\"() "), max_size=70),
    st.text(alphabet=st.sampled_from("aZ0.-_é"), max_size=70)
    | st.sampled_from(
        ["example.org", "localhost", "x.test", "xn--mnchen-3ya.de", "xn--zz.com", "a-.com", "1.2.3.4", "ex.123"]
    ),
)


@settings(max_examples=500, deadline=None)
@given(EMAILISH)
def test_the_fast_email_path_agrees_with_email_validator(email):
    assert rules.is_valid_email(email) == _validator_says(email)


@settings(max_examples=300, deadline=None)
@given(
    local_length=st.integers(min_value=1, max_value=260),
    domain=st.sampled_from(
        ["example.org", "xn--mnchen-3ya.de", "münchen.de", "a.bc", "sub.domain-x.example.com", "ex.test"]
    ),
)
def test_the_fast_email_path_agrees_with_email_validator_around_the_length_limit(local_length, domain):
    email = "x" * local_length + "@" + domain
    assert rules.is_valid_email(email) == _validator_says(email)


ANY_TEXT = st.text(alphabet=st.characters() | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=300)
FIELDS = st.sampled_from(
    ["ParticipantID", "firstName", "lastName", "emailAddress", "mobileNumber", "identifier", "middleName"]
)


@settings(max_examples=400, deadline=None)
@given(
    values=st.dictionaries(FIELDS, ANY_TEXT | st.sampled_from(["", "+1 2", "a@b.co", "<x>"])),
    id_method=st.sampled_from(["manual", "system"]),
)
def test_check_record_never_raises_and_reports_at_most_one_error_per_field(values, id_method):
    errors = check_record(values, WRITTEN, id_method=id_method)
    columns = [e.column for e in errors]
    assert len(columns) == len(set(columns))
    assert all(e.message == codes.MESSAGES[e.code] for e in errors)
    # The fast screen changes nothing: the same answer as the rules applied field by field.
    assert errors == rules.record_errors(values, WRITTEN, id_method=id_method)
    expected = [check_field(f, v, WRITTEN.get(f, f)) for f, v in values.items() if f != "ParticipantID"]
    assert [e for e in errors if e.column != "Participant ID"] == [e for e in expected if e is not None]
