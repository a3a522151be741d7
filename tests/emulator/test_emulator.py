"""The emulator, driven by a client written only from the public description."""

from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

from plansync.emulator import home
from plansync.emulator.server import Emulator
from plansync.errors import ConfigError
from tests import foreign_client
from tests.helpers import admin, live_fields, seeded_date


@pytest.fixture(scope="module")
def foreign_keys(emulator_dir: Path) -> tuple[rsa.RSAPrivateKey, rsa.RSAPublicKey]:
    return foreign_client.keys_in(emulator_dir)


@pytest.fixture
def call(emulator: Emulator, foreign_keys: Any) -> Any:
    def send(process_type: str, plan_id: str = "156142", path: str = home.ACTION_PATH,
             **fields: str) -> dict[str, str]:
        request = {"version": "2.4", "timeStamp": "050321091314", "merchantID": "JT01",
                   "recurringUniqueID": plan_id, "processType": process_type} | fields
        request = {k: v for k, v in request.items() if v is not None}
        return foreign_client.call(emulator.server.base_url + path, request, *foreign_keys)
    return send


def test_inquiry_answers_the_whole_record(call: Any) -> None:
    answer = call("I")
    assert answer == {
        "version": "2.4", "timeStamp": answer["timeStamp"], "merchantID": "JT01",
        "recurringUniqueID": "156142", "respCode": "00", "respReason": "Inquiry Successful",
        "recurringStatus": "Y", "invoicePrefix": "030321135205", "currency": "702",
        "amount": "000000009990", "maskedCardNo": "XXXXXXXXXXXX1111", "allowAccumulate": "N",
        "maxAccumulateAmount": "000000001000", "recurringInterval": "30",
        "recurringCount": "12", "currentCount": "3",
        "chargeNextDate": seeded_date(42).strftime("%Y%m%d"),
        "chargeOnDate": "",
    }


def test_both_documented_paths_answer(call: Any) -> None:
    assert call("I", path="/PaymentAction/2.0/action")["respCode"] == "00"


def test_documented_samples_are_accepted_as_sent(call: Any, emulator: Emulator) -> None:
    # The guide's inquiry sends update fields (and "99.90"); an inquiry ignores them.
    inquiry = call("I", recurringStatus="Y", amount="99.90", allowAccumulate="",
                   maxAccumulateAmount="", recurringInterval="30", recurringCount="12",
                   chargeNextDate="", chargeOnDate="")
    assert inquiry["respCode"] == "00" and inquiry["amount"] == "000000009990"
    update = call("U", recurringStatus="Y", amount="000000009990", allowAccumulate="N",
                  maxAccumulateAmount="", recurringInterval="30", recurringCount="24")
    assert (update["respCode"], update["respReason"]) == ("00", "Update Successful")
    assert live_fields(emulator, "156142")["recurringCount"] == "24"
    assert live_fields(emulator, "156142")["maxAccumulateAmount"] == "000000001000"  # kept
    cancel = call("C", recurringStatus="Y", amount="000000009990", allowAccumulate="N")
    assert (cancel["respCode"], cancel["respReason"]) == ("00", "Cancel Successful")


def test_cancel_is_final(call: Any, emulator: Emulator) -> None:
    assert call("C")["respCode"] == "00"
    assert call("I")["recurringStatus"] == "N"
    assert call("U", recurringStatus="Y")["respCode"] == "12"
    assert call("C")["respCode"] == "12"
    assert live_fields(emulator, "156142")["cancelled"] is True


def test_a_gateway_that_no_longer_finds_cancelled_plans_answers_16_to_their_writes(
        call: Any, emulator: Emulator) -> None:
    assert admin(emulator, "PUT", "/_emulator/faults",
                 {"cancelled_write_code": 16})["cancelled_write_code"] == 16
    assert call("C")["respCode"] == "00"
    assert call("C")["respCode"] == "16"
    assert call("U", recurringStatus="Y")["respCode"] == "16"
    assert call("I")["recurringStatus"] == "N"  # inquiry still shows it, as N
    bad = requests.put(emulator.server.base_url + "/_emulator/faults",
                       json={"cancelled_write_code": 13}, timeout=5)
    assert bad.status_code == 400 and "must be 12 or 16" in bad.json()["error"]


