"""Results: machine facts, the targets of the harness, JSON and markdown.

A target compares ggen with a peer (or with itself) through medians measured in the same
session; it is "n/a" when one of the figures is missing, skipped or invalid, never guessed.
"""

from __future__ import annotations

import enum
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.micro import Figure
from bench.scenarios import SIZE_SCENARIOS, Result, Scenario, Verdict
from bench.tools import REPO_ROOT, Tool, ToolName

RESULTS_VERSION = 1
MIB_KB = 1024


class Outcome(enum.Enum):
    """How a target came out."""

    PASS = "pass"
    FAIL = "FAIL"
    NA = "n/a"


@dataclass(frozen=True)
class Target:
    """One target of the issue, evaluated."""

    text: str
    measured: str
    outcome: Outcome

    def to_json(self) -> dict[str, str]:
        """A plain dict for the results file."""
        return {"target": self.text, "measured": self.measured, "outcome": self.outcome.value}


def machine_facts(work: Path) -> dict[str, object]:
    """What the figures depend on: CPU, cores, memory, kernel, Python, the repo's commit."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "work_dir": str(work),
        "commit": commit or None,
    }


def _find(
    results: Sequence[Result], tool: ToolName, scenario: Scenario, n: int, jobs: int | None = None
) -> Result | None:
    for r in results:
        same = r.tool is tool and r.scenario is scenario and r.workspaces == n
        if same and (jobs is None or r.jobs == jobs):
            return r
    return None


def _usable(r: Result | None) -> float | None:
    return r.median_s if r is not None and r.verdict is Verdict.OK else None


def _why_missing(*rs: Result | None) -> str:
    for r in rs:
        if r is None:
            return "not measured"
        if r.verdict is not Verdict.OK:
            return f"{r.tool.value} {r.verdict.value}" + (f" ({r.note})" if r.note else "")
    return "not measured"


def _ratio_target(
    results: Sequence[Result],
    scenario: Scenario,
    n: int,
    peer: ToolName,
    limit: float,
    label: str | None = None,
) -> Target:
    text = f"{scenario.value} N={n}: ggen <= {limit:g}x {label or peer.value}"
    ours = _find(results, ToolName.GGEN, scenario, n)
    theirs = _find(results, peer, scenario, n)
    a, b = _usable(ours), _usable(theirs)
    if a is None or b is None or b == 0:
        return Target(text, _why_missing(ours, theirs), Outcome.NA)
    ratio = a / b
    outcome = Outcome.PASS if ratio <= limit else Outcome.FAIL
    return Target(text, f"{ratio:.2f}x ({a:.3f} s vs {b:.3f} s)", outcome)


def speedup(
    results: Sequence[Result], tool: ToolName, scenario: Scenario, jobs: int
) -> tuple[float | None, float | None]:
    """(whole-process speedup, task-span speedup) of ``-j jobs`` over ``-j1``."""
    n = 8 if scenario is Scenario.PAR_8X500 else 4
    one, many = _find(results, tool, scenario, n, 1), _find(results, tool, scenario, n, jobs)
    a, b = _usable(one), _usable(many)
    proc = a / b if a and b else None
    sa = one.span_median_s if one is not None and one.verdict is Verdict.OK else None
    sb = many.span_median_s if many is not None and many.verdict is Verdict.OK else None
    span = sa / sb if sa and sb else None
    return proc, span


def evaluate_targets(results: Sequence[Result], micro: Sequence[Figure]) -> list[Target]:
    """Every target of the issue, against this session's figures."""
    out = [
        _ratio_target(results, Scenario.NOOP, 200, ToolName.TURBO, 0.7),
        _ratio_target(results, Scenario.NOOP, 200, ToolName.DOIT, 0.7),
        _ratio_target(results, Scenario.NOOP, 1000, ToolName.TURBO, 0.4),
        _ratio_target(results, Scenario.INCREMENTAL, 200, ToolName.TURBO, 0.5),
        _ratio_target(results, Scenario.INCREMENTAL, 200, ToolName.DOIT, 1.0),
        _ratio_target(results, Scenario.COLD, 200, ToolName.MAKE, 1.5, "GNU make -j2"),
    ]
    cold = _find(results, ToolName.GGEN, Scenario.COLD, 200)
    restore = _find(results, ToolName.GGEN, Scenario.RESTORE, 200)
    a, b = _usable(restore), _usable(cold)
    text = "restore N=200: ggen <= 0.5x ggen's own cold"
    if a is None or b is None:
        out.append(Target(text, _why_missing(restore, cold), Outcome.NA))
    else:
        out.append(Target(text, f"{a / b:.2f}x", Outcome.PASS if a / b <= 0.5 else Outcome.FAIL))
    for scenario, jobs, limit in ((Scenario.PAR_8X500, 2, 1.9), (Scenario.PAR_4X100, 4, 3.5)):
        proc, span = speedup(results, ToolName.GGEN, scenario, jobs)
        text = f"{scenario.value}: ggen speedup -j{jobs} vs -j1 >= {limit:g}x (task span)"
        if span is None:
            out.append(Target(text, "not measured", Outcome.NA))
        else:
            whole = f"; whole process {proc:.2f}x" if proc else ""
            outcome = Outcome.PASS if span >= limit else Outcome.FAIL
            out.append(Target(text, f"{span:.2f}x{whole}", outcome))
    share = next((f for f in micro if f.name.startswith("hash ggen/raw, one")), None)
    text = "hashing one 256 MiB file: ggen >= 80% of raw xxh3_128"
    if share is None or share.value is None:
        out.append(Target(text, "not measured", Outcome.NA))
    else:
        ok = share.value >= 80 and not share.note
        out.append(
            Target(
                text,
                f"{share.value:.0f}% {share.note}".strip(),
                Outcome.PASS if ok else Outcome.FAIL,
            )
        )
    opens = next((f for f in micro if f.name.startswith("source files opened")), None)
    text = "a no-op run opens no unchanged source file"
    if opens is None or opens.value is None:
        out.append(Target(text, opens.note if opens else "not measured", Outcome.NA))
    else:
        ok = opens.value == 0 and not opens.note.startswith("invalid")
        out.append(
            Target(
                text,
                f"{opens.value:.0f} files ({opens.note})",
                Outcome.PASS if ok else Outcome.FAIL,
            )
        )
    small, big = (_find(results, ToolName.GGEN, Scenario.NOOP, n) for n in (200, 1000))
    a, b = _usable(small), _usable(big)
    text = "no-op per workspace at N=1000 no worse than at N=200"
    if a is None or b is None:
        out.append(Target(text, _why_missing(small, big), Outcome.NA))
    else:
        per_small, per_big = a / 200 * 1000, b / 1000 * 1000
        outcome = Outcome.PASS if per_big <= per_small else Outcome.FAIL
        out.append(Target(text, f"{per_big:.2f} ms vs {per_small:.2f} ms per workspace", outcome))
    rss = [
        r.peak_rss_kb
        for r in results
        if r.tool is ToolName.GGEN and r.workspaces == 1000 and r.peak_rss_kb
    ]
    text = "peak RSS of the ggen process at N=1000 < 100 MiB"
    if not rss:
        out.append(Target(text, "not measured", Outcome.NA))
    else:
        peak = max(rss) / MIB_KB
        out.append(Target(text, f"{peak:.0f} MiB", Outcome.PASS if peak < 100 else Outcome.FAIL))
    return out


