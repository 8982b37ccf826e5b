"""Profile rules (SPEC §7): permissible values, dates, uid/empi/MRN uniqueness, sites of MRNs, and the
contact fields under the bulk rules. Every error of a request is collected and returned together.

Errors are dicts `{code, column, message}` (the shape of `rules.RuleError.as_dict()`); `column` is the
field's API name. Messages are the plain words of `roster.codes` and never echo a value: a value may be
personal data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from roster import codes
from roster.participants import fields, rules
from roster.participants.fields import Kind
from roster.participants.models import Participant, ParticipantMrn
from roster.studies.models import Site, Study, oid_key

DEFAULT_ACTIVITY_STATUS = "Active"
DEAD = "Dead"
# The seed (OpenSpecimen's page) writes a typographic apostrophe; SPEC §7 a plain one. Both mean the same value.
_SPELLINGS = {"Klinefelter\u2019s Syndrome": "Klinefelter's Syndrome"}

# The length of an MRN (a row of participant_mrns, not a field of the table), in characters.
MRN_MAX = 100

# The profile fields by kind (roster.participants.fields): name -> what its rule needs.
_CHOICES = {f.name: (f.choices, f.invalid) for f in fields.PROFILE if f.kind is Kind.CHOICE and f.invalid}
_LISTS = {f.name: (f.choices, f.invalid) for f in fields.PROFILE if f.kind is Kind.CHOICES and f.invalid}
_TEXTS = {f.name: (f.max_length, f.too_long) for f in fields.PROFILE if f.max_length and f.too_long}
_DATES = {f.name: f.invalid for f in fields.PROFILE if f.kind is Kind.DATE and f.invalid}


def error(code: str, column: str) -> dict[str, str]:
    return {"code": code, "column": column, "message": codes.message_for(code)}


def key(value: str) -> str:
    """uid, empi and MRNs are unique regardless of case."""
    return value.casefold()


def _too_long(value: str, limit: int) -> bool:
    """The value and its case-insensitive key must both fit: casefold() may lengthen a string ('ß' → 'ss')."""
    return len(value) > limit or len(key(value)) > limit


def _text(value: Any) -> str | None:
    """Trimmed; an empty string clears the field, as `null` does."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def parse_date(value: Any) -> dt.date:
    """An ISO date (`2001-02-03`), an ISO date-time (its UTC date), or epoch milliseconds. ValueError else."""
    if isinstance(value, int):
        try:
            return dt.datetime.fromtimestamp(value / 1000, dt.UTC).date()
        except (OverflowError, OSError, ValueError):
            raise ValueError("out of range") from None
    text = value.strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        stamp = dt.datetime.fromisoformat(text)
    try:
        return (stamp.astimezone(dt.UTC) if stamp.tzinfo else stamp).date()
    except OverflowError:  # e.g. 9999-12-31T23:00-14:00 is in the year 10000
        raise ValueError("out of range") from None


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(slots=True)
class Checked:
    """The cleaned values of the fields sent (API names) and every error found in them."""

    values: dict[str, Any]
    errors: list[dict[str, str]]


def clean(session: Session, study: Study, participant: Participant, sent: Mapping[str, Any]) -> Checked:
    """Field-by-field rules on what was sent: at most one error per field (its first rule that fails)."""
    values: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    contact = {name: _text(sent[name]) for name in fields.CONTACT_NAMES if name in sent}
    errors += _contact_errors(study, participant, contact)
    values.update(contact)
    for name, raw in sent.items():
        if name in _CHOICES:
            allowed, code = _CHOICES[name]
            value = _text(raw)
            value = _SPELLINGS.get(value, value) if value is not None else None
            if value is not None and value not in allowed:
                errors.append(error(code, name))
            values[name] = DEFAULT_ACTIVITY_STATUS if name == "activityStatus" and value is None else value
        elif name in _LISTS:
            allowed, code = _LISTS[name]
            items = [v for v in (_text(v) for v in raw or ()) if v is not None]
            if any(v not in allowed for v in items):
                errors.append(error(code, name))
            values[name] = list(dict.fromkeys(items))  # a value named twice is kept once
        elif name in _TEXTS:
            limit, code = _TEXTS[name]
            value = _text(raw)
            if value is not None and _too_long(value, limit):
                errors.append(error(code, name))
            elif value is not None and rules.has_control_character(value):
                errors.append(error(codes.UNSUPPORTED_CHARACTER, name))
            values[name] = value
        elif name in _DATES:
            values[name] = None
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            try:
                values[name] = parse_date(raw)
            except ValueError:
                errors.append(error(_DATES[name], name))
    if "pmis" in sent:
        pmis, pmi_errors = _clean_pmis(session, study, sent["pmis"] or [])
        values["pmis"] = pmis
        errors += pmi_errors
    return Checked(values, errors)


