"""Which workspace a folder has selected (``plansync workspace select``), as Terraform's
``.terraform/environment``: one line, the name, in ``.plansync/workspace`` of the
folder the commands run in.

The selection is the lowest source of the workspace: ``--workspace``, then
``$PLANSYNC_WORKSPACE``, then ``workspace:`` in plansync.yaml, then ``?workspace=`` in the
state URL, then the selection, then ``default``. Light on purpose: the settings read it
on every run.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from plansync.errors import ConfigError, PlansyncError
from plansync.folders import read_regular, write_atomically
from plansync.printable import quoted

DEFAULT = "default"
SELECTED = Path(".plansync") / "workspace"  # in the folder the commands run in
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(name: str) -> str:
    """``name`` if it is a workspace name; else ConfigError."""
    if not NAME.fullmatch(name):
        raise ConfigError(f"workspace {quoted(name)} is not 1-64 letters, digits, '.', '_' "
                          "or '-'")
    return name


def selected_workspace(folder: Path) -> str | None:
    """The workspace ``folder`` selected, or None when it selected none."""
    path = folder / SELECTED
    try:
        text = read_regular(path).decode("utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlansyncError(f"the selected workspace's file {path} cannot be read: "
                            f"{getattr(exc, 'strerror', None) or exc}",
                            "run plansync workspace select NAME, or remove the file") from None
    if not NAME.fullmatch(text):
        raise ConfigError(f"the selected workspace's file {path} holds {quoted(text)}, not a "
                          "workspace name", "run plansync workspace select NAME, or remove "
                                            "the file")
    return text


def select(folder: Path, name: str) -> None:
    write_atomically(folder / SELECTED, f"{check_name(name)}\n".encode())


def in_url(location: str) -> str | None:
    """The workspace a state URL names (``?workspace=NAME``), or None."""
    if "://" not in location:
        return None
    try:
        names = parse_qs(urlsplit(location).query).get("workspace")
    except ValueError:  # a malformed URL: opening the backend says so
        return None
    return names[0] if names else None
