"""What a well-formed value looks like, as predicates on one trimmed string: control characters, the
ParticipantID's markup ban, email syntax and the mobile pattern. The field table (`fields`) names which
field takes which; the rules (`rules`) decide order and codes. Decisions are in `rules`' docstring.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# '+', 1–3 ASCII digits, one space, 1–14 ASCII digits ([0-9], not \d: \d matches every script's digits).
MOBILE_PATTERN = re.compile(r"\+[0-9]{1,3} [0-9]{1,14}")
# The email check's fast path: an RFC 5322 dot-atom local part of ASCII characters (email-validator's own
# pattern) and an ASCII host name, whose verdict is cached per domain. Anything else goes to email-validator.
_ATEXT = r"[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]"
_PLAIN_LOCAL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_PLAIN_DOMAIN = re.compile(r"[A-Za-z0-9.\-]+")
_EMAIL_MAX_OCTETS = 254  # email-validator's limit on the whole address (RFC 3696 errata 1690)
_DOMAIN_CACHE_SIZE = 4096


def has_control_character(value: str) -> bool:
    # isprintable() is a C fast path: every character we reject is non-printable.
    return not value.isprintable() and CONTROL_CHARACTERS.search(value) is not None


def has_no_markup(value: str) -> bool:
    """No `<` or `>`: a ParticipantID is shown on pages and in files that other tools render."""
    return "<" not in value and ">" not in value


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
    """email-validator's verdict (syntax only, no network). Its full run is slow, mostly on the domain, so
    plain addresses take a fast path with the domain's verdict cached; the outcome is the same."""
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
