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
- The control-character rule applies to every value given (also to fields a bulk row does not have, such
  as `middleName`); length and format rules only to a bulk row's fields (`fields.BULK`, with their limits).
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

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from roster import codes
from roster.participants import fields
from roster.participants.formats import has_control_character as has_control_character  # for callers
from roster.participants.formats import is_valid_email as is_valid_email  # for callers

# The canonical keys of a record's values (roster.participants.fields).
PARTICIPANT_ID = fields.PARTICIPANT_ID.name
FIRST_NAME = fields.FIRST_NAME.name
LAST_NAME = fields.LAST_NAME.name
EMAIL = fields.EMAIL.name
MOBILE = fields.MOBILE.name
IDENTIFIER = fields.IDENTIFIER.name

# field -> (max characters, code when longer), for the fields of a bulk row
LIMITS: dict[str, tuple[int, str]] = {
    f.name: (f.max_length, f.too_long) for f in fields.BULK if f.max_length is not None and f.too_long is not None
}
PARTICIPANT_ID_MAX = LIMITS[PARTICIPANT_ID][0]
FIRST_NAME_MAX = LIMITS[FIRST_NAME][0]
LAST_NAME_MAX = LIMITS[LAST_NAME][0]
IDENTIFIER_MAX = LIMITS[IDENTIFIER][0]
EMAIL_MAX = LIMITS[EMAIL][0]
MOBILE_MAX = LIMITS[MOBILE][0]

# field -> (format check, code when it fails), for the fields of a bulk row that have one
FORMATS: dict[str, tuple[Callable[[str], bool], str]] = {
    f.name: (f.valid, f.invalid) for f in fields.BULK if f.valid is not None and f.invalid is not None
}
# The screen's view of the contact fields: (name, limit) without a format check, (name, limit, check) with one.
_PLAIN = tuple((f.name, LIMITS[f.name][0]) for f in fields.CONTACT if f.name not in FORMATS)
_FORMATTED = tuple((f.name, LIMITS[f.name][0], FORMATS[f.name][0]) for f in fields.CONTACT if f.name in FORMATS)
_id_valid = FORMATS[PARTICIPANT_ID][0]


@dataclass(frozen=True, slots=True)
class RuleError:
    code: str
    column: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "column": self.column, "message": self.message}


def rule_error(code: str, column: str) -> RuleError:
    return RuleError(code, column, codes.message_for(code))


def check_field(field: str, value: str, column: str) -> RuleError | None:
    """The one error (or None) of one non-ID field's trimmed value; empty means no value given."""
    return _check(field, value, column) if value else None


def check_participant_id(value: str, column: str, *, id_method: str) -> RuleError | None:
    """The one error (or None) of a trimmed ParticipantID; empty is fine only for the `system` method."""
    if not value:
        return None if id_method == "system" else rule_error(codes.MISSING_PARTICIPANT_ID, column)
    return _check(PARTICIPANT_ID, value, column)


def _check(field: str, value: str, column: str) -> RuleError | None:
    """Length, then control characters, then the field's format: the first rule that fails."""
    limit = LIMITS.get(field)
    if limit is not None and len(value) > limit[0]:
        return rule_error(limit[1], column)
    if has_control_character(value):
        return rule_error(codes.UNSUPPORTED_CHARACTER, column)
    form = FORMATS.get(field)
    if form is not None and not form[0](value):
        return rule_error(form[1], column)
    return None


def check_record(values: Mapping[str, str], written: Mapping[str, str], *, id_method: str) -> list[RuleError]:
    """Every field-level error of one record (SPEC §5), ParticipantID first, then the fields in `values` order.

    values: canonical field -> TRIMMED value (present columns only); written: canonical field -> the column
    name to report; id_method: "manual" | "system"."""
    if _looks_valid(values, id_method):
        return []
    return record_errors(values, written, id_method=id_method)


def _looks_valid(values: Mapping[str, str], id_method: str) -> bool:
    """A cheap screen (the bulk worker calls this per row): True only when no rule can fail. False sends the
    record to record_errors, which decides."""
    get = values.get
    seen = 0
    value = get(PARTICIPANT_ID)
    if value is not None:
        seen = 1
        if not value:
            if id_method != "system":
                return False
        elif len(value) > PARTICIPANT_ID_MAX or not value.isprintable() or not _id_valid(value):
            return False
    elif id_method != "system":
        return False
    for field, limit in _PLAIN:
        value = get(field)
        if value is not None:
            seen += 1
            if len(value) > limit or not value.isprintable():
                return False
    for field, limit, valid in _FORMATTED:
        value = get(field)
        if value is not None:
            seen += 1
            if value and (len(value) > limit or not value.isprintable() or not valid(value)):
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
