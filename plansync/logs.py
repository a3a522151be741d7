"""Logging for people (``-v``: one line per request; ``-vv``: and retry decisions) and
for CI log search (``--log-format json``: one JSON object per line on stderr)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from plansync.printable import printable


class JsonLines(logging.Formatter):
    """time, level, message, and the request's fields (plan, process_type, attempt,
    http_status, resp_code, duration_ms, outcome) where the line is about one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname.lower(), "message": record.getMessage()}
        line.update(getattr(record, "plansync", {}))
        return json.dumps(line)


class Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))

    def formatException(self, ei: Any) -> str:
        return ""  # a log line is a sentence: no traceback, whoever logged it


def configure(verbosity: int, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if fmt == "json" else Text("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if verbosity == 0 else
                  logging.INFO if verbosity == 1 else logging.DEBUG)
    logging.addLevelName(logging.WARNING, "warning")
    logging.addLevelName(logging.INFO, "info")
    logging.addLevelName(logging.DEBUG, "debug")
    for noisy in ("botocore", "boto3", "s3transfer"):  # their own requests
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # urllib3 warns of what plansync reports itself, better: a cut-off answer's headers
    # ("Failed to parse headers", with the URL and a traceback), a connection discarded.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
