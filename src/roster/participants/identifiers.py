"""Identifiers the writer makes (SPEC §5): system participant IDs from the study's template, OIDs, and
Participate access codes."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection, Mapping

from roster.participants.models import participant_key
from roster.participants.rules import PARTICIPANT_ID_MAX

# No 0/O, 1/I/L, and no lower case: codes are read aloud and typed from paper.
ACCESS_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
ACCESS_CODE_LENGTH = 9
# A generated ID is held to the ID's limit (roster.participants.fields) as a given one is.
MAX_ID_LENGTH = PARTICIPANT_ID_MAX
OID_PREFIX = "SS_"
# Leaves room for a "_NNN" suffix within the 80-character column.
OID_BASE_LENGTH = 70
_NOT_ALNUM = re.compile(r"[^A-Z0-9]+")


class IdGenerator:
    """System IDs from the study's template: one run of '#' is the counter, zero-padded to the run's
    width and growing past it. Numbers whose ID already exists in the study are skipped (and used up)."""

    PREFETCH = 64

    def __init__(self, existing_keys: Callable[[Collection[str]], set[str]], template: str, counter: int) -> None:
        run = re.search("#+", template)
        assert run is not None, "a template has a run of #"
        self.prefix, self.suffix, self.width = template[: run.start()], template[run.end() :], run.end() - run.start()
        self.existing_keys = existing_keys  # which of some ID keys the study has
        self.counter = counter  # the last number used; the first ID is number 1
        self.checked_to = counter  # numbers up to here have been looked up in the database
        self.existing: set[str] = set()
        self.pending: tuple[int, str] | None = None

    def format(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.width}d}{self.suffix}"

    def peek(self, live: Mapping[str, object], expected: int) -> str:
        """The next free ID (not yet used up: `take()` does that once the record is accepted)."""
        number = self.counter
        while True:
            number += 1
            if number > self.checked_to:
                self._prefetch(number, max(expected, 1) + self.PREFETCH)
            candidate = self.format(number)
            key = participant_key(candidate)
            if key not in self.existing and key not in live:
                self.pending = (number, candidate)
                return candidate

    def take(self) -> None:
        assert self.pending is not None, "take() follows peek()"
        self.counter = self.pending[0]
        self.pending = None

    def _prefetch(self, start: int, count: int) -> None:
        keys = [participant_key(self.format(n)) for n in range(start, start + count)]
        self.existing.update(self.existing_keys(keys))
        self.checked_to = start + count - 1


def new_access_code() -> str:
    return "".join(secrets.choice(ACCESS_CODE_ALPHABET) for _ in range(ACCESS_CODE_LENGTH))


def oid_base(participant_id: str) -> str:
    """`SS_` + the ID upper-cased with everything but ASCII letters and digits dropped."""
    return OID_PREFIX + _NOT_ALNUM.sub("", participant_id.upper())[: OID_BASE_LENGTH - len(OID_PREFIX)]
