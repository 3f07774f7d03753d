"""Text views of the configuration and the recorded state: list, show, validate, status."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ggen.errors import UsageError
from ggen.make import Make, Phase
from ggen.runner.plan import build_plan
from ggen.runner.state import load_root_state


def list_text(make: Make, as_json: bool) -> str:
    """The workspaces (path, where each was declared or found, dependencies) and the phases
    (description) of the project."""
    if as_json:
        return (
            json.dumps(
                {
                    "project": make.project.name,
                    "workspaces": [
                        {
                            "name": w.name,
                            "path": w.path,
                            "depends_on": list(w.depends_on),
                            "source": w.source,
                        }
                        for w in make.workspaces
                    ],
                    "phases": [
                        {"name": n, "description": (make.phase(n) or Phase(n, ())).description}
                        for n in make.phase_names()
                    ],
                },
                indent=2,
            )
            + "\n"
        )
    lines = [
        f"project {make.project.name}"
        + (f" {make.project.version}" if make.project.version else ""),
        "",
        "workspaces:",
    ]
    width = max((len(w.name) for w in make.workspaces), default=0)
    path_width = max((len(w.path) for w in make.workspaces), default=0)
    for w in make.workspaces:
        deps = f"  (depends on {', '.join(w.depends_on)})" if w.depends_on else ""
        lines.append(f"  {w.name:<{width}}  {w.path:<{path_width}}  from {w.source}{deps}")
    if not make.workspaces:
        lines.append("  . (the project root)")
    lines += ["", "phases:"]
    names = make.phase_names()
    width = max((len(n) for n in names), default=0)
    for n in names:
        p = make.phase(n)
        desc = p.description if p and p.description else ""
        lines.append(f"  {n:<{width}}  {desc}".rstrip())
    return "\n".join(lines) + "\n"


def _phase_lines(p: Phase, make: Make, indent: str = "  ") -> list[str]:
    ws = (
        ", ".join(p.workspaces)
        if p.workspaces is not None
        else "every workspace (" + ", ".join(make.default_workspaces()) + ")"
    )
    rows: list[tuple[str, str]] = [
        ("defined in", p.source),
        ("description", p.description or ""),
        ("workspaces", ws),
        ("parallel", "" if p.parallel is None else str(p.parallel).lower()),
        ("depends_on", ", ".join(p.depends_on)),
        (
            "inputs",
            ", ".join(p.inputs)
            if p.inputs is not None
            else "every file git does not ignore, minus outputs",
        ),
        ("outputs", ", ".join(p.outputs)),
        ("env", ", ".join(f"{k}={v}" for k, v in p.env)),
        ("env_inputs", ", ".join(p.env_inputs)),
        ("cache", str(p.cache).lower()),
        ("timeout", f"{p.timeout:g} s" if p.timeout else ""),
        ("retries", str(p.retries) if p.retries else ""),
        ("watch", "true" if p.watch else ""),
        ("port", str(p.port) if p.port is not None else ""),
    ]
    out = [f"{indent}{k + ':':<13} {v}" for k, v in rows if v]
    if p.script is not None:
        out.append(f"{indent}{'script:':<13} {p.script} (of each workspace's package.json)")
    else:
        out.append(f"{indent}commands:")
        out += [f"{indent}  {i + 1}. {c}" for i, c in enumerate(p.commands)]
        if not p.commands:
            out[-1] += " none: the phase has nothing to do"
    return out


def show_text(make: Make, phase: str, workspaces: Sequence[str]) -> str:
    """One phase as declared at the root, plus every workspace override of it."""
    if phase not in make.phase_names():
        raise UsageError(f'unknown phase "{phase}" (phases: {", ".join(make.phase_names())})')
    lines = [f"phase {phase}"]
    root = make.phase(phase)
    if root is not None:
        lines += _phase_lines(root, make)
    for w in make.workspaces:
        own = w.own_phase(phase)
        if own is not None and (not workspaces or w.name in workspaces):
            lines += [f"  override in workspace {w.name}:", *_phase_lines(own, make, "    ")]
    before = make.hooks.before_phase(phase)
    after = make.hooks.after_phase(phase)
    if before:
        lines.append(f"  before hooks: {', '.join(before)}")
    if after:
        lines.append(f"  after hooks:  {', '.join(after)}")
    return "\n".join(lines) + "\n"


def validate_text(make: Make) -> str:
    """Plan every phase (finding cycles); say what was checked."""
    for name in make.phase_names():
        build_plan(make, (name,))
    return (
        f"{make.file}: valid ({len(make.workspaces)} workspaces, "
        f"{len(make.phase_names())} phases)\n"
    )


def status_text(make: Make, as_json: bool) -> str:
    """The last recorded result of each task, from the root state file."""
    state = load_root_state(make)
    tasks = state.get("tasks") or {}
    if as_json:
        return json.dumps({"last_run": state.get("last_run"), "tasks": tasks}, indent=2) + "\n"
    if not tasks:
        return "no run recorded yet\n"
    width = max(len(t) for t in tasks)
    lines = []
    last = state.get("last_run") or {}
    if last:
        lines.append(
            f"last run {last.get('run_id')}: {' '.join(last.get('command', []))} "
            f"-> exit {last.get('exit_code')}"
        )
    for tid in sorted(tasks):
        t = tasks[tid]
        key = (t.get("key") or "")[:12]
        lines.append(
            f"  {tid:<{width}}  {t.get('status', '?'):<11} {t.get('duration_ms', 0):>7} ms  {key}"
        )
    return "\n".join(lines) + "\n"
