"""Which plan was reviewed for a merge: the rules, as pure functions over GitHub's records.

On merge, apply must write exactly the plan a reviewer saw, made by trusted code. Each
rule below refuses with ``NotReviewed``, naming the check that failed:

- the pull request: merged, into the default branch, and its merge commit is the pushed
  commit or (rebase merges) among the commits the push brought (``choose_pull``);
- the plan workflow: not changed by the pull request (whose files are compared, not
  the file's blob now: after the merge the default branch holds the pull request's copy),
  and the run's event one of its pull-request triggers as defined on the default branch
  (``check_unchanged``, ``pull_request_triggers``);
- the run: of that workflow (id and path), on the pull request's head commit, from this
  repository, the newest of all runs and attempts of that workflow on that head, and
  successful (``choose_run``). Its ``pull_requests`` list may be empty: GitHub empties
  a run's list once the pull request is merged or closed (and never fills it for a
  pull request from a fork), and fetch-plan runs after the merge. So an empty list is
  accepted on the other bindings (workflow, trigger, head commit, repository, newest,
  success, artifact named for the head); a list that names other pull requests and not
  this one is another pull request's run, refused; and when it names this one, the base
  it lists must be the branch it was merged into (not a plan made before the pull
  request was retargeted);
- the artifact: exactly one named ``plansync-plan-<head>`` (``plansync-plan-<project>-<head>``
  for a project of plansync.yaml's ``projects:``: each project's job saves its own, and
  only the project's is applied), not expired, within the size limit, holding exactly
  one ``plan.json`` within the limit (``choose_artifact``, ``unpack_plan``);
- the default branch has not moved on to a different spec since (``spec_changes``).

Comments are never read (anyone can write one).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Collection, Sequence

from plansync.errors import PlansyncError
from plansync.gitops.records import Artifact, Pull, Run, Workflow
from plansync.spec.yamlread import YamlError, read_documents

PLAN_FILE = "plan.json"
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")
RERUN = "re-run the plan workflow on the pull request, then re-run this job"


class NotReviewed(PlansyncError):
    """No plan reviewed for this merge can be trusted; nothing may be applied."""


class NotPlanned(NotReviewed):
    """The reviewed run had no plan job for this project at all: plansync.yaml did not
    declare it then, or the pull request did not touch it. Nothing of it was reviewed,
    and nothing of it is applied; nothing failed either."""


def artifact_name(head_sha: str, project: str | None = None) -> str:
    """What the plan workflow names its saved plan: tied to the reviewed commit, and to
    the project whose plan it is (none: a repository without projects)."""
    return f"plansync-plan-{project}-{head_sha}" if project else f"plansync-plan-{head_sha}"


def choose_pull(pulls: Sequence[Pull], sha: str, default_branch: str,
                pushed: Collection[str] | None = None) -> Pull:
    """The pull request whose merge is the push of ``sha`` to the default branch.
    ``pushed``: the commits the push brought (for rebase merges), when known."""
    merged = [p for p in pulls if p.merged]
    if not merged:
        raise NotReviewed(f"commit {sha} was not merged from a pull request: nothing was "
                          "reviewed, so nothing is applied",
                          "merge specs through a pull request, or run the manual "
                          "workflow_dispatch path (plan, approval, apply)")
    into = [p for p in merged if p.base_ref == default_branch]
    if not into:
        names = ", ".join(f"#{p.number} into {p.base_ref}" for p in merged)
        raise NotReviewed(f"commit {sha} was merged by pull request {names}, not into "
                          f"{default_branch}: only a review of a pull request into "
                          f"{default_branch} applies",
                          f"open a pull request into {default_branch} and merge it")
    exact = [p for p in into if p.merge_commit_sha == sha]
    contained = [p for p in into if p.merge_commit_sha and p.merge_commit_sha in
                 (pushed or ())]
    chosen = exact or contained
    if not chosen:
        numbers = ", ".join(f"#{p.number} (merge commit {p.merge_commit_sha})" for p in into)
        brought = "" if pushed is None else " nor among the commits this push brought"
        raise NotReviewed(f"pull request {numbers} did not make commit {sha}{brought}: "
                          "its review is not this push's",
                          "merge through the pull request (for rebase merges pass the "
                          "push's github.event.before as --before)")
    if len(chosen) > 1:
        raise NotReviewed(f"commit {sha} merged several pull requests ("
                          + ", ".join(f"#{p.number}" for p in chosen)
                          + "): which review applies is not clear",
                          "merge one pull request at a time")
    return chosen[0]


def pull_request_triggers(workflow_text: str, file: str) -> frozenset[str]:
    """The pull-request events that start the workflow, read from its ``on:`` as YAML 1.2
    reads it (YAML 1.1 would make the key ``on`` a boolean)."""
    try:
        documents = list(read_documents(workflow_text))
    except YamlError as exc:
        raise NotReviewed(f"{file} on the default branch is not YAML (line "
                          f"{exc.mark.line}: {exc.message})") from None
    data = documents[0].data if len(documents) == 1 else None
    trigger = data.get("on") if isinstance(data, dict) else None
    events = ({trigger} if isinstance(trigger, str)
              else set(trigger) if isinstance(trigger, list | dict) else set())
    found = frozenset(e for e in events if e in PULL_REQUEST_EVENTS)
    if not found:
        raise NotReviewed(f"{file} on the default branch is not started by pull requests "
                          f"(on: {sorted(map(str, events)) or 'nothing'}): no run of it is "
                          "a review",
                          "trigger the plan workflow with pull_request_target")
    return found


def check_unchanged(pull: Pull, path: str, changed: Collection[str]) -> None:
    """A pull request that changed the plan workflow ran its own copy of it (a
    ``pull_request`` run takes the workflow from the pull request): not trusted."""
    if path in changed:
        raise NotReviewed(f"pull request #{pull.number} changed {path}; its run is not "
                          "trusted",
                          "change the plan workflow in a pull request of its own (no "
                          "spec changes), then plan the specs on a new one")


def _workflow_path(run: Run) -> str:
    return run.path.split("@", 1)[0]


def choose_run(runs: Sequence[Run], pull: Pull, workflow: Workflow,
               triggers: Collection[str], repository: str) -> Run:
    """The run whose plan was the review of ``pull``: the newest run (all attempts) of the
    plan workflow on the pull request's head, if it is not another pull request's (its
    list empty, as GitHub leaves it after the merge, or naming this one into the base it
    was merged into: ``choose_pull`` made that the default branch), started by the
    default branch's trigger, from this repository, and successful."""
    file = workflow.path.rsplit("/", 1)[-1]
    ours = [r for r in runs if r.workflow_id == workflow.id
            and _workflow_path(r) == workflow.path and r.head_sha == pull.head_sha]
    head = pull.head_sha[:12]
    if not ours:
        raise NotReviewed(f"pull request #{pull.number} has no {file} run on its head "
                          f"commit {head}", RERUN)
    run = max(ours, key=lambda r: (r.run_number, r.created_at, r.run_attempt, r.id))
    named = f"the newest {file} run on head {head} (run {run.id}, attempt {run.run_attempt})"
    if run.head_repository != repository:
        raise NotReviewed(f"{named} ran on {run.head_repository or 'an unknown repository'}"
                          f", not {repository}: runs from forks are not trusted",
                          "push the branch to this repository and open the pull request "
                          "from there")
    if run.pulls and pull.number not in run.pulls:
        # (An empty list is GitHub's for a merged or closed pull request: see above.)
        raise NotReviewed(f"{named} is for pull request "
                          f"{', '.join(f'#{n}' for n in run.pulls)}, not #{pull.number}: a "
                          "newer run of another pull request on the same commit is not this "
                          "review", RERUN)
    base = dict(run.pull_bases).get(pull.number)
    if base is not None and base != pull.base_ref:
        raise NotReviewed(f"{named} planned pull request #{pull.number} into {base}, not "
                          f"into {pull.base_ref}: it was retargeted after its plan", RERUN)
    if run.event not in triggers:
        raise NotReviewed(f"{named} was started by {run.event}, not by the plan "
                          f"workflow's trigger on the default branch "
                          f"({', '.join(sorted(triggers))})", RERUN)
    if run.status != "completed":
        raise NotReviewed(f"{named} has not finished ({run.status})",
                          "wait for it to finish, then re-run this job")
    if run.conclusion != "success":
        raise NotReviewed(f"{named} concluded {run.conclusion}: an older successful run "
                          "does not count", RERUN)
    return run


