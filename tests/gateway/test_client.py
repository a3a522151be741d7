"""The client against the emulator: real HTTP on 127.0.0.1, the real envelope."""

import email.utils
import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from plansync import errors
from plansync.commands.options import gateway_client
from plansync.config import Gateway
from plansync.emulator import server
from plansync.emulator.gateway import EmulatedGateway
from plansync.emulator.server import Emulator
from plansync.fields import PlanFields
from plansync.gateway import client as client_module
from plansync.gateway import codes
from plansync.gateway.client import GatewayClient, RetryPolicy
from tests.helpers import Sleeps, admin, faults, live_fields, seeded_date


def test_inquiry(client: GatewayClient) -> None:
    plan = client.inquire("156142")
    assert (plan.id, plan.status, plan.amount, plan.currency) == (
        "156142", "active", Decimal("99.90"), "SGD")
    assert plan.charge_next_date == seeded_date(42)  # seeded as yyyyMMdd
    assert client.inquire("156143").charge_next_date == seeded_date(14)  # as DDMMYYYY
    assert client.inquire("156144").amount == Decimal("1500")  # JPY has no minor unit


def test_update_changes_exactly_the_fields_it_carries(client: GatewayClient,
                                                      emulator: Emulator) -> None:
    before = live_fields(emulator, "156142")
    fields = PlanFields(amount=Decimal("120.50"), recurring_count=24,
                        charge_next_date=date(2027, 2, 1), charge_on_date="0102")
    client.send(client.update_write("156142", fields, "SGD"))
    after = live_fields(emulator, "156142")
    assert after == before | {"amount": "000000012050", "recurringCount": "24",
                              "chargeNextDate": "01022027", "chargeOnDate": "0102"}
    plan = client.inquire("156142")
    assert (plan.amount, plan.recurring_count, plan.charge_next_date, plan.charge_on_date) == (
        Decimal("120.50"), 24, date(2027, 2, 1), "0102")


def test_cancel_is_final(client: GatewayClient) -> None:
    client.send(client.cancel_write("156143", None))
    assert client.inquire("156143").status == "inactive"
    with pytest.raises(errors.StatusNotValidError, match="12 status not valid"):
        client.send(client.update_write("156143", PlanFields(status="active"), "THB"))
    with pytest.raises(errors.StatusNotValidError):
        client.send(client.cancel_write("156143", None))


@pytest.mark.parametrize(("fields", "message"), [
    (PlanFields(recurring_interval=400),
     "recurring_interval: 400 is not a whole number from 1 to 365"),
    (PlanFields(recurring_count=100000),
     "recurring_count: 100000 is not a whole number from 0 to 99999"),
])
def test_values_outside_the_documented_ranges_are_never_sent(
        client: GatewayClient, emulator: Emulator, fields: PlanFields, message: str) -> None:
    with pytest.raises(errors.MessageError, match=f"plan 156142 cannot be sent: {message}"):
        client.send(client.update_write("156142", fields, "SGD"))
    assert writes_received(emulator) == []


@pytest.mark.parametrize(("call", "error", "code"), [
    (lambda c: c.inquire("999999"), errors.PlanNotFoundError, "16"),
    (lambda c: c.send(c.cancel_write("156146", None)),  # seeded as cancelled
     errors.StatusNotValidError, "12"),
    (lambda c: c.send(c.update_write("156142", PlanFields(recurring_count=2), "SGD")),
     errors.RequestRejectedError, "11"),  # below currentCount 3
    (lambda c: c.send(c.update_write("156142", PlanFields(), "SGD")),
     errors.RequestRejectedError, "10"),
    (lambda c: c.inquire("12a"), errors.RequestRejectedError, "11"),
])
def test_rejections_carry_code_and_reason(client: GatewayClient, call, error, code) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as info:
        call(client)
    assert info.value.code == code and info.value.reason