def _contact_errors(study: Study, participant: Participant, contact: Mapping[str, str | None]) -> list[dict[str, str]]:
    """The bulk rules (SPEC §5) for the contact fields, via the one rule set."""
    given = {name: value for name, value in contact.items() if value is not None}
    if not given:
        return []
    values = {"ParticipantID": participant.participant_id, **given}
    written = {"ParticipantID": "participantId", **{name: name for name in given}}
    found = rules.check_record(values, written, id_method=study.participant_id_method)
    return [e.as_dict() for e in found if e.column != "participantId"]


def _clean_pmis(
    session: Session, study: Study, pmis: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Each MRN with its site (by name, or by OID, case-insensitive); one MRN per site per request."""
    sites = list(session.scalars(select(Site).where(Site.study_id == study.id).order_by(Site.id)))
    by_name = {s.name.strip().casefold(): s for s in sites}
    by_oid = {s.oid_key: s for s in sites}
    out: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    seen_sites: set[int] = set()
    for pmi in pmis:
        mrn, site_name = _text(pmi.get("mrn")), _text(pmi.get("siteName"))
        if mrn is None and site_name is None:
            continue  # an empty row, as form-based clients send
        site = None
        if site_name is not None:
            site = by_name.get(site_name.casefold()) or by_oid.get(oid_key(site_name))
        if site is None:
            errors.append(error(codes.SITE_NOT_FOUND, "pmis"))
        mrn_error = (
            codes.MRN_REQUIRED
            if mrn is None
            else codes.MRN_TOO_LONG
            if _too_long(mrn, MRN_MAX)
            else codes.UNSUPPORTED_CHARACTER
            if rules.has_control_character(mrn)
            else None
        )
        if mrn_error is not None:
            errors.append(error(mrn_error, "pmis"))
        if site is None or mrn_error is not None:
            continue  # only well-formed MRNs go on to the uniqueness checks
        if site.id in seen_sites:
            errors.append(error(codes.DUP_MRN_SITE, "pmis"))
            continue
        seen_sites.add(site.id)
        out.append({"mrn": mrn, "siteName": site.name, "siteId": site.id})
    return out, _dedupe(errors)


def _dedupe(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """The same code once per field: five unknown sites are one SITE_NOT_FOUND."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in errors:
        if (e["code"], e["column"]) not in seen:
            seen.add((e["code"], e["column"]))
            out.append(e)
    return out


def record_errors(record: Mapping[str, Any], judged: set[str]) -> list[dict[str, str]]:
    """Rules across fields, on the record as it would be after the change. Fields in `judged` already
    have an error of their own (e.g. an unparseable date) and are not judged again."""
    errors: list[dict[str, str]] = []
    birth, death, now = record.get("birthDate"), record.get("deathDate"), today()
    if "birthDate" not in judged and birth is not None and birth > now:
        errors.append(error(codes.INVALID_BIRTH_DATE, "birthDate"))
    if "deathDate" not in judged and death is not None:
        not_dead = "vitalStatus" not in judged and record.get("vitalStatus") != DEAD
        if death > now or (birth is not None and death < birth) or not_dead:
            errors.append(error(codes.INVALID_DEATH_DATE, "deathDate"))
    return errors


def uniqueness_errors(
    session: Session, study: Study, participant: Participant, values: Mapping[str, Any]
) -> list[dict[str, str]]:
    """uid and empi unique in the study, each MRN unique at its site — among other participants,
    removed ones included (their records still exist). Only values being set are checked."""
    errors: list[dict[str, str]] = []
    others = (Participant.study_id == study.id, Participant.id != participant.id)
    for name, column, code in (
        ("uid", Participant.uid_key, codes.DUP_UID),
        ("empi", Participant.empi_key, codes.DUP_EMPI),
    ):
        value = values.get(name)
        if value and session.scalar(select(Participant.id).where(*others, column == key(value)).limit(1)) is not None:
            errors.append(error(code, name))
    wanted = {(p["siteId"], key(p["mrn"])) for p in values.get("pmis") or ()}
    if wanted:
        # IN on both columns may pair one MRN's site with another's key: keep exact pairs only.
        rows = session.execute(
            select(ParticipantMrn.site_id, ParticipantMrn.mrn_key).where(
                ParticipantMrn.participant_id != participant.id,
                ParticipantMrn.site_id.in_({site for site, _ in wanted}),
                ParticipantMrn.mrn_key.in_({mrn for _, mrn in wanted}),
            )
        ).all()
        if {(site, mrn) for site, mrn in rows} & wanted:
            errors.append(error(codes.DUP_MRN, "pmis"))
    return errors
