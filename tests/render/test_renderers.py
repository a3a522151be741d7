"""Golden tests of the three views of one literal Plan.

To accept a deliberate change of output: UPDATE_GOLDEN=1 pytest tests/render
"""

import json
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from plansync import schema_files
from plansync.engine import impact
from plansync.engine import plan as plan_model
from plansync.engine.plan import Action, Change, PendingWrite, Plan
from plansync.errors import PlansyncError
from plansync.render import markdown, text

GOLDEN = Path(__file__).parents[1] / "golden"

def _impact(live: dict, currency: str, action: str, after: dict) -> impact.PlanImpact:  # type: ignore[type-arg]
    return impact.of_change(live, currency, action, after)


GOLD_LIVE = {"status": "active", "amount": Decimal("99.90"), "recurring_interval": 30,
             "recurring_count": 12, "current_count": 3, "charge_next_date": date(2026, 11, 27)}
PLAN = Plan(
    created_at=datetime(2026, 11, 26, 9, 30, tzinfo=UTC),
    merchant_id="JT01",
    endpoint="https://demo2.2c2p.com/2C2PFrontend/PaymentAction/2.0/action",
    spec_digest="sha256:" + "ab" * 32,
    key_fingerprint="merchant-thumbprint:gateway-thumbprint",
    tool_version="0.1.0",
    changes=(
        Change("156142", "gold-member-42", Action.UPDATE,
               {"status": "active", "amount": Decimal("99.90"), "recurring_count": 12,
                "charge_next_date": date(2027, 1, 7)},
               {"status": "active", "amount": Decimal("120.00"), "recurring_count": 24,
                "charge_next_date": date(2027, 1, 7)},
               ("amount", "recurring_count"), currency="SGD", live_fingerprint="sha256:1",
               impact=_impact(GOLD_LIVE, "SGD", "update", {
                   "amount": Decimal("120.00"), "recurring_count": 24})),
        Change("156143", None, Action.NO_OP, {"amount": Decimal("499.00")},
               {"amount": Decimal("499.00")}, currency="THB", live_fingerprint="sha256:2",
               impact=_impact({"status": "active", "amount": Decimal("499.00"),
                               "recurring_interval": 7, "recurring_count": 0,
                               "current_count": 10, "charge_next_date": date(2026, 12, 1)},
                              "THB", "no-op", {})),
        Change("156145", "churned | <b>customer</b>", Action.CANCEL, {"status": "active"},
               {"status": "cancelled"}, ("status",), currency="SGD",
               live_fingerprint="sha256:3",
               impact=_impact({"status": "active", "amount": Decimal("25.00"),
                               "recurring_interval": 90, "recurring_count": 4,
                               "current_count": 1, "charge_next_date": date(2027, 2, 1)},
                              "SGD", "cancel", {"status": "cancelled"})),
        Change("156144", "tokyo-lite", Action.ERROR,
               error="the live plan is in JPY, not SGD as declared; a plan's currency cannot "
                     "be changed", currency="JPY", live_fingerprint="sha256:4"),
        Change("999", None, Action.ERROR, error="inquiry failed: gateway answered 16 "
                                                "transaction does not exist"),
    ),
    spec_paths=("specs/",),
    unmanaged=("156146",),
    pending=(  # one still within its settle window, one past it
        PendingWrite("156142", "update", datetime(2026, 11, 26, 9, 29, tzinfo=UTC),
                     datetime(2026, 11, 26, 9, 30, 30, tzinfo=UTC)),
        PendingWrite("156145", "cancel", datetime(2026, 11, 26, 9, 20, tzinfo=UTC),
                     datetime(2026, 11, 26, 9, 21, 30, tzinfo=UTC))),
)


def golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual)
    assert actual == path.read_text()


def test_text() -> None:
    golden("plan.txt", text.render(PLAN) + "\n")


