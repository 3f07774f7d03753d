"""``ggen audit PHASE...``: run tasks under strace and report the files they did not declare.

The pipeline: plan (as ``ggen run``: dependencies first) -> for each task, in order: list its
inputs as its key would, run its commands without the cache, each wrapped in ``strace``
(``audit_trace.STRACE_ARGS``, one trace file per command) -> parse the traces into file events
-> judge them (``audit_rules.classify``) -> report, as text or JSON (``audit_report``).

Tasks run one at a time, so a trace holds one task's processes only. A task that fails stops
the audit (its dependents would not find what it makes). Tasks with ``cache = false`` run (others
may need them) but are not judged: nothing of theirs is ever restored, so nothing they read or
write can make a false hit.

Exit codes: 0 nothing undeclared; 1 something undeclared, or a task failed; 2 bad usage;
3 strace is missing or cannot trace here.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from ggen.cache.files import InputIndex
from ggen.errors import EXIT_OK, EXIT_TASK_FAILED, InternalError
from ggen.make import Make
from ggen.runner.audit_rules import (
    Finding,
    ProjectView,
    TaskFiles,
    classify,
    left_out,
)
from ggen.runner.audit_trace import STRACE_ARGS, FileEvent, file_events, parse
from ggen.runner.execute import ExecOptions, execute, task_spec
from ggen.runner.plan import Plan, Task, build_plan, task_id
from ggen.runner.results import Status
from ggen.runner.state import ggen_dir

STRACE_ENV = "GGEN_STRACE"  # the strace to use, when not the one on PATH
MISSING = (
    "strace not found: ggen audit runs tasks under strace; install the distribution's strace "
    "package (apt-get install strace, dnf install strace, apk add strace)"
)


class Verdict(enum.Enum):
    """What the audit says about one task."""

    CLEAN = "clean"
    UNDECLARED = "undeclared"  # read or wrote files it does not declare
    NOT_CACHED = "not-cached"  # cache = false: ran, not judged
    FAILED = "failed"  # the task failed: the audit stopped there
    NOT_RUN = "not-run"  # after a failure


@dataclass(frozen=True)
class AuditOptions:
    """What ``ggen audit`` takes from the command line."""

    phases: tuple[str, ...]
    workspaces: tuple[str, ...] = ()
    timeout: float | None = None
    grace: float = 5.0


@dataclass(frozen=True)
class TaskAudit:
    """The audit of one task."""

    task_id: str
    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    log_tail: str = ""


@dataclass(frozen=True)
class AuditReport:
    """The audit of every task of the plan, in the order they ran."""

    tasks: tuple[TaskAudit, ...]

    @property
    def exit_code(self) -> int:
        bad = (Verdict.UNDECLARED, Verdict.FAILED)
        return EXIT_TASK_FAILED if any(t.verdict in bad for t in self.tasks) else EXIT_OK


def find_strace(environ: Mapping[str, str] = os.environ) -> str:
    """The strace executable (``GGEN_STRACE``, else the one on PATH); InternalError if none."""
    chosen = environ.get(STRACE_ENV) or shutil.which("strace") or "/usr/bin/strace"
    if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
        named = f" ({STRACE_ENV}={chosen})" if STRACE_ENV in environ else ""
        raise InternalError(MISSING + named)
    return chosen


def strace_options(strace: str) -> tuple[str, ...]:
    """The options that work with this strace here: ``--seccomp-bpf`` (only the traced calls
    stop the tracee, several times faster) when it is supported. InternalError when strace
    cannot trace at all (ptrace not permitted in this container, for instance)."""
    reason = ""
    for extra in (("--seccomp-bpf",), ()):
        done = subprocess.run(
            [strace, *STRACE_ARGS, *extra, "-o", os.devnull, "--", "true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return (*STRACE_ARGS, *extra)
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    raise InternalError(f"{strace} cannot trace commands here: {reason or 'it failed'}")


def traced_command(strace: str, options: Iterable[str], trace_file: str, command: str) -> str:
    """``command`` for ``sh -c``, run by strace writing (appending: retries) to ``trace_file``."""
    argv = [strace, *options, "-A", "-o", trace_file, "--", "sh", "-c", command]
    return "exec " + shlex.join(argv)


def audit_phases(make: Make, options: AuditOptions, notify: Callable[[str], None]) -> AuditReport:
    """Plan, run under strace, and judge every task of ``options.phases``."""
    from ggen.runner.lock import project_lock

    plan = build_plan(make, options.phases, options.workspaces)
    strace = find_strace()
    flags = strace_options(strace)
    # SIGTERM and SIGHUP stop an audit as Ctrl-C does: the running command's group is
    # stopped (TERM, then KILL) before ggen exits; ignored ones (nohup) stay ignored
    previous = {
        sig: signal.signal(sig, _interrupt)
        for sig in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        with (
            project_lock(make, wait=True, notify=notify),
            tempfile.TemporaryDirectory(prefix="ggen-audit-") as tmp,
        ):
            return _audit_locked(make, plan, options, notify, strace, flags, Path(tmp))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _audit_locked(
    make: Make,
    plan: Plan,
    options: AuditOptions,
    notify: Callable[[str], None],
    strace: str,
    flags: tuple[str, ...],
    tmp: Path,
) -> AuditReport:
    exec_options = ExecOptions(
        logs_dir=str(tmp / "logs"),
        control_dir=str(ggen_dir(make) / "control"),
        timeout=options.timeout,
        grace=options.grace,
    )
    index = InputIndex(Path(make.root), warn=notify)
    tracer = _Tracer(make, plan, index, project_view(make, index), exec_options, strace, flags)
    done: list[TaskAudit] = []
    for n, task in enumerate(plan.tasks):
        notify(f"tracing {task.id}")
        done.append(tracer.audit(task, tmp / str(n)))
        if done[-1].verdict is Verdict.FAILED:
            done.extend(TaskAudit(t.id, Verdict.NOT_RUN) for t in plan.tasks[n + 1 :])
            break
    return AuditReport(tuple(done))


@dataclass(frozen=True)
class _Tracer:
    """Runs one task at a time under strace and judges what it touched."""

    make: Make
    plan: Plan
    index: InputIndex
    project: ProjectView
    exec_options: ExecOptions
    strace: str
    flags: tuple[str, ...]

    def audit(self, task: Task, trace_stem: Path) -> TaskAudit:
        """Run ``task`` (its traces named after ``trace_stem``) and judge its file events."""
        make = self.make
        spec = task_spec(make, task.workspace, task.phase, self.exec_options)
        declared = task_files(make, self.plan, task, self.index)  # before it runs, as its key
        traces = [f"{trace_stem}.{i}.trace" for i in range(len(spec.commands))]
        wrapped = tuple(
            traced_command(self.strace, self.flags, t, c)
            for t, c in zip(traces, spec.commands, strict=True)
        )
        result = execute(dataclasses.replace(spec, commands=wrapped), self.exec_options)
        ws = make.workspace(task.workspace)
        self.index.mark_changed(ws.path if ws else ".")
        if result.attempts and not any(os.path.getsize(t) for t in traces if os.path.exists(t)):
            raise InternalError(f"{task.id}: strace wrote no trace:\n{_tail(spec.log_path)}")
        events = _events(traces, spec.cwd)
        if result.status is not Status.OK:
            findings = self.judge(events, declared)
            return TaskAudit(task.id, Verdict.FAILED, findings, result.error, _tail(spec.log_path))
        phase = make.phase_for(task.workspace, task.phase)
        if phase is not None and not phase.cache:
            return TaskAudit(task.id, Verdict.NOT_CACHED)
        findings = self.judge(events, declared)
        return TaskAudit(task.id, Verdict.UNDECLARED if findings else Verdict.CLEAN, findings)

    def judge(self, events: list[FileEvent], declared: TaskFiles) -> tuple[Finding, ...]:
        """The undeclared files among ``events``; git's view of the files is taken now."""
        index = self.index

        def ignored(rel: str) -> bool:
            listed = index.under(rel)
            return not (listed and listed[0] == rel)

        return classify(events, declared, self.project, ignored=ignored, is_dir=os.path.isdir)


