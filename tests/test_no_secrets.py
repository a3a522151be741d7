"""No credential from the settings or the environment is printed, logged or stored.

Real runs (plan, plan --out, apply --plan, apply, the state commands, a locked state, -vv
logs, ci report) with secrets in every place a run reads one: the CI run's URL
(``user:token@`` and a token parameter), the merchant key and its password, a proxy URL
with a password. Then every byte the runs wrote to stdout, stderr and the working
folder (state, backup, journal, lock note, plan files, step summary) is searched for
each secret.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from plansync.emulator import home
from tests.fake_github import REPO, TOKEN, FakeGitHub
from tests.helpers import EXAMPLE, run

CI_TOKEN, CI_QUERY_TOKEN, GH_TOKEN = "s3cr3tTok", "qT0kenVal", "ghS3cretPw"
KEY_PASSWORD, PROXY_PASSWORD = "kPw5ecretXY", "pxS3cret"
BUILD_URL = f"https://jenkins:{CI_TOKEN}@ci.example/job/7/?token={CI_QUERY_TOKEN}"
SAFE_BUILD_URL = "https://***@ci.example/job/7/?token=***"
PROXY = f"http://user:{PROXY_PASSWORD}@127.0.0.1:99999"
SECRETS = [CI_TOKEN, CI_QUERY_TOKEN, GH_TOKEN, KEY_PASSWORD, PROXY_PASSWORD]
CI_SETTINGS = {
    "jenkins": {"BUILD_URL": BUILD_URL},
    "github": {"GITHUB_SERVER_URL": f"https://octo:{GH_TOKEN}@ghe.example",
               "GITHUB_REPOSITORY": "acme/plans", "GITHUB_RUN_ID": "42"},
}


class Witness:
    """Everything the runs showed, and the folder they wrote to."""

    def __init__(self, folder: Path, secrets: list[str]) -> None:
        self.folder, self.secrets, self.shown = folder, secrets, []  # type: list[str]

    def run(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        result = run(*args, env=env)
        self.shown += [f"$ plansync {' '.join(args)}\n{result.stdout}{result.stderr}"]
        return result

    def leaks(self) -> list[str]:
        found = [f"{secret} in the output of {text.splitlines()[0]}"
                 for text in self.shown for secret in self.secrets if secret in text]
        for path in sorted(self.folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{secret} in {path}" for secret in self.secrets
                          if secret.encode() in data]
        return found


@pytest.fixture
def key_body(emulator_dir: Path) -> str:
    """A line from the middle of the merchant's private key: never to be seen again."""
    lines = (emulator_dir / home.MERCHANT_PRIVATE).read_text().splitlines()
    return lines[len(lines) // 2]


@pytest.fixture
def env(served: dict[str, str], emulator_dir: Path, tmp_path: Path) -> dict[str, str]:
    """The emulator's settings, with the merchant key encrypted under a password."""
    source = emulator_dir / home.MERCHANT_PRIVATE
    key = serialization.load_pem_private_key(source.read_bytes(), None)
    encrypted = tmp_path / "keys" / "merchant.pem"
    encrypted.parent.mkdir()
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSWORD.encode())))
    encrypted.chmod(0o600)
    return served | {"PLANSYNC_MERCHANT_KEY": str(encrypted),
                     "PLANSYNC_MERCHANT_KEY_PASSWORD": KEY_PASSWORD,
                     "PLANSYNC_STATE": str(tmp_path / ".plansync" / "state.json"),
                     "HTTPS_PROXY": PROXY, "https_proxy": PROXY}


