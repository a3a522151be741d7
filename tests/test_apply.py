"""`plansync apply` end to end: real processes, real files, real HTTP to the emulator.

The property every test holds apply to: every plan converges, and no plan ever receives
the same write twice (the emulator's log is the witness).
"""

import json
from pathlib import Path
from typing import Any

import pytest

from plansync.emulator.server import Emulator
from tests import foreign_client
from tests.helpers import EXAMPLE, HEAD, accepted_writes, admin, live_fields, run


def apply(env: dict[str, str], *args: str) -> Any:
    return run("apply", *args, env=env)


def test_apply_converges_and_a_second_apply_sends_nothing(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    first = apply(env, str(EXAMPLE), "--auto-approve")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == (
        "Apply complete: 2 updated, 1 cancelled, 1 unchanged, 0 failed.")
    assert live_fields(emulator, "156142")["amount"] == "000000012000"
    assert live_fields(emulator, "156145")["cancelled"] is True
    assert accepted_writes(emulator) == {("156142", "U"): 1, ("156144", "U"): 1, ("156145", "C"): 1}

    second = apply(env, str(EXAMPLE), "--auto-approve")
    assert second.returncode == 0
    assert second.stdout.splitlines()[-1] == (
        "Apply complete: 0 updated, 0 cancelled, 4 unchanged, 0 failed.")
    assert sum(accepted_writes(emulator).values()) == 3  # nothing more was sent
    assert run("plan", str(EXAMPLE), "--detailed-exitcode", env=env).returncode == 0

    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["serial"] == 2 and state["plans"]["156145"]["cancelled"] is True
    assert state["plans"]["156142"]["applied"]["amount"] == "120.00"
    assert not (tmp_path / "state" / "state.json.journal").exists()
    assert not (tmp_path / "state" / "state.json.lock").exists()
    assert (tmp_path / "state" / "state.json.backup").exists()


def test_dry_run_sends_nothing_and_says_what_it_would_send(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    result = apply(env, str(EXAMPLE), "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The cancel shows what it would carry, as the guide's cancel sample does.
    assert 'plan "churned-customer" (156145): would cancel: recurringStatus=N ' \
        "amount=000000002500 allowAccumulate=N" in lines
    gold = next(line for line in lines if line.startswith('plan "gold-member-42"'))
    assert gold.startswith('plan "gold-member-42" (156142): would update: recurringStatus=Y '
                           "amount=000000012000 allowAccumulate=N maxAccumulateAmount="
                           "000000001000 recurringInterval=30 recurringCount=24 chargeNextDate=")
    assert lines[-1] == ("Dry run complete: 2 to update, 1 to cancel, 1 unchanged, 0 would "
                         "fail or be skipped. Nothing was sent.")
    assert accepted_writes(emulator) == {}
    assert not (tmp_path / "state" / "state.json").exists()


def test_json_outcome(env: dict[str, str]) -> None:
    result = apply(env, str(EXAMPLE), "--auto-approve", "--json")
    document = json.loads(result.stdout)
    assert document["summary"] == {"updated": 2, "cancelled": 1, "unchanged": 1, "failed": 0,
                                   "pending": 0, "not_started": 0}
    gold = next(r for r in document["results"] if r["id"] == "156142")
    assert gold["result"] == "updated" and gold["sent"]["amount"] == "000000012000"
    assert "Apply complete" in result.stderr  # people read stderr; programs read stdout


def test_no_terminal_and_no_auto_approve_is_refused(env: dict[str, str],
                                                    emulator: Emulator) -> None:
    result = apply(env, str(EXAMPLE))
    assert result.returncode == 1
    assert "no terminal to ask" in result.stderr and "--auto-approve" in result.stderr
    assert admin(emulator, "GET", "/_emulator/log") == []  # refused before any request


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--max-changes", "2", "3 plans would change, more than 2 (--max-changes)"),
    ("--max-cancels", "0", "1 plans would be cancelled, more than 0 (--max-cancels)"),
    ("--max-amount-increase", "10", "plan 156142: amount 99.90 -> 120.00 is +20.1%, more "
                                    "than 10% (--max-amount-increase)"),
])
def test_each_guardrail_refuses_with_exit_3_and_sends_nothing(
        env: dict[str, str], emulator: Emulator, flag: str, value: str, message: str) -> None:
    result = apply(env, str(EXAMPLE), "--auto-approve", flag, value)
    assert result.returncode == 3, result.stderr
    assert message in result.stderr and "nothing was sent" in result.stderr
    assert accepted_writes(emulator) == {}


def test_a_plan_that_cuts_monthly_revenue_too_far_is_refused_with_nothing_sent(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156142', status: cancelled}\n"
                           "  - {id: '156144', amount: '1600'}\n")
    result = apply(env, str(spec), "--auto-approve", "--max-mrr-decrease", "50")
    assert result.returncode == 3, result.stdout + result.stderr
    # SGD: 156142 (99.90 every 30 days) is the book's only charging SGD plan.
    assert "SGD monthly recurring revenue would fall 100.0% (99.90 -> 0.00), more than 50% " \
        "(--max-mrr-decrease)" in result.stderr
    assert "JPY" not in result.stderr.split("error:", 1)[1]  # JPY rises: within the limit
    paused = tmp_path / "pause.yaml"
    paused.write_text(HEAD + "plans:\n  - {id: '156144', status: inactive}\n")
    result = apply(env, str(paused), "--auto-approve", "--max-mrr-decrease", "50")
    assert "JPY monthly recurring revenue would fall 100.0% (1500 -> 0), more than 50%" \
        in result.stderr  # whole yen: JPY has no minor unit
    assert accepted_writes(emulator) == {}


def test_a_plan_changing_plans_about_to_charge_can_be_limited(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156143', amount: '450.00'}\n")  # charges in 14 d
    result = apply(env, str(spec), "--auto-approve", "--charge-window", str(15 * 24),
                   "--allow-near-charge", "--max-charged-within", "0")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "1 changed plans charge within 360 hours of the plan (156143), more than 0 " \
        "(--max-charged-within)" in result.stderr
    assert accepted_writes(emulator) == {}


def test_guardrails_from_the_config_file(env: dict[str, str], emulator: Emulator,
                                         tmp_path: Path, emulator_dir: Path) -> None:
    config = tmp_path / "plansync.yaml"
    config.write_text((emulator_dir / "plansync.yaml").read_text().replace(
        "merchant-private.pem", str(emulator_dir / "merchant-private.pem")).replace(
        "gateway-public.pem", str(emulator_dir / "gateway-public.pem"))
        + "guardrails:\n  max_cancels: 0\n")
    result = apply(env | {"PLANSYNC_CONFIG": str(config)}, str(EXAMPLE), "--auto-approve")
    # Said as it was set: in the settings file, not as a flag nobody passed.
    assert result.returncode == 3, result.stderr
    assert "1 plans would be cancelled, more than 0 (guardrails.max_cancels in the " \
        "settings)" in result.stderr and "--max-cancels" not in result.stderr
    assert accepted_writes(emulator) == {}


def test_a_plan_about_to_charge_is_not_written(env: dict[str, str], emulator: Emulator,
                                               tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156143', amount: '450.00'}\n"
                           "  - {id: '156142', amount: '100.00'}\n")
    # 156143 charges in 14 days: inside a 15-day window, outside the default one.
    result = apply(env, str(spec), "--auto-approve", "--charge-window", str(15 * 24))
    assert result.returncode == 1
    assert "plan 156143: skipped: the plan charges on" in result.stdout.replace('"', "")
    assert "wrong amount (--allow-near-charge overrides)" in result.stdout  # said by apply
    assert accepted_writes(emulator) == {("156142", "U"): 1}
    allowed = apply(env, str(spec), "--auto-approve", "--charge-window", str(15 * 24),
                    "--allow-near-charge")
    assert allowed.returncode == 0
    assert accepted_writes(emulator) == {("156142", "U"): 1, ("156143", "U"): 1}


def test_plans_left_out_of_the_spec_are_remembered_never_cancelled(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156142', amount: '100.00'}\n"
                           "  - {id: '156143', amount: '499.00'}\n")
    assert apply(env, str(spec), "--auto-approve").returncode == 0
    spec.write_text(HEAD + "plans:\n  - {id: '156142', amount: '100.00'}\n")
    planned = run("plan", str(spec), "--detailed-exitcode", env=env)
    assert planned.returncode == 0, planned.stdout  # nothing for apply to do
    assert "no longer managed" not in planned.stdout
    assert ("1 plan(s) in the state are not in this spec (156143): left as they are live "
            "and still remembered; plansync state rm ID forgets one") in planned.stdout
    assert apply(env, str(spec), "--auto-approve").returncode == 0
    listed = run("state", "list", env=env)
    assert "156142" in listed.stdout and "156143" in listed.stdout
    assert live_fields(emulator, "156143")["cancelled"] is False
    assert accepted_writes(emulator) == {("156142", "U"): 1}


def test_a_smaller_spec_does_not_forget_a_cancellation(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    with_cancel = tmp_path / "a.yaml"
    with_cancel.write_text(HEAD + "plans:\n  - {id: '156142', amount: '100.00'}\n"
                                  "  - {id: '156145', status: cancelled}\n")
    without = tmp_path / "b.yaml"
    without.write_text(HEAD + "plans:\n  - {id: '156142', amount: '100.00'}\n")
    assert apply(env, str(with_cancel), "--auto-approve").returncode == 0
    assert apply(env, str(without), "--auto-approve").returncode == 0
    again = apply(env, str(with_cancel), "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == (
        "Apply complete: 0 updated, 0 cancelled, 2 unchanged, 0 failed.")
    cancels = [e for e in admin(emulator, "GET", "/_emulator/log")
               if e["processType"] == "C"]
    assert [(e["recurringUniqueID"], e["respCode"]) for e in cancels] == [("156145", "00")]
    shown = json.loads(run("state", "show", "156145", env=env).stdout)
    assert shown["cancelled"] is True and shown["cancelled_at"]


def test_a_cancelled_plan_stays_cancelled(env: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156143', status: cancelled}\n")
    assert apply(env, str(spec), "--auto-approve").returncode == 0
    spec.write_text(HEAD + "plans:\n  - {id: '156143', status: active}\n")
    result = run("plan", str(spec), env=env)
    assert result.returncode == 1
    assert "plansync cancelled this plan earlier and cancellation is final" in result.stdout
    shown = json.loads(run("state", "show", "156143", env=env).stdout)
    assert shown["cancelled"] is True and shown["cancelled_at"]


def test_cancel_answered_12_counts_as_already_cancelled(
        env: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156146', status: cancelled}\n")  # seeded cancelled
    result = apply(env, str(spec), "--auto-approve")
    assert result.returncode == 0
    assert "already cancelled (12); counted as cancelled" in result.stderr
    assert result.stdout.splitlines()[-1].startswith("Apply complete: 0 updated, 1 cancelled")


# --- saved plans ------------------------------------------------------------------------


def test_a_saved_plan_is_applied_exactly(env: dict[str, str], emulator: Emulator,
                                         tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    assert run("plan", str(EXAMPLE), "--out", str(saved), env=env).returncode == 0
    result = apply(env, "--plan", str(saved), "--auto-approve")
    assert result.returncode == 0, result.stderr
    assert accepted_writes(emulator) == {("156142", "U"): 1, ("156144", "U"): 1, ("156145", "C"): 1}


def test_a_saved_plan_is_refused_when_the_spec_changed(env: dict[str, str], emulator: Emulator,
                                                       tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156142', amount: '100.00'}\n")
    saved = tmp_path / "plan.json"
    run("plan", str(spec), "--out", str(saved), env=env)
    spec.write_text(HEAD + "plans:\n  - {id: '156142', amount: '101.00'}\n")
    result = apply(env, "--plan", str(saved), "--auto-approve")
    assert result.returncode == 1
    assert f"is not the one plan file {saved} was made from" in result.stderr
    assert accepted_writes(emulator) == {}


def test_a_saved_plan_skips_only_the_plans_that_moved(env: dict[str, str], emulator: Emulator,
                                                      tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    run("plan", str(EXAMPLE), "--out", str(saved), env=env)
    # Meanwhile someone changes 156144 in the merchant portal.
    foreign_client.call(emulator.url, {"version": "2.4", "merchantID": "JT01",
                                       "recurringUniqueID": "156144", "processType": "U",
                                       "recurringInterval": "14"},
                        *foreign_client.keys_in(Path(env["PLANSYNC_CONFIG"]).parent))
    result = apply(env, "--plan", str(saved), "--auto-approve")
    assert result.returncode == 1
    assert ('plan "tokyo-lite" (156144): skipped: the live plan changed since review (the '
            'spec now means update of status, recurring_interval); not written: review a new '
            'plan' in result.stdout)
    assert accepted_writes(emulator) == {("156142", "U"): 1, ("156145", "C"): 1, ("156144", "U"): 1}
    # (the one U on 156144 is the portal's own change above, not plansync's)


def test_a_saved_plan_for_another_merchant_or_endpoint_is_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    run("plan", str(EXAMPLE), "--out", str(saved), env=env)
    document = json.loads(saved.read_text())
    for field, value, says in (("merchant_id", "OTHER1", "merchant OTHER1, not JT01"),
                               ("endpoint", "https://t.2c2p.com/PaymentAction/2.0/action",
                                "endpoint https://t.2c2p.com/PaymentAction/2.0/action, not"),
                               ("key_fingerprint", "a:b", "key fingerprint a:b, not")):
        altered = tmp_path / f"{field}.json"
        altered.write_text(json.dumps(document | {field: value}))
        result = apply(env, "--plan", str(altered), "--auto-approve")
        assert result.returncode == 1 and says in result.stderr, result.stderr
    assert accepted_writes(emulator) == {}


def test_apply_refuses_a_spec_other_than_the_reviewed_one(
        env: dict[str, str], emulator: Emulator) -> None:
    reviewed = json.loads(run("plan", str(EXAMPLE), "--json", env=env).stdout)["spec_digest"]
    other = "sha256:" + "0" * 64
    refused = apply(env, str(EXAMPLE), "--auto-approve", "--expect-spec-digest", other)
    assert refused.returncode == 1
    assert f"the spec is {reviewed}, not the reviewed {other}" in refused.stderr
    assert accepted_writes(emulator) == {}
    accepted = apply(env, str(EXAMPLE), "--auto-approve", "--expect-spec-digest", reviewed)
    assert accepted.returncode == 0


def _apply_in_a_terminal(env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run apply with a real terminal on stdin and stdout, and type ``answer`` at its prompt."""
    import os
    import pty
    import select
    import subprocess
    import sys

    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "plansync", "apply", str(EXAMPLE)],
                               stdin=secondary, stdout=secondary, stderr=secondary,
                               env={**os.environ, **env, "NO_COLOR": "1"}, close_fds=True)
    os.close(secondary)
    seen = b""
    answered = False
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        assert ready, f"apply went quiet: {seen.decode(errors='replace')}"
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closes when apply exits
            break
        if not chunk:
            break
        seen += chunk
        if not answered and b"Enter a value:" in seen:
            os.write(primary, answer.encode() + b"\n")
            answered = True
    os.close(primary)
    return process.wait(timeout=60), seen.decode(errors="replace").replace("\r", "")


def test_apply_asks_in_a_terminal_and_only_yes_goes_on(env: dict[str, str],
                                                       emulator: Emulator) -> None:
    code, screen = _apply_in_a_terminal(env, "y")
    assert code == 1 and "Apply cancelled; nothing was sent." in screen
    assert accepted_writes(emulator) == {}
    code, screen = _apply_in_a_terminal(env, "yes")
    assert code == 0, screen
    assert "Only 'yes' will be accepted to approve." in screen
    assert "Apply complete: 2 updated, 1 cancelled, 1 unchanged, 0 failed." in screen
    assert accepted_writes(emulator) == {("156142", "U"): 1, ("156144", "U"): 1, ("156145", "C"): 1}
