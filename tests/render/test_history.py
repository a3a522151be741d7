"""How an audit record reads (plansync/render/history.py) and how a CSV cell is kept
from being a spreadsheet formula: plain values in, text out."""

from __future__ import annotations

from plansync.engine.state import Audit
from plansync.render import history
from plansync.views.csv import cell

BY = {"user": "ana", "host": "ci-7", "ci_url": None}


def audit(**members: object) -> Audit:
    base: dict[str, object] = {"at": "2026-01-02T03:04:05.000Z", "by": BY, "plan": "7",
                               "process_type": "U", "sent": {}, "resp_code": "00"}
    return Audit(**{**base, **members})  # type: ignore[arg-type]


def test_changes_read_in_major_units_with_the_currency() -> None:
    record = audit(currency="SGD", before={"amount": "104.9", "recurring_count": 12},
                   after={"amount": "110", "recurring_count": 24})
    assert history.changes(record) == "amount 104.90 → 110.00 SGD, recurring_count 12 → 24"
    yen = audit(currency="JPY", before={"max_accumulate_amount": None},
                after={"max_accumulate_amount": "1500"})
    assert history.changes(yen) == "max_accumulate_amount (not set) → 1500 JPY"
    cancel = audit(process_type="C", before={"status": "inactive"},
                   after={"status": "cancelled"})
    assert (history.action(cancel), history.changes(cancel)) == (
        "cancel", "status inactive → cancelled")


def test_an_older_record_reads_its_wire_fields_back() -> None:
    sent = {"recurringStatus": "Y", "amount": "000000010490", "allowAccumulate": "N",
            "chargeNextDate": "07122026"}
    older = audit(sent=sent)
    assert history.changes(older, "SGD") == ("sent status active, amount 104.90 SGD, "
                                             "allow_accumulate false, charge_next_date "
                                             "2026-12-07")
    # The currency not known: the amount as it was sent, never a guess at its unit.
    assert "amount=000000010490" in history.changes(older)


def test_meanings_and_sources() -> None:
    assert [history.meaning(code) for code in ("00", "12", "", "HTTP 400", "42")] == [
        "success", "status not valid for the action",
        "no answer (lost); inquiry decides the outcome",
        "an HTTP error answer, without a respCode", "unknown result code"]
    assert history.source(audit(origin={"specs": ["a.yaml", "b/"], "commit": "c0ffee"})) \
        == "a.yaml, b/ @ c0ffee"
    assert history.source(audit(origin={"plan_file": "plan.json", "commit": ""})) == \
        "plan.json"
    assert history.source(audit()) == ""


def test_a_csv_cell_is_never_a_formula() -> None:
    assert [cell(text) for text in ("=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "gold")] \
        == ["'=HYPERLINK(\"x\")", "'+1", "'-2", "'@SUM(A1)", "gold"]
    assert list(history.row(audit(name="=cmd"))) == list(history.COLUMNS)
