"""The diff, with literal values only: no files, no network."""

import dataclasses
from datetime import date
from decimal import Decimal

from plansync.engine.diff import diff, fingerprint
from plansync.engine.plan import Action
from plansync.fields import LivePlan, PlanFields
from plansync.spec.model import DesiredPlan, Location

LIVE = LivePlan(
    id="156142", status="active", amount=Decimal("99.90"), currency="SGD",
    allow_accumulate=False, max_accumulate_amount=Decimal("10.00"), recurring_interval=30,
    recurring_count=12, current_count=3, charge_next_date=date(2027, 1, 7),
    charge_on_date=None, invoice_prefix="030321135205", masked_card_no="XXXXXXXXXXXX1111")


def want(cancel: bool = False, currency: str | None = None, prevent_cancel: bool = False,
         **fields: object) -> DesiredPlan:
    return DesiredPlan(id="156142", name="gold", fields=PlanFields(**fields),  # type: ignore[arg-type]
                       cancel=cancel, currency=currency, prevent_cancel=prevent_cancel,
                       ignore_changes=frozenset(), location=Location("spec.yaml", 4, 5))


def test_no_op_when_every_managed_field_matches() -> None:
    change = diff(want(amount=Decimal("99.9"), recurring_interval=30, status="active"), LIVE)
    assert change.action is Action.NO_OP
    assert change.changed_fields == () and change.unchanged == 3
    assert change.before == change.after == {
        "status": "active", "amount": Decimal("99.90"), "recurring_interval": 30}


def test_update_lists_only_what_differs() -> None:
    change = diff(want(amount=Decimal("120.00"), recurring_count=24, allow_accumulate=False),
                  LIVE)
    assert change.action is Action.UPDATE
    assert change.changed_fields == ("amount", "recurring_count")
    assert change.before == {"amount": Decimal("99.90"), "allow_accumulate": False,
                             "recurring_count": 12}
    assert change.after == {"amount": Decimal("120.00"), "allow_accumulate": False,
                            "recurring_count": 24}
    assert change.currency == "SGD" and change.live_fingerprint == fingerprint(LIVE)


def test_fields_not_declared_are_not_managed() -> None:
    assert diff(want(), LIVE).action is Action.NO_OP


def test_status_and_new_fields() -> None:
    change = diff(want(status="inactive", charge_on_date="0712",
                       charge_next_date=date(2027, 2, 1)), LIVE)
    assert change.changed_fields == ("status", "charge_next_date", "charge_on_date")
    assert change.before["charge_on_date"] is None


def test_cancel() -> None:
    change = diff(want(cancel=True, amount=Decimal("1")), LIVE)
    assert change.action is Action.CANCEL
    assert (change.before, change.after) == ({"status": "active"}, {"status": "cancelled"})
    assert change.changed_fields == ("status",)


def test_cancel_already_made_by_plansync_is_a_no_op() -> None:
    inactive = dataclasses.replace(LIVE, status="inactive")
    assert diff(want(cancel=True), inactive, known_cancelled=True).action is Action.NO_OP


def test_errors() -> None:
    cases = {
        "inquiry failed: boom": diff(want(), None, inquiry_error="inquiry failed: boom"),
        "the live plan is in SGD, not THB as declared; a plan's currency cannot be changed":
            diff(want(currency="THB"), LIVE),
        "recurring_count 2 is below the 3 charges already made; use a larger count, or 0 "
        "for until cancelled": diff(want(recurring_count=2), LIVE),
        "amount 9.999 has more decimals than SGD allows (2), in the live plan's currency SGD":
            diff(want(amount=Decimal("9.999")), LIVE),
        "amount 99999999999.99 is more than the gateway's 12-digit amounts can carry, in the "
        "live plan's currency SGD": diff(want(amount=Decimal("99999999999.99")), LIVE),
        "status is cancelled but lifecycle.prevent_cancel forbids it":
            diff(want(cancel=True, prevent_cancel=True), LIVE),
        "plansync cancelled this plan earlier and cancellation is final; declare status: "
        "cancelled, or remove the plan from the spec":
            diff(want(status="active"), LIVE, known_cancelled=True),
    }
    for message, change in cases.items():
        assert change.action is Action.ERROR
        assert change.error == message


def test_counts_of_zero_and_exponent_overrides() -> None:
    assert diff(want(recurring_count=0), LIVE).action is Action.UPDATE  # 0 = until cancelled
    jpy = dataclasses.replace(LIVE, currency="JPY", amount=Decimal("1500"))
    assert diff(want(amount=Decimal("1500.50")), jpy).action is Action.ERROR
    assert diff(want(amount=Decimal("1500.50")), jpy, exponents={"JPY": 2}
                ).action is Action.UPDATE


def test_fingerprint_moves_with_any_updatable_field_but_not_the_charge_count() -> None:
    moved = dataclasses.replace(LIVE, charge_next_date=date(2027, 2, 6))
    charged = dataclasses.replace(LIVE, current_count=4)
    assert fingerprint(moved) != fingerprint(LIVE) == fingerprint(charged)
