"""Projects: several merchant accounts in one repository.

``plansync.yaml`` may declare ``projects:``, a mapping from a project's name to its
settings: the top level's keys (which are every project's defaults) plus ``specs``, the
files and folders of its plans. Each project is a merchant account of its own: its own
settings, its own specs, its own state (the repository's backend, in a workspace named
after the project) and so its own lock. This module reads the mapping and decides which
projects a run is about; config.py merges a project's settings over the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plansync.errors import ConfigError
from plansync.printable import quoted

# A project's name is also its workspace's and its GitHub environment's, and a CI job's:
# lower-case letters, digits, '-' and '_' fit all three.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
WORKSPACE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # workspaces.NAME
# What a project may not set: where the settings file is, or the projects themselves.
NOT_PER_PROJECT = {"projects"}


@dataclass(frozen=True)
class Project:
    name: str
    specs: tuple[Path, ...]  # absolute: relative to the settings file's folder
    own: Mapping[str, Any]  # the settings the project sets itself (not ``specs``)

    def holds(self, path: Path) -> bool:
        """Whether ``path`` is one of the project's specs, or inside one of its folders."""
        where = path.resolve()
        return any(where == spec or spec in where.parents for spec in self.specs)


def parse(raw: Any, path: Path, known: Iterable[str]) -> dict[str, Project]:
    """The file's ``projects:`` mapping; ConfigError naming the project and key that are
    wrong. ``known`` are the settings a project may set."""
    allowed = set(known) - NOT_PER_PROJECT
    if not isinstance(raw, dict) or not raw:  # (an empty projects: is a mistake, not none)
        raise ConfigError(f"config file {path}: projects must map each project's name to "
                          "its settings", "for example projects: {sg: {specs: [specs/sg], "
                          "merchant_id: SG01}}")
    base = path.parent.resolve()
    projects: dict[str, Project] = {}
    for name, own in raw.items():
        where = f"config file {path}: projects.{name}"
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise ConfigError(f"config file {path}: project {quoted(str(name))} is not a "
                              "name of 1-40 lower-case letters, digits, '-' or '_' (it "
                              "names the project's workspace and GitHub environment too)")
        if not isinstance(own, dict):
            raise ConfigError(f"{where} must be a mapping of settings with specs:")
        unknown = set(own) - allowed - {"specs"}
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) "
                              f"{', '.join(repr(k) for k in sorted(unknown))}",
                              f"a project takes specs and {', '.join(sorted(allowed))}")
        specs = own.get("specs")
        if isinstance(specs, str):
            specs = [specs]
        if not isinstance(specs, list) or not specs or \
                not all(isinstance(s, str) and s and "\0" not in s for s in specs):
            raise ConfigError(f"{where}: specs must list the project's spec files or "
                              "folders", f"for example specs: [specs/{name}]")
        workspace = own.get("workspace")
        if workspace is not None and not (isinstance(workspace, str)
                                          and WORKSPACE_RE.fullmatch(workspace)):
            raise ConfigError(f"{where}: workspace {quoted(str(workspace))} is not 1-64 "
                              "letters, digits, '.', '_' or '-'")
        projects[name] = Project(name, tuple((base / s).resolve() for s in specs),
                                 {k: v for k, v in own.items() if k != "specs"})
    _no_shared_specs(projects, path)
    return projects


def _no_shared_specs(projects: Mapping[str, Project], path: Path) -> None:
    """A spec in two projects would be applied with two merchants' settings."""
    for first in projects.values():
        for second in projects.values():
            if first.name < second.name and (any(second.holds(s) for s in first.specs)
                                             or any(first.holds(s) for s in second.specs)):
                raise ConfigError(f"config file {path}: projects {first.name} and "
                                  f"{second.name} share specs",
                                  "give each project its own spec files or folders")


def merged(defaults: Mapping[str, Any], project: Project) -> dict[str, Any]:
    """The project's settings over the defaults; guardrails limit by limit (a project
    that sets max_cancels keeps the default max_changes)."""
    settings = {k: v for k, v in defaults.items() if k != "projects"}
    for key, value in project.own.items():
        if key == "guardrails" and isinstance(value, dict) and \
                isinstance(settings.get("guardrails"), dict):
            settings["guardrails"] = {**settings["guardrails"], **value}
        else:
            settings[key] = value
    return settings


class Selection(ValueError):
    """Projects asked for that the file does not declare, or paths that are in none."""


def choose(projects: Mapping[str, Project], named: Sequence[str], paths: Sequence[Path],
           cwd: Path) -> list[tuple[Project, tuple[Path, ...]]]:
    """The projects a run is about, each with the specs it runs on: the ``--project``
    names (on the PATHs if given, else their own specs); else the projects the PATHs are
    in (each on its PATHs); else the project whose specs the current folder is in;
    else every project."""
    unknown = [name for name in named if name not in projects]
    if unknown:
        raise Selection(f"no project {', '.join(quoted(n) for n in unknown)} in the "
                        f"settings; its projects: {', '.join(projects)}")
    if named:
        chosen = [projects[name] for name in dict.fromkeys(named)]
        if paths and len(chosen) > 1:
            raise Selection("PATHs with several --project: name one project for them, or "
                            "leave the PATHs out to run each project on its own specs")
        for path in paths:  # another project's specs would be planned with this one's key
            others = [p.name for p in projects.values() if p.holds(path) and p not in chosen]
            if others:
                raise Selection(f"{path} is project {others[0]}'s: pass --project "
                                f"{others[0]}, or leave out the PATHs")
        return [(project, tuple(paths) or project.specs) for project in chosen]
    if paths:
        found: dict[str, list[Path]] = {}
        for path in paths:
            owners = [p for p in projects.values() if p.holds(path)]
            if not owners:
                raise Selection(f"{path} is in no project's specs: pass --project NAME to "
                                "run it with that project's settings")
            found.setdefault(owners[0].name, []).append(path)
        return [(projects[name], tuple(found[name])) for name in found]
    # Standing inside one project's specs: that project; anywhere else, every project.
    here = [p for p in projects.values() if p.holds(cwd)]
    chosen = here if len(here) == 1 else list(projects.values())
    return [(project, project.specs) for project in chosen]


def strays(project: Project, projects: Mapping[str, Project],
           files: Iterable[Path]) -> list[tuple[Path, str]]:
    """The spec files of ``project`` that are, through a symbolic link, another project's
    (file, that project): they would be planned with this project's key and state."""
    found = []
    for file in files:
        real = file.resolve()
        for other in projects.values():
            if other is not project and other.holds(real):
                found.append((file, other.name))
    return found


def touched(projects: Mapping[str, Project], changed: Iterable[str], root: Path,
            settings_file: Path) -> list[str]:
    """The projects a change to these paths (relative to ``root``, as ``git diff
    --name-only`` gives them) touches: a project's specs, or the settings file (every
    project: its defaults are theirs)."""
    hit: dict[str, None] = {}
    settings = settings_file.resolve()
    for name in changed:
        if not name:
            continue
        path = (root / name).resolve()  # as given: a path may end in a space
        if path == settings:
            return list(projects)
        hit.update({p.name: None for p in projects.values() if p.holds(path)})
    return [name for name in projects if name in hit]
