"""Run one function over many items on a few threads, with bounded work in flight."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def workers_for(parallelism: int) -> int:
    """How many threads keep ``parallelism`` requests in flight: a quarter more. While
    every connection carries a request, the extra threads seal the next requests and
    open the last answers (about 2 ms of CPU each), so no connection waits for that
    work. The client's blocking pool (``parallelism`` connections) still caps requests
    in flight."""
    return parallelism + (parallelism + 3) // 4


def bounded_map(function: Callable[[T], R], items: Iterable[T], parallelism: int,
                on_abort: Callable[[], None] | None = None) -> Iterator[tuple[T, R]]:
    """Yield (item, result) as each finishes. At most ``2 * parallelism`` items are
    submitted and not yet yielded, so memory does not grow with the number of items.
    ``function`` should return expected failures rather than raise them; anything it
    raises is raised here after the work in flight is finished. Interrupted (a signal,
    an error), nothing more starts and ``on_abort`` cuts the work in flight short, so
    that the wait for it is short too."""
    # Finished futures arrive on a queue: O(1) per item, where concurrent.futures.wait
    # would register a waiter on every pending future for every item collected.
    finished: queue.SimpleQueue[Future[R]] = queue.SimpleQueue()
    pending: dict[Future[R], T] = {}

    def collect() -> tuple[T, R]:
        future = finished.get()
        return pending.pop(future), future.result()

    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="plansync") as pool:
        try:
            for item in items:
                if len(pending) >= 2 * parallelism:
                    yield collect()
                future = pool.submit(function, item)
                pending[future] = item
                future.add_done_callback(finished.put)
            while pending:
                yield collect()
        except GeneratorExit:  # a consumer that stops early: start nothing more
            for future in pending:
                future.cancel()
            raise
        except BaseException:
            for future in pending:
                future.cancel()
            if on_abort is not None:
                on_abort()
            raise