def choose_artifact(artifacts: Sequence[Artifact], run: Run, head_sha: str,
                    limit: int, project: str | None = None) -> Artifact:
    name = artifact_name(head_sha, project)
    named = [a for a in artifacts if a.name == name]
    if project and not named and not any(
            a.name == f"plansync-comment-{project}" for a in artifacts):
        # Every plan job of a project saves its comment, even one whose plan failed.
        raise NotPlanned(f"run {run.id} did not plan project {project} (plansync.yaml "
                         "did not declare it then, or the pull request did not touch "
                         "it): nothing of it was reviewed, so nothing of it is applied",
                         "to plan and apply it, run the apply workflow by hand "
                         "(workflow_dispatch), or change its specs in a pull request")
    if len(named) != 1:
        raise NotReviewed(f"run {run.id} saved {len(named) or 'no'} artifacts named {name}"
                          f"{'' if not named else ', not exactly one'}", RERUN)
    found = named[0]
    if found.expired:
        raise expired(run)
    if found.size > limit:
        raise NotReviewed(f"the plan artifact of run {run.id} is {found.size} bytes, more "
                          f"than --max-artifact-size ({limit} bytes); it was not "
                          "downloaded",
                          "raise --max-artifact-size if a plan really is that big")
    return found


def expired(run: Run) -> NotReviewed:
    return NotReviewed(f"the plan artifact of run {run.id} expired: re-run the plan "
                       "workflow on the pull request",
                       "then re-run this job (artifacts are kept for the repository's "
                       "retention period)")