def test_unknown_merchant(settings: Gateway) -> None:
    with GatewayClient.over_http(settings.endpoint, "NOPE01", settings.envelope()) as other, \
            pytest.raises(errors.MerchantRejectedError, match="03 invalid merchant"):
        other.inquire("156142")


def test_a_request_the_gateway_cannot_read(settings: Gateway, tmp_path: Path) -> None:
    from plansync.emulator import home

    stranger = tmp_path / "stranger"
    home.init(stranger)  # keys the emulator has never seen
    wrong = Gateway(settings.endpoint, "JT01", stranger / "merchant-private.pem",
                     settings.gateway_key)
    with gateway_client(wrong) as other, \
            pytest.raises(errors.GatewayUnavailableError, match="HTTP 400") as info:
        other.inquire("156142")
    assert info.value.reason.startswith("96")
    assert "merchant_key is the key whose public half is registered" in str(info.value)


# --- faults: each one surfaces as the error that tells the caller what to do ----------


def writes_received(emulator: Emulator) -> list[str]:
    """The updates and cancels the gateway processed (faults may have struck before)."""
    return [e["processType"] for e in admin(emulator, "GET", "/_emulator/log")
            if e["processType"] in ("U", "C") and e["respCode"]]


@pytest.mark.parametrize("fault", ["reset_rate", "error_rate", "throttle_rate"])
def test_inquiries_are_retried_through_transient_faults(
        client: GatewayClient, emulator: Emulator, sleeps: Sleeps, fault: str) -> None:
    faults(emulator, **{fault: 0.3, "seed": 3, "retry_after_s": 20})
    plans = [client.inquire("156142") for _ in range(10)]
    assert all(p.amount == Decimal("99.90") for p in plans)
    assert sleeps, "some attempt failed and was retried"
    if fault == "throttle_rate":
        assert set(sleeps) == {20.0}  # Retry-After honoured as sent (once capped at 8 s)
    else:
        assert all(0 <= s <= RetryPolicy().max_delay for s in sleeps)


def test_a_retry_after_longer_than_retry_after_max_is_one_error_not_an_early_retry(
        settings: Gateway, emulator: Emulator, sleeps: Sleeps) -> None:
    faults(emulator, throttle_rate=1.0, retry_after_s=900)
    with (GatewayClient.over_http(settings.endpoint, "JT01", settings.envelope(), sleep=sleeps,
                                  retry=RetryPolicy(retry_after_max=600)) as client,
          pytest.raises(errors.TransportError, match=r"asks to wait 900s \(Retry-After\), "
                                                     r"more than retry_after_max \(600s\)")
          as info):
        client.inquire("156142")
    assert sleeps == [] and "retry_after_max in plansync.yaml" in str(info.value.hint)
    assert info.value.systemic  # every plan would be asked the same: stop, say it once


def test_the_wait_a_gateway_asks_for_is_shown(
        settings: Gateway, emulator: Emulator, sleeps: Sleeps,
        caplog: pytest.LogCaptureFixture) -> None:
    faults(emulator, throttle_rate=0.5, seed=1, retry_after_s=120)
    with GatewayClient.over_http(settings.endpoint, "JT01", settings.envelope(), sleep=sleeps,
                                 retry=RetryPolicy(budget=600)) as client, \
            caplog.at_level(logging.WARNING):
        for _ in range(4):
            client.inquire("156142")
    assert 120.0 in sleeps
    assert "plan 156142 I: the gateway asks to wait 120.0s (Retry-After); waiting" in caplog.text


def test_a_wait_past_the_plans_time_budget_is_not_waited(
        settings: Gateway, emulator: Emulator, sleeps: Sleeps) -> None:
    faults(emulator, throttle_rate=1.0, retry_after_s=120)
    with GatewayClient.over_http(settings.endpoint, "JT01", settings.envelope(), sleep=sleeps,
                                 retry=RetryPolicy(budget=60)) as client, \
            pytest.raises(errors.TransportError,
                          match=r"asks to wait 120s \(Retry-After\), past plan 156142's "
                                r"time budget \(60s"):
        client.inquire("156142")
    assert sleeps == []


