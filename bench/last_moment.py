"""How wide is the window fencing cannot close? The time from the applier's last-moment
check (stop asked for? lock still held?) to the write's bytes being handed to the kernel.
A process frozen inside it, or a gateway committing later than the settle window, is the
one way a write can be sent twice; everything else is checked.

    python bench/last_moment.py [--writes 2000] [--parallelism 8]

Runs the emulator on loopback in a process of its own (as the gateway is), sends updates
through the real client and transport with the check in place, and times check → first
socket send of each request (http.client's ``send``: the request line, headers and body
go to the kernel there).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

from plansync.config import Gateway
from plansync.emulator import home
from plansync.emulator.server import Emulator
from plansync.fields import PlanFields
from plansync.gateway.client import GatewayClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--parallelism", type=int, default=8)
    args = parser.parse_args()
    checked = threading.local()
    gaps: list[float] = []
    original_send = http.client.HTTPConnection.send

    def timed_send(self: http.client.HTTPConnection, data: bytes) -> None:
        started = getattr(checked, "at", None)
        if started is not None:
            gaps.append(time.perf_counter() - started)
            checked.at = None
        original_send(self, data)

    http.client.HTTPConnection.send = timed_send  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as folder:
        home.init(Path(folder))
        urls: multiprocessing.Queue[str] = multiprocessing.Queue()
        server = multiprocessing.Process(target=_serve, args=(folder, urls), daemon=True)
        server.start()
        try:
            url = urls.get(timeout=30)
            settings = Gateway(endpoint=url, merchant_id="JT01",
                                merchant_key=Path(folder) / home.MERCHANT_PRIVATE,
                                gateway_key=Path(folder) / home.GATEWAY_PUBLIC)
            with GatewayClient.over_http(settings.endpoint, settings.merchant_id,
                                         settings.envelope(),
                                         pool_size=args.parallelism) as client:
                live = client.inquire("156142")

                def one(i: int) -> None:
                    amount = Decimal(100 + i % 50)
                    write = client.update_write("156142", PlanFields(amount=amount),
                                                live.currency)

                    def check() -> None:  # what the applier's check costs is measured too
                        checked.at = time.perf_counter()

                    client.send(write, check)

                with ThreadPoolExecutor(args.parallelism) as pool:
                    list(pool.map(one, range(args.writes)))
        finally:
            server.terminate()
    gaps_us = sorted(gap * 1e6 for gap in gaps)
    quantile = statistics.quantiles(gaps_us, n=100)
    print(f"{len(gaps_us)} writes, parallelism {args.parallelism}: check -> bytes to the "
          f"kernel: median {statistics.median(gaps_us):.0f} us, p99 {quantile[98]:.0f} us, "
          f"max {gaps_us[-1]:.0f} us")


def _serve(folder: str, urls: multiprocessing.Queue[str]) -> None:
    with Emulator.start(Path(folder)) as emulator:
        urls.put(emulator.url)
        threading.Event().wait()


if __name__ == "__main__":
    main()
