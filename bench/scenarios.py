"""The scenarios: each tool builds its own copy of the same tree, alternating with the others.

For one size N, every scenario runs a warm-up and then several measured runs per tool; each
round runs every tool once, in a rotating order, so that drift of the machine is shared out.

- cold: outputs and the tool's cache/state wiped, then a build;
- no-op: nothing changed since the last build;
- incremental: one source file of one workspace changed (a new content each run);
- restore: outputs deleted, cache kept (tools without a cache rebuild);
- parallel 8x0.5s / 4x0.1s: every task forced to run, at -j1 and at -jJ.

Every run is checked: exit code, outputs present, the changed workspace's output correct, no
process left behind, and for ggen the run summary's counts (a no-op must have ran == 0).
A run that fails a check makes the figure "invalid" in the report, never silently wrong.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench.generate import Tree, TreeSpec, change_source, clone_tree, generate, remove_outputs
from bench.generate_ts import TsTree
from bench.measure import Sample, run_measured
from bench.tools import Tool, ToolName


class Scenario(enum.Enum):
    """What is measured."""

    COLD = "cold"
    NOOP = "no-op"
    INCREMENTAL = "incremental"
    RESTORE = "restore"
    PAR_8X500 = "parallel 8x0.5s"
    PAR_4X100 = "parallel 4x0.1s"
    TS_COLD = "typescript cold"  # bench.typescript: a pnpm tree of tsc builds


SIZE_SCENARIOS = (Scenario.COLD, Scenario.NOOP, Scenario.INCREMENTAL, Scenario.RESTORE)


class Verdict(enum.Enum):
    """Whether a figure can be trusted."""

    OK = "ok"
    INVALID = "invalid"  # ran, but a check failed (e.g. a no-op that ran tasks)
    FAILED = "failed"  # non-zero exit or timeout
    SKIPPED = "skipped"  # not run (over the time budget, or a previous step failed)


@dataclass(frozen=True)
class Plan:
    """How much to measure. The defaults fit a 2-core machine in a few minutes."""

    jobs: int = 2
    warmup: int = 1
    reps: int = 5
    reps_large: int = 3
    large_n: int = 1000
    files: int = 20
    kib: int = 8
    chain: int = 0
    peer_budget_s: float = 60.0  # a peer's run above this is not repeated; predicted: skipped
    scenario_budget_s: float = 30.0  # repetitions are cut so one tool's scenario fits in this
    long_run_s: float = 5.0  # a first run longer than this is measured, not a warm-up
    run_timeout_s: float = 300.0
    populate_limit_s: float = 100.0  # the longest single cold run accepted to fill a cache
    par_reps: int = 3
    par_reps_peers: int = 1
    package_manager: str = "npm@10.9.2"

    def reps_for(self, n: int) -> int:
        """Measured runs per scenario for size ``n``."""
        return self.reps_large if n >= self.large_n else self.reps


@dataclass(frozen=True)
class Result:
    """The measured runs of one tool in one scenario at one size."""

    tool: ToolName
    scenario: Scenario
    workspaces: int
    jobs: int
    verdict: Verdict
    samples_s: tuple[float, ...] = ()
    note: str = ""
    peak_rss_kb: int = 0  # the tool's own process, highest over the samples
    tree_max_rss_kb: int = 0  # the largest process of its tree, highest over the samples
    cpu_s: float = 0.0  # median CPU time of the process tree
    ran: int | None = None  # ggen: tasks run in the last sample
    cached: int | None = None  # ggen: tasks restored from cache in the last sample
    spans_s: tuple[float, ...] = ()  # ggen: first task start -> last task end, per sample

    @property
    def median_s(self) -> float | None:
        """The median wall time, or None without samples."""
        return statistics.median(self.samples_s) if self.samples_s else None

    @property
    def span_median_s(self) -> float | None:
        """The median task span (ggen only), or None."""
        return statistics.median(self.spans_s) if self.spans_s else None

    def to_json(self) -> dict[str, object]:
        """A plain dict for the results file."""
        return {
            "tool": self.tool.value,
            "scenario": self.scenario.value,
            "workspaces": self.workspaces,
            "jobs": self.jobs,
            "verdict": self.verdict.value,
            "median_s": self.median_s,
            "samples_s": list(self.samples_s),
            "note": self.note,
            "peak_rss_kb": self.peak_rss_kb,
            "tree_max_rss_kb": self.tree_max_rss_kb,
            "cpu_s": self.cpu_s,
            "ran": self.ran,
            "cached": self.cached,
            "spans_s": list(self.spans_s),
            "span_median_s": self.span_median_s,
        }


@dataclass(frozen=True)
class Expect:
    """What a correct run of a scenario must show."""

    ran: int | None = None  # ggen's totals.ran, when it is known exactly
    cached: int | None = None
    changed: int | None = None  # workspace whose output must match its changed sources


@dataclass
class _Track:
    """Mutable bookkeeping of one tool during one scenario (local to ``_run_scenario``)."""

    tool: Tool
    tree: Tree | TsTree
    needed: int
    runs: int = 0
    samples: list[Sample] = field(default_factory=list)
    spans: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    verdict: Verdict = Verdict.OK
    ran: int | None = None
    cached: int | None = None
    revision: int = 0


@dataclass(frozen=True)
class GgenSummary:
    """The parts of ggen's run summary the harness checks."""

    ran: int
    cached: int
    failed: int
    span_s: float | None