def test_text_in_colour_has_the_same_words() -> None:
    coloured = text.render(PLAN, color=True)
    assert "\x1b[" in coloured
    assert coloured.replace("\x1b[33m", "").count("\x1b[") > 0
    import click

    assert click.unstyle(coloured) == text.render(PLAN)


def test_markdown() -> None:
    golden("plan.md", markdown.render(PLAN))


def test_json() -> None:
    document = plan_model.dump(PLAN)
    jsonschema.validate(document, schema_files.load("plan.schema.json"))
    golden("plan.json", json.dumps(document, indent=2) + "\n")


def test_json_round_trips_exactly() -> None:
    assert plan_model.parse(json.loads(json.dumps(plan_model.dump(PLAN))), "test") == PLAN


def test_pending_writes_say_until_when_apply_holds_the_plan_back() -> None:
    said = text.render(PLAN)
    assert ("  # plan 156142: an update sent at 2026-11-26 09:29:00 UTC may still land; "
            "apply will not write this plan again before 2026-11-26 09:30:30 UTC") in said
    assert ("  # plan 156145: a cancel sent at 2026-11-26 09:20:00 UTC is not settled (its "
            "settle window ended at 2026-11-26 09:21:30 UTC); apply settles it by inquiry "
            "before writing this plan") in said
    comment = markdown.render(PLAN)
    assert comment.index("**Writes still pending**") < comment.index("| | Plan |")
    assert "> - plan 156142: an update sent at 2026-11-26 09:29:00 UTC may still land" in \
        comment
    assert [w["until"] for w in plan_model.dump(PLAN)["pending"]] == [
        "2026-11-26T09:30:30Z", "2026-11-26T09:21:30Z"]
    quiet = Plan(PLAN.created_at, "JT01", PLAN.endpoint, PLAN.spec_digest, "k", "0.1.0",
                 (PLAN.changes[1],), pending=(PendingWrite(
                     "156143", "update", PLAN.created_at, PLAN.created_at),))
    assert text.render(quiet).endswith("is not settled (its settle window ended at "
                                       "2026-11-26 09:30:00 UTC); apply settles it by "
                                       "inquiry before writing this plan\n\nNo changes. "
                                       "Live plans match the specification.")
    assert "**Writes still pending**" in markdown.render(quiet)


def test_only_the_plans_writes_are_shown_each_until_its_window_ends() -> None:
    from datetime import timedelta

    from plansync.engine.state import Intent

    intents = [Intent("r:2", "156145", "cancel", {}, "f", "active", "2026-11-26T09:29:00Z"),
               Intent("r:1", "156142", "update", {}, "f", "active", "2026-11-26T09:28:00.5Z"),
               Intent("r:3", "777", "update", {}, "f", "active", "2026-11-26T09:29:00Z")]
    shown = plan_model.with_pending(PLAN, intents, timedelta(seconds=90)).pending
    assert shown == (
        PendingWrite("156142", "update", datetime(2026, 11, 26, 9, 28, 0, 500000, tzinfo=UTC),
                     datetime(2026, 11, 26, 9, 29, 30, 500000, tzinfo=UTC)),
        PendingWrite("156145", "cancel", datetime(2026, 11, 26, 9, 29, tzinfo=UTC),
                     datetime(2026, 11, 26, 9, 30, 30, tzinfo=UTC)))  # not 777: not planned


def test_a_pending_write_without_its_offset_is_refused() -> None:
    document = plan_model.dump(PLAN)
    document["pending"][0]["sent_at"] = "2026-11-26T09:29:00"
    with pytest.raises(PlansyncError, match="is not a plansync plan"):
        plan_model.parse(document, "test")


def test_a_plan_from_before_pending_writes_were_kept_is_still_read() -> None:
    document = plan_model.dump(PLAN)
    del document["pending"]
    assert plan_model.parse(document, "test").pending == ()


