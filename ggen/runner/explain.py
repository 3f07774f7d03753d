"""``ggen explain``: would a task run, and why. Decides only; runs nothing, writes nothing.

Keys are computed for the task and everything it depends on, from the files as they are now,
then compared with the recipe recorded when the task last succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ggen.cache.keys import Difference, Reason, Recipe, explain
from ggen.errors import UsageError
from ggen.make import Make
from ggen.runner.console import Console
from ggen.runner.plan import build_plan, task_id
from ggen.runner.run import RunOptions, Session, open_store, resolve_limits
from ggen.runner.state import load_recipe


@dataclass(frozen=True)
class Explanation:
    """The verdict on one task."""

    task_id: str
    key: str
    would_run: bool
    in_cache: bool
    differences: tuple[Difference, ...]
    recipe: Recipe


def explain_task(
    make: Make, phase: str, workspace: str, options: RunOptions, console: Console
) -> Explanation:
    """Compute the task's key now and compare it with the last recorded recipe."""
    if make.workspace(workspace) is None:
        raise UsageError(f'unknown workspace "{workspace}"')
    plan = build_plan(make, (phase,), (workspace,))
    target = task_id(workspace, phase)
    if target not in plan.by_id:
        raise UsageError(f'phase "{phase}" does not run on workspace "{workspace}"')
    from ggen.cache.digest import DigestMemo

    store = open_store(make, options, console.warn)
    session = Session(
        make, options, console, resolve_limits(make, options, plan), store, None, DigestMemo(None)
    )
    for task in plan.tasks:
        session.recipe(task)
        if task.id == target:
            break
    recipe = session.recipes[target]
    key = recipe.key()
    data = load_recipe(make, workspace, phase)
    old: Recipe | None = None
    if isinstance(data, dict):
        try:
            old = Recipe.from_json(data)
        except ValueError:
            old = None
    diffs = explain(old, recipe)
    spec = make.phase_for(workspace, phase)
    ws = make.workspace(workspace)
    if spec is not None and spec.script is not None and ws is not None:
        from ggen.scripts import has_nothing_to_do

        if has_nothing_to_do(make, ws, spec):
            why = Difference(Reason.NO_SCRIPT, spec.script, f"{ws.path}/package.json")
            return Explanation(target, key, False, False, (why,), recipe)
    caching = spec is not None and spec.cache and store is not None
    in_cache = bool(caching and store is not None and store.lookup(key) is not None)
    if not caching:
        diffs = [Difference(Reason.CACHE_OFF), *diffs]
    elif not in_cache and not diffs:
        diffs = [Difference(Reason.NOT_IN_CACHE)]
    return Explanation(target, key, not in_cache, in_cache, tuple(diffs), recipe)


def explain_text(e: Explanation, root: Path) -> str:
    """The human form of an explanation."""
    lines = [f"{e.task_id}: key {e.key}"]
    if e.would_run:
        lines.append("would run, because:")
        lines.extend(f"  - {d}" for d in e.differences)
    elif not e.in_cache:  # a script phase on a workspace without the script
        lines.extend(f"{d}" for d in e.differences)
    else:
        lines.append("cached: would be restored from the cache, nothing runs")
        if e.differences:
            lines.append("differences from the last recorded run (an older entry matched):")
            lines.extend(f"  - {d}" for d in e.differences)
    return "\n".join(lines)
