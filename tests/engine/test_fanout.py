"""bounded_map: every item once, results as they finish, and never too much in flight."""

import threading
import time

import pytest

from plansync.engine.fanout import bounded_map


def test_every_item_is_mapped_once() -> None:
    got = dict(bounded_map(lambda n: n * n, range(500), parallelism=7))
    assert got == {n: n * n for n in range(500)}


def test_work_in_flight_is_bounded_by_twice_the_parallelism() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            started.append(n)
        time.sleep(0.001)
        return n

    most_ahead = 0
    for yielded, _ in enumerate(bounded_map(work, range(200), parallelism=4), 1):
        with lock:
            most_ahead = max(most_ahead, len(started) - yielded)
    assert sorted(started) == list(range(200))
    assert most_ahead < 2 * 4


def test_a_failure_is_raised_and_nothing_more_is_started() -> None:
    started: list[int] = []

    def work(n: int) -> int:
        started.append(n)
        if n == 3:
            raise ValueError("boom")
        time.sleep(0.002)
        return n

    with pytest.raises(ValueError, match="boom"):
        for _ in bounded_map(work, range(1000), parallelism=2):
            pass
    assert len(started) < 20  # the rest of the 1,000 were never submitted or were cancelled
