"""One run of every fault schedule against three real nodes (cluster_checker.py): no
acknowledged record lost, no duplicate from the idempotent producer, one value per
offset, offsets in order. `python3 tests/python/soak.py` repeats them."""
import tempfile

import pytest

import cluster_checker


@pytest.mark.parametrize("schedule", sorted(cluster_checker.SCHEDULES))
def test_fault_schedule_loses_nothing(schedule):
    with tempfile.TemporaryDirectory() as tmp:
        r = cluster_checker.run(tmp, schedule)
    assert r["acknowledged"] > 100, r
    assert (r["lost"], r["duplicated"], r["inconsistent"], r["non_monotonic"]) == (0, 0, 0, 0), r


def test_the_checker_counts_what_goes_wrong():
    acked = {"a": (0, 0, True), "b": (0, 1, True), "c": (0, 2, False), "lost": (1, 0, True)}
    final = [(0, 0, "a"), (0, 1, "b"), (0, 1, "b"), (0, 2, "c"), (1, 5, "x")]
    live = [(0, 2, "other")]
    r = cluster_checker.tally("synthetic", acked, final, live)
    assert (r["lost"], r["duplicated"], r["inconsistent"], r["non_monotonic"], r["unseen"]) == (1, 1, 1, 1, 1), r
