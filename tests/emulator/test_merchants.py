"""One emulator, several merchants: each with its own key pair and plans, each request
verified with the key of the merchant it names; and `serve` on the folder's own port."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from plansync.emulator import home
from plansync.emulator.server import Emulator
from plansync.emulator.store import PlanStore
from plansync.errors import ConfigError
from tests import foreign_client
from tests.helpers import PLANSYNC, admin, run
from tests.servers import free_port

MERCHANTS = ("SG01", "TH01")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = tmp_path_factory.mktemp("merchants") / "emu"
    home.init_merchants(made, MERCHANTS)
    return made


def ids(index: int, *offsets: int) -> set[str]:
    return {str(home.FIRST_PLAN_ID + home.PLAN_ID_STEP * index + offset) for offset in offsets}


def private_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def flags(folder: Path, merchant_id: str, url: str, key_of: str | None = None) -> list[str]:
    """The client pointed at one merchant by flags (config.py reads no projects yet)."""
    key = folder / home.merchant_key(key_of or merchant_id)
    return ["--merchant-id", merchant_id, "--merchant-key", str(key),
            "--gateway-key", str(folder / home.GATEWAY_PUBLIC), "--endpoint", url]


@contextmanager
def serving(folder: Path, *args: str) -> Iterator[str]:
    """`plansync emulator serve --dir folder`, as its own process; yields its first line."""
    server = subprocess.Popen([*PLANSYNC, "emulator", "serve", "--dir", str(folder), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield server.stdout.readline()
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


# --- init ---------------------------------------------------------------------------


def test_init_writes_a_project_keys_plans_and_a_spec_per_merchant(tmp_path: Path) -> None:
    folder = tmp_path / "emu"
    result = run("emulator", "init", str(folder), "--merchants", "SG01,TH01",
                 "--port", "8711")
    assert result.returncode == 0, result.stderr
    settings = yaml.safe_load((folder / "plansync.yaml").read_text())
    assert settings == {
        "endpoint": "http://127.0.0.1:8711/2C2PFrontend/PaymentAction/2.0/action",
        "gateway_key": "gateway-public.pem",
        "projects": {
            "sg01": {"specs": ["specs/sg01"], "merchant_id": "SG01",
                     "merchant_key": "merchants/SG01/merchant-private.pem"},
            "th01": {"specs": ["specs/th01"], "merchant_id": "TH01",
                     "merchant_key": "merchants/TH01/merchant-private.pem"},
        }}
    for project in settings["projects"].values():  # each path is there, relative to the file
        assert (folder / project["merchant_key"]).stat().st_mode & 0o077 == 0
        assert (folder / project["specs"][0] / "plans.yaml").is_file()
    assert (folder / "merchants" / "SG01").stat().st_mode & 0o777 == 0o700
    assert not (folder / home.MERCHANT_PRIVATE).exists()
    assert run("emulator", "init", str(folder), "--merchants", "SG01").returncode == 1

    seed = home.load_seed(folder / home.SEED)
    by_merchant = {m: {p.plan_id for p in seed if p.merchant_id == m} for m in MERCHANTS}
    assert by_merchant == {"SG01": ids(0, *range(7)), "TH01": ids(1, *range(7))}
    # Each spec declares that merchant's plans (as specs.example does the first's) and is valid.
    for index, merchant in enumerate(MERCHANTS):
        spec = folder / "specs" / merchant.lower()
        declared = {plan["id"] for plan in
                    yaml.safe_load((spec / "plans.yaml").read_text())["plans"]}
        assert declared == ids(index, 0, 1, 2, 3)
        checked = run("validate", "--json", str(spec))
        assert checked.returncode == 0, checked.stdout
        assert json.loads(checked.stdout)["plans"] == 4


def test_one_merchant_keeps_todays_folder(tmp_path: Path) -> None:
    folder = tmp_path / "emu"
    assert run("emulator", "init", str(folder), "--merchant", "JT01").returncode == 0
    assert sorted(path.name for path in folder.iterdir()) == [
        "gateway-private.pem", "gateway-public.pem", "merchant-private.pem",
        "merchant-public.pem", "plansync.yaml", "seed.yaml"]
    assert (folder / "plansync.yaml").read_text() == (
        "# Client settings for the local plansync emulator in this folder.\n"
        "# Start it with:  plansync emulator serve --dir <this folder>\n"
        "# Paths are relative to this file.\n"
        "endpoint: http://127.0.0.1:8700/2C2PFrontend/PaymentAction/2.0/action\n"
        "merchant_id: JT01\n"
        "merchant_key: merchant-private.pem\n"
        "gateway_key: gateway-public.pem\n")
    assert {p.plan_id for p in home.load_seed(folder / home.SEED)} == ids(0, *range(7))


@pytest.mark.parametrize(("args", "message"), [
    (["--merchants", "SG01,sg01"], "sg01 given twice"),
    (["--merchants", "SG01,TH 01"], "'TH 01' is not 1-15 letters and digits"),
    (["--merchants", ""], "'' is not 1-15 letters and digits"),
    (["--merchants", "SG01", "--merchant", "JT01"], "--merchant or --merchants, not both"),
    (["--merchant", "JT01: x"], "is not 1-15 letters and digits"),
])
def test_bad_merchant_ids_are_usage_errors(tmp_path: Path, args: list[str],
                                           message: str) -> None:
    result = run("emulator", "init", str(tmp_path / "emu"), *args)
    assert result.returncode == 64, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "emu").exists()


# --- several merchants, one emulator ------------------------------------------------


def test_two_merchants_plan_and_apply_against_one_running_emulator(tmp_path: Path) -> None:
    port = free_port()
    folder = tmp_path / "emu"
    assert run("emulator", "init", str(folder), "--merchants", ",".join(MERCHANTS),
               "--port", str(port)).returncode == 0
    with serving(folder) as first:  # no --port: the one plansync.yaml names
        assert first == f"plansync emulator listening on http://127.0.0.1:{port}\n"
        base = f"http://127.0.0.1:{port}"
        for index, merchant in enumerate(MERCHANTS):
            given = flags(folder, merchant, base + home.ACTION_PATH)
            spec = str(folder / "specs" / merchant.lower())
            env = {"PLANSYNC_STATE": str(tmp_path / merchant / "state.json")}
            planned = run("plan", spec, "--json", *given, env=env)
            assert planned.returncode == 0, planned.stderr
            changes = {change["id"]: change["action"]
                       for change in json.loads(planned.stdout)["changes"]}
            assert set(changes) == ids(index, 0, 1, 2, 3)  # its own plans, all found
            applied = run("apply", spec, "--auto-approve", *given, env=env)
            assert applied.returncode == 0, applied.stderr
            again = run("plan", spec, "--detailed-exitcode", *given, env=env)
            assert again.returncode == 0, again.stdout + again.stderr

        log = requests.get(base + "/_emulator/log", timeout=10).json()
        plans = requests.get(base + "/_emulator/plans", timeout=10).json()
    assert {entry["respCode"] for entry in log} == {"00"}
    for index, merchant in enumerate(MERCHANTS):  # each merchant's requests: its own plans
        asked = {e["recurringUniqueID"] for e in log if e["merchantID"] == merchant}
        assert asked == ids(index, 0, 1, 2, 3)
    writes = {(e["merchantID"], e["recurringUniqueID"], e["processType"])
              for e in log if e["processType"] in ("U", "C")}
    assert writes == {(merchant, plan_id, kind) for index, merchant in enumerate(MERCHANTS)
                      for plan_id, kind in ((ids(index, 0).pop(), "U"),
                                            (ids(index, 2).pop(), "U"),
                                            (ids(index, 3).pop(), "C"))}
    live = {(p["merchantID"], p["recurringUniqueID"]): p for p in plans}
    for index, merchant in enumerate(MERCHANTS):
        assert live[(merchant, ids(index, 0).pop())]["amount"] == "000000012000"
        assert live[(merchant, ids(index, 3).pop())]["cancelled"] is True
        assert live[(merchant, ids(index, 6).pop())]["amount"] == "000000001990"  # untouched


@pytest.fixture
def emulator_of_two(folder: Path) -> Iterator[Emulator]:
    with Emulator.start(folder) as running:
        yield running


def call(emulator: Emulator, folder: Path, merchant_id: str, plan_id: str,
         key_of: str) -> dict[str, str]:
    gateway_key = serialization.load_pem_public_key((folder / home.GATEWAY_PUBLIC).read_bytes())
    assert isinstance(gateway_key, rsa.RSAPublicKey)
    request = {"version": "2.4", "timeStamp": "050321091314", "merchantID": merchant_id,
               "recurringUniqueID": plan_id, "processType": "C"}
    return foreign_client.call(emulator.url, request,
                               private_key(folder / home.merchant_key(key_of)), gateway_key)


def test_a_request_signed_by_another_merchant_is_refused(
        emulator_of_two: Emulator, folder: Path) -> None:
    th_plan = ids(1, 0).pop()
    with pytest.raises(requests.HTTPError) as refused:
        call(emulator_of_two, folder, "TH01", th_plan, key_of="SG01")
    answer = refused.value.response
    assert answer.status_code == 400
    assert answer.text == ("96 Unable to decrypt the request of merchantID 'TH01': the "
                           "signature does not verify with the merchant's key\n")
    # Nothing done; the merchant's own key is still accepted.
    assert call(emulator_of_two, folder, "TH01", th_plan, key_of="TH01")["respCode"] == "00"
    assert [(e["merchantID"], e["recurringUniqueID"], e["respCode"])
            for e in admin(emulator_of_two, "GET", "/_emulator/log")] == [
        ("TH01", th_plan, "96"), ("TH01", th_plan, "00")]


def test_plansync_with_another_merchants_key_gets_a_clear_error(
        emulator_of_two: Emulator, folder: Path) -> None:
    result = run("inquire", ids(1, 0).pop(),
                 *flags(folder, "TH01", emulator_of_two.url, key_of="SG01"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "(96 Unable to decrypt the request of merchantID 'TH01'" in result.stderr
    assert "check that merchant_key is the key whose public half is registered" in result.stderr
    assert admin(emulator_of_two, "GET", "/_emulator/log")[-1]["respCode"] == "96"


def test_a_merchant_without_a_key_is_answered_03_in_plain_text(
        emulator_of_two: Emulator, folder: Path) -> None:
    # No key to verify the request with, nor to encrypt an answer to: a plain refusal.
    with pytest.raises(requests.HTTPError) as refused:
        call(emulator_of_two, folder, "NOPE01", ids(0, 0).pop(), key_of="SG01")
    assert refused.value.response.status_code == 400
    assert refused.value.response.text.startswith("03 Invalid merchant: no key is registered "
                                                  "for merchantID 'NOPE01'")


def test_a_plan_id_of_another_merchant_does_not_exist(emulator_of_two: Emulator,
                                                      folder: Path) -> None:
    answer = call(emulator_of_two, folder, "SG01", ids(1, 0).pop(), key_of="SG01")
    assert answer["respCode"] == "16"


# --- serve binds the folder's port ---------------------------------------------------


def test_serve_binds_the_port_of_the_folders_settings(tmp_path: Path) -> None:
    folder, port = tmp_path / "emu", free_port()
    assert run("emulator", "init", str(folder), "--port", str(port)).returncode == 0
    with serving(folder) as first:
        assert first == f"plansync emulator listening on http://127.0.0.1:{port}\n"
        answer = run("inquire", "--json", "156142",
                     env={"PLANSYNC_CONFIG": str(folder / "plansync.yaml")})
        assert answer.returncode == 0, answer.stderr  # the settings reach it as they are
    other = free_port()
    with serving(folder, "--port", str(other)) as first:  # an explicit --port still wins
        assert first == f"plansync emulator listening on http://127.0.0.1:{other}\n"


@pytest.mark.parametrize(("settings", "port"), [
    (None, None),
    ("endpoint: sandbox\n", None),
    ("endpoint: http://127.0.0.1/2C2PFrontend/PaymentAction/2.0/action\n", None),
    ("merchant_id: JT01\n", None),
    ("endpoint: http://127.0.0.1:8711/x\n", 8711),
])
def test_the_folders_port(tmp_path: Path, settings: str | None, port: int | None) -> None:
    if settings is not None:
        (tmp_path / "plansync.yaml").write_text(settings)
    assert home.client_port(tmp_path) == port  # serve binds 8700 for None


def test_a_settings_file_with_a_bad_port_is_a_clear_error(emulator_dir: Path,
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "emu"
    folder.mkdir()
    for name in (home.GATEWAY_PRIVATE, home.MERCHANT_PUBLIC, home.SEED):
        (folder / name).write_bytes((emulator_dir / name).read_bytes())
    (folder / "plansync.yaml").write_text("endpoint: http://127.0.0.1:99999/x\n")
    result = run("emulator", "serve", "--dir", str(folder))
    assert result.returncode == 1
    assert f"settings file {folder / 'plansync.yaml'}: the port of endpoint" in result.stderr
    assert "pass --port" in result.stderr and "Traceback" not in result.stderr
    (folder / "plansync.yaml").write_text("endpoint: [\n")
    result = run("emulator", "serve", "--dir", str(folder))
    assert result.returncode == 1 and "is not valid YAML" in result.stderr


# --- exec ----------------------------------------------------------------------------


def test_exec_with_several_merchants(folder: Path, tmp_path: Path) -> None:
    show_env = ("import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
                "if k.startswith('PLANSYNC_')}))")
    result = run("emulator", "exec", "--dir", str(folder), "--", sys.executable, "-c", show_env)
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout)
    # No one merchant: the folder's projects name each with its key.
    assert set(seen) == {"PLANSYNC_ENDPOINT", "PLANSYNC_GATEWAY_KEY", "PLANSYNC_CONFIG"}
    assert seen["PLANSYNC_CONFIG"] == str(folder.resolve() / "plansync.yaml")
    assert seen["PLANSYNC_ENDPOINT"].startswith("http://127.0.0.1:")
    assert seen["PLANSYNC_ENDPOINT"] != yaml.safe_load(
        (folder / "plansync.yaml").read_text())["endpoint"]  # the emulator's free port

    empty = tmp_path / "empty.yaml"  # (config.py reads no projects: merchant by flags)
    empty.write_text("")
    result = run("emulator", "exec", "--dir", str(folder), "--", *PLANSYNC, "inquire",
                 "--config", str(empty), "--merchant-id", "TH01",
                 "--merchant-key", str(folder / home.merchant_key("TH01")),
                 "--json", ids(1, 1).pop())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["amount"] == "499.00"


# --- the log names the merchant -------------------------------------------------------


def test_a_db_file_from_before_the_log_named_the_merchant_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "plans.db"
    with sqlite3.connect(path) as old:
        old.executescript("""
            CREATE TABLE plans (merchant_id TEXT NOT NULL, plan_id TEXT NOT NULL,
                fields TEXT NOT NULL, cancelled INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (merchant_id, plan_id));
            CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
                process_type TEXT NOT NULL, plan_id TEXT NOT NULL, resp_code TEXT NOT NULL,
                fault TEXT);
            INSERT INTO log (at, process_type, plan_id, resp_code) VALUES ('t', 'I', '1', '00');
        """)
    old.close()
    store = PlanStore(str(path))
    try:
        store.record("JT01", "U", "1", "00")
        assert [(e["merchantID"], e["processType"]) for e in store.log()] == [
            ("", "I"), ("JT01", "U")]
    finally:
        store.close()


def test_a_folder_without_any_merchant_key_says_so(tmp_path: Path, emulator_dir: Path) -> None:
    folder = tmp_path / "emu"
    folder.mkdir()
    (folder / home.GATEWAY_PRIVATE).write_bytes((emulator_dir / home.GATEWAY_PRIVATE)
                                                .read_bytes())
    with pytest.raises(ConfigError, match="merchant-public.pem"):
        home.gateway_keys(folder)
