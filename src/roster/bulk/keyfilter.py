"""Which of a batch's ID keys may have occurred in an earlier row of the job (the in-file duplicate check).

The job's log entries are the record of earlier rows' IDs (roster.bulk.importer), and asking them about a
batch's 1,000 keys costs a lookup per key on the path that decides the next batch. A Bloom filter of fixed
size, fed every key this worker has decided, answers "certainly not" for almost every new key, so only the
others are asked. The filter only ever errs towards "maybe", which the log then answers, so a duplicate is
never missed; its size does not grow with the file (its false "maybe" rates: bench/HISTORY.md).
"""

from __future__ import annotations

from collections.abc import Iterable

# 2**24 bits (2 MiB) and two probes per key: false "maybe"s stay rare up to a million keys.
_BITS = 24
_MASK = (1 << _BITS) - 1


class KeyFilter:
    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits = bytearray(1 << (_BITS - 3))

    def maybe_seen(self, keys: Iterable[str]) -> list[str]:
        """The keys that may have been given before (to this method), in order; records them all."""
        bits = self._bits
        maybe = []
        for key in keys:
            # Two probes from the halves of the interpreter's string hash (stable within the process,
            # which is the filter's whole life).
            h = hash(key)
            a, b = h & _MASK, (h >> 32) & _MASK
            ia, ma, ib, mb = a >> 3, 1 << (a & 7), b >> 3, 1 << (b & 7)
            if bits[ia] & ma and bits[ib] & mb:
                maybe.append(key)
            else:
                bits[ia] |= ma
                bits[ib] |= mb
        return maybe
