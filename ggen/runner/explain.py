"""``ggen explain``: would a task run, and why. Decides only: runs nothing, writes nothing.

Keys are computed for the task and everything it depends on, from the files as they are now,
by the run's own ``decide``; the cache is only looked at (``Cache.peek``: the local store is
read, a configured remote is asked with a HEAD), and today's recipe is compared with the one
recorded when the task last succeeded. Nothing under ``.ggen/`` is created or changed: the
digest memo is read, never saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ggen.cache.keys import Difference, Recipe
from ggen.errors import UsageError
from ggen.make import Make
from ggen.runner.console import Console
from ggen.runner.decide import Decision, Policy, Verdict, decide
from ggen.runner.plan import build_plan, task_id
from ggen.runner.run import RunOptions, open_cache
from ggen.runner.state import ggen_dir, load_recipe


@dataclass(frozen=True)
class Explanation:
    """The verdict on one task."""

    task_id: str
    key: str
    verdict: Verdict
    differences: tuple[Difference, ...]
    recipe: Recipe

    @property
    def would_run(self) -> bool:
        return self.verdict is Verdict.MUST_RUN

    @property
    def in_cache(self) -> bool:
        return self.verdict in (Verdict.FRESH_LOCALLY, Verdict.FRESH_REMOTELY)


def explain_task(
    make: Make, phase: str, workspace: str, options: RunOptions, console: Console
) -> Explanation:
    """Decide the task as a run would now, and compare its recipe with the last recorded."""
    if make.workspace(workspace) is None:
        raise UsageError(f'unknown workspace "{workspace}"')
    plan = build_plan(make, (phase,), (workspace,))
    target = task_id(workspace, phase)
    if target not in plan.by_id:
        raise UsageError(f'phase "{phase}" does not run on workspace "{workspace}"')
    from ggen.cache.digest import DigestMemo
    from ggen.cache.files import InputIndex

    memo = DigestMemo(ggen_dir(make) / "digests.json")  # read only: never saved here
    index = InputIndex(Path(make.root), warn=console.warn)
    cache = open_cache(make, options, console.warn)
    keys: dict[str, str] = {}
    decision: Decision | None = None
    try:
        for task in plan.tasks:  # upstream keys first: a task's key names theirs
            spec = make.phase_for(task.workspace, task.phase)
            policy = Policy(caching=cache is not None and spec is not None and spec.cache)
            last = None if task.id != target else (lambda: _last_recipe(make, workspace, phase))
            decision = decide(
                make, task, keys, index, memo, policy, cache.peek if cache else _nowhere, last
            )
            keys[task.id] = decision.key
            if task.id == target:
                break
    finally:
        if cache is not None:
            cache.close()
    assert decision is not None and decision.task_id == target
    return Explanation(target, decision.key, decision.verdict, decision.reasons, decision.recipe)


def _last_recipe(make: Make, workspace: str, phase: str) -> Recipe | None:
    data = load_recipe(make, workspace, phase)
    if not isinstance(data, dict):
        return None
    try:
        return Recipe.from_json(data)
    except ValueError:
        return None


def _nowhere(key: str) -> None:
    return None


def explain_text(e: Explanation, root: Path) -> str:
    """The human form of an explanation."""
    lines = [f"{e.task_id}: key {e.key}"]
    if e.verdict is Verdict.MUST_RUN:
        lines.append("would run, because:")
        lines.extend(f"  - {d}" for d in e.differences)
    elif e.verdict is Verdict.NO_SCRIPT:
        lines.extend(f"{d}" for d in e.differences)
    else:
        where = "remote cache" if e.verdict is Verdict.FRESH_REMOTELY else "cache"
        lines.append(f"cached: would be restored from the {where}, nothing runs")
        if e.differences:
            lines.append("differences from the last recorded run (an older entry matched):")
            lines.extend(f"  - {d}" for d in e.differences)
    return "\n".join(lines)
