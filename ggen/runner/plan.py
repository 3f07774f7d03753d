"""Make + requested phases -> the task DAG. Pure: no file is read, nothing runs.

A task is one (workspace, phase) pair, named ``workspace:phase``. Edges come from four places:
1. ``depends_on`` of the phase: ``^X`` is X in each workspace this one depends on, ``X`` is X in
   the same workspace; such tasks join the plan even when ``-w`` would not select them;
2. ``before_P``/``after_P`` hooks, on the same workspace;
3. the order of the phases on the command line (``run build test``: test after build, per
   workspace), unless that contradicts an explicit dependency;
4. ``before_all`` phases run once (on the project root) before every other task, ``after_all``
   once after all of them; ``on_error`` phases form a separate plan run only after a failure.
Cycles are reported before anything runs, with the cycle spelled out.
"""

from __future__ import annotations

import difflib
import itertools
from collections import deque
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from ggen.errors import CycleError, UsageError
from ggen.make import ROOT_WORKSPACE, Make


def task_id(workspace: str, phase: str) -> str:
    """The name of a task: ``workspace:phase``."""
    return f"{workspace}:{phase}"


@dataclass(frozen=True)
class Task:
    """One node of the plan."""

    id: str
    workspace: str
    phase: str
    deps: tuple[str, ...]  # ids of the tasks that must succeed first
    key_deps: tuple[str, ...] = ()  # those whose keys enter this task's key (not before_all)
    exclusive: bool = False  # the phase said parallel = false: never two of its tasks at once
    parallel: bool | None = None  # the phase's own parallel setting


@dataclass(frozen=True)
class Plan:
    """Tasks in a topological order, plus the ``on_error`` tasks to run if anything fails."""

    tasks: tuple[Task, ...]
    phases: tuple[str, ...]
    on_error: tuple[Task, ...] = ()

    def task(self, tid: str) -> Task:
        return self.by_id[tid]

    @cached_property
    def by_id(self) -> dict[str, Task]:
        return {t.id: t for t in (*self.tasks, *self.on_error)}

    @cached_property
    def dependents(self) -> dict[str, tuple[str, ...]]:
        """For each task id, the ids of the tasks that depend on it directly."""
        out: dict[str, list[str]] = {t.id: [] for t in self.tasks}
        for t in self.tasks:
            for d in t.deps:
                out[d].append(t.id)
        return {k: tuple(v) for k, v in out.items()}

    def wants_parallel(self) -> bool:
        """True when some phase of the plan said ``parallel = true``."""
        return any(t.parallel for t in self.tasks)


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f', did you mean "{close[0]}"?' if close else ""


