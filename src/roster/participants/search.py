"""The list's `q` term as conditions an index serves on both backends (migration 0008, docs/decisions.md).

Everybody: a participant ID prefix (case-insensitive, as IDs are unique) or the exact OID. At sites where the
caller may read personal data, also: a last or first name prefix, the exact email, uid, empi or an MRN — so a
monitor cannot probe for a name, not even through the count. Nothing else is searched.

Prefixes are ranges, `low <= value < high`, not LIKE: SQLite's LIKE optimisation needs NOCASE indexes and
PostgreSQL's a pattern operator class, while a range works on a plain btree in code point order (the columns'
"C" collation on PostgreSQL, roster.db.codepoint_string), and `%` or `_` in a term is just a character.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, false, func, or_, select
from sqlalchemy.orm import Session

from roster.auth.permissions import Action, StudyAccess
from roster.participants import profile
from roster.participants.models import Participant, ParticipantMrn, participant_key

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_MAX = 0x10FFFF


def fold_ascii(text: str) -> str:
    """What SQL lower() does on both backends here: SQLite's folds A-Z only, and so does PostgreSQL's
    under the "C" collation. Other letters match in their own case."""
    return text.translate(_ASCII_LOWER)


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """(low, high): in code point order, exactly the strings that start with `prefix` are >= low and
    < high (no high: every string >= low)."""
    head = prefix
    while head:
        last = ord(head[-1])
        if last < _MAX:
            after = last + 1 if not 0xD800 <= last + 1 <= 0xDFFF else 0xE000  # surrogates cannot be stored
            return prefix, head[:-1] + chr(after)
        # U+10FFFF has no successor; a shorter head bounds the same strings (nothing sorts above it).
        head = head[:-1]
    return prefix, None


def _starts_with(column: SQLColumnExpression[str], prefix: str) -> ColumnElement[bool]:
    low, high = prefix_range(prefix)
    return column >= low if high is None else and_(column >= low, column < high)


def _oid(term: str) -> ColumnElement[bool]:
    # OIDs are "SS_" + ASCII capitals and digits: a term with any other character names none.
    return Participant.oid == term.upper() if term.isascii() else false()


def unindexed(column: SQLColumnExpression[int]) -> ColumnElement[int]:
    """`column` as a filter no index serves (`+ 0`): keeps a planner on the search's own indexes."""
    return column + 0


def condition(session: Session, term: str, access: StudyAccess) -> ColumnElement[bool]:
    """`term`: stripped, not empty, without control characters."""
    public = or_(_starts_with(Participant.participant_key, participant_key(term)), _oid(term))
    pii_sites = access.site_ids(Action.READ_PII)
    if pii_sites is not None and not pii_sites:
        return public
    name, key = fold_ascii(term), profile.key(term)
    personal = [
        _starts_with(func.lower(Participant.last_name), name),
        _starts_with(func.lower(Participant.first_name), name),
        func.lower(Participant.email_address) == name,
        Participant.uid_key == key,
        Participant.empi_key == key,
    ]
    # The MRN's participants are looked up first: as a list of ids the branch is an index lookup; as a
    # subquery PostgreSQL can neither use an index for it inside the OR nor estimate it (it guesses half
    # the table, then walks the whole primary key for one page).
    with_mrn = session.scalars(select(ParticipantMrn.participant_id).where(ParticipantMrn.mrn_key == key)).all()
    if with_mrn:
        personal.append(Participant.id.in_(sorted(set(with_mrn))))
    if pii_sites is not None:
        # The sites go into each personal branch as a plain filter: each branch stays one index lookup.
        where_pii = unindexed(Participant.site_id).in_(sorted(pii_sites))
        return or_(public, *(and_(where_pii, c) for c in personal))
    return or_(public, *personal)