@pytest.mark.parametrize("ci", sorted(CI_SETTINGS))
def test_a_whole_run_prints_and_stores_no_secret(
        ci: str, env: dict[str, str], key_body: str, tmp_path: Path) -> None:
    env = env | CI_SETTINGS[ci]
    seen = Witness(tmp_path, [*SECRETS, key_body])
    plan = seen.run("-vv", "plan", str(EXAMPLE), "--out", str(tmp_path / "plans" / "p.json"),
                    env=env)
    assert plan.returncode == 0, plan.stderr
    applied = seen.run("-vv", "apply", "--plan", str(tmp_path / "plans" / "p.json"),
                       "--auto-approve", "--json", env=env)
    assert applied.returncode == 0, applied.stderr
    again = seen.run("-vv", "apply", str(EXAMPLE), "--auto-approve", "--plan",
                     str(tmp_path / "plans" / "p.json"), "--json", env=env)
    assert "already_applied" in again.stdout, again.stdout + again.stderr
    for command in (["state", "history"], ["state", "history", "--json"],
                    ["state", "list"], ["state", "show", "156142"], ["state", "pull"]):
        shown = seen.run(*command, env=env)
        assert shown.returncode == 0, shown.stderr
    history = seen.shown[3]
    assert (SAFE_BUILD_URL if ci == "jenkins" else
            "https://***@ghe.example/acme/plans/actions/runs/42") in history, history
    assert seen.leaks() == []


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Path]:
    """The state's lock file, flocked by this test as a running holder would."""
    path = tmp_path / ".plansync" / "state.json.lock"
    path.parent.mkdir(mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield path
    os.close(fd)


def _note(ci_url: str) -> dict[str, object]:
    return {"id": "3f1c0b9e-0000-4000-8000-000000000001", "user": "ci", "host": "runner-7",
            "pid": 4242, "operation": "apply", "since": "2026-11-27T10:00:00Z",
            "ci_url": ci_url, "generation": 1}


@pytest.mark.parametrize("written_by", ["this version", "an older version"])
def test_the_locked_state_message_names_the_ci_run_without_its_credentials(
        written_by: str, env: dict[str, str], held: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if written_by == "this version":
        from plansync.engine import lock

        monkeypatch.setenv("BUILD_URL", BUILD_URL)
        note = lock.LockNote.new("apply").stored()
    else:  # stored the CI URL as it was given
        note = _note(BUILD_URL)
    held.write_text(json.dumps(note))
    seen = Witness(tmp_path, SECRETS)
    for command in (["apply", str(EXAMPLE), "--auto-approve"],
                    ["force-unlock", str(note["id"])]):
        result = seen.run(*command, env=env)
        assert result.returncode != 0
        assert f"(CI run {SAFE_BUILD_URL})" in result.stderr, result.stderr
    assert "the state is locked" in seen.shown[0]
    if written_by == "an older version":
        held.unlink()  # the test wrote that secret there itself
    assert seen.leaks() == []


def test_ci_report_names_the_run_without_the_servers_credentials(
        github: FakeGitHub, tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"dry_run": False, "summary": {}, "results": [
        {"id": "156142", "result": "updated", "detail": "amount"}]}))
    env = {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPO, "GITHUB_TOKEN": TOKEN,
           "GITHUB_RUN_ID": "555", "GITHUB_SERVER_URL": f"https://octo:{GH_TOKEN}@ghe.example",
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    seen = Witness(tmp_path, [GH_TOKEN])
    result = seen.run("ci", "report", "--pull", "7", "--results", str(results), env=env)
    assert result.returncode == 0, result.stderr
    body = github.comments[7][0]["body"]
    assert f"(https://***@ghe.example/{REPO}/actions/runs/555)" in body, body
    assert GH_TOKEN not in body
    assert seen.leaks() == []


def test_a_proxy_password_is_not_printed(env: dict[str, str], tmp_path: Path) -> None:
    """HTTPS_PROXY applies to https endpoints only: one on a closed loopback port."""
    seen = Witness(tmp_path, SECRETS)
    result = seen.run("-vv", "plan", str(EXAMPLE), "--endpoint", "https://127.0.0.1:9/x",
                      env=env)
    assert result.returncode == 1
    assert seen.leaks() == []


@pytest.mark.parametrize("api_url", [f"ftp://octo:{GH_TOKEN}@ghe.example/api/v3",
                                     f"https://ghe.example:99999/api?token={GH_TOKEN}"])
def test_a_github_api_url_refused_is_named_without_its_credentials(api_url: str) -> None:
    from plansync.gitops.github import GitHub, GitHubError

    with pytest.raises(GitHubError) as caught:
        GitHub(api_url, REPO, TOKEN)
    assert "is not a URL of GitHub's REST API" in caught.value.message
    assert GH_TOKEN not in str(caught.value)


# --- folders plansync creates are its owner's only ----------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which a folder made with the default mode is 0755 (the
    commands run as child processes, which inherit it)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(top: Path) -> dict[str, int]:
    return {str(p.relative_to(top.parent)): p.stat().st_mode & 0o777
            for p in [top, *top.rglob("*")] if p.is_dir()}


@pytest.mark.usefixtures("umask_022")
def test_every_folder_plansync_creates_is_0700(
        served: dict[str, str], tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # the user's: left as it is
    state = tmp_path / "deep" / ".plansync" / "state.json"
    env = served | {"PLANSYNC_STATE": str(state)}
    for command in (["apply", str(EXAMPLE), "--auto-approve"],
                    ["apply", str(EXAMPLE), "--auto-approve", "--workspace", "staging"],
                    ["import", "156142", "--out", str(tmp_path / "out" / "specs" / "i.yaml")],
                    ["init", str(tmp_path / "repo")],
                    ["emulator", "init", str(tmp_path / "emu" / "one")]):
        result = run(*command, env=env)
        assert result.returncode == 0, (command, result.stderr)
    made = {name: mode for top in ("deep", "out", "repo", "emu")
            for name, mode in _modes(tmp_path / top).items()}
    assert {"deep/.plansync/workspaces/staging", "out/specs", "repo/.github/workflows",
            "emu/one"} <= set(made)
    assert made == dict.fromkeys(made, 0o700)
    assert tmp_path.stat().st_mode & 0o777 == 0o755
    # The imported spec too: live plans, the owner's only (it was 0644).
    assert (tmp_path / "out" / "specs" / "i.yaml").stat().st_mode & 0o777 == 0o600
