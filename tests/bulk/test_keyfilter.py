"""The in-file duplicate check's filter (roster.bulk.keyfilter): it may say "maybe" of a new key, never
"no" of a key it was given, and it spares the log's lookup for files without repeated IDs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from roster.bulk.keyfilter import KeyFilter
from tests.bulk.conftest import csv_of, outcomes
from tests.sinks import hooked


@given(st.lists(st.lists(st.text(max_size=12), max_size=20), max_size=20))
def test_a_key_given_before_is_always_maybe_seen(batches):
    keys_filter, given_before = KeyFilter(), set()
    for batch in batches:
        maybe = keys_filter.maybe_seen(batch)
        # Keys repeated within a call count as given before from their second occurrence on.
        earlier, expected = set(given_before), []
        for key in batch:
            if key in earlier:
                expected.append(key)
            earlier.add(key)
        assert set(expected) <= set(maybe)
        given_before |= set(batch)


def test_new_keys_are_almost_never_taken_for_seen():
    keys_filter = KeyFilter()
    keys = [f"p-{i:06d}" for i in range(100_000)]
    maybe = [k for start in range(0, len(keys), 1000) for k in keys_filter.maybe_seen(keys[start : start + 1000])]
    # Expected about 5 in 100,000 (two probes in 2**24 bits); a broken filter says "maybe" to thousands.
    assert len(maybe) < 200


def test_a_file_without_repeated_ids_never_asks_the_log_and_one_with_them_does(bulk):
    bulk.settings = bulk.settings.model_copy(update={"batch_size": 2})
    asked: list[list[str]] = []

    def spy(_job, plan):
        if plan.asked:
            asked.append(sorted(plan.asked))

    sinks = hooked(planned=spy)
    job, log = bulk.run(csv_of(*(f"K-{i},N,,,," for i in range(1, 8))), sinks)
    assert outcomes(log) == ["created"] * 7 and asked == []
    job, log = bulk.run(csv_of("R-1,N,,,,", "R-2,N,,,,", "R-3,N,,,,", "r-1,N,,,,", "R-4,N,,,,"), sinks)
    assert outcomes(log) == ["created", "created", "created", "failed", "created"]
    assert asked == [["r-1"]]