@pytest.mark.parametrize(("header", "seconds"), [
    ("120", 120.0), (" 7 ", 7.0), ("0", 0.0), ("soon", None), ("", None), ("-3", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: no wait
])
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str,
                                                        seconds: float | None) -> None:
    assert client_module._retry_after(header) == seconds


def test_retry_after_as_an_http_date_in_the_future() -> None:
    header = email.utils.formatdate(time.time() + 90, usegmt=True)
    assert 85 <= (client_module._retry_after(header) or 0) <= 90


@pytest.mark.parametrize(("fault", "message"), [
    ("reset_rate", "no answer from"),
    ("error_rate", "answered HTTP 500"),
    ("throttle_rate", "rate limiting"),
])
def test_inquiries_give_up_after_the_last_attempt(
        client: GatewayClient, emulator: Emulator, sleeps: Sleeps, fault: str,
        message: str) -> None:
    faults(emulator, **{fault: 1.0, "retry_after_s": 0})
    with pytest.raises(errors.TransportError, match=message):
        client.inquire("156142")
    assert len(sleeps) == 2  # three attempts


@pytest.mark.parametrize("fault", ["reset_rate", "error_rate"])
def test_a_write_whose_answer_is_lost_is_never_resent(
        client: GatewayClient, emulator: Emulator, fault: str) -> None:
    faults(emulator, **{fault: 1.0})
    with pytest.raises(errors.OutcomeUnknownError, match="inquire the plan"):
        client.send(client.update_write("156142", PlanFields(amount=Decimal("1")), "SGD"))
    assert writes_received(emulator) == []  # these faults strike before processing
    assert live_fields(emulator, "156142")["amount"] == "000000009990"


def test_commit_then_drop_is_an_unknown_outcome_that_did_happen(
        client: GatewayClient, emulator: Emulator) -> None:
    faults(emulator, drop_rate=1.0)
    with pytest.raises(errors.OutcomeUnknownError):
        client.send(client.update_write("156142", PlanFields(amount=Decimal("42.00")), "SGD"))
    with pytest.raises(errors.OutcomeUnknownError):
        client.send(client.cancel_write("156143", None))
    assert writes_received(emulator) == ["U", "C"]  # each sent exactly once
    faults(emulator)
    assert client.inquire("156142").amount == Decimal("42.00")
    assert client.inquire("156143").status == "inactive"


def test_throttled_writes_are_resent_because_nothing_was_done(
        client: GatewayClient, emulator: Emulator, sleeps: Sleeps) -> None:
    faults(emulator, throttle_rate=0.3, seed=3, retry_after_s=0)
    for amount in ("1.00", "2.00", "3.00"):
        client.send(client.update_write("156142", PlanFields(amount=Decimal(amount)), "SGD"))
    assert sleeps and writes_received(emulator) == ["U", "U", "U"]


def test_wrong_signer(client: GatewayClient, emulator: Emulator) -> None:
    faults(emulator, wrong_key_rate=1.0)
    with pytest.raises(errors.EnvelopeError, match="signature does not verify"):
        client.inquire("156142")
    with pytest.raises(errors.OutcomeUnknownError, match="signature does not verify"):
        client.send(client.cancel_write("156142", None))
    assert writes_received(emulator) == ["C"]


def test_malformed_answer(client: GatewayClient, emulator: Emulator) -> None:
    faults(emulator, malformed_rate=1.0)
    with pytest.raises(errors.MessageError, match="not well-formed"):
        client.inquire("156142")
    with pytest.raises(errors.OutcomeUnknownError, match="not well-formed"):
        client.send(client.update_write("156142", PlanFields(amount=Decimal("5")), "SGD"))


