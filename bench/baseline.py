"""The baseline: what a merchant's script built from the vendor's sample code does.

One request at a time, a new HTTPS connection for each (a bare ``requests.post``), the
keys loaded once (to be generous): seal with JOSE, post, open the answer, read the XML.
"""

from __future__ import annotations

import resource
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import requests
from joserfc import jwe, jws
from joserfc.jwk import RSAKey


def inquire(url: str, plan_id: str, merchant: RSAKey, gateway: RSAKey) -> dict[str, str]:
    xml = (f"<RecurringMaintenanceRequest><version>2.4</version><merchantID>JT01</merchantID>"
           f"<recurringUniqueID>{plan_id}</recurringUniqueID><processType>I</processType>"
           "</RecurringMaintenanceRequest>").encode()
    inner = jwe.encrypt_compact({"alg": "RSA-OAEP", "enc": "A256GCM"}, xml, gateway,
                                algorithms=["RSA-OAEP", "A256GCM"])
    token = jws.serialize_compact({"alg": "PS256", "typ": "JWT"}, inner, merchant,
                                  algorithms=["PS256"])
    answer = requests.post(url, data=token, headers={"Content-Type": "text/plain"}, timeout=30)
    answer.raise_for_status()
    signed = jws.deserialize_compact(answer.text, gateway, algorithms=["PS256"])
    plain = jwe.decrypt_compact(signed.payload, merchant, algorithms=["RSA-OAEP", "A256GCM"])
    return {child.tag: child.text or "" for child in ET.fromstring(plain.plaintext or b"")}


def measure(url: str, folder: Path, count: int, name: str) -> Any:
    from bench.run import Run

    merchant = RSAKey.import_key((folder / "merchant-private.pem").read_bytes())
    gateway = RSAKey.import_key((folder / "gateway-public.pem").read_bytes())
    cpu, started = time.process_time(), time.perf_counter()
    for i in range(count):
        assert inquire(url, str(1_000_000 + i), merchant, gateway)["respCode"] == "00"
    wall = time.perf_counter() - started
    cpu_ms = (time.process_time() - cpu) * 1000 / count
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Run(name, count, wall, count / wall, cpu_ms, peak)
