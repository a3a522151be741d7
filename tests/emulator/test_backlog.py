"""A burst of 64 connections, as `plan --parallelism 64` opens them: the emulator
accepts each at once (socketserver's default queue of 5 dropped most; each was retried a
second later by the kernel, or timed out)."""

import socket
import threading

from plansync.emulator.server import Emulator


def test_a_burst_of_64_connections_is_accepted_at_once(emulator: Emulator) -> None:
    host, port = emulator.server.server_address[:2]
    go = threading.Barrier(64)
    failures: list[str] = []

    def connect() -> None:
        go.wait()
        try:  # shorter than the kernel's first SYN retransmit (1 s): a dropped SYN fails
            with socket.create_connection((str(host), port), timeout=0.8) as sock:
                sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                sock.settimeout(0.8)
                if not sock.recv(12).startswith(b"HTTP/1."):
                    failures.append("no answer")
        except OSError as exc:
            failures.append(type(exc).__name__)

    threads = [threading.Thread(target=connect) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
