"""Where an apply's writes came from, for the audit trail: the saved plan file or the spec
paths, and the git commit of the spec.

The commit is GITHUB_SHA in GitHub Actions, else the HEAD of the git checkout that holds
the spec, else "" (no git, not a checkout, git failing): knowing it is worth a subprocess,
never a failed apply.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

GIT_TIMEOUT = 5.0  # seconds: a hung git (a network filesystem) must not hold up the apply
_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")  # SHA-1, or SHA-256


def origin(plan_file: Path | None, spec_paths: Sequence[str | Path],
           environ: Mapping[str, str]) -> dict[str, Any]:
    """``{"plan_file": ..., "commit": ...}`` for ``apply --plan``, else
    ``{"specs": [...], "commit": ...}``; paths as given."""
    where: dict[str, Any] = ({"plan_file": str(plan_file)} if plan_file is not None
                             else {"specs": [str(path) for path in spec_paths]})
    first = Path(spec_paths[0]) if spec_paths else plan_file
    return {**where, "commit": commit(environ, first)}


def commit(environ: Mapping[str, str], path: Path | None) -> str:
    """The commit the spec at ``path`` was read from, or "" when it is not known."""
    given = environ.get("GITHUB_SHA", "").strip().lower()
    if _COMMIT.fullmatch(given):
        return given
    if path is None:
        return ""
    folder = path if path.is_dir() else path.parent
    try:
        found = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"],
                               capture_output=True, text=True, timeout=GIT_TIMEOUT,
                               stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError, ValueError):  # no git; hung; a NUL in a path
        return ""
    head = found.stdout.strip()
    return head if found.returncode == 0 and _COMMIT.fullmatch(head) else ""
