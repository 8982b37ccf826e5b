"""The per-record rules of SPEC §5: one module for the bulk worker and the single-participant endpoint.

Decisions (where the spec is silent):
- Order within a field, at most one error per field: (ParticipantID empty) → length → control character →
  format (ParticipantID `<`/`>`, email syntax, mobile pattern). A too-long value is reported as too long
  even if it also holds a control character; a control character hides the format error it would cause.
- Control characters (unsupportedCharacter): Unicode category Cc — C0 U+0000–U+001F (tab, CR and LF
  included: cells are trimmed first, so only inner ones count), DEL U+007F, C1 U+0080–U+009F — plus the
  line/paragraph separators U+2028/U+2029 (they break lines like LF does) and lone surrogates U+D800–U+DFFF
  (JSON can carry them; they cannot be stored as UTF-8). Bidi and zero-width format characters are allowed:
  right-to-left names legitimately contain marks such as U+200F.
- The control-character rule applies to every value given (also to fields outside the table, such as
  `middleName`); length and format rules only to the fields of the table.
- Lengths count code points (`len(str)`), not bytes or grapheme clusters.
- Email: email-validator's syntax check with its defaults and no network — internationalized addresses are
  accepted; quoted local parts, IP-address domains, display names (`Ann <a@x.org>`), single-label and
  special-use domains (`localhost`, `.test`, ...) are not. The 255 limit is checked first; email-validator
  itself then refuses addresses over 254 octets (invalidEmailAddress).
- Mobile: exactly `+`, 1–3 ASCII digits, one space, 1–14 ASCII digits; the 17-character limit is checked
  first, so `+123 12345678901234` (valid shape, 19 characters) is mobileNumberTooLong.
- Errors come ParticipantID first, then in the order of `values` (the file's column order for bulk rows).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from roster import codes

PARTICIPANT_ID = "ParticipantID"
FIRST_NAME = "firstName"
LAST_NAME = "lastName"
EMAIL = "emailAddress"
MOBILE = "mobileNumber"
IDENTIFIER = "identifier"

PARTICIPANT_ID_MAX = 30
FIRST_NAME_MAX = 35
LAST_NAME_MAX = 35
IDENTIFIER_MAX = 35
EMAIL_MAX = 255
MOBILE_MAX = 17

# field -> (max characters, code when longer)
LIMITS: dict[str, tuple[int, str]] = {
    PARTICIPANT_ID: (PARTICIPANT_ID_MAX, codes.PARTICIPANT_ID_TOO_LONG),
    FIRST_NAME: (FIRST_NAME_MAX, codes.FIRST_NAME_TOO_LONG),
    LAST_NAME: (LAST_NAME_MAX, codes.LAST_NAME_TOO_LONG),
    IDENTIFIER: (IDENTIFIER_MAX, codes.IDENTIFIER_TOO_LONG),
    EMAIL: (EMAIL_MAX, codes.EMAIL_TOO_LONG),
    MOBILE: (MOBILE_MAX, codes.MOBILE_TOO_LONG),
}

_TEXT_LIMITS = ((FIRST_NAME, FIRST_NAME_MAX), (LAST_NAME, LAST_NAME_MAX), (IDENTIFIER, IDENTIFIER_MAX))

CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# '+', 1–3 ASCII digits, one space, 1–14 ASCII digits ([0-9], not \d: \d matches every script's digits).
MOBILE_PATTERN = re.compile(r"\+[0-9]{1,3} [0-9]{1,14}")
_mobile = MOBILE_PATTERN.fullmatch
# The email check's fast path: an RFC 5322 dot-atom local part of ASCII characters (email-validator's own
# pattern) and an ASCII host name, whose verdict is cached per domain. Anything else goes to email-validator.
_ATEXT = r"[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]"
_PLAIN_LOCAL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_PLAIN_DOMAIN = re.compile(r"[A-Za-z0-9.\-]+")
_EMAIL_MAX_OCTETS = 254  # email-validator's limit on the whole address (RFC 3696 errata 1690)
_DOMAIN_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class RuleError:
    code: str
    column: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "column": self.column, "message": self.message}


def rule_error(code: str, column: str) -> RuleError:
    return RuleError(code, column, codes.message_for(code))


def has_control_character(value: str) -> bool:
    # isprintable() is a C fast path: every character we reject is non-printable.
    return not value.isprintable() and CONTROL_CHARACTERS.search(value) is not None


_domain_octets_cache: dict[str, int] = {}


def _domain_octets(domain: str) -> int:
    """For a plain ASCII host name: the UTF-8 octets of its longest form (as given, normalized, IDNA) when
    email-validator accepts it, else 0. -1 for any other domain (the full check decides). Cached."""
    octets = _domain_octets_cache.get(domain)
    if octets is None:
        if _PLAIN_DOMAIN.fullmatch(domain) is None:
            octets = -1
        else:
            try:
                info = validate_email("a@" + domain, check_deliverability=False)
                octets = max(len(domain), len(info.domain.encode()), len(info.ascii_domain))
            except EmailNotValidError:
                octets = 0
        if len(_domain_octets_cache) >= _DOMAIN_CACHE_SIZE:
            _domain_octets_cache.clear()  # bounded; a file rarely has more than a few hundred domains
        _domain_octets_cache[domain] = octets
    return octets


def is_valid_email(value: str) -> bool:
    """email-validator's verdict (syntax only, no network). Its full run is slow for a per-row check, mostly
    on the domain, so plain addresses take a fast path with the domain's verdict cached; the outcome is the same."""
    local, at, domain = value.rpartition("@")
    if at and _PLAIN_LOCAL.fullmatch(local) is not None:
        octets = _domain_octets(domain)
        if octets >= 0:
            return octets > 0 and len(local) + 1 + octets <= _EMAIL_MAX_OCTETS
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def is_valid_mobile(value: str) -> bool:
    return MOBILE_PATTERN.fullmatch(value) is not None