def unpack_plan(archive: bytes, run: Run, limit: int) -> bytes:
    """The one ``plan.json`` in the artifact's zip, read at most ``limit`` bytes deep
    whatever the zip's header claims."""
    what = f"the plan artifact of run {run.id}"
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            entries = bundle.infolist()
            if [e.filename for e in entries] != [PLAN_FILE]:
                names = ", ".join(e.filename for e in entries[:5]) or "nothing"
                raise NotReviewed(f"{what} holds {names}, not exactly one {PLAN_FILE}",
                                  RERUN)
            if entries[0].file_size > limit:
                raise NotReviewed(f"{what} unpacks to {entries[0].file_size} bytes, more "
                                  f"than --max-artifact-size ({limit} bytes)", RERUN)
            with bundle.open(entries[0]) as handle:
                plan = handle.read(limit + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise NotReviewed(f"{what} is not a readable zip ({exc})", RERUN) from None
    if len(plan) > limit:
        raise NotReviewed(f"{what} unpacks to more than --max-artifact-size ({limit} bytes)"
                          ", more than its header says", RERUN)
    return plan


def spec_changes(files: Sequence[str], spec_paths: Sequence[str]) -> list[str]:
    """The changed files that are spec: under a spec folder, or plansync.yaml."""
    folders = [p.strip("/") for p in spec_paths if p.strip("/")]
    return sorted({f for f in files if f == "plansync.yaml" or any(
        f == d or f.startswith(d + "/") for d in folders)})


_SIZE = re.compile(r"(\d+)\s*(B|KB|MB|GB|KIB|MIB|GIB)?", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3,
          "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}


def parse_size(text: str) -> int:
    """``10MB``, ``512KB``, ``2MiB`` or a number of bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 10MB, 512KB or bytes)")
    return int(match[1]) * _UNITS[(match[2] or "B").upper()]
