"""The emulator's HTTP face: 2C2P's action endpoint, admin endpoints, and faults.

    POST /2C2PFrontend/PaymentAction/2.0/action   (and /PaymentAction/2.0/action)
    GET  /_emulator/plans   GET /_emulator/log   POST /_emulator/reset
    GET|PUT /_emulator/faults                      (admin: loopback clients only)
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import ipaddress
import json
import math
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from plansync.emulator import home
from plansync.emulator.faults import Dice, Faults
from plansync.emulator.gateway import EmulatedGateway
from plansync.emulator.jose import GatewayKeys
from plansync.emulator.store import PlanStore, StoredPlan
from plansync.errors import EnvelopeError, MessageError
from plansync.gateway import assumptions, messages

ACTION_PATHS = (home.ACTION_PATH, "/PaymentAction/2.0/action")
ADMIN_BODY_LIMIT = 64 * 1024


class EmulatorServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # a restarted emulator can take its port back at once
    daemon_threads = False  # only non-daemon handler threads are joined by server_close()
    block_on_close = True  # server_close() waits for handlers, so the store outlives them
    # Connections waiting to be accepted: a client at --parallelism 64 opens 64 at once,
    # and socketserver's 5 would drop most of them (each retried a second later).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], gateway: EmulatedGateway,
                 keys: GatewayKeys, seed_plans: Sequence[StoredPlan],
                 faults: Faults) -> None:
        super().__init__(address, _Handler)
        self.gateway = gateway
        self.keys = keys
        self.seed_plans = list(seed_plans)
        self.set_faults(faults)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # The first answer sent per merchant, plan and process type: what the replay
        # fault sends.
        self.answers: dict[tuple[str, str, str], bytes] = {}
        self.late_writes: list[threading.Timer] = []

    def set_faults(self, faults: Faults) -> None:
        self.dice = Dice(faults)
        self.gateway.cancelled_code = faults.cancelled_code  # a variant, set with the faults

    def commit_later(self, request: dict[str, str], delay: float) -> None:
        """A write the gateway commits after the client stopped waiting for it."""
        def commit() -> None:
            items = self.gateway.handle(request)
            self.gateway.store.record(request["merchantID"], request["processType"],
                                      request["recurringUniqueID"], dict(items)["respCode"],
                                      "late-commit")

        timer = threading.Timer(delay, commit)
        timer.daemon = True
        self.late_writes.append(timer)
        timer.start()

    def stop_late_writes(self) -> None:
        """Writes not committed yet never will be (the gateway went away); the others are
        waited for, so none touches the store after it closes."""
        for timer in self.late_writes:
            timer.cancel()
            timer.join()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections, so that their handler threads can finish."""
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | OSError):
            super().handle_error(request, client_address)  # a bug in the emulator: show it

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def action_url(self) -> str:
        return self.base_url + home.ACTION_PATH

    def reset(self) -> int:
        self.gateway.store.load(self.seed_plans, clear=True)
        return len(self.seed_plans)


def build(folder: Path, seed: Path | None = None, host: str = "127.0.0.1", port: int = 0,
          db: str | None = None, faults: Faults | None = None) -> EmulatorServer:
    """An emulator for the keys in ``folder``; the seed is loaded into a new database."""
    seed_path = seed or folder / home.SEED
    plans = home.load_seed(seed_path) if seed_path.exists() or seed else []
    keys = home.gateway_keys(folder)
    store = PlanStore(db or ":memory:")
    if store.is_empty():
        store.load(plans)
    merchants = {plan.merchant_id for plan in plans} | store.merchant_ids() | keys.merchants
    return EmulatorServer((host, port), EmulatedGateway(store, merchants), keys, plans,
                          faults or Faults())


@functools.cache
def _stranger_key() -> rsa.RSAPrivateKey:
    """Signs answers "from someone else": made here, known to nobody, made once."""
    return rsa.generate_private_key(65537, 2048)


