"""The report of ``ggen audit``: per task its undeclared files and the patterns to add, as text
or as a JSON document. Patterns are printed as TOML strings, ready to paste into make.toml."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ggen.runner.audit import AuditReport, Verdict
from ggen.runner.audit_rules import Finding, suggestions
from ggen.runner.audit_trace import Access


def _show(path: str) -> str:
    """A path for display: a name that is not UTF-8 gets its bytes as ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _quoted(patterns: Iterable[str]) -> str:
    """Patterns as TOML strings, ready to paste into a list (JSON's escapes are TOML's)."""
    import json

    return ", ".join(json.dumps(_show(p), ensure_ascii=False) for p in patterns)


def report_text(report: AuditReport) -> str:
    """The human report: per task its undeclared files, each with the pattern to add."""
    out: list[str] = []
    for t in report.tasks:
        if t.verdict is Verdict.CLEAN:
            out.append(f"{t.task_id}: clean")
        elif t.verdict is Verdict.NOT_CACHED:
            out.append(f"{t.task_id}: not cached (cache = false), not judged")
        elif t.verdict is Verdict.NOT_RUN:
            out.append(f"{t.task_id}: not run (a task before it failed)")
        if t.verdict is Verdict.FAILED:
            out.append(f"{t.task_id}: FAILED: {t.error}; the audit stopped here")
            out.extend(f"  | {line}" for line in t.log_tail.splitlines())
        if t.findings:
            if t.verdict is Verdict.UNDECLARED:
                out.append(f"{t.task_id}: {len(t.findings)} undeclared")
            out.extend(_finding_line(f) for f in t.findings)
            inputs, outputs = suggestions(t.findings)
            if inputs:
                out.append(f"  add to inputs:  {_quoted(inputs)}")
            if outputs:
                out.append(f"  add to outputs: {_quoted(outputs)}")
    bad = [t for t in report.tasks if t.findings and t.verdict is not Verdict.NOT_CACHED]
    reads = sum(1 for t in bad for f in t.findings if f.access is Access.READ)
    writes = sum(1 for t in bad for f in t.findings if f.access is Access.WRITE)
    ran = sum(1 for t in report.tasks if t.verdict is not Verdict.NOT_RUN)
    out.append(
        f"audit: {ran} task(s) traced, {len(bad)} with undeclared files "
        f"({reads} read, {writes} written)"
    )
    return "\n".join(out) + "\n"


def _finding_line(f: Finding) -> str:
    verb = "read " if f.access is Access.READ else "wrote"
    path = _show(f.path)
    if f.glob:
        kind = "inputs" if f.access is Access.READ else "outputs"
        return f"  {verb}  {path}  ({kind}: {_quoted([f.glob])})"
    if f.made_by:
        return f"  {verb}  {path}  (an output of {f.made_by}: add a dependency on it)"
    if f.outside:
        return f"  {verb}  {path}  (outside the project)"
    return f"  {verb}  {path}  (outside the workspace: no outputs pattern can name it)"


def report_json(report: AuditReport) -> dict[str, Any]:
    """The report as a JSON-ready document."""
    tasks = []
    for t in report.tasks:
        inputs, outputs = suggestions(t.findings)
        tasks.append(
            {
                "id": t.task_id,
                "verdict": t.verdict.value,
                "error": t.error,
                "findings": [
                    {
                        "path": _show(f.path),
                        "access": f.access.value,
                        "glob": _show(f.glob) if f.glob else None,
                        "workspace": f.workspace,
                        "outside_project": f.outside,
                        "made_by": f.made_by,
                    }
                    for f in t.findings
                ],
                "suggested_inputs": [_show(p) for p in inputs],
                "suggested_outputs": [_show(p) for p in outputs],
            }
        )
    return {"tasks": tasks, "exit_code": report.exit_code}