def test_no_changes() -> None:
    quiet = Plan(PLAN.created_at, "JT01", PLAN.endpoint, PLAN.spec_digest, "k", "0.1.0",
                 (PLAN.changes[1],))
    assert text.render(quiet) == "No changes. Live plans match the specification."
    assert markdown.render(quiet).startswith("#### plansync plan: no changes\n")
    assert markdown.render(quiet).rstrip().endswith(
        "No changes. Live plans match the specification.")


def test_plans_only_in_the_state_are_a_note_not_a_change() -> None:
    quiet = Plan(PLAN.created_at, "JT01", PLAN.endpoint, PLAN.spec_digest, "k", "0.1.0",
                 (PLAN.changes[1],), unmanaged=tuple(str(n) for n in range(200, 212)))
    assert not quiet.has_changes
    note = ("12 plan(s) in the state are not in this spec (200, 201, 202, 203, 204, 205, 206, "
            "207, 208, 209 and 2 more): left as they are live and still remembered; "
            "plansync state rm ID forgets one.")
    assert text.render(quiet) == f"No changes. Live plans match the specification.\n\n{note}"
    rendered = markdown.render(quiet)
    assert rendered.startswith("#### plansync plan: no changes\n")
    assert f"_{note}_" in rendered


@pytest.mark.parametrize("plans", [300, 3000])
def test_markdown_stays_under_its_budget_and_says_what_it_left_out(plans: int) -> None:
    big = Plan(PLAN.created_at, "JT01", PLAN.endpoint, PLAN.spec_digest, "k", "0.1.0",
               tuple(Change(str(100000 + i), f"member-{i}", Action.UPDATE,
                            {"amount": Decimal("1.00")}, {"amount": Decimal("2.00")},
                            ("amount",), currency="SGD", live_fingerprint="x")
                     for i in range(plans)))
    rendered = markdown.render(big, budget=20_000)
    assert len(rendered) <= 20_000
    assert "left out to keep this comment under 20,000 characters" in rendered
    assert rendered.count("<details>") == rendered.count("</details>")


def test_the_mrr_chart_is_dropped_before_any_plan_detail_and_the_impact_table_kept() -> None:
    roomy = markdown.render(PLAN)
    assert "```mermaid" in roomy and roomy.index("**Impact**") < roomy.index("| | Plan |")
    # Room for everything but the chart (the renderer keeps 200 characters for a note
    # of what it left out): the details stay, the chart goes.
    chart = roomy[roomy.index("```mermaid"):roomy.index("```\n", roomy.index("```mermaid")) + 4]
    tight = markdown.render(PLAN, budget=len(roomy) + 200 - 10)
    assert "```mermaid" not in tight and "left out" not in tight
    assert tight.count("<details>") == roomy.count("<details>") and "**Impact**" in tight
    assert len(tight) <= len(roomy) - len(chart)


def test_a_format_1_plan_file_without_impact_is_still_read() -> None:
    document = plan_model.dump(PLAN)
    document["format_version"] = 1
    del document["summary"]["impact"]
    for change in document["changes"]:
        change.pop("impact", None)
    old = plan_model.parse(json.loads(json.dumps(document)), "an older plan file")
    assert old.format_version == 1 and all(c.impact is None for c in old.changes)
    assert old.impact == [] and "Impact" not in text.render(old)
    assert [c.id for c in old.changes] == [c.id for c in PLAN.changes]


def test_the_impact_in_json_is_exact_and_per_currency() -> None:
    document = plan_model.dump(PLAN)
    sgd = next(i for i in document["summary"]["impact"] if i["currency"] == "SGD")
    assert sgd["mrr_after"] == "120.00" and sgd["customers"] == 2
    assert sgd["stopped_by_cancels"].startswith("8.3333333333")  # 25.00 x 30 / 90, exact
    cancel = next(c for c in document["changes"] if c["action"] == "cancel")["impact"]
    assert cancel["after"] == {"charges": False, "next_charge": None, "remaining": 0,
                               "remaining_total": "0.00", "mrr": "0.00"}