class _Builder:
    """Accumulates tasks and edges while expanding dependencies and hooks."""

    def __init__(self, make: Make) -> None:
        self.make = make
        self.deps: dict[str, list[str]] = {}
        self.ordering_only: dict[str, set[str]] = {}  # before_all edges: order, not content
        self.meta: dict[str, tuple[str, str]] = {}
        self.stack: list[str] = []

    def workspaces_of(self, phase: str) -> tuple[str, ...]:
        """The workspaces a phase runs on: its ``workspaces`` list, else every workspace
        that has the phase (the root declares it for all; a workspace's make.toml for itself)."""
        root_phase = self.make.phase(phase)
        if root_phase is not None:
            if root_phase.workspaces is not None:
                return root_phase.workspaces
            return self.make.default_workspaces()
        return tuple(w.name for w in self.make.workspaces if w.own_phase(phase) is not None)

    def check_phase(self, phase: str, context: str) -> None:
        if phase not in self.make.phase_names():
            raise UsageError(
                f'{context}: unknown phase "{phase}"{_suggest(phase, self.make.phase_names())}'
                f" (phases: {', '.join(self.make.phase_names()) or 'none'})"
            )

    def add(self, workspace: str, phase: str) -> str:
        """Add task (workspace, phase) with everything it depends on; return its id.

        A depth-first walk driven by an explicit stack of ``_expand`` generators rather than
        by recursion, so a chain of thousands of phases cannot reach Python's recursion limit.
        Each generator asks for a task by yielding (workspace, phase) and is sent its id."""
        frames: list[Generator[tuple[str, str], str | None, str]] = []
        wanted: tuple[str, str] | None = (workspace, phase)
        reply: str | None = None
        while True:
            if wanted is not None:
                tid = task_id(*wanted)
                if tid in self.stack:
                    cycle = [*self.stack[self.stack.index(tid) :], tid]
                    raise CycleError(
                        f"cycle in the task graph: {_format_cycle(cycle)}",
                        file=self.make.file,
                        hint="remove one of these dependencies or hooks",
                    )
                if tid in self.deps:
                    reply = tid
                else:
                    frames.append(self._expand(*wanted))
                    reply = None  # starts the new generator
                wanted = None
            if not frames:
                assert reply is not None
                return reply
            try:
                wanted = frames[-1].send(reply)
            except StopIteration as done:
                frames.pop()
                reply = done.value
                if not frames:
                    return reply

    def _expand(self, workspace: str, phase: str) -> Generator[tuple[str, str], str | None, str]:
        """The steps of adding one task: yields each task it needs, receives that task's id."""
        tid = task_id(workspace, phase)
        spec = self.make.phase_for(workspace, phase)
        if spec is None:
            raise UsageError(f'phase "{phase}" is not defined for workspace "{workspace}"')
        self.stack.append(tid)
        deps: list[str] = []
        for dep in spec.depends_on:
            if dep.startswith("^"):
                upstream = dep[1:]
                ws = self.make.workspace(workspace)
                for other in ws.depends_on if ws else ():
                    if self.make.phase_for(other, upstream) is not None:
                        deps.append(_received((yield (other, upstream))))
            else:
                self.check_phase(dep, f"lifecycle.{phase}.depends_on")
                deps.append(_received((yield (workspace, dep))))
        for hook in self.make.hooks.before_phase(phase):
            deps.append(_received((yield (workspace, hook))))
        self.stack.pop()
        self.deps[tid] = deps
        self.meta[tid] = (workspace, phase)
        for hook in self.make.hooks.after_phase(phase):
            hid = _received((yield (workspace, hook)))
            if tid not in self.deps[hid]:
                self.deps[hid].append(tid)
        return tid

    def reaches(self, start: str, goal: str) -> bool:
        """True when ``goal`` is among the (transitive) dependencies of ``start``."""
        return goal in self.closure([start])

    def closure(self, start: Iterable[str]) -> set[str]:
        """``start`` and everything it depends on."""
        seen: set[str] = set()
        todo = list(start)
        while todo:
            cur = todo.pop()
            if cur not in seen:
                seen.add(cur)
                todo.extend(self.deps.get(cur, ()))
        return seen

    def tasks(self, ids: Iterable[str]) -> tuple[Task, ...]:
        ordered = _toposort({i: self.deps[i] for i in ids}, self.make.file)
        out = []
        for tid in ordered:
            ws, ph = self.meta[tid]
            spec = self.make.phase_for(ws, ph)
            parallel = spec.parallel if spec else None
            deps = tuple(dict.fromkeys(self.deps[tid]))
            loose = self.ordering_only.get(tid, set())
            out.append(
                Task(
                    tid,
                    ws,
                    ph,
                    deps,
                    tuple(d for d in deps if d not in loose),
                    exclusive=parallel is False,
                    parallel=parallel,
                )
            )
        return tuple(out)


def _format_cycle(ids: Sequence[str]) -> str:
    workspaces = {i.rsplit(":", 1)[0] for i in ids}
    if len(workspaces) == 1:
        return " -> ".join(i.rsplit(":", 1)[1] for i in ids)
    return " -> ".join(ids)