def project_view(make: Make, index: InputIndex) -> ProjectView:
    """The project's root, workspaces and left-out places for the rules."""
    root = str(index.root)
    real = os.path.realpath(root)
    workspaces = tuple((w.name, _rel(w.path)) for w in (make.root_workspace, *make.workspaces))
    outputs = []
    for ws in (make.root_workspace, *make.workspaces):
        for name in make.phase_names():
            phase = make.phase_for(ws.name, name)
            if phase is not None and phase.outputs and _runs_on(make, ws.name, name):
                outputs.append((task_id(ws.name, name), _rel(ws.path), phase.outputs))
    return ProjectView(root, workspaces, left_out(), real if real != root else None, tuple(outputs))


def _runs_on(make: Make, workspace: str, phase: str) -> bool:
    """Whether ``phase`` has a task on ``workspace`` (as the planner decides it)."""
    ws = make.workspace(workspace)
    if ws is not None and ws.own_phase(phase) is not None:
        return True
    root = make.phase(phase)
    if root is None:
        return False
    return workspace in (
        root.workspaces if root.workspaces is not None else make.default_workspaces()
    )


def task_files(make: Make, plan: Plan, task: Task, index: InputIndex) -> TaskFiles:
    """What ``task`` declares: its input files listed as its key lists them (now, after its
    dependencies ran), its output globs, and those of every task it depends on."""
    ws = make.workspace(task.workspace)
    spec = make.phase_for(task.workspace, task.phase)
    if ws is None or spec is None:
        raise InternalError(f"no task {task.id} in the snapshot")
    pairs = index.task_inputs(ws.path, spec.inputs, spec.outputs)
    if make.project.inputs:
        pairs += index.task_inputs(".", [f"//{p}" for p in make.project.inputs], ())
    root = str(index.root).rstrip("/") + "/"
    inputs = frozenset(path[len(root) :] for _, path in pairs)
    upstream = []
    seen: set[str] = set()
    todo = list(task.deps)
    while todo:
        tid = todo.pop()
        if tid in seen:
            continue
        seen.add(tid)
        dep = plan.task(tid)
        todo.extend(dep.deps)
        dep_ws = make.workspace(dep.workspace)
        dep_phase = make.phase_for(dep.workspace, dep.phase)
        if dep_ws is not None and dep_phase is not None and dep_phase.outputs:
            upstream.append((_rel(dep_ws.path), dep_phase.outputs))
    return TaskFiles(_rel(ws.path), inputs, spec.outputs, tuple(upstream))


def _rel(ws_path: str) -> str:
    return "" if ws_path in ("", ".") else ws_path.strip("/")


def _events(traces: Iterable[str], cwd: str) -> list[FileEvent]:
    events: list[FileEvent] = []
    for trace in traces:
        try:
            with open(trace, encoding="utf-8", errors="surrogateescape") as f:
                events.extend(file_events(parse(f), cwd))
        except FileNotFoundError:
            continue  # a command that did not start (an earlier one failed)
    return events


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])
