"""The emulator's gateway as a Transport, in this process: the real client and envelope,
no sockets and no threads of its own, and faults scripted per request. Stands in for the
network only; for what the wire does, the tests use the emulator over HTTP."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from plansync.emulator import home
from plansync.emulator.gateway import EmulatedGateway, Items
from plansync.emulator.store import PlanStore
from plansync.gateway import messages
from plansync.gateway.transport import Answer, AnswerLost, NotSent

# What can happen to one request, scripted by (plan id, process type):
REFUSED = "refused"  # the connection is refused: nothing reaches the gateway
LOST = "lost"  # the gateway does the work; its answer never arrives
LATE = "late"  # no answer; the gateway does the work only when commit_late() is called
NOT_FOUND = "not-found"  # answered 16 "transaction does not exist", nothing done
PASS = "pass"  # handled as usual: lets a script strike a later request of the same kind


class InProcessGateway:
    def __init__(self, folder: Path) -> None:
        plans = home.load_seed(folder / home.SEED)
        self.store = PlanStore()
        self.store.load(plans)
        self.gateway = EmulatedGateway(self.store, {plan.merchant_id for plan in plans})
        self.envelope = home.gateway_envelope(folder)
        self.faults: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        self.done: list[tuple[str, str, str]] = []  # (plan, process type, respCode) handled
        self._late: list[dict[str, str]] = []

    def script(self, plan_id: str, process_type: str, *faults: str) -> None:
        """The next requests of this kind meet these faults, one each, in order."""
        self.faults[(plan_id, process_type)].extend(faults)

    def post(self, body: bytes, before: Callable[[], float | None] | None = None) -> Answer:
        if before is not None:
            before()
        request = messages.parse_flat(self.envelope.open(body), messages.REQUEST_ROOT)
        asked = (request["recurringUniqueID"], request["processType"])
        fault = self.faults[asked].pop(0) if self.faults[asked] else None
        if fault == REFUSED:
            raise NotSent("connection refused")
        if fault == LATE:
            self._late.append(request)
            raise AnswerLost("connection reset")
        if fault == NOT_FOUND:
            items = [(tag, request.get(tag, "")) for tag in
                     ("version", "timeStamp", "merchantID", "recurringUniqueID")]
            items += [("respCode", "16"), ("respReason", "Transaction does not exist")]
            self.done.append((*asked, "16"))
        else:
            items = self._handle(request)
        if fault == LOST:
            raise AnswerLost("connection reset")
        answer = self.envelope.seal(messages.build_xml(messages.RESPONSE_ROOT, items))
        return Answer(200, answer.encode("ascii"), None)

    def abort(self) -> None:
        pass  # answers come at once: nothing is ever in flight to cut off

    def cut(self, why: str) -> None:
        pass

    def commit_late(self) -> None:
        for request in self._late:
            self._handle(request)
        self._late.clear()

    def writes(self, plan_id: str) -> list[tuple[str, str]]:
        """The updates and cancels of this plan the gateway handled: (type, respCode)."""
        return [(kind, code) for plan, kind, code in self.done
                if plan == plan_id and kind in ("U", "C")]

    def set_live(self, plan_id: str, **fields: str) -> None:
        """Change a plan behind plansync's back, as someone in 2C2P's portal would."""
        self.gateway.handle({"version": "2.4", "merchantID": "JT01", "processType": "U",
                             "recurringUniqueID": plan_id, **fields})

    def close(self) -> None:
        self.store.close()

    def _handle(self, request: dict[str, str]) -> Items:
        items = self.gateway.handle(request)
        self.done.append((request["recurringUniqueID"], request["processType"],
                          dict(items)["respCode"]))
        return items