def test_a_write_committed_then_answered_400(call: Any, emulator: Emulator) -> None:
    admin(emulator, "PUT", "/_emulator/faults", {"commit_error_rate": 1.0})
    with pytest.raises(requests.HTTPError) as refused:
        call("C")
    assert refused.value.response.status_code == 400
    assert call("I")["respCode"] == "00"  # inquiries are not struck
    assert live_fields(emulator, "156142")["cancelled"] is True  # but the cancel committed
    assert [(e["processType"], e["respCode"], e["fault"])
            for e in admin(emulator, "GET", "/_emulator/log")] == [
        ("C", "00", "commit-error"), ("I", "00", None)]


def test_a_later_fault_left_unset_does_not_change_a_seeds_sequence() -> None:
    # The faults before commit_error_rate drew one number per rate and one for the jitter,
    # per request; a seed must still give the same faults when the later one is unset.
    import random

    from plansync.emulator.faults import RATES, Dice, Faults

    faults = Faults(error_rate=0.5, drop_rate=0.3, jitter_ms=10, seed=3)
    rng = random.Random(3)
    expected = []
    for _ in range(20):
        hits = [rng.random() < getattr(faults, name) for name in RATES]
        expected.append(((faults.latency_ms + rng.uniform(0, faults.jitter_ms)) / 1000, *hits))
    dice = Dice(faults)
    assert [tuple(dice.roll())[:-1] for _ in range(20)] == expected
    struck = Dice(Faults(commit_error_rate=0.5, seed=3))
    assert {struck.roll().commit_error for _ in range(20)} == {True, False}


@pytest.mark.parametrize(("fields", "code"), [
    ({"merchantID": None}, "10"),
    ({"processType": None}, "10"),
    ({"version": None}, "10"),
    ({"processType": "X"}, "17"),
    ({"merchantID": "OTHER"}, "03"),
    ({"recurringUniqueID": "999"}, "16"),
    ({"recurringUniqueID": "12ab"}, "11"),
    ({"timeStamp": "yesterday"}, "11"),
    ({"processType": "U"}, "10"),  # an update that changes nothing
    ({"processType": "U", "amount": "99.90"}, "11"),
    ({"processType": "U", "amount": "9990"}, "11"),
    ({"processType": "U", "recurringInterval": "0"}, "11"),
    ({"processType": "U", "recurringInterval": "366"}, "11"),
    ({"processType": "U", "recurringStatus": "A"}, "11"),
    ({"processType": "U", "allowAccumulate": "yes"}, "11"),
    ({"processType": "U", "chargeNextDate": "31022027"}, "11"),
    ({"processType": "U", "chargeNextDate": "20270301"}, "11"),  # the spec says DDMMYYYY
    ({"processType": "U", "chargeOnDate": "3102"}, "11"),
    ({"processType": "U", "recurringCount": "-1"}, "11"),
    ({"processType": "U", "recurringCount": "100000"}, "11"),  # N 5: at most 99999
    ({"processType": "U", "recurringCount": "99999"}, "00"),
])
def test_result_codes(call: Any, fields: dict[str, str], code: str) -> None:
    process_type = fields.pop("processType", "I")
    plan_id = fields.pop("recurringUniqueID", "156142")
    answer = call(process_type, plan_id, **fields)
    assert answer["respCode"] == code, answer["respReason"]


def test_unreadable_requests_get_http_400_and_96(emulator: Emulator) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = foreign_client.seal(b"<RecurringMaintenanceRequest/>", stranger,
                                stranger.public_key())
    for body in (token, "not a token", ""):
        answer = requests.post(emulator.url, data=body, timeout=5)
        assert answer.status_code == 400 and answer.text.startswith("96"), body