def parse_summary(stdout: bytes) -> GgenSummary | None:
    """ggen's ``--json`` run summary from its standard output, or None if there is none."""
    text = stdout.strip()
    if not text:
        return None
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        # tolerate text before the JSON document
        start = text.find(b"{")
        try:
            doc = orjson.loads(text[start:]) if start >= 0 else None
        except orjson.JSONDecodeError:
            return None
    if not isinstance(doc, dict) or not isinstance(doc.get("totals"), dict):
        return None
    totals = doc["totals"]
    starts = [t.get("started_ms") for t in doc.get("tasks", []) if t.get("status") == "ok"]
    ends = [t.get("finished_ms") for t in doc.get("tasks", []) if t.get("status") == "ok"]
    starts = [s for s in starts if isinstance(s, int | float)]
    ends = [e for e in ends if isinstance(e, int | float)]
    span = (max(ends) - min(starts)) / 1000 if starts and ends else None
    return GgenSummary(
        ran=int(totals.get("ran", -1)),
        cached=int(totals.get("cached", -1)),
        failed=int(totals.get("failed", -1)),
        span_s=span,
    )


def _check(track: _Track, sample: Sample, expect: Expect) -> None:
    """Record what is wrong with ``sample``, if anything."""
    if sample.timed_out:
        track.problems.append(f"timed out after {sample.wall_s:.0f} s")
        track.verdict = Verdict.FAILED
        return
    if sample.exit_code != 0:
        last = sample.stderr_tail.strip().splitlines()[-1:] or [""]
        track.problems.append(f"exit {sample.exit_code}: {last[0][:160]}")
        track.verdict = Verdict.FAILED
        return
    bad: list[str] = []
    if sample.leftovers:
        bad.append(f"{sample.leftovers} processes left behind")
    tree = track.tree
    missing = sum(not tree.output(i).is_file() for i in range(tree.spec.workspaces))
    if missing:
        bad.append(f"{missing} outputs missing")
    elif expect.changed is not None:
        got = tree.output(expect.changed).read_text()
        if got != tree.expected_output(expect.changed):
            bad.append("changed workspace's output is stale")
    if track.tool.name is ToolName.GGEN:
        summary = parse_summary(sample.stdout)
        if summary is None:
            bad.append("no run summary on stdout")
        else:
            track.ran, track.cached = summary.ran, summary.cached
            if summary.span_s is not None:
                track.spans.append(summary.span_s)
            if expect.ran is not None and summary.ran != expect.ran:
                bad.append(f"ran={summary.ran} (expected {expect.ran})")
            if expect.cached is not None and summary.cached != expect.cached:
                bad.append(f"cached={summary.cached} (expected {expect.cached})")
    if bad:
        track.problems.extend(bad)
        track.verdict = Verdict.INVALID


def _result(
    track: _Track, scenario: Scenario, jobs: int, warmup_kept: bool, long_run_s: float
) -> Result:
    measured = track.samples if warmup_kept else track.samples[1:]
    if track.verdict is Verdict.FAILED:
        measured = []
    ok = list(measured)
    notes = list(dict.fromkeys(track.problems))
    if warmup_kept and track.samples and track.samples[0].wall_s > long_run_s:
        notes.append(f"{len(track.samples)} run(s), no warm-up: the first took > {long_run_s:g} s")
    return Result(
        tool=track.tool.name,
        scenario=scenario,
        workspaces=track.tree.spec.workspaces,
        jobs=jobs,
        verdict=track.verdict,
        samples_s=tuple(round(s.wall_s, 4) for s in ok),
        note="; ".join(notes),
        peak_rss_kb=max((s.peak_rss_kb for s in track.samples), default=0),
        tree_max_rss_kb=max((s.tree_max_rss_kb for s in track.samples), default=0),
        cpu_s=round(statistics.median([s.cpu_s for s in ok]), 4) if ok else 0.0,
        ran=track.ran,
        cached=track.cached,
        spans_s=tuple(round(s, 4) for s in (track.spans if warmup_kept else track.spans[1:])),
    )