def test_read_timeout(settings: Gateway, emulator: Emulator, sleeps: Sleeps) -> None:
    faults(emulator, latency_ms=400)
    with GatewayClient.over_http(settings.endpoint, "JT01", settings.envelope(), read_timeout=0.1,
                       retry=RetryPolicy(attempts=2), sleep=sleeps) as slow:
        with pytest.raises(errors.TransportError, match="timed out"):
            slow.inquire("156142")
        assert len(sleeps) == 1
        with pytest.raises(errors.OutcomeUnknownError, match="answer was lost"):
            slow.send(slow.update_write("156142", PlanFields(amount=Decimal("7")), "SGD"))
        assert len(sleeps) == 1  # the write was not retried


def test_connection_refused_is_safe_to_retry_even_for_writes(
        settings: Gateway, sleeps: Sleeps) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    url = f"http://127.0.0.1:{port}/2C2PFrontend/PaymentAction/2.0/action"
    with GatewayClient.over_http(url, "JT01", settings.envelope(), sleep=sleeps) as nowhere:
        with pytest.raises(errors.TransportError, match="cannot connect") as info:
            nowhere.send(nowhere.update_write("156142", PlanFields(amount=Decimal("1")), "SGD"))
        assert info.value.retryable and len(sleeps) == RetryPolicy().attempts - 1


# --- every result code: a gateway that answers with the code we ask for ----------------


class AnswersWith(EmulatedGateway):
    """The emulated gateway, answering every request with one chosen respCode."""

    code = "00"
    answer_for: str | None = None  # answer about another plan than the one asked about
    reason = ""  # respReason, when not the default
    members: Mapping[str, str | None] = {}  # binding members to set (or, None, leave out)

    def handle(self, request: Mapping[str, str]) -> list[tuple[str, str]]:
        plan_id = self.answer_for or request["recurringUniqueID"]
        items = {"version": "2.4", "timeStamp": request["timeStamp"],
                 "merchantID": request["merchantID"], "recurringUniqueID": plan_id,
                 "respCode": self.code, "respReason": self.reason or f"Forced {self.code}"}
        items.update(self.members)
        return [(tag, value) for tag, value in items.items() if value is not None]


@pytest.fixture
def forced(emulator_dir: Path) -> Iterator[tuple[AnswersWith, str]]:
    built = server.build(emulator_dir)
    built.gateway = gateway = AnswersWith(built.gateway.store, built.gateway.merchants)
    with Emulator(built) as running:
        yield gateway, running.url


@pytest.mark.parametrize(("code", "error"), sorted(codes.RESULT_CODES.items()))
def test_every_result_code_becomes_its_error(
        forced: tuple[AnswersWith, str], settings: Gateway, sleeps: Sleeps, code: str,
        error: codes.ResultCode) -> None:
    gateway, url = forced
    gateway.code = code
    with GatewayClient.over_http(url, "JT01", settings.envelope(), sleep=sleeps) as other:
        if code in codes.RETRYABLE_CODES:  # "try again later": inquiries are retried
            with pytest.raises(errors.TransportError, match=f"{code} {error.meaning}"):
                other.inquire("156142")
            assert len(sleeps) == RetryPolicy().attempts - 1
        else:
            with pytest.raises(error.error, match=f"{code} {error.meaning} \\(Forced {code}\\)"):
                other.inquire("156142")
        expected_for_write = errors.OutcomeUnknownError if code == "95" else error.error
        with pytest.raises(expected_for_write):
            other.send(other.cancel_write("156142", None))


def test_every_documented_result_code_is_known() -> None:
    # developer.2c2p.com, Recurring Payment Maintenance: the result code table.
    documented = {"01", "02", "03", "04", "05", "10", "11", "12", "13", "14", "15", "16",
                  "17", "18", "61", "65", "95", "96", "97", "98", "99"}
    assert documented <= set(codes.RESULT_CODES)
    assert codes.SUCCESS == "00"


