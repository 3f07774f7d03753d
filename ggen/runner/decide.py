"""Deciding a task: its key, and whether it is fresh in the local cache, fresh on the remote,
or must run, with the reasons. One function, ``decide``, used by ``ggen run`` (for each task
as it becomes ready) and by ``ggen explain``, so what explain says is what a run does.

``decide`` acts on nothing: it hashes inputs (through the caller's index and memo) and asks
``locate`` where an entry is. A run passes ``Cache.find`` (which brings a remote entry into the
local store), explain passes ``Cache.peek`` (which reads the store and asks the remote with a
HEAD, changing nothing). Restoring, running and recording are the run's business.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ggen.cache.cache import Entry, Location
from ggen.cache.keys import Difference, Reason, Recipe, explain, task_recipe

if TYPE_CHECKING:
    from ggen.cache.digest import DigestMemo
    from ggen.cache.files import InputIndex
    from ggen.make import Make
    from ggen.runner.plan import Task


class Verdict(enum.Enum):
    """What a run does with a task."""

    FRESH_LOCALLY = "would be restored from the cache, nothing runs"
    FRESH_REMOTELY = "would be restored from the remote cache, nothing runs"
    MUST_RUN = "would run"
    NO_SCRIPT = "nothing to do"


@dataclass(frozen=True)
class Decision:
    """The key of a task, its recipe, the verdict, the entry found (for a fresh task) and the
    reasons: why it must run, or how today's recipe differs from the last recorded one."""

    task_id: str
    key: str
    recipe: Recipe
    verdict: Verdict
    reasons: tuple[Difference, ...] = ()
    entry: Entry | None = None

    @property
    def fresh(self) -> bool:
        return self.verdict in (Verdict.FRESH_LOCALLY, Verdict.FRESH_REMOTELY)


@dataclass(frozen=True)
class Policy:
    """How a run uses the cache: ``caching`` is False for a phase with ``cache = false`` or
    without a store (--no-cache); ``force`` runs every task (its outputs are still stored)."""

    caching: bool
    force: bool = False


Locate = Callable[[str], "Entry | None"]
Previous = Callable[[], "Recipe | None"]


def decide(
    make: Make,
    task: Task,
    keys: Mapping[str, str],
    index: InputIndex,
    memo: DigestMemo,
    policy: Policy,
    locate: Locate,
    previous: Previous | None = None,
) -> Decision:
    """Decide ``task``, whose upstream tasks' keys are in ``keys``.

    ``previous`` gives the recipe recorded when the task last succeeded: with it the reasons
    say what changed since (``ggen explain``); without it (a run) only why the task runs."""
    upstream = ((d, keys[d]) for d in task.key_deps if d in keys)
    recipe = task_recipe(make, task.workspace, task.phase, upstream, index, memo)
    key = recipe.key()
    changes = tuple(explain(previous(), recipe)) if previous is not None else ()

    def verdict(v: Verdict, *why: Difference, entry: Entry | None = None) -> Decision:
        return Decision(task.id, key, recipe, v, (*why, *changes), entry)

    script_missing = _script_missing(make, task)
    if script_missing is not None:
        return Decision(task.id, key, recipe, Verdict.NO_SCRIPT, (script_missing,))
    if not policy.caching:
        return verdict(Verdict.MUST_RUN, Difference(Reason.CACHE_OFF))
    if policy.force:
        return verdict(Verdict.MUST_RUN, Difference(Reason.FORCED))
    entry = locate(key)
    if entry is None:
        return verdict(Verdict.MUST_RUN, *(() if changes else (Difference(Reason.NOT_IN_CACHE),)))
    fresh = Verdict.FRESH_LOCALLY if entry.location is Location.LOCAL else Verdict.FRESH_REMOTELY
    return verdict(fresh, entry=entry)


def _script_missing(make: Make, task: Task) -> Difference | None:
    """Why a script phase has nothing to do on a workspace whose package.json lacks the
    script, or a phase of an old-format file has no command, or None."""
    phase = make.phase_for(task.workspace, task.phase)
    ws = make.workspace(task.workspace)
    if phase is not None and phase.script is None and not phase.commands:
        return Difference(Reason.NO_COMMAND)
    if phase is None or phase.script is None or ws is None:
        return None
    from ggen.scripts import has_nothing_to_do

    if not has_nothing_to_do(make, ws, phase):
        return None
    return Difference(Reason.NO_SCRIPT, phase.script, f"{ws.path}/package.json")
