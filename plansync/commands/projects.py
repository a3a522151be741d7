"""Projects on the command line: which a command runs for (``--project``, the PATHs, the
folder it is run in), a run over several of them, and `plansync projects`.

A run over several projects runs the command once per project, one after the other, each
with its own settings, specs, state and lock: the output grouped under a heading per
project, the exit code the worst of theirs. One project's error or guardrail does not
stop the next; a signal (Ctrl-C) stops the run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from plansync import config, views
from plansync.errors import PlansyncError
from plansync.printable import printable

# Exit codes from best to worst: no changes, changes (or drift), a guardrail breach, an
# error; anything else (usage, a signal, a bug) is worse still.
_RANK = {0: 0, 2: 1, 3: 2, 1: 3}
_STOPPED = (130, 143)
NO_PROJECT_SPECS = "specs"  # the workflows' spec folder in a repository without projects


def worst(codes: Sequence[int]) -> int:
    return max(codes, key=lambda code: _RANK.get(code, len(_RANK)), default=0)


def no_projects(settings: config.Settings) -> str:
    where = settings.config_file or f"no {config.DEFAULT_FILE} here or above"
    return f"--project: the settings ({where}) declare no projects:"


def one(settings: config.Settings, named: Sequence[str]) -> config.Settings:
    """The settings of the one project a command (state, inquire, import) is about:
    ``--project``'s, else the one whose folder this is, else the only one; the settings
    as they are when the file declares no projects."""
    from plansync import projects

    if not settings.projects:
        if named:
            raise click.UsageError(f"{no_projects(settings)} leave out --project")
        return settings
    if len(named) > 1:
        raise click.UsageError("this command is about one project: give --project once")
    try:
        chosen = projects.choose(settings.projects, named, (), Path.cwd())
    except projects.Selection as exc:
        raise click.UsageError(str(exc)) from None
    if len(chosen) > 1:
        raise click.UsageError(f"{settings.config_file} declares projects "
                               f"{', '.join(settings.projects)}: pass --project NAME")
    return settings.of_project(chosen[0][0].name)


def run_each(command: Callable[..., int], settings: config.Settings, named: Sequence[str],
             args: Sequence[Any], kwargs: dict[str, Any], uses_settings: bool = True) -> int:
    """Run ``command`` (plan, apply, drift, validate) for each project chosen, on its
    specs (or the PATHs given); as it is when the file declares no projects.
    ``uses_settings``: the command reads a gateway or state setting (validate does not)."""
    from plansync import projects

    paths = tuple(kwargs.get("paths") or ())
    saved = kwargs.get("plan_file")
    if not settings.projects:
        if named:
            raise click.UsageError(f"{no_projects(settings)} leave out --project")
        if not paths and saved is None:
            found = (f"{settings.config_file} declares no projects:" if settings.config_file
                     else f"no {config.DEFAULT_FILE} here or in a folder above")
            raise click.UsageError(
                "name the spec PATHs" + (", or a saved --plan FILE" if "plan_file" in kwargs
                                         else "") +
                f" ({found}; with projects: a command runs each project on its specs: "
                "README, Several merchant accounts)")
        return command(*args, settings=settings, **kwargs)
    try:
        chosen = projects.choose(settings.projects, named, paths, Path.cwd())
    except projects.Selection as exc:
        raise click.UsageError(str(exc)) from None
    view: Any = kwargs["view"]
    if len(chosen) > 1:
        _one_project_only(settings, kwargs, ", ".join(p.name for p, _ in chosen),
                          uses_settings)
    elif not named and not paths and len(settings.projects) > 1:
        click.echo(f"(project {chosen[0][0].name}: the folder you stand in is in its specs)",
                   err=True)
    codes: list[int] = []
    for index, (project, specs) in enumerate(chosen):
        # A saved plan too is checked against this project's specs (or its PATHs): one
        # made from another project's is refused, as made from another spec.
        call = dict(kwargs, settings=settings.of_project(project.name), paths=specs)
        if "paths" not in kwargs:
            del call["paths"]
        if len(chosen) == 1:
            _own_files(project, settings.projects, call.get("paths", ()))
            return command(*args, **call)
        view.project(project.name, first=index == 0)
        try:
            _own_files(project, settings.projects, call.get("paths", ()))
            codes.append(command(*args, **call))
        except PlansyncError as exc:  # said, and the next project runs
            click.echo("\n".join(printable(line) for line in
                                 f"error: project {project.name}: {exc}".split("\n")),
                       err=True)
            codes.append(exc.exit_code)
        if codes[-1] in _STOPPED:
            break
    ran = zip(chosen, codes, strict=False)  # a signal stops the run: fewer codes
    click.echo("\nProjects: " + ", ".join(f"{project.name} exit {code}"
                                          for (project, _), code in ran), err=True)
    return worst(codes)


def _own_files(project: Any, declared: Any, paths: Sequence[Path]) -> None:
    """Refuse a spec file of this project's that is, through a symbolic link, another
    project's: it would be planned with this project's key and state."""
    from plansync import projects
    from plansync.spec import loader

    files, _problems = loader.discover(paths)  # (the problems: said when it is loaded)
    strays = projects.strays(project, declared, files)
    if strays:
        file, owner = strays[0]
        raise PlansyncError(f"{file} is a link to project {owner}'s specs: a spec belongs "
                            f"to one project", f"keep project {project.name}'s specs apart "
                            "from the others' (no links between them)")


def _one_project_only(settings: config.Settings, kwargs: dict[str, Any], names: str,
                      uses_settings: bool) -> None:
    """What belongs to one project refused when several run: a saved plan, a JSON
    document, a plan file written, plans chosen by id, and the settings that are one
    merchant's or one state's (given as flags or variables they would be everybody's)."""
    import os

    flags = settings.flags
    given = [what for what, there in (
        ("--plan FILE", kwargs.get("plan_file")), ("--out FILE", kwargs.get("out")),
        ("--target/--exclude", kwargs.get("target") or kwargs.get("exclude")),
        ("--json", type(kwargs["view"]).__module__.endswith(".json")),
        ("--merchant-id", flags.merchant_id), ("--merchant-key", flags.merchant_key),
        ("--workspace", flags.workspace)) if there]
    given += [name for name in ("PLANSYNC_MERCHANT_ID", "PLANSYNC_MERCHANT_KEY",
                                "PLANSYNC_WORKSPACE") if uses_settings and os.environ.get(name)]
    if given:
        raise click.UsageError(f"{', '.join(given)}: one project's, and this run is of "
                               f"several ({names}): pass --project NAME, one run per "
                               "project")


@click.command("projects")
@click.option("--changed", "changed_file", type=click.Path(path_type=Path), metavar="FILE",
              help="Only the projects these paths touch: one path per line, or each "
                   "NUL-ended (git diff -z), relative to the current folder (as `git diff "
                   "--name-only` prints them at the repository's root); - for stdin. A "
                   "change to the settings file touches every project.")
@views.formats("projects", "One JSON document: a list of {name, specs, workspace}.",
               markdown=False, no_color=False)
@click.option("--github-matrix", "as_matrix", is_flag=True,
              help="One line of JSON, a GitHub Actions matrix: {\"include\": [{\"project\", "
                   "\"specs\"}]}, one entry a project; without projects one entry whose "
                   "project is \"\" (no --project) and whose specs are [\"specs\"] (the "
                   "workflows' folder); no entries when a change touches no project.")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="Settings file (default: $PLANSYNC_CONFIG or the nearest "
                   "plansync.yaml).")