def check_field(field: str, value: str, column: str) -> RuleError | None:
    """The one error (or None) of one non-ID field's trimmed value; empty means no value given."""
    if not value:
        return None
    limit = LIMITS.get(field)
    if limit is not None and len(value) > limit[0]:
        return rule_error(limit[1], column)
    if has_control_character(value):
        return rule_error(codes.UNSUPPORTED_CHARACTER, column)
    if field == EMAIL and not is_valid_email(value):
        return rule_error(codes.INVALID_EMAIL, column)
    if field == MOBILE and not is_valid_mobile(value):
        return rule_error(codes.INVALID_MOBILE, column)
    return None


def check_participant_id(value: str, column: str, *, id_method: str) -> RuleError | None:
    """The one error (or None) of a trimmed ParticipantID; empty is fine only for the `system` method."""
    if not value:
        return None if id_method == "system" else rule_error(codes.MISSING_PARTICIPANT_ID, column)
    if len(value) > PARTICIPANT_ID_MAX:
        return rule_error(codes.PARTICIPANT_ID_TOO_LONG, column)
    if has_control_character(value):
        return rule_error(codes.UNSUPPORTED_CHARACTER, column)
    if "<" in value or ">" in value:
        return rule_error(codes.PARTICIPANT_ID_HTML, column)
    return None


def check_record(values: Mapping[str, str], written: Mapping[str, str], *, id_method: str) -> list[RuleError]:
    """Every field-level error of one record (SPEC §5), ParticipantID first, then the fields in `values` order.

    values: canonical field -> TRIMMED value (present columns only); written: canonical field -> the column
    name to report; id_method: "manual" | "system"."""
    if _looks_valid(values, id_method):
        return []
    return record_errors(values, written, id_method=id_method)


def _looks_valid(values: Mapping[str, str], id_method: str) -> bool:
    """A cheap screen, unrolled for speed (the bulk worker calls this per row): True only when no rule can
    fail. False sends the record to record_errors, which decides."""
    get = values.get
    seen = 0
    value = get(PARTICIPANT_ID)
    if value is not None:
        seen = 1
        if not value:
            if id_method != "system":
                return False
        elif len(value) > PARTICIPANT_ID_MAX or not value.isprintable() or "<" in value or ">" in value:
            return False
    elif id_method != "system":
        return False
    for field, limit in _TEXT_LIMITS:
        value = get(field)
        if value is not None:
            seen += 1
            if len(value) > limit or not value.isprintable():
                return False
    value = get(EMAIL)
    if value is not None:
        seen += 1
        if value and (len(value) > EMAIL_MAX or not value.isprintable() or not is_valid_email(value)):
            return False
    value = get(MOBILE)
    if value is not None:
        seen += 1
        if value and (len(value) > MOBILE_MAX or not value.isprintable() or _mobile(value) is None):
            return False
    if seen != len(values):  # fields outside the table: only the control-character rule applies
        return all(field in LIMITS or value.isprintable() for field, value in values.items())
    return True


def record_errors(values: Mapping[str, str], written: Mapping[str, str], *, id_method: str) -> list[RuleError]:
    """check_record without its fast screen: the rules as the spec states them, field by field."""
    errors: list[RuleError] = []
    for field, value in values.items():
        if field == PARTICIPANT_ID:
            error = check_participant_id(value, written.get(field, field), id_method=id_method)
            if error is not None:
                errors.insert(0, error)
        else:
            error = check_field(field, value, written.get(field, field))
            if error is not None:
                errors.append(error)
    if PARTICIPANT_ID not in values and id_method != "system":
        errors.insert(0, rule_error(codes.MISSING_PARTICIPANT_ID, written.get(PARTICIPANT_ID, PARTICIPANT_ID)))
    return errors
