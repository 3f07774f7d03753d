"""``python -m bench.typescript``: ggen's cold build of a pnpm TypeScript monorepo against turbo.

The tree is ``bench.generate_ts``'s (N packages of ``tsc -b`` builds, ``workspace:*``
dependencies in layers), installed once with ``pnpm install`` and copied for each tool. Both
tools run the same package scripts in dependency order: ggen through ``script = "build"``
phases (``sh -c 'tsc -b'`` with node_modules/.bin on PATH), turbo through ``pnpm run build``,
a package manager started for every task. Each run is cold (dist/, tsbuildinfo and the tool's
cache and state removed); the tools alternate, the first run of each is a discarded warm-up
(it fills the page cache with TypeScript), and the figure is the median of the others. After
the runs, the outputs of the two copies must be byte-identical, or the figures are invalid.

The table goes to bench/results/ts-<time>.json and .md, is printed, and replaces the
"TypeScript monorepo" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from bench.generate_ts import (
    TsSpec,
    TsTree,
    generate_ts,
    git_init,
    pnpm_install,
    remove_outputs,
)
from bench.remote import SECTION as REMOTE_SECTION
from bench.scenarios import Expect, Plan, Result, Scenario, Verdict, _run_scenario, _Track
from bench.tools import Tool, ToolName, default_peers_dir, find_tools

BENCH_DIR = Path(__file__).resolve().parent
SECTION = "## TypeScript monorepo"
TOOLS = (ToolName.GGEN, ToolName.TURBO)


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def make_trees(tools: Sequence[Tool], spec: TsSpec, work: Path) -> dict[ToolName, TsTree]:
    """One installed tree per tool under ``work``: generated, installed and committed to git
    once, then copied (pnpm's links in node_modules are relative; files are hard links, which
    no tool writes into since every run starts without outputs)."""
    first = generate_ts(spec, work / tools[0].name.value)
    pnpm_install(first.root)
    git_init(first.root)
    trees = {tools[0].name: first}
    for tool in tools[1:]:
        dest = work / tool.name.value
        shutil.copytree(first.root, dest, symlinks=True, copy_function=os.link)
        trees[tool.name] = TsTree(dest, spec)
    return trees


def _cold(track: _Track) -> Expect:
    """Before each run: no outputs, no cache, no state of the tool (ggen's per-package
    ``.ggen/`` too)."""
    tree = track.tree
    assert isinstance(tree, TsTree)
    remove_outputs(tree)
    paths = [*track.tool.state_paths(tree.root), *tree.root.glob("packages/*/.ggen")]
    paths += tree.root.glob("packages/*/.turbo")
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return Expect(ran=tree.spec.workspaces, cached=0)


def run_ts(
    tools: Sequence[Tool],
    n: int,
    plan: Plan,
    work: Path,
    *,
    log: Callable[[str], None] = print,
) -> list[Result]:
    """The cold build of an ``n``-package TypeScript tree by ggen and turbo (those of ``tools``
    that are present), ``plan.reps`` measured runs each after ``plan.warmup`` warm-ups."""
    tools = [t for t in tools if t.name in TOOLS]
    log(f"typescript N={n}: generating and installing {len(tools)} trees")
    try:
        trees = make_trees(tools, TsSpec(n), work / f"ts{n}")
    except (OSError, subprocess.SubprocessError) as exc:
        lines = str(getattr(exc, "stderr", "") or exc).strip().splitlines() or [repr(exc)]
        why = f"skipped: the tree could not be installed ({lines[-1][:120]})"
        return [
            Result(t.name, Scenario.TS_COLD, n, plan.jobs, Verdict.SKIPPED, note=why) for t in tools
        ]
    # every run is long: the warm-up is never kept, and the budget allows plan.reps runs
    one = dataclasses.replace(
        plan, long_run_s=float("inf"), scenario_budget_s=1e9, peer_budget_s=1e9
    )
    tracks = [_Track(tool=t, tree=trees[t.name], needed=0) for t in tools]
    results = _run_scenario(tracks, Scenario.TS_COLD, one, plan.jobs, _cold, plan.reps, log=log)
    outputs = {name: tree.outputs() for name, tree in trees.items()}
    reference = outputs[tools[0].name]
    checked: list[Result] = []
    for r in results:
        differs = r.verdict is Verdict.OK and outputs[r.tool] != reference
        if differs:
            note = "; ".join(x for x in (r.note, "outputs differ from ggen's") if x)
            r = dataclasses.replace(r, verdict=Verdict.INVALID, note=note)
        checked.append(r)
    return checked


def render(results: Sequence[Result], plan: Plan, versions: str, load: str = "") -> str:
    """The section of RESULTS.md: one row per size, ggen, turbo and their ratio; ``load``
    (the load average at the start and end, say) is added to the text."""
    lines = [
        SECTION,
        "",
        f"`python -m bench.typescript`: a pnpm monorepo of N TypeScript packages "
        "(`bench/generate_ts.py`: `tsc -b` builds, two `workspace:*` dependencies each, in "
        f"layers of {TsSpec().width}), cold builds at -j{plan.jobs} (no dist/, tsbuildinfo, "
        "cache or state), "
        f"median of {plan.reps} runs after {plan.warmup} warm-up, the tools alternating; ggen "
        'runs `script = "build"` phases itself, turbo runs `pnpm run build` for every task. '
        f"Outputs of both are checked byte-identical. Versions: {versions}."
        + (f" Load average at start/end: {load}." if load else ""),
        "",
        "| N | ggen (s) | turbo (s) | ggen / turbo |",
        "|---:|---:|---:|---:|",
    ]
    for n in sorted({r.workspaces for r in results}):
        row = {r.tool: r for r in results if r.workspaces == n}
        ggen, turbo = row.get(ToolName.GGEN), row.get(ToolName.TURBO)
        cells = [_cell(ggen), _cell(turbo)]
        a = ggen.median_s if ggen is not None and ggen.verdict is Verdict.OK else None
        b = turbo.median_s if turbo is not None and turbo.verdict is Verdict.OK else None
        ratio = f"{a / b:.2f}x" if a is not None and b else "n/a"
        lines.append(f"| {n} | {cells[0]} | {cells[1]} | {ratio} |")
    notes = [r for r in results if r.note]
    lines += [""] + [f"- {r.tool.value}, N={r.workspaces}: {r.note}" for r in notes]
    return "\n".join(lines).rstrip() + "\n"


def _cell(r: Result | None) -> str:
    if r is None:
        return "not found"
    if r.verdict is Verdict.SKIPPED or r.median_s is None:
        return r.verdict.value
    samples = ", ".join(f"{s:.2f}" for s in r.samples_s)
    text = f"{r.median_s:.2f} ({samples})"
    return text if r.verdict is Verdict.OK else f"{text} {r.verdict.value}"


def into_results(path: Path, section: str) -> None:
    """Replace the TypeScript section of ``path`` (from its heading to the next ``## ``
    heading or the end) with ``section``; without one, put it before the remote-cache section
    (which ``bench.remote`` writes last, dropping what follows it) or at the end. The rest is
    kept as it is."""
    text = path.read_text() if path.exists() else "# ggen benchmark results\n"
    head, found, rest = text.partition(SECTION)
    tail = ""
    if found:
        after = rest.find("\n## ")
        tail = rest[after + 1 :] if after >= 0 else ""
    elif f"\n{REMOTE_SECTION}" in text:
        head, _, rest = text.partition(f"\n{REMOTE_SECTION}")
        tail = REMOTE_SECTION + rest
    body = head.rstrip() + "\n\n" + section
    if tail:
        body += "\n" + tail
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(body)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Measure, print, write the results; exits 1 when ggen's figure is not valid."""
    parser = argparse.ArgumentParser(prog="python -m bench.typescript", description=__doc__)
    parser.add_argument("--sizes", default="20", help="package counts, comma-separated")
    parser.add_argument("--jobs", "-j", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--tools", default=",".join(t.value for t in TOOLS))
    parser.add_argument("--peers-dir", type=Path, default=default_peers_dir())
    parser.add_argument("--work", type=Path, default=None, help="where trees go (default: temp)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--results-md", default=str(BENCH_DIR / "RESULTS.md"))
    args = parser.parse_args(argv)
    wanted = tuple(ToolName(t.strip()) for t in args.tools.split(",") if t.strip())
    tools = find_tools(args.peers_dir, (ToolName.GGEN, *wanted))
    for tool in tools:
        _log(f"{tool.name.value:8} {tool.version:24} {' '.join(tool.exe)}")
    plan = Plan(jobs=args.jobs, reps=args.reps, warmup=args.warmup)
    load_start = os.getloadavg()[0]
    work = args.work or Path(tempfile.mkdtemp(prefix="ggen-bench-ts-"))
    results: list[Result] = []
    try:
        for n in (int(s) for s in args.sizes.split(",") if s.strip()):
            results += run_ts(tools, n, plan, work, log=_log)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    versions = ", ".join(f"{t.name.value} {t.version}" for t in tools)
    section = render(results, plan, versions, f"{load_start:.2f} / {os.getloadavg()[0]:.2f}")
    print(section)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {
        "run_id": stamp,
        "plan": dataclasses.asdict(plan),
        "results": [r.to_json() for r in results],
    }
    (args.out / f"ts-{stamp}.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    (args.out / f"ts-{stamp}.md").write_text(section)
    if args.results_md:
        into_results(Path(args.results_md), section)
        _log(f"wrote {args.results_md}")
    ggen = [r for r in results if r.tool is ToolName.GGEN]
    return 0 if ggen and all(r.verdict is Verdict.OK for r in ggen) else 1


if __name__ == "__main__":
    sys.exit(main())