def _toposort(deps: dict[str, list[str]], file: str) -> list[str]:
    """Kahn's algorithm, stable in insertion order; a leftover means a cycle, which is named."""
    indeg = {k: 0 for k in deps}
    users: dict[str, list[str]] = {k: [] for k in deps}
    for k, ds in deps.items():
        for d in dict.fromkeys(ds):
            indeg[k] += 1
            users[d].append(k)
    ready = deque(k for k, n in indeg.items() if n == 0)
    order: list[str] = []
    while ready:
        cur = ready.popleft()
        order.append(cur)
        for u in users[cur]:
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    if len(order) < len(deps):
        raise CycleError(
            f"cycle in the task graph: {_format_cycle(_find_cycle(deps))}",
            file=file,
            hint="remove one of these dependencies or hooks",
        )
    return order


def _received(tid: str | None) -> str:
    """The task id ``_Builder.add`` sends back for a yielded request (never None there)."""
    assert tid is not None
    return tid


def _find_cycle(deps: dict[str, list[str]]) -> list[str]:
    """A cycle among ``deps`` (task -> its dependencies), in execution order.

    Iterative depth-first search: the graph may be a chain far deeper than the recursion limit.
    """
    color: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in deps:
        if start in color:
            continue
        color[start] = 1
        path = [start]
        stack = [iter(deps.get(start, ()))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                color[path.pop()] = 2
                continue
            seen = color.get(nxt)
            if seen == 1:
                # edges point at dependencies: reverse to read in execution order
                return list(reversed([*path[path.index(nxt) :], nxt]))
            if seen is None:
                color[nxt] = 1
                path.append(nxt)
                stack.append(iter(deps.get(nxt, ())))
    return []


def build_plan(make: Make, phases: Sequence[str], workspaces: Sequence[str] = ()) -> Plan:
    """The DAG for ``ggen run PHASES -w WORKSPACES``; raises UsageError or CycleError."""
    if not phases:
        raise UsageError("no phase given (try: ggen list)")
    b = _Builder(make)
    for phase in phases:
        b.check_phase(phase, "ggen run")
    for ws in workspaces:
        if make.workspace(ws) is None:
            known = [w.name for w in make.workspaces]
            raise UsageError(
                f'unknown workspace "{ws}"{_suggest(ws, known)}'
                f" (workspaces: {', '.join(known) or 'none'})"
            )
    for hook in (*make.hooks.before_all, *make.hooks.after_all, *make.hooks.on_error):
        b.check_phase(hook, "hooks")

    requested: list[str] = []
    for phase in dict.fromkeys(phases):
        targets = b.workspaces_of(phase)
        if workspaces:
            targets = tuple(w for w in targets if w in workspaces)
        requested.extend(b.add(ws, phase) for ws in targets)
    if not requested:
        raise UsageError(
            f"nothing to run: {', '.join(phases)} has no task on "
            f"{', '.join(workspaces) or 'any workspace'}"
        )

    # command-line order within each workspace, unless an explicit dependency says otherwise
    by_ws: dict[str, list[str]] = {}
    for tid in requested:
        by_ws.setdefault(b.meta[tid][0], []).append(tid)
    for ids in by_ws.values():
        for before, after in itertools.pairwise(ids):
            if before not in b.deps[after] and not b.reaches(before, after):
                b.deps[after].append(before)

    if make.hooks.before_all:
        first = [b.add(ROOT_WORKSPACE, h) for h in make.hooks.before_all]
        closure = b.closure(first)
        for tid in b.deps:
            if tid not in closure:
                b.deps[tid].extend(first)
                b.ordering_only.setdefault(tid, set()).update(first)
    if make.hooks.after_all:
        body = list(b.deps)
        last = [b.add(ROOT_WORKSPACE, h) for h in make.hooks.after_all]
        closure = b.closure(last)
        for tid in last:
            b.deps[tid].extend(x for x in body if x not in closure)
    main_ids = list(b.deps)
    main = b.tasks(main_ids)

    on_error: tuple[Task, ...] = ()
    if make.hooks.on_error:
        eb = _Builder(make)
        ids = [eb.add(ROOT_WORKSPACE, h) for h in make.hooks.on_error]
        ids = list(dict.fromkeys([*eb.deps, *ids]))
        on_error = eb.tasks(ids)
    return Plan(tasks=main, phases=tuple(dict.fromkeys(phases)), on_error=on_error)
