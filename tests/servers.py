"""Real servers for the state backends' tests, started by the tests themselves on
127.0.0.1: a PostgreSQL server (Debian's postgresql package, initdb into a temp dir, run
as a non-root user) and an S3-compatible server (moto's server mode, over real HTTP,
with conditional writes). Neither is a mock; if one cannot start, the tests fail."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = shutil.which("initdb") or (found[-1] if found else None)
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql); "
                           ".ci/run installs it")
    return Path(os.path.realpath(initdb)).parent


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server; yields a URL for the database 'plansync'."""
    bindir = _postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="plansync-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data, log = folder / "data", folder / "log"
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "plansync", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                    "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
                          "-c fsync=off -c max_connections=200", "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                        "-U", "plansync", "plansync"], check=True, capture_output=True)
        yield f"postgres://plansync@127.0.0.1:{port}/plansync"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3-compatible server in its own process; yields its endpoint URL. The
    environment gets dummy credentials and that endpoint, as a CI job would."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto's S3 server did not start") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(10)