class Emulator:
    """An emulator serving on a background thread: for tests, the demo and `exec`."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        # A short poll interval lets stop() return promptly (tests start many emulators).
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name="emulator", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, folder: Path, **options: Any) -> Emulator:
        return cls(build(folder, **options))

    @property
    def url(self) -> str:
        return self.server.action_url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.close_connections()
        self.server.server_close()
        self.server.stop_late_writes()
        self.server.gateway.store.close()
        self._thread.join()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve(server: EmulatorServer) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    emulator = Emulator(server)
    print(f"plansync emulator listening on {server.base_url}", flush=True)
    while not stop.wait(0.5):
        pass
    emulator.stop()
    print("plansync emulator stopped", file=sys.stderr, flush=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    """The standard library's HTTP/1.1 server: keep-alive (HTTP/1.1 default), and each
    answer, headers and body, buffered and flushed in one write."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # each answer is one write; send it at once
    wbufsize = 1 << 16  # flushed after every request by BaseHTTPRequestHandler
    server_version = "plansync-emulator"
    sys_version = ""
    server: EmulatorServer
    _answer_at = 0.0

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are logged in the store (GET /_emulator/log), not on stderr

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] in ACTION_PATHS:
            body = self._body(assumptions.MAX_TOKEN_BYTES)
            if body is not None:
                self._action(body)
        else:
            self._other("POST")

    def do_GET(self) -> None:
        self._other("GET")

    def do_PUT(self) -> None:
        self._other("PUT")

    def _other(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        if not path.startswith("/_emulator/"):
            self.close_connection = True  # its body, if any, is left unread
            self._send(404, b"not found\n")
        elif not ipaddress.ip_address(self.client_address[0]).is_loopback:
            self.close_connection = True
            self._send(403, b"admin endpoints answer loopback clients only\n")
        else:
            body = self._body(ADMIN_BODY_LIMIT)
            if body is not None:
                self._admin(method, path, body)

    def _body(self, limit: int) -> bytes | None:
        """The request's body by its Content-Length (none: no body, RFC 9112 6.3), or
        None after answering a request whose body cannot be read safely."""
        lengths = self.headers.get_all("Content-Length") or []
        problem = None
        if "Transfer-Encoding" in self.headers:  # not decoded here: refused, not misread
            problem = 411, "send the body with a Content-Length"
        elif len(set(lengths)) > 1:
            problem = 400, "conflicting Content-Length headers"
        elif lengths and not lengths[0].strip().isdigit():
            problem = 400, "Content-Length is not a number"
        elif lengths and int(lengths[0]) > limit:
            problem = 413, "request too large"
        if problem is not None:
            self.close_connection = True
            self._send(problem[0], f"{problem[1]}\n".encode())
            return None
        length = int(lengths[0]) if lengths else 0
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True  # the client went away mid-body
            return None
        return body

    def _admin(self, method: str, path: str, body: bytes) -> None:
        if (method, path) == ("GET", "/_emulator/plans"):
            self._send_json(200, [
                {"merchantID": p.merchant_id, "recurringUniqueID": p.plan_id,
                 "cancelled": p.cancelled, **p.fields}
                for p in self.server.gateway.store.all()])
        elif (method, path) == ("GET", "/_emulator/log"):
            self._send_json(200, self.server.gateway.store.log())
        elif (method, path) == ("POST", "/_emulator/reset"):
            self._send_json(200, {"plans": self.server.reset()})
        elif (method, path) == ("GET", "/_emulator/faults"):
            self._send_json(200, vars(self.server.dice.faults))
        elif (method, path) == ("PUT", "/_emulator/faults"):
            self._set_faults(body)
        else:
            self._send(404, b"not found\n")

    def _set_faults(self, body: bytes) -> None:
        try:
            faults = Faults.from_mapping(json.loads(body or b"{}"))
        except (ValueError, TypeError, AttributeError) as exc:
            self._send_json(400, {"error": str(exc)})
            return
        self.server.set_faults(faults)
        self._send_json(200, vars(faults))

    # --- the action endpoint --------------------------------------------------------

    def _action(self, body: bytes) -> None:
        roll = self.server.dice.roll()
        # The latency is the gateway's response time: the work below happens within it,
        # and the answer leaves when it is up (see _hold), as a real gateway's would.
        self._answer_at = time.monotonic() + roll.delay
        try:
            unverified = self.server.keys.decrypt(body)
        except EnvelopeError as exc:
            self._record({}, "96")
            self._send(400, f"96 Unable to decrypt the request: {exc.message}\n".encode())
            return
        try:
            request = messages.parse_flat(unverified.content, messages.REQUEST_ROOT)
            unreadable = None
        except MessageError as exc:
            request, unreadable = {}, exc.message
        # Verified with the key of the merchant the request names: merchant A's key
        # cannot speak for merchant B.
        merchant_id = request.get("merchantID", "")
        envelope = self.server.keys.envelope(merchant_id)
        if envelope is None:  # no key to verify with, nor to encrypt an answer to
            code, reason = (("02", f"Invalid request: {unreadable}") if unreadable else
                            ("03", f"Invalid merchant: no key is registered for merchantID "
                                   f"{merchant_id!r}"))
            self._record(request, code)
            self._send(400, f"{code} {reason}\n".encode())
            return
        try:
            envelope.verify(unverified)
        except EnvelopeError as exc:
            self._record(request, "96")
            self._send(400, f"96 Unable to decrypt the request of merchantID {merchant_id!r}: "
                            f"{exc.message}\n".encode())
            return
        if unreadable:
            items = [("version", "2.4"), ("respCode", "02"),
                     ("respReason", f"Invalid request: {unreadable}")]
        else:
            # These faults strike before the gateway does anything with the request.
            if roll.reset or roll.throttle or roll.error:
                self._unprocessed(request, roll.reset, roll.throttle)
                return
            if roll.late_commit and request.get("processType") in ("U", "C"):
                faults = self.server.dice.faults
                self.server.commit_later(request, faults.late_commit_ms / 1000)
                self._record(request, "", "late")
                self._reset_connection()  # no answer now; the write lands later
                return
            items = self.server.gateway.handle(request)
        code = dict(items)["respCode"]
        if roll.commit_error and request.get("processType") in ("U", "C"):
            self._record(request, code, "commit-error")
            self._send(400, b"Bad Request\n")  # the write is done; the answer says refused
            return
        if roll.drop and request.get("processType") in ("U", "C"):
            self._record(request, code, "drop")
            self._reset_connection()  # the write is done; its answer is lost
            return
        xml = messages.build_xml(messages.RESPONSE_ROOT, items)
        if roll.malformed:
            xml = xml[: len(xml) // 2]
        if roll.wrong_key:
            envelope = envelope.signed_by(_stranger_key())
        fault = "malformed" if roll.malformed else "wrong_key" if roll.wrong_key else None
        answer = envelope.seal(xml).encode("ascii")
        asked = (merchant_id, request.get("recurringUniqueID", ""),
                 request.get("processType", ""))
        earlier = self.server.answers.setdefault(asked, answer)
        if roll.replay and earlier is not answer:
            answer, fault = earlier, "replay"  # validly signed, but not this request's
        self._record(request, code, fault)
        self._send(200, answer)

    def _unprocessed(self, request: dict[str, str], reset: bool, throttle: bool) -> None:
        if reset:
            self._record(request, "", "reset")
            self._reset_connection()
        elif throttle:
            self._record(request, "", "throttle")
            # Whole seconds: RFC 9110's delay-seconds (a fraction is no valid Retry-After).
            retry_after = str(math.ceil(self.server.dice.faults.retry_after_s))
            self._send(429, b"Too Many Requests\n", headers={"Retry-After": retry_after})
        else:
            self._record(request, "", "error")
            self._send(500, b"Internal Server Error\n")

    def _record(self, request: dict[str, str], code: str, fault: str | None = None) -> None:
        self.server.gateway.store.record(request.get("merchantID", ""),
                                         request.get("processType", ""),
                                         request.get("recurringUniqueID", ""), code, fault)

    # --- plumbing -------------------------------------------------------------------

    def _hold(self) -> None:
        """Wait until the answer to the request being handled is due."""
        wait = self._answer_at - time.monotonic()
        self._answer_at = 0.0
        if wait > 0:
            time.sleep(wait)

    def _reset_connection(self) -> None:
        self._hold()
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _send_json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, indent=1).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str = "text/plain",
              headers: dict[str, str] | None = None) -> None:
        self._hold()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)  # buffered with the headers: one write at the flush