def test_an_unknown_code_is_still_an_error(forced: tuple[AnswersWith, str],
                                           settings: Gateway) -> None:
    gateway, url = forced
    gateway.code = "42"
    with GatewayClient.over_http(url, "JT01", settings.envelope()) as other, \
            pytest.raises(errors.GatewayRejectedError, match="42 unknown result code"):
        other.inquire("156142")


@pytest.mark.parametrize(("members", "refusal"), [
    ({"recurringUniqueID": "999"}, "the answer's recurringUniqueID '999' is not the "
                                   "request's '156142'"),
    ({"recurringUniqueID": None}, "does not name its recurringUniqueID"),
    ({"merchantID": "OTHER"}, "the answer's merchantID 'OTHER' is not the request's 'JT01'"),
    ({"timeStamp": "010120000000"}, "timeStamp \\(a replayed or stale answer\\) "
                                    "'010120000000' is not the request's"),
])
def test_an_answer_not_bound_to_its_request_is_refused(
        forced: tuple[AnswersWith, str], settings: Gateway, sleeps: Sleeps,
        members: dict[str, str | None], refusal: str) -> None:
    gateway, url = forced
    gateway.members = members
    with GatewayClient.over_http(url, "JT01", settings.envelope(), sleep=sleeps) as other:
        with pytest.raises(errors.MessageError, match=refusal):
            other.inquire("156142")
        assert len(sleeps) == RetryPolicy().attempts - 1  # retried: it may be a passing fault
        with pytest.raises(errors.OutcomeUnknownError, match=refusal):
            other.send(other.update_write("156142", PlanFields(amount=Decimal(1)), "SGD"))


def test_an_inquiry_answer_must_name_the_merchant_a_write_answer_need_not(
        forced: tuple[AnswersWith, str], settings: Gateway, sleeps: Sleeps) -> None:
    """As the guide's samples: the inquiry answer names merchantID, update and cancel
    answers do not."""
    gateway, url = forced
    gateway.members = {"merchantID": None}
    with GatewayClient.over_http(url, "JT01", settings.envelope(), sleep=sleeps) as other:
        with pytest.raises(errors.MessageError, match="does not name its merchantID"):
            other.inquire("156142")
        update = other.update_write("156142", PlanFields(amount=Decimal(1)), "SGD")
        assert other.send(update).code == "00"
        assert other.send(other.cancel_write("156142", None)).code == "00"


def test_an_oversized_answer_is_refused_and_its_connection_dropped(
        forced: tuple[AnswersWith, str], settings: Gateway) -> None:
    gateway, url = forced
    gateway.reason = "x" * 80_000  # an answer token far over the 64 KiB limit
    with GatewayClient.over_http(url, "JT01", settings.envelope()) as other:
        with pytest.raises(errors.EnvelopeError, match="larger than the 65536-byte limit"):
            other.inquire("156142")
        gateway.reason = ""
        # A fresh connection: nothing left over.
        assert other.send(other.cancel_write("156142", None)).code == "00"


# --- concurrency: more threads than connections, never more requests than connections ---


def test_requests_in_flight_never_exceed_the_pool(settings: Gateway, emulator: Emulator,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from plansync.engine.fanout import bounded_map, workers_for

    in_flight, most = 0, 0
    lock = threading.Lock()
    answer = server._Handler._action

    def counted(handler: server._Handler, request: object) -> None:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            answer(handler, request)  # type: ignore[arg-type]
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(server._Handler, "_action", counted)
    faults(emulator, latency_ms=20)
    with GatewayClient.over_http(settings.endpoint, "JT01", settings.envelope(),
                                 pool_size=3) as client:
        assert workers_for(3) > 3  # more threads than connections: the pool caps them
        ids = ["156142", "156143", "156144"] * 10
        results = list(bounded_map(client.inquire, ids, workers_for(3)))
    assert len(results) == 30 and most == 3