def test_admin_endpoints(call: Any, emulator: Emulator) -> None:
    call("U", amount="000000001234")
    log = admin(emulator, "GET", "/_emulator/log")
    assert [(e["processType"], e["recurringUniqueID"], e["respCode"], e["fault"])
            for e in log] == [("U", "156142", "00", None)]
    assert log[0]["time"].endswith("+00:00")
    assert admin(emulator, "POST", "/_emulator/reset") == {"plans": 7}
    assert live_fields(emulator, "156142")["amount"] == "000000009990"
    assert admin(emulator, "GET", "/_emulator/log") == []
    assert admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 5})["latency_ms"] == 5
    assert admin(emulator, "GET", "/_emulator/faults")["latency_ms"] == 5
    bad = requests.put(emulator.server.base_url + "/_emulator/faults",
                       json={"error_rate": 2}, timeout=5)
    assert bad.status_code == 400 and "between 0 and 1" in bad.json()["error"]
    assert requests.get(emulator.server.base_url + "/_emulator/nope", timeout=5
                        ).status_code == 404


def test_every_request_is_logged_with_its_fault(call: Any, emulator: Emulator) -> None:
    for fault in ("reset_rate", "throttle_rate", "error_rate", "drop_rate", "wrong_key_rate",
                  "malformed_rate"):
        admin(emulator, "PUT", "/_emulator/faults", {fault: 1.0})
        with pytest.raises((requests.RequestException, InvalidSignature, ParseError)):
            call("U", amount="000000000100")
    requests.post(emulator.url, data="garbage", timeout=5)
    log = admin(emulator, "GET", "/_emulator/log")
    assert [(e["processType"], e["respCode"], e["fault"]) for e in log] == [
        ("U", "", "reset"), ("U", "", "throttle"), ("U", "", "error"), ("U", "00", "drop"),
        ("U", "00", "wrong_key"), ("U", "00", "malformed"), ("", "96", None)]


def test_faults_are_reproducible_for_a_seed(call: Any, emulator: Emulator) -> None:
    def outcomes() -> list[str]:
        admin(emulator, "PUT", "/_emulator/faults", {"error_rate": 0.5, "seed": 7})
        results = []
        for _ in range(12):
            try:
                results.append(call("I")["respCode"])
            except requests.HTTPError as exc:
                results.append(str(exc.response.status_code))
        return results

    first = outcomes()
    assert "500" in first and "00" in first
    assert outcomes() == first


def test_db_file_keeps_plans_across_restarts(emulator_dir: Path, tmp_path: Path,
                                             foreign_keys: Any) -> None:
    db = str(tmp_path / "plans.db")
    with Emulator.start(emulator_dir, db=db) as first:
        foreign_client.call(first.url, {"version": "2.4", "merchantID": "JT01",
                                        "recurringUniqueID": "156145", "processType": "C"},
                            *foreign_keys)
    with Emulator.start(emulator_dir, db=db) as second:
        assert live_fields(second, "156145")["cancelled"] is True


@pytest.mark.parametrize(("text", "message"), [
    ("plans: [{recurringUniqueID: '1'}]", "is a required property"),
    ("plans:\n  - {recurringUniqueID: '1', merchantID: JT01, recurringStatus: 'Y', "
     "amount: '99.90', currency: '702'}", "does not match"),
    ("plans: [", "not valid YAML"),
    ("plans: {}", "is not of type 'array'"),
])
def test_bad_seed_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        home.load_seed(path)
    assert str(path) in str(info.value)


def test_init_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "emu").mkdir()
    (tmp_path / "emu" / "seed.yaml").write_text("mine")
    with pytest.raises(ConfigError, match="already holds seed.yaml"):
        home.init(tmp_path / "emu")
    assert (tmp_path / "emu" / "seed.yaml").read_text() == "mine"
    assert not (tmp_path / "emu" / "gateway-private.pem").exists()
