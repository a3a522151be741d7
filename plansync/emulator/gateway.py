"""What the emulated gateway answers to a decrypted request: the 2C2P semantics,
without HTTP or cryptography.

Inquiry returns the record; update changes the fields it carries; cancel is final
(later inquiries say recurringStatus N, later updates and cancels answer 12, or 16 where
the emulator is told to behave as a gateway that no longer finds cancelled plans).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

from plansync import formats
from plansync.emulator.store import PlanStore, StoredPlan

Items = list[tuple[str, str]]

_COMPULSORY = ("version", "merchantID", "recurringUniqueID", "processType")
_PLAN_ID_RE = re.compile(r"[0-9]{1,20}")
_TIMESTAMP_RE = re.compile(r"[0-9]{12}")
_RECORD_ORDER = ("recurringStatus", "invoicePrefix", "currency", "amount", "maskedCardNo",
                 "allowAccumulate", "maxAccumulateAmount", "recurringInterval",
                 "recurringCount", "currentCount", "chargeNextDate", "chargeOnDate")


def _yes_no(text: str) -> None:
    if text not in ("Y", "N"):
        raise ValueError("must be Y or N")


def _amount(text: str) -> None:
    formats.amount_from_wire(text, 0)


def _interval(text: str) -> None:
    if not text.isdigit() or not 1 <= int(text) <= 365:
        raise ValueError("must be a number of days from 1 to 365")


def _count(text: str) -> None:
    if not text.isdigit() or int(text) > 99999:  # N 5
        raise ValueError("must be a whole number up to 99999, 0 for until cancelled")


def _spec_date(text: str) -> None:
    if not re.fullmatch(r"[0-9]{8}", text):
        raise ValueError("must be DDMMYYYY")
    datetime.strptime(text, "%d%m%Y")


# The fields an update may carry, and how each is checked (ValueError → respCode 11).
UPDATABLE: dict[str, Callable[[str], object]] = {
    "recurringStatus": _yes_no,
    "amount": _amount,
    "allowAccumulate": _yes_no,
    "maxAccumulateAmount": _amount,
    "recurringInterval": _interval,
    "recurringCount": _count,
    "chargeNextDate": _spec_date,
    "chargeOnDate": formats.check_day_month,
}


class EmulatedGateway:
    def __init__(self, store: PlanStore, merchants: Collection[str]) -> None:
        self.store = store
        self.merchants = frozenset(merchants)
        self.cancelled_code = "12"  # what a write of a cancelled plan answers: 12 or 16

    def handle(self, request: Mapping[str, str]) -> Items:
        missing = [tag for tag in _COMPULSORY if not request.get(tag)]
        if missing:
            return _result(request, "10", f"Missing compulsory values: {', '.join(missing)}")
        process_type = request["processType"]
        if process_type not in ("I", "U", "C"):
            return _result(request, "17", f"Invalid request type {process_type}")
        if request["merchantID"] not in self.merchants:
            return _result(request, "03", "Invalid merchant")
        if not _PLAN_ID_RE.fullmatch(request["recurringUniqueID"]):
            return _result(request, "11", "recurringUniqueID must be up to 20 digits")
        stamp = request.get("timeStamp", "")
        if stamp and not _TIMESTAMP_RE.fullmatch(stamp):
            return _result(request, "11", "timeStamp must be ddMMyyHHmmss")
        plan = self.store.get(request["merchantID"], request["recurringUniqueID"])
        if plan is None:
            return _result(request, "16", "Transaction does not exist")
        if process_type == "I":
            return _result(request, "00", "Inquiry Successful") + _record(plan)
        if plan.cancelled:
            if self.cancelled_code == "16":
                return _result(request, "16", "Transaction does not exist")
            return _result(request, "12", "Recurring payment is cancelled")
        if process_type == "C":
            self.store.cancel(plan.merchant_id, plan.plan_id)
            return _result(request, "00", "Cancel Successful")
        return self._update(request, plan)

    def _update(self, request: Mapping[str, str], plan: StoredPlan) -> Items:
        # Empty elements (<maxAccumulateAmount></maxAccumulateAmount>) are "not carried".
        changes = {tag: request[tag] for tag in UPDATABLE if request.get(tag)}
        if not changes:
            return _result(request, "10", "Update carries no field to change")
        for tag, check in UPDATABLE.items():
            if tag in changes:
                try:
                    check(changes[tag])
                except ValueError as exc:
                    return _result(request, "11", f"Invalid {tag}: {exc}")
        count = int(changes.get("recurringCount", plan.fields.get("recurringCount") or 0))
        current = int(plan.fields.get("currentCount") or 0)
        if 0 < count < current:
            return _result(request, "11", f"recurringCount {count} is below currentCount "
                                          f"{current}")
        self.store.update(plan.merchant_id, plan.plan_id, changes)
        return _result(request, "00", "Update Successful")


def _result(request: Mapping[str, str], code: str, reason: str) -> Items:
    # The guide's every sample answer echoes the request's timeStamp.
    stamp = request.get("timeStamp") or formats.timestamp(datetime.now(UTC))
    return [
        ("version", "2.4"),
        ("timeStamp", stamp),
        ("merchantID", request.get("merchantID", "")),
        ("recurringUniqueID", request.get("recurringUniqueID", "")),
        ("respCode", code),
        ("respReason", reason),
    ]


def _record(plan: StoredPlan) -> Items:
    fields = dict(plan.fields)
    if plan.cancelled:
        fields["recurringStatus"] = "N"
    return [(tag, fields.get(tag, "")) for tag in _RECORD_ORDER]