Prepare = Callable[[_Track], Expect]


def _run_scenario(
    tracks: Sequence[_Track],
    scenario: Scenario,
    plan: Plan,
    jobs: int,
    prepare: Prepare,
    reps: int,
    *,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> list[Result]:
    """Run ``scenario`` for every track, alternating tools, and return one result per tool."""
    kept: dict[ToolName, bool] = {}
    for t in tracks:
        t.needed, t.runs, t.samples, t.spans, t.problems = plan.warmup + reps, 0, [], [], []
        t.verdict = Verdict.OK
    round_no = 0
    while True:
        live = [t for t in tracks if t.runs < t.needed and t.verdict is not Verdict.FAILED]
        if not live:
            break
        shift = round_no % len(live)
        for track in live[shift:] + live[:shift]:
            expect = prepare(track)
            budget = plan.run_timeout_s
            sample = run_measured(
                track.tool.build_argv(track.tree.root, jobs, force=force),
                cwd=track.tree.root,
                env=dict(track.tool.env),
                timeout_s=budget,
            )
            track.samples.append(sample)
            track.runs += 1
            _check(track, sample, expect)
            if track.runs == 1:
                first = sample.wall_s
                long_run = first > plan.long_run_s or plan.warmup == 0
                kept[track.tool.name] = long_run
                fit = max(1, min(reps, int(plan.scenario_budget_s // max(first, 1e-3))))
                if track.tool.name is not ToolName.GGEN and first > plan.peer_budget_s:
                    fit = 1
                track.needed = fit if long_run else plan.warmup + fit
        round_no += 1
    results = [
        _result(t, scenario, jobs, kept.get(t.tool.name, False), plan.long_run_s) for t in tracks
    ]
    for r in results:
        med = f"{r.median_s:.3f} s" if r.median_s is not None else "-"
        extra = f" [{r.verdict.value}: {r.note}]" if r.note else ""
        log(f"  {scenario.value:16} N={r.workspaces:<5} j{jobs} {r.tool.value:8} {med}{extra}")
    return results


def _wipe(track: _Track) -> None:
    remove_outputs(track.tree)
    for path in track.tool.state_paths(track.tree.root):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _prepare_for(scenario: Scenario, spec: TreeSpec) -> Prepare:
    n = spec.workspaces
    target = n // 2

    def cold(track: _Track) -> Expect:
        _wipe(track)
        return Expect(ran=n, cached=0, changed=target)

    def noop(track: _Track) -> Expect:
        return Expect(ran=0)

    def incremental(track: _Track) -> Expect:
        change_source(track.tree, target, track.revision)
        track.revision += 1
        ran = len(spec.downstream(target))
        return Expect(ran=ran, cached=n - ran, changed=target)

    def restore(track: _Track) -> Expect:
        remove_outputs(track.tree)
        return Expect(ran=0, cached=n)

    table: dict[Scenario, Prepare] = {
        Scenario.COLD: cold,
        Scenario.NOOP: noop,
        Scenario.INCREMENTAL: incremental,
        Scenario.RESTORE: restore,
    }
    return table[scenario]


def _skipped(tool: Tool, scenario: Scenario, n: int, jobs: int, why: str) -> Result:
    return Result(tool.name, scenario, n, jobs, Verdict.SKIPPED, note=why)


def make_trees(tools: Sequence[Tool], spec: TreeSpec, work: Path) -> dict[ToolName, Tree]:
    """One identical tree per tool under ``work`` (generated once, then hard-linked)."""
    work.mkdir(parents=True, exist_ok=True)
    first = generate(spec, work / tools[0].name.value)
    trees = {tools[0].name: first}
    for tool in tools[1:]:
        trees[tool.name] = clone_tree(first, work / tool.name.value)
    return trees


def run_size(
    tools: Sequence[Tool],
    n: int,
    plan: Plan,
    work: Path,
    *,
    predicted_cold_s: dict[ToolName, float] | None = None,
    log: Callable[[str], None] = print,
) -> list[Result]:
    """The cold, no-op, incremental and restore scenarios at size ``n`` for every tool.

    ``predicted_cold_s`` (from smaller sizes) lets a peer whose cold build would take longer
    than ``plan.populate_limit_s`` be skipped for this size instead of eating the budget; one
    whose prediction is above ``plan.peer_budget_s`` gets a single cold run.
    """
    spec = TreeSpec(n, plan.files, plan.kib, plan.chain, package_manager=plan.package_manager)
    log(f"size N={n}: generating {len(tools)} trees ({n}x{plan.files} files of {plan.kib} KiB)")
    trees = make_trees(tools, spec, work / f"n{n}")
    predicted = predicted_cold_s or {}
    results: list[Result] = []
    active: list[Tool] = []
    for tool in tools:
        guess = predicted.get(tool.name)
        if tool.name is not ToolName.GGEN and guess is not None and guess > plan.populate_limit_s:
            why = f"skipped: >{plan.peer_budget_s:.0f} s (cold predicted {guess:.0f} s)"
            results += [_skipped(tool, s, n, plan.jobs, why) for s in SIZE_SCENARIOS]
        else:
            active.append(tool)
    tracks = [_Track(tool=t, tree=trees[t.name], needed=0) for t in active]
    reps = plan.reps_for(n)
    for scenario in SIZE_SCENARIOS:
        if scenario is Scenario.COLD:
            slow = [
                t
                for t in tracks
                if t.tool.name is not ToolName.GGEN
                and predicted.get(t.tool.name, 0.0) > plan.peer_budget_s
            ]
            fast = [t for t in tracks if t not in slow]
            out = _run_scenario(
                fast, scenario, plan, plan.jobs, _prepare_for(scenario, spec), reps, log=log
            )
            for t in slow:
                # one run, kept as the measurement: it fills the cache the next scenarios use
                one = dataclasses.replace(plan, warmup=0)
                out += _run_scenario(
                    [t], scenario, one, plan.jobs, _prepare_for(scenario, spec), 1, log=log
                )
        else:
            out = _run_scenario(
                tracks, scenario, plan, plan.jobs, _prepare_for(scenario, spec), reps, log=log
            )
        results += out
        failed = {r.tool for r in out if r.verdict is Verdict.FAILED}
        for t in [t for t in tracks if t.tool.name in failed]:
            rest = SIZE_SCENARIOS[SIZE_SCENARIOS.index(scenario) + 1 :]
            results += [
                _skipped(t.tool, s, n, plan.jobs, f"skipped: {scenario.value} failed") for s in rest
            ]
        tracks = [t for t in tracks if t.tool.name not in failed]
    return results


def _expect_all_ran(_track: _Track, n: int) -> Expect:
    return Expect(ran=n)


PARALLEL_CASES = (
    (Scenario.PAR_8X500, TreeSpec(8, files=1, kib=1, sleep=0.5), 2),
    (Scenario.PAR_4X100, TreeSpec(4, files=1, kib=1, sleep=0.1), 4),
)


def run_parallel(
    tools: Sequence[Tool],
    plan: Plan,
    work: Path,
    *,
    cases: Sequence[tuple[Scenario, TreeSpec, int]] = PARALLEL_CASES,
    log: Callable[[str], None] = print,
) -> list[Result]:
    """The parallel-speedup scenarios: every task forced to run, at -j1 and at -jJ.

    Without warm-up runs: every run is forced and does the same work, and the tools' binaries
    are warm from the size scenarios.
    """
    results: list[Result] = []
    for scenario, base_spec, jobs in cases:
        spec = dataclasses.replace(base_spec, package_manager=plan.package_manager)
        log(f"{scenario.value}: -j1 vs -j{jobs}")
        trees = make_trees(tools, spec, work / scenario.name.lower())
        for j in (1, jobs):
            for tool in tools:
                reps = plan.par_reps if tool.name is ToolName.GGEN else plan.par_reps_peers
                track = _Track(tool=tool, tree=trees[tool.name], needed=0)
                results += _run_scenario(
                    [track],
                    scenario,
                    dataclasses.replace(plan, warmup=0),
                    j,
                    functools.partial(_expect_all_ran, n=spec.workspaces),
                    reps,
                    force=True,
                    log=log,
                )
    return results
