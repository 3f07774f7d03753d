"""Command line of the harness: ``python -m bench [run] ...``, ``install-peers``, ``generate``.

``run`` (the default) measures ggen and every peer it finds at each size, then the parallel
speedup, the micro figures and the cold build of a pnpm TypeScript monorepo against turbo
(``bench.typescript``, ``--ts-sizes``), prints the markdown table and writes
``bench/results/<id>.json`` and ``.md``, and ``bench/RESULTS.md`` (unless ``--results-md ''``).
It exits 1 only when ggen itself failed to run; targets that are missed are reported, not
turned into an exit code.
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
from collections.abc import Sequence
from pathlib import Path

from bench import micro, typescript
from bench.generate import TreeSpec, generate
from bench.peers import install_peers
from bench.report import (
    evaluate_targets,
    machine_facts,
    render_markdown,
    results_doc,
    write_atomic,
    write_results,
)
from bench.scenarios import Plan, Result, Scenario, Verdict, run_parallel, run_size
from bench.tools import Tool, ToolName, default_peers_dir, find_tools

BENCH_DIR = Path(__file__).resolve().parent
STRACE_N = 50


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _npm_package_manager(default: str) -> str:
    npm = shutil.which("npm")
    if npm is None:
        return default
    proc = subprocess.run([npm, "--version"], capture_output=True, text=True, check=False)
    version = proc.stdout.strip()
    return f"npm@{version}" if proc.returncode == 0 and version else default


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the benchmark (the default command)")
    run.add_argument("--sizes", default="50,200,1000", help="workspace counts, comma-separated")
    run.add_argument("--jobs", "-j", type=int, default=2)
    run.add_argument("--warmup", type=int, default=1)
    run.add_argument("--reps", type=int, default=5)
    run.add_argument("--reps-large", type=int, default=3, help="runs at N >= --large-n")
    run.add_argument("--large-n", type=int, default=1000)
    run.add_argument("--files", type=int, default=20)
    run.add_argument("--kib", type=int, default=8)
    run.add_argument("--chain", type=int, default=0, help="dependency chain length (0: none)")
    run.add_argument("--tools", default=",".join(t.value for t in ToolName))
    run.add_argument("--peers-dir", type=Path, default=default_peers_dir())
    run.add_argument(
        "--install-peers", action="store_true", help="install missing peers into --peers-dir"
    )
    run.add_argument("--work", type=Path, default=None, help="where trees go (default: temp)")
    run.add_argument("--keep", action="store_true", help="keep the work folder")
    run.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    run.add_argument("--results-md", default=str(BENCH_DIR / "RESULTS.md"))
    run.add_argument("--peer-budget", type=float, default=60.0, help="seconds per peer run")
    run.add_argument("--scenario-budget", type=float, default=30.0)
    run.add_argument("--populate-limit", type=float, default=100.0)
    run.add_argument("--par-reps", type=int, default=3)
    run.add_argument("--par-reps-peers", type=int, default=1)
    run.add_argument("--no-parallel", action="store_true")
    run.add_argument("--no-micro", action="store_true")
    run.add_argument(
        "--ts-sizes",
        default="20",
        help="package counts of the TypeScript monorepo (bench.typescript); '' to skip it",
    )
    peers = sub.add_parser("install-peers", help="install turbo, go-task and doit into DIR")
    peers.add_argument("dir", type=Path, nargs="?", default=default_peers_dir())
    gen = sub.add_parser("generate", help="write one synthetic monorepo")
    gen.add_argument("dir", type=Path)
    gen.add_argument("-n", "--workspaces", type=int, required=True)
    gen.add_argument("-f", "--files", type=int, default=20)
    gen.add_argument("-k", "--kib", type=int, default=8)
    gen.add_argument("--chain", type=int, default=0)
    gen.add_argument("--sleep", type=float, default=0.0)
    return parser


def plan_from(args: argparse.Namespace) -> Plan:
    """The measuring plan the options describe."""
    return Plan(
        jobs=args.jobs,
        warmup=args.warmup,
        reps=args.reps,
        reps_large=args.reps_large,
        large_n=args.large_n,
        files=args.files,
        kib=args.kib,
        chain=args.chain,
        peer_budget_s=args.peer_budget,
        scenario_budget_s=args.scenario_budget,
        populate_limit_s=args.populate_limit,
        par_reps=args.par_reps,
        par_reps_peers=args.par_reps_peers,
        package_manager=_npm_package_manager(Plan.package_manager),
    )


def run_bench(args: argparse.Namespace) -> int:
    """Measure, report, write the results; see the module docstring."""
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run_id = time.strftime("%Y%m%d-%H%M%S")
    clock = time.perf_counter()
    plan = plan_from(args)
    load_start = list(os.getloadavg())
    wanted = tuple(ToolName(name.strip()) for name in args.tools.split(",") if name.strip())
    tools = find_tools(args.peers_dir, (ToolName.GGEN, *wanted))
    if args.install_peers and len(tools) < len({ToolName.GGEN, *wanted}):
        for line in install_peers(args.peers_dir):
            _log(line)
        tools = find_tools(args.peers_dir, (ToolName.GGEN, *wanted))
    for tool in tools:
        _log(f"{tool.name.value:8} {tool.version:24} {' '.join(tool.exe)}")
    missing = [n.value for n in wanted if n not in {t.name for t in tools}]
    if missing:
        _log(f"not found (run `python -m bench install-peers`): {', '.join(missing)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="ggen-bench-"))
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results: list[Result] = []
    figures: list[micro.Figure] = []
    ts_results: list[Result] = []
    ts_plan = dataclasses.replace(plan, reps=min(plan.reps, 3))
    try:
        predicted: dict[ToolName, float] = {}
        for n in sizes:
            got = run_size(tools, n, plan, work, predicted_cold_s=predicted, log=_log)
            results += got
            shutil.rmtree(work / f"n{n}", ignore_errors=True)
            nxt = sizes[sizes.index(n) + 1] if sizes.index(n) + 1 < len(sizes) else None
            predicted = {
                r.tool: r.median_s * nxt / n
                for r in got
                if nxt and r.scenario is Scenario.COLD and r.median_s and r.verdict is Verdict.OK
            }
        if not args.no_parallel:
            results += run_parallel(tools, plan, work / "parallel", log=_log)
        if not args.no_micro:
            figures = _micro(tools, plan, work)
        for n in (int(s) for s in args.ts_sizes.split(",") if s.strip()):
            ts_results += typescript.run_ts(tools, n, ts_plan, work / "typescript", log=_log)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    targets = evaluate_targets(results, figures)
    machine = machine_facts(work) | {"load_avg_at_end": list(os.getloadavg())}
    doc = results_doc(
        run_id=run_id,
        started=started,
        duration_s=time.perf_counter() - clock,
        machine=machine | {"load_avg_at_start": load_start},
        plan=dataclasses.asdict(plan) | {"sizes": sizes},
        tools=tools,
        results=[*results, *ts_results],
        micro=figures,
        targets=targets,
    )
    markdown = render_markdown(doc, results, targets, figures, tools)
    print(markdown)
    json_path, md_path = write_results(args.out, doc, markdown)
    _log(f"wrote {json_path} and {md_path}")
    if args.results_md:
        write_atomic(Path(args.results_md), markdown.encode())
        _log(f"wrote {args.results_md}")
    if ts_results:
        ts_tools = [t for t in tools if t.name in typescript.TOOLS]
        versions = ", ".join(f"{t.name.value} {t.version}" for t in ts_tools)
        section = typescript.render(ts_results, ts_plan, versions)
        print(section)
        if args.results_md:
            typescript.into_results(Path(args.results_md), section)
    ggen_failed = any(
        r.tool is ToolName.GGEN and r.verdict is Verdict.FAILED for r in [*results, *ts_results]
    )
    return 1 if ggen_failed else 0


def _micro(tools: Sequence[Tool], plan: Plan, work: Path) -> list[micro.Figure]:
    ggen = next(t for t in tools if t.name is ToolName.GGEN)
    _log("micro: hashing")
    figures = micro.hashing_figures(work / "hashing")
    _log("micro: pool overhead")
    figures.append(micro.loky_overhead(plan.jobs))
    figures += micro.ggen_task_overhead(ggen, work, plan.jobs)
    _log("micro: files opened by a no-op run")
    tree = generate(TreeSpec(STRACE_N, plan.files, plan.kib), work / "strace")
    figures.append(micro.noop_source_opens(ggen, tree, plan.jobs))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0].startswith("-"):
        args_list = ["run", *args_list]
    args = _parser().parse_args(args_list)
    if args.command == "install-peers":
        for line in install_peers(args.dir):
            _log(line)
        return 0
    if args.command == "generate":
        spec = TreeSpec(args.workspaces, args.files, args.kib, args.chain, args.sleep)
        tree = generate(spec, args.dir)
        _log(f"generated {spec.workspaces} workspaces in {tree.root}")
        return 0
    return run_bench(args)