def projects_command(changed_file: Any, view: views.ProjectsView, as_matrix: bool,
                     config_file: Path | None) -> int:
    """List the projects plansync.yaml declares (the ones a change touches, with
    --changed): what a CI matrix runs, one job per project."""
    import os

    from plansync import projects

    settings = config.load(config.Flags(config_file=config_file), os.environ)
    declared = settings.projects
    names = list(declared)
    if changed_file is not None and settings.config_file is not None:
        names = projects.touched(declared, _changed(changed_file), Path.cwd(),
                                 settings.config_file)
    base = settings.config_file.parent.resolve() if settings.config_file else Path.cwd()
    listed: list[dict[str, Any]] = [{"name": name,
               "specs": [_shown(spec, base) for spec in declared[name].specs],
               "workspace": settings.of_project(name).workspace or "default"}
              for name in names]
    if as_matrix and type(view).__module__.endswith(".json"):
        raise click.UsageError("--json and --github-matrix print different documents: "
                               "give one")
    if as_matrix:
        click.echo(json.dumps(github_matrix(listed, declared=bool(declared)),
                              separators=(",", ":")))
    else:
        view.projects(listed, bool(declared), str(settings.config_file or config.DEFAULT_FILE))
    sys.stdout.flush()
    return 0


def github_matrix(listed: Sequence[dict[str, Any]], declared: bool) -> dict[str, Any]:
    """The workflows' matrix: a job per project listed. A repository without projects is
    one job whose project is "" (the workflows then pass no --project and use the
    environments plansync-plan and plansync-apply, as before projects) on specs/."""
    if not declared:
        return {"include": [{"project": "", "specs": [NO_PROJECT_SPECS]}]}
    return {"include": [{"project": p["name"], "specs": p["specs"]} for p in listed]}


MAX_CHANGED = 64 * 1024 * 1024  # git diff --name-only of the biggest pull request, and more


def _changed(path: Path) -> list[str]:
    """The changed paths: a regular file (or stdin), text, of a sane size."""
    import os

    from plansync.folders import NotARegularFile, open_regular

    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(MAX_CHANGED + 1)
        else:
            with os.fdopen(open_regular(path), "rb") as handle:
                data = handle.read(MAX_CHANGED + 1)
        if len(data) > MAX_CHANGED:
            raise PlansyncError(f"--changed {path} is more than 64 MiB: not a list of paths")
        text = data.decode("utf-8")
        # git diff -z: NUL-ended paths, each as it is (a newline may be part of one).
        return [path for path in text.split("\0") if path] if "\0" in text \
            else text.splitlines()
    except UnicodeDecodeError:
        raise PlansyncError(f"--changed {path} is not UTF-8 text",
                            "give it the output of git diff --name-only") from None
    except FileNotFoundError:
        raise PlansyncError(f"--changed {path} does not exist") from None
    except NotARegularFile as exc:
        raise PlansyncError(f"--changed {path} is {exc.kind}, not a file of paths") from None
    except (OSError, ValueError) as exc:
        raise PlansyncError(f"--changed {path} cannot be read: {exc}") from None


def _shown(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
