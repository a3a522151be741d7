"""Run one function over many items on a few threads, with bounded work in flight."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(function: Callable[[T], R], items: Iterable[T], parallelism: int
                ) -> Iterator[tuple[T, R]]:
    """Yield (item, result) as each finishes. At most ``2 * parallelism`` items are
    submitted and not yet yielded, so memory does not grow with the number of items.
    ``function`` should return expected failures rather than raise them; anything it
    raises is raised here after the work in flight is finished."""
    pending: dict[Future[R], T] = {}
    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="plansync") as pool:
        for item in items:
            if len(pending) >= 2 * parallelism:
                yield from _collect(pending)
            pending[pool.submit(function, item)] = item
        while pending:
            yield from _collect(pending)


def _collect(pending: dict[Future[R], T]) -> Iterator[tuple[T, R]]:
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    for future in done:
        item = pending.pop(future)
        yield item, future.result()