def results_doc(
    *,
    run_id: str,
    started: str,
    duration_s: float,
    machine: dict[str, object],
    plan: dict[str, object],
    tools: Sequence[Tool],
    results: Sequence[Result],
    micro: Sequence[Figure],
    targets: Sequence[Target],
) -> dict[str, object]:
    """The whole run as one JSON-able document."""
    return {
        "version": RESULTS_VERSION,
        "run_id": run_id,
        "started": started,
        "duration_s": round(duration_s, 1),
        "machine": machine,
        "plan": plan,
        "tools": [{"name": t.name.value, "version": t.version, "exe": list(t.exe)} for t in tools],
        "results": [r.to_json() for r in results],
        "micro": [f.to_json() for f in micro],
        "targets": [t.to_json() for t in targets],
    }


def _load(value: object) -> str:
    if isinstance(value, list) and value:
        return f"{value[0]:.2f}"
    return "?"


def _secs(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _cell(r: Result | None, ggen: Result | None) -> str:
    if r is None:
        return "-"
    if r.verdict is Verdict.SKIPPED:
        return r.note if r.note.startswith("skipped") else f"skipped: {r.note}".rstrip(": ")
    if r.verdict is Verdict.FAILED:
        return "failed"
    med = r.median_s
    if med is None:
        return "-"
    text = _secs(med)
    if r.verdict is Verdict.INVALID:
        text += " (invalid)"
    if len(r.samples_s) == 1:
        text += " (1 run)"
    if r.tool is not ToolName.GGEN:
        g = _usable(ggen)
        if g is not None and r.verdict is Verdict.OK and med > 0:
            text += f" · {g / med:.2f}x"
    return text


def render_markdown(
    doc: dict[str, object],
    results: Sequence[Result],
    targets: Sequence[Target],
    micro: Sequence[Figure],
    tools: Sequence[Tool],
) -> str:
    """The report as markdown: scenarios, parallel speedup, targets, micro figures, notes."""
    machine = doc["machine"]
    plan = doc["plan"]
    assert isinstance(machine, dict) and isinstance(plan, dict)
    names = [t.name for t in tools]
    versions = ", ".join(f"{t.name.value} {t.version}" for t in tools)
    lines = [
        "# ggen benchmark results",
        "",
        f"Run {doc['run_id']} ({doc['started']}, {doc['duration_s']} s) on {machine['cpu']}, "
        f"{machine['cores']} cores, {machine['memory_gib']} GiB, {machine['system']}, "
        f"Python {machine['python']}, commit {machine['commit'] or 'none'}.",
        "",
        f"Versions: {versions}.",
        "",
        f"Each figure is the median wall time in seconds of the whole process, after "
        f"{plan['warmup']} warm-up run, over {plan['reps']} runs "
        f"({plan['reps_large']} at N>={plan['large_n']}); every tool runs at -j{plan['jobs']} on "
        f"its own copy of the same tree (F={plan['files']} files of K={plan['kib']} KiB per "
        f"workspace, chain={plan['chain']}), the tools alternating. After a peer's time, "
        "'0.45x' is ggen's time divided by the peer's (lower is better for ggen).",
        "",
        f"A first run longer than {plan['long_run_s']:g} s counts as a measurement rather than "
        f"a warm-up, and repetitions are cut so that one tool's scenario fits in "
        f"{plan['scenario_budget_s']:g} s ('(1 run)' marks a single run). A peer whose cold "
        f"build is predicted (from the smaller size) to exceed {plan['populate_limit_s']:g} s "
        "is skipped at that size, since every later scenario needs its cache. turbo runs each "
        "task's script through npm (`npm run build`), which dominates its cold and incremental "
        "times. Load average at start/end: "
        f"{_load(machine.get('load_avg_at_start'))} / {_load(machine.get('load_avg_at_end'))}.",
        "",
        "| scenario | N | " + " | ".join(n.value for n in names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    sizes = sorted({r.workspaces for r in results if r.scenario in (Scenario.COLD, Scenario.NOOP)})
    for scenario in (Scenario.COLD, Scenario.NOOP, Scenario.INCREMENTAL, Scenario.RESTORE):
        for n in sizes:
            ggen = _find(results, ToolName.GGEN, scenario, n)
            cells = [_cell(_find(results, name, scenario, n), ggen) for name in names]
            lines.append(f"| {scenario.value} | {n} | " + " | ".join(cells) + " |")
    par = [r for r in results if r.scenario in (Scenario.PAR_8X500, Scenario.PAR_4X100)]
    if par:
        lines += [
            "",
            "## Parallel speedup (every task forced to run)",
            "",
            "No warm-up. The task span is the time from the first task's start to the last "
            "task's end in ggen's run summary: the part of the run the scheduler controls "
            "(the targets are judged on it; the whole process adds ggen's start-up).",
            "",
            "| case | tool | -j1 (s) | -jJ (s) | speedup, whole process | speedup, task span |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for scenario, jobs in ((Scenario.PAR_8X500, 2), (Scenario.PAR_4X100, 4)):
            n = 8 if scenario is Scenario.PAR_8X500 else 4
            for name in names:
                one, many = (
                    _find(results, name, scenario, n, 1),
                    _find(results, name, scenario, n, jobs),
                )
                if one is None and many is None:
                    continue
                proc, span = speedup(results, name, scenario, jobs)
                lines.append(
                    f"| {scenario.value} -j{jobs} | {name.value} | {_cell(one, None)} | "
                    f"{_cell(many, None)} | {f'{proc:.2f}x' if proc else '-'} | "
                    f"{f'{span:.2f}x' if span else '-'} |"
                )
    rss = [
        r
        for r in results
        if r.tool is ToolName.GGEN and r.peak_rss_kb and r.scenario in SIZE_SCENARIOS
    ]
    if rss:
        lines += [
            "",
            "## Peak RSS of ggen (MiB)",
            "",
            "| scenario | N | ggen process | largest process of its tree |",
            "|---|---:|---:|---:|",
        ]
        for r in rss:
            lines.append(
                f"| {r.scenario.value} | {r.workspaces} | {r.peak_rss_kb / MIB_KB:.0f} | "
                f"{r.tree_max_rss_kb / MIB_KB:.0f} |"
            )
    lines += ["", "## Targets", "", "| target | measured | outcome |", "|---|---|---|"]
    lines += [f"| {t.text} | {t.measured} | {t.outcome.value} |" for t in targets]
    if micro:
        lines += ["", "## Micro figures", "", "| figure | value | note |", "|---|---:|---|"]
        for f in micro:
            value = "-" if f.value is None else f"{f.value:g} {f.unit}"
            lines.append(f"| {f.name} | {value} | {f.note} |")
    notes = [r for r in results if r.note and r.verdict is not Verdict.SKIPPED]
    if notes:
        lines += ["", "## Notes", ""]
        for r in notes:
            lines.append(
                f"- {r.tool.value}, {r.scenario.value}, N={r.workspaces}, -j{r.jobs}: {r.note}"
            )
    return "\n".join(lines) + "\n"


def write_results(out_dir: Path, doc: dict[str, object], markdown: str) -> tuple[Path, Path]:
    """Write ``<run_id>.json`` and ``<run_id>.md`` into ``out_dir`` (atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = str(doc["run_id"])
    paths = (out_dir / f"{run_id}.json", out_dir / f"{run_id}.md")
    write_atomic(paths[0], orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    write_atomic(paths[1], markdown.encode())
    return paths


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` whole: a temp file in the same directory, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
