"""The run report (``ggen report``): one self-contained HTML page, readable without network.

The page embeds the run data once, as JSON in ``<script type="application/json">``, and an
inline script draws from it the timeline (one lane per worker, one bar per task) and the
sortable task table, which keeps the page small at thousands of tasks. Everything that reads
well without script (header, totals, critical path, failures, history chart) is written here,
with every string from the summary escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ggen.atomic import write_bytes_atomic
from ggen.report.assets import CSS, JS
from ggen.report.model import (
    CriticalPath,
    Outcome,
    RunView,
    TaskView,
    Totals,
    assign_lanes,
    critical_path,
    read_run,
)

HISTORY_RUNS = 30
MAX_FAILURES_SHOWN = 50
MAX_ERROR_CHARS = 2000
_PROBLEMS = (Outcome.FAILED, Outcome.TIMEOUT, Outcome.INTERRUPTED)
_STATUS_LABELS = {
    Outcome.OK: "ok",
    Outcome.CACHED: "cached",
    Outcome.FAILED: "failed",
    Outcome.SKIPPED: "skipped",
    Outcome.INTERRUPTED: "interrupted",
    Outcome.TIMEOUT: "timeout",
    Outcome.NO_SCRIPT: "no script",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def format_ms(value: float) -> str:
    """A duration for people: ``840 ms``, ``3.25 s``, ``12.5 s``, ``4m 05s``, ``1h 02m``."""
    if value < 1000:
        return f"{round(value)} ms"
    if value < 60_000:
        return f"{value / 1000:.{2 if value < 10_000 else 1}f} s"
    seconds = round(value / 1000)
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _clip(text: str | None, limit: int = MAX_ERROR_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"\u2026 ({len(text) - limit} more characters)"


def _page_data(run: RunView, path: CriticalPath) -> bytes:
    index_of = {task.id: i for i, task in enumerate(run.tasks)}
    tasks = [
        {
            "id": task.id,
            "ws": task.workspace,
            "ph": task.phase,
            "st": task.outcome.value,
            "ca": task.cache.value,
            "ex": task.exit_code,
            "s": task.start_ms,
            "e": task.end_ms,
            "d": task.duration_ms,
            "cpu": task.cpu_ms,
            "rss": task.max_rss_kb,
            "w": task.worker,
            "a": task.attempts,
            "k": task.key,
            "deps": [index_of[dep] for dep in task.deps if dep in index_of],
            "err": _clip(task.error),
        }
        for task in run.tasks
    ]
    lanes = [{"name": lane.name, "tasks": list(lane.tasks)} for lane in assign_lanes(run)]
    raw = orjson.dumps({"wall": run.wall_ms, "lanes": lanes, "tasks": tasks, "crit": path.tasks})
    # Inside <script>, "</script>" or "<!--" in a task's error would end the element early;
    # JSON allows these characters escaped, so none of them reaches the HTML parser.
    return raw.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


def _header(run: RunView) -> str:
    if run.exit_code == 0:
        badge = '<span class="badge pass">succeeded</span>'
    elif run.totals.interrupted and not run.totals.failed:
        badge = f'<span class="badge stop">interrupted (exit {run.exit_code})</span>'
    else:
        badge = f'<span class="badge fail">failed (exit {run.exit_code})</span>'
    meta = []
    if run.run_id:
        meta.append(f"<span>run <code>{_e(run.run_id)}</code></span>")
    if run.command:
        meta.append(f"<span><code>ggen run {_e(' '.join(run.command))}</code></span>")
    if run.executor:
        jobs = f" \u00b7 {run.jobs} jobs" if run.jobs else ""
        meta.append(f"<span>{_e(run.executor)}{jobs}</span>")
    if run.started_ms > 0:
        when = dt.datetime.fromtimestamp(run.started_ms / 1000, tz=dt.timezone.utc)
        meta.append(f"<span>started {when:%Y-%m-%d %H:%M:%S} UTC</span>")
    project = f"{_e(run.project)} \u2014 " if run.project else ""
    return (
        '<header class="top"><div>'
        f'<h1><span class="brand">ggen</span> {project}run report</h1>'
        f'<div class="meta">{"".join(meta)}</div></div>{badge}</header>'
    )


def _stat(label: str, value: str, extra: str = "", cls: str = "") -> str:
    return (
        f'<div class="stat {cls}"><div class="v">{value}</div>'
        f'<div class="k">{label}</div>{extra}</div>'
    )


def _totals(run: RunView) -> str:
    t: Totals = run.totals
    pct = max(0.0, min(1.0, t.hit_rate)) * 100
    cards = [
        _stat("Tasks", str(t.tasks)),
        _stat("Ran", str(t.ran)),
        _stat("Cached", str(t.cached)),
        _stat("Failed", str(t.failed), cls="bad" if t.failed else ""),
        _stat("Skipped", str(t.skipped)),
    ]
    if t.interrupted:
        cards.append(_stat("Interrupted", str(t.interrupted), cls="bad"))
    cards += [
        _stat(
            "Hit rate",
            f"{pct:.0f}%",
            f'<div class="bar-mini"><span style="width:{pct:.1f}%"></span></div>',
        ),
        _stat("Wall", format_ms(run.wall_ms)),
        _stat("CPU", format_ms(t.cpu_ms)),
    ]
    attrs = (
        f'data-tasks="{t.tasks}" data-ran="{t.ran}" data-cached="{t.cached}" '
        f'data-failed="{t.failed}" data-skipped="{t.skipped}" '
        f'data-interrupted="{t.interrupted}" data-hit-rate="{t.hit_rate!r}" '
        f'data-wall-ms="{run.wall_ms}" data-cpu-ms="{t.cpu_ms}"'
    )
    return f'<div id="totals" {attrs}>{"".join(cards)}</div>'


def _legend(run: RunView) -> str:
    counts = {outcome: 0 for outcome in Outcome}
    for task in run.tasks:
        counts[task.outcome] += 1
    items = [
        f'<span><i class="sw s-{o.value}"></i>{_STATUS_LABELS[o]} {counts[o]}</span>'
        for o in Outcome
        if counts[o] or o in (Outcome.OK, Outcome.CACHED, Outcome.FAILED)
    ]
    items.append('<span><i class="sw crit"></i>critical path</span>')
    return f'<div class="legend">{"".join(items)}</div>'


def _timeline(run: RunView, path: CriticalPath) -> str:
    if path.tasks:
        summary = (
            f'<span class="crit-sum">Critical path: <b>{len(path.tasks)}</b> '
            f"task{'s' if len(path.tasks) != 1 else ''} \u00b7 <b>{format_ms(path.busy_ms)}</b> "
            f"of {format_ms(run.wall_ms)} wall "
            f'(<b id="crit-share" data-share="{path.share:.4f}">{path.share * 100:.0f}%</b>)</span>'
        )
        steps = []
        for n, index in enumerate(path.tasks):
            task = run.tasks[index]
            busy = (task.end_ms or 0) - (task.start_ms or 0)
            arrow = '<span class="arrow">\u2192</span>' if n else ""
            steps.append(
                f'{arrow}<span class="step" data-crit="{_e(task.id)}">'
                f'<i class="sw s-{task.outcome.value}"></i>{_e(task.id)} '
                f"<em>{format_ms(busy)}</em></span>"
            )
        chain = f'<div class="chain" id="critical-path">{"".join(steps)}</div>'
    else:
        summary = '<span class="crit-sum">No task started, so there is no critical path.</span>'
        chain = ""
    tools = (
        '<label class="check"><input type="checkbox" id="show-crit" checked> outline path</label>'
        '<label class="check"><input type="checkbox" id="focus-crit"> dim others</label>'
        '<span class="tools"><button id="zoom-out" title="Zoom out">\u2212</button>'
        '<button id="zoom-fit" title="Fit to width">fit</button>'
        '<button id="zoom-in" title="Zoom in">+</button></span>'
    )
    return (
        '<section class="card"><div class="card-head"><h2>Timeline</h2>'
        f'{_legend(run)}<span class="grow"></span>{tools}</div>'
        f'<div class="card-head">{summary}</div>'
        '<div id="timeline" class="tl show-crit"></div>'
        f"{chain}</section>"
    )


def _failure(task: TaskView) -> str:
    meta = [_STATUS_LABELS[task.outcome]]
    if task.exit_code is not None:
        meta.append(f"exit {task.exit_code}")
    if task.attempts > 1:
        meta.append(f"{task.attempts} attempts")
    meta.append(format_ms(task.duration_ms))
    log = f" \u00b7 log <code>{_e(task.log)}</code>" if task.log else ""
    error = f"<pre>{_e(_clip(task.error))}</pre>" if task.error else ""
    return (
        f'<div class="failure" data-failure="{_e(task.id)}">'
        f'<i class="sw s-{task.outcome.value}"></i> <span class="t">{_e(task.id)}</span>'
        f'<span class="m">{_e(" · ".join(meta))}{log}</span>{error}</div>'
    )


def _failures(run: RunView) -> str:
    problems = [task for task in run.tasks if task.outcome in _PROBLEMS]
    if not problems:
        return ""
    shown = "".join(_failure(task) for task in problems[:MAX_FAILURES_SHOWN])
    more = len(problems) - MAX_FAILURES_SHOWN
    if more > 0:
        shown += f'<div class="failure muted">\u2026 and {more} more in the table below</div>'
    return (
        f'<section class="card" id="failures"><div class="card-head"><h2>Failures</h2>'
        f'<span class="muted">{len(problems)}</span></div>{shown}</section>'
    )


@dataclass(frozen=True)
class _Point:
    run_id: str
    wall_ms: int
    hit_rate: float


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= value)


def _compare(run: RunView, past: Sequence[_Point]) -> str:
    wall = statistics.median(p.wall_ms for p in past)
    rate = statistics.median(p.hit_rate for p in past)
    change = (run.wall_ms - wall) / wall * 100 if wall else 0.0
    cls = "worse" if change > 5 else "better" if change < -5 else ""
    return (
        '<dl class="compare">'
        f"<dt>This run</dt><dd>{format_ms(run.wall_ms)} \u00b7 "
        f"{run.totals.hit_rate * 100:.0f}% hits</dd>"
        f"<dt>Median of {len(past)} before</dt><dd>{format_ms(wall)} \u00b7 "
        f"{rate * 100:.0f}% hits</dd>"
        f'<dt>Wall time</dt><dd class="{cls}" id="wall-change">{change:+.0f}%</dd></dl>'
    )


def _history_point(summary: Mapping[str, Any]) -> _Point | None:
    if not isinstance(summary, Mapping):
        return None
    wall = summary.get("wall_ms")
    totals = summary.get("totals")
    rate = totals.get("hit_rate") if isinstance(totals, Mapping) else None
    if isinstance(wall, bool) or not isinstance(wall, (int, float)):
        return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        rate = 0.0
    return _Point(str(summary.get("run_id") or ""), int(wall), float(rate))


def _history(run: RunView, history: Sequence[Mapping[str, Any]]) -> str:
    past = [p for p in map(_history_point, history) if p is not None]
    ids = [p.run_id for p in past]
    if run.run_id and run.run_id in ids:
        # the list of recorded runs may include this one (and later ones): keep what came before
        past = past[: ids.index(run.run_id)]
    if len(past) < 2:
        return ""
    points = [*past[-(HISTORY_RUNS - 1) :], _Point(run.run_id, run.wall_ms, run.totals.hit_rate)]
    width, height, left, right, top, bottom = 720, 190, 64, 48, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    top_ms = _nice_ceiling(max(p.wall_ms for p in points) * 1.05)

    def x(n: int) -> float:
        return left + plot_w * n / (len(points) - 1)

    def y_wall(value: int) -> float:
        return top + plot_h * (1 - value / top_ms)

    def y_rate(value: float) -> float:
        return top + plot_h * (1 - max(0.0, min(1.0, value)))

    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="wall time and cache hit '
        f'rate of the last {len(points)} runs">'
    ]
    for frac in (0.0, 0.5, 1.0):
        gy = top + plot_h * (1 - frac)
        parts.append(
            f'<line class="axis" x1="{left}" y1="{gy:.1f}" x2="{width - right}" y2="{gy:.1f}"/>'
            f'<text x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end">'
            f"{format_ms(top_ms * frac)}</text>"
            f'<text x="{width - right + 12}" y="{gy + 4:.1f}">{frac * 100:.0f}%</text>'
        )
    wall_line = " ".join(f"{x(n):.1f},{y_wall(p.wall_ms):.1f}" for n, p in enumerate(points))
    rate_line = " ".join(f"{x(n):.1f},{y_rate(p.hit_rate):.1f}" for n, p in enumerate(points))
    parts.append(f'<polyline class="wall" points="{wall_line}"/>')
    parts.append(f'<polyline class="hits" points="{rate_line}"/>')
    for n, p in enumerate(points):
        label = f"{p.run_id}: wall {format_ms(p.wall_ms)}, hit rate {p.hit_rate * 100:.0f}%"
        parts.append(
            f'<g data-run="{_e(p.run_id)}"><title>{_e(label)}</title>'
            f'<circle class="pt-wall" cx="{x(n):.1f}" cy="{y_wall(p.wall_ms):.1f}" r="3.5"/>'
            f'<circle class="pt-hits" cx="{x(n):.1f}" cy="{y_rate(p.hit_rate):.1f}" r="3"/></g>'
        )
    last = len(points) - 1
    parts.append(
        f'<circle class="now" cx="{x(last):.1f}" cy="{y_wall(run.wall_ms):.1f}" r="7"/>'
        f'<text x="{left}" y="{height - 8}">{_e(points[0].run_id)}</text>'
        f'<text x="{width - right}" y="{height - 8}" text-anchor="end">this run</text>'
    )
    parts.append("</svg>")
    legend = (
        '<div class="legend"><span><i class="sw" style="background:var(--accent)"></i>'
        'wall time (left)</span><span><i class="sw s-ok"></i>cache hit rate (right)</span></div>'
    )
    return (
        f'<section class="card history" id="history"><div class="card-head"><h2>Last '
        f"{len(points)} runs</h2>{legend}</div>"
        f'<div class="card-body history-body">{"".join(parts)}'
        f"{_compare(run, points[:-1])}</div></section>"
    )


def _table() -> str:
    options = "".join(f'<option value="{o.value}">{_STATUS_LABELS[o]}</option>' for o in Outcome)
    return (
        '<section class="card"><div class="card-head"><h2>Tasks</h2>'
        '<span class="muted" id="shown"></span><span class="grow"></span>'
        '<input type="search" id="filter" placeholder="Filter by name, worker, error\u2026" '
        'aria-label="Filter tasks">'
        f'<select id="status-filter" aria-label="Status"><option value="">all statuses</option>'
        f"{options}</select></div>"
        '<div class="table-wrap"><table id="tasks"><thead></thead><tbody></tbody></table></div>'
        "</section>"
    )


def render_report(summary: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = ()) -> str:
    """Render a run summary as one self-contained HTML page.

    The page shows the totals, a timeline per worker lane with the run's critical path, the
    failures with their errors and log paths, a sortable table of every task and, when
    ``history`` (earlier summaries, oldest first) holds at least two runs, a chart of wall
    time and cache hit rate over the last runs. It loads nothing from the network.
    """
    run = read_run(summary)
    path = critical_path(run)
    title = f"ggen report \u2014 {run.project or 'run'} {run.run_id}".strip()
    data = _page_data(run, path).decode()
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="ggen">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<main>{_header(run)}{_totals(run)}{_timeline(run, path)}{_failures(run)}"
        f"{_history(run, history)}{_table()}"
        f"<footer>Generated by ggen from run {_e(run.run_id)}.</footer></main>"
        '<div id="tip" role="tooltip"></div>'
        f'<script id="run-data" type="application/json">{data}</script>'
        f"<script>{JS}</script></body></html>\n"
    )


def write_report(
    summary: Mapping[str, Any], path: Path, history: Sequence[Mapping[str, Any]] = ()
) -> None:
    """Write the report of a run summary to ``path`` atomically (see ``render_report``)."""
    write_bytes_atomic(Path(path), render_report(summary, history).encode())
