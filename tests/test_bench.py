"""Smoke test of the benchmarking harness (``bench/``): generator, peers' configs, measuring,
and one tiny run of the scenarios with ggen. No timing is asserted here."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import tomli

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cli import main
from bench.generate import (
    Tree,
    TreeSpec,
    change_source,
    clone_tree,
    generate,
    remove_outputs,
)
from bench.generate_ts import TsSpec, TsTree, generate_ts
from bench.generate_ts import change_source as ts_change_source
from bench.measure import run_measured
from bench.micro import count_source_opens, hashing_figures, raw_xxh3_file
from bench.report import Outcome, evaluate_targets, render_markdown, results_doc
from bench.scenarios import (
    Plan,
    Scenario,
    Verdict,
    parse_summary,
    run_parallel,
    run_size,
)
from bench.tools import ToolName, default_peers_dir, find_ggen, find_tools
from bench.typescript import SECTION as TS_SECTION
from bench.typescript import TOOLS as TS_TOOLS
from bench.typescript import into_results, render, run_ts

SPEC = TreeSpec(5, files=3, kib=1, chain=3)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return generate(SPEC, tmp_path / "tree")


def test_generate_is_deterministic(tmp_path: Path) -> None:
    a = generate(SPEC, tmp_path / "a")
    b = generate(SPEC, tmp_path / "b")
    assert _digests(a.root) == _digests(b.root)
    c = generate(TreeSpec(5, files=3, kib=1, chain=3, seed=1), tmp_path / "c")
    assert _digests(c.root) != _digests(a.root)
    src = a.source(4, 2)
    assert src.stat().st_size == 1024
    assert src.read_bytes().count(b"\n") == 16


def test_generate_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep").write_text("")
    with pytest.raises(FileExistsError):
        generate(SPEC, tmp_path / "x")


def test_chains_and_downstream() -> None:
    assert [SPEC.upstream(i) for i in range(5)] == [None, 0, 1, None, 3]
    assert SPEC.downstream(1) == (1, 2)
    assert SPEC.downstream(3) == (3, 4)
    assert TreeSpec(4).downstream(2) == (2,)


def test_ggen_config_is_valid(tree: Tree) -> None:
    doc = tomli.loads((tree.root / "make.toml").read_text())
    assert doc["lifecycle"]["build"]["command"] == SPEC.build_command()
    assert doc["workspace"]["ws-0002"] == {"path": "packages/ws-0002", "depends_on": ["ws-0001"]}
    from ggen.make import load_make

    make = load_make(tree.root)
    assert [w.name for w in make.workspaces] == list(SPEC.names())
    assert make.phase("build") is not None


def test_turbo_config_is_valid(tree: Tree) -> None:
    root = json.loads((tree.root / "package.json").read_text())
    assert root["packageManager"].startswith("npm@")
    assert root["workspaces"] == ["packages/*"]
    turbo = json.loads((tree.root / "turbo.json").read_text())
    assert turbo["tasks"]["build"]["outputs"] == ["dist/**"]
    lock = json.loads((tree.root / "package-lock.json").read_text())
    assert lock["packages"]["packages/ws-0004"]["dependencies"] == {"ws-0003": "0.0.0"}
    ws = json.loads((tree.workspace_dir(1) / "package.json").read_text())
    assert ws["scripts"]["build"] == SPEC.build_command()
    assert ws["dependencies"] == {"ws-0000": "0.0.0"}


def test_taskfile_is_well_formed(tree: Tree) -> None:
    lines = (tree.root / "Taskfile.yml").read_text().splitlines()
    assert lines[0] == "version: '3'"
    assert all("\t" not in ln for ln in lines)
    tasks = [ln.strip().rstrip(":") for ln in lines if ln.startswith("  ") and ln[2] != " "]
    assert tasks == ["build", *SPEC.names()]
    assert lines.count("    method: checksum") == 5
    assert lines.count("    run: once") == 5
    cmds = [ln.strip()[2:] for ln in lines if ln.startswith('      - "')]
    assert [json.loads(c) for c in cmds] == [SPEC.build_command()] * 5


def test_dodo_defines_one_task_per_workspace(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    source = (tree.root / "dodo.py").read_text()
    ast.parse(source)
    monkeypatch.chdir(tree.root)
    scope: dict[str, object] = {}
    exec(compile(source, "dodo.py", "exec"), scope)
    task_build = scope["task_build"]
    assert callable(task_build)
    tasks = list(task_build())
    assert [t["name"] for t in tasks] == list(SPEC.names())
    assert tasks[2]["file_dep"][-1] == "packages/ws-0001/dist/out.txt"
    assert len(tasks[0]["file_dep"]) == 3
    assert tasks[4]["targets"] == ["packages/ws-0004/dist/out.txt"]


def test_makefile_builds_in_dependency_order(tree: Tree) -> None:
    dry = subprocess.run(
        ["make", "-n", "build"], cwd=tree.root, capture_output=True, text=True, check=True
    )
    built = [ln.split()[1] for ln in dry.stdout.splitlines() if ln.startswith("cd ")]
    assert sorted(built) == [f"packages/{n}" for n in SPEC.names()]
    assert built.index("packages/ws-0001") < built.index("packages/ws-0002")
    subprocess.run(["make", "-j2", "build"], cwd=tree.root, capture_output=True, check=True)
    for i in range(5):
        assert tree.output(i).read_text() == tree.expected_output(i)
    again = subprocess.run(
        ["make", "build"], cwd=tree.root, capture_output=True, text=True, check=True
    )
    assert "Nothing to be done" in again.stdout


def test_change_source_and_clone(tree: Tree, tmp_path: Path) -> None:
    copy = clone_tree(tree, tmp_path / "copy")
    before = tree.expected_output(2)
    old_inode = tree.source(2).stat().st_ino
    change_source(tree, 2, revision=0)
    assert tree.expected_output(2) != before
    assert tree.source(2).stat().st_ino != old_inode
    assert copy.expected_output(2) == before  # the copy does not see the change
    change_source(tree, 2, revision=1)
    second = tree.expected_output(2)
    change_source(tree, 2, revision=1)
    assert tree.expected_output(2) == second
    (tree.workspace_dir(0) / "dist").mkdir()
    remove_outputs(tree)
    assert not (tree.workspace_dir(0) / "dist").exists()


def test_run_measured_reports_exit_output_and_leftovers(tmp_path: Path) -> None:
    s = run_measured(["sh", "-c", "echo out; echo err >&2; exit 3"], cwd=tmp_path)
    assert (s.exit_code, s.stdout, s.stderr_tail, s.timed_out) == (3, b"out\n", "err\n", False)
    assert s.tree_max_rss_kb > 0
    left = run_measured(["sh", "-c", "sleep 30 & echo started"], cwd=tmp_path)
    assert left.leftovers == 1 and left.exit_code == 0
    slow = run_measured(["sleep", "30"], cwd=tmp_path, timeout_s=0.3)
    assert slow.timed_out and slow.exit_code == -9 and slow.wall_s < 5


def test_parse_summary() -> None:
    doc = {
        "totals": {"ran": 2, "cached": 1, "failed": 0},
        "tasks": [
            {"status": "ok", "started_ms": 1000, "finished_ms": 1500},
            {"status": "ok", "started_ms": 1100, "finished_ms": 2000},
            {"status": "cached", "started_ms": None, "finished_ms": None},
        ],
    }
    got = parse_summary(b"noise\n" + orjson.dumps(doc))
    assert got is not None
    assert (got.ran, got.cached, got.failed, got.span_s) == (2, 1, 0, 1.0)
    assert parse_summary(b"") is None
    assert parse_summary(b"{not json") is None


def test_count_source_opens() -> None:
    log = "\n".join(
        [
            '12 openat(AT_FDCWD, "/t/packages/ws-0001/src/f-00.txt", O_RDONLY|O_CLOEXEC) = 3',
            '12 openat(AT_FDCWD, "/t/packages/ws-0001/src", O_RDONLY|O_DIRECTORY) = 4',
            '13 openat(AT_FDCWD, "/t/make.toml", O_RDONLY) = 5',
            '13 open("/t/packages/ws-0002/src/f-01.txt", O_RDONLY) = 6',
        ]
    )
    assert count_source_opens(log) == {
        "/t/packages/ws-0001/src/f-00.txt",
        "/t/packages/ws-0002/src/f-01.txt",
    }


def test_hashing_figures_agree_with_raw_xxh3(tmp_path: Path) -> None:
    figures = {f.name: f for f in hashing_figures(tmp_path, big_mib=2, small=20)}
    share = figures["hash ggen/raw, one 2 MiB file"]
    assert share.value is not None and share.value > 0 and share.note == ""
    assert figures["hash raw xxh3_128, 20 files of 8 KiB"].unit == "MiB/s"
    assert not any(tmp_path.rglob("*.bin"))
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    from ggen.cache.digest import hash_file

    assert raw_xxh3_file(p) == hash_file(p)


def test_ggen_scenarios_and_report(tmp_path: Path) -> None:
    """The real harness path for ggen alone: N=5, one measured run per scenario."""
    ggen = find_ggen()
    plan = Plan(reps=1, warmup=1, files=3, kib=1, chain=3)
    logged: list[str] = []
    results = run_size([ggen], 5, plan, tmp_path / "work", log=logged.append)
    assert [r.scenario for r in results] == [
        Scenario.COLD,
        Scenario.NOOP,
        Scenario.INCREMENTAL,
        Scenario.RESTORE,
    ]
    for r in results:
        assert r.verdict is Verdict.OK, (r.scenario, r.note)
        assert len(r.samples_s) == 1 and r.peak_rss_kb > 0
    assert [(r.ran, r.cached) for r in results] == [(5, 0), (0, 5), (1, 4), (0, 5)]
    assert [line.split()[0] for line in logged[1:]] == ["cold", "no-op", "incremental", "restore"]
    par = run_parallel(
        [ggen],
        Plan(par_reps=1, warmup=0),
        tmp_path / "par",
        cases=((Scenario.PAR_4X100, TreeSpec(2, files=1, kib=1, sleep=0.1), 2),),
        log=logged.append,
    )
    assert [(r.jobs, r.verdict, r.ran) for r in par] == [(1, Verdict.OK, 2), (2, Verdict.OK, 2)]
    assert all(r.span_median_s and r.span_median_s >= 0.1 for r in par)
    everything = results + par
    targets = evaluate_targets(everything, [])
    assert all(t.outcome is Outcome.NA for t in targets if "N=200" in t.text)
    doc = results_doc(
        run_id="smoke",
        started="now",
        duration_s=1.0,
        machine={
            "cpu": "x",
            "cores": 2,
            "memory_gib": 1,
            "system": "Linux",
            "python": "3",
            "commit": None,
        },
        plan=dict(plan.__dict__),
        tools=[ggen],
        results=everything,
        micro=[],
        targets=targets,
    )
    text = render_markdown(doc, everything, targets, [], [ggen])
    assert "| cold | 5 |" in text and "| restore | 5 |" in text and "## Targets" in text
    data = orjson.loads(orjson.dumps(doc))
    assert {"version", "machine", "plan", "tools", "results", "micro", "targets"} <= set(data)
    row = data["results"][0]
    assert {"tool", "scenario", "workspaces", "median_s", "samples_s", "verdict"} <= set(row)


def test_cli_run_writes_json_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "results"
    md = tmp_path / "RESULTS.md"
    code = main(
        [
            "--sizes", "5", "--reps", "1", "--files", "2", "--kib", "1",
            "--tools", "ggen,make", "--no-parallel", "--no-micro", "--ts-sizes", "",
            "--work", str(tmp_path / "work"), "--out", str(out), "--results-md", str(md),
        ]
    )  # fmt: skip
    assert code == 0
    (json_file,) = out.glob("*.json")
    doc = orjson.loads(json_file.read_bytes())
    tools = {t["name"] for t in doc["tools"]}
    assert tools == {ToolName.GGEN.value, ToolName.MAKE.value}
    verdicts = {(r["tool"], r["scenario"]): r["verdict"] for r in doc["results"]}
    assert set(verdicts.values()) == {"ok"}, verdicts
    assert len(verdicts) == 8
    assert md.read_text() == json_file.with_suffix(".md").read_text()
    assert "| no-op | 5 |" in md.read_text()
    assert not (tmp_path / "work").exists()


def test_cli_generate(tmp_path: Path) -> None:
    assert main(["generate", str(tmp_path / "g"), "-n", "3", "-f", "2", "-k", "1"]) == 0
    assert len(list((tmp_path / "g" / "packages").glob("*/src/*.txt"))) == 6
    assert os.access(tmp_path / "g" / "Makefile", os.R_OK)
    shutil.rmtree(tmp_path / "g")


# -- the TypeScript monorepo (bench.generate_ts, bench.typescript) -----------------------------


def test_ts_spec_layers_and_dependents() -> None:
    spec = TsSpec(10, width=4)
    assert [spec.deps(i) for i in (0, 3, 4, 7, 8)] == [(), (), (0, 1), (0, 3), (4, 5)]
    assert all(d < i for i in range(10) for d in spec.deps(i))
    assert spec.dependents(1) == (1, 4, 5, 8, 9)
    assert spec.dependents(9) == (9,)
    assert spec.value(4, 2) == 2 * 5 + 2 * 1 + 2 * 2
    assert spec.name(4) == "@bench/pkg-04"


def test_generate_ts_is_deterministic_and_discoverable(tmp_path: Path) -> None:
    a = generate_ts(TsSpec(6), tmp_path / "a")
    b = generate_ts(TsSpec(6), tmp_path / "b")
    assert _digests(a.root) == _digests(b.root)
    with pytest.raises(FileExistsError):
        generate_ts(TsSpec(6), a.root)
    make = tomli.loads((a.root / "make.toml").read_text())
    assert make["project"]["workspaces"] == "auto"
    assert make["lifecycle"]["build"]["script"] == "build"
    assert len((a.root / "make.toml").read_text().splitlines()) <= 20
    pkg = json.loads((a.workspace_dir(5) / "package.json").read_text())
    assert pkg["dependencies"] == {"@bench/pkg-01": "workspace:*", "@bench/pkg-02": "workspace:*"}
    assert pkg["scripts"] == {"build": "tsc -b", "test": "node --test dist/"}
    tsconfig = json.loads((a.workspace_dir(5) / "tsconfig.json").read_text())
    assert tsconfig["references"] == [{"path": "../pkg-01"}, {"path": "../pkg-02"}]
    root = json.loads((a.root / "package.json").read_text())
    assert root["packageManager"].startswith("pnpm@9") and "typescript" in root["devDependencies"]
    source = a.source(5).read_text()
    assert 'from "@bench/pkg-01"' in source and 'from "@bench/pkg-02"' in source
    before = source
    ts_change_source(a, 5, 0)
    assert a.source(5).read_text() != before and "REVISION = 1" in a.source(5).read_text()


def test_ts_results_section_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text("# ggen benchmark results\n\n| table |\n\n## Remote cache restore\n\nremote\n")
    into_results(md, f"{TS_SECTION}\n\nfirst\n")
    into_results(md, f"{TS_SECTION}\n\nsecond\n")
    text = md.read_text()
    assert text.count(TS_SECTION) == 1 and "second" in text and "first" not in text
    # before the remote section, which bench.remote rewrites with everything after it
    assert text == (
        f"# ggen benchmark results\n\n| table |\n\n{TS_SECTION}\n\nsecond\n\n"
        "## Remote cache restore\n\nremote\n"
    )
    md.write_text("# ggen benchmark results\n")
    into_results(md, f"{TS_SECTION}\n\nthird\n")
    assert md.read_text() == f"# ggen benchmark results\n\n{TS_SECTION}\n\nthird\n"


def test_ts_cold_scenario_with_the_real_tools(tmp_path: Path) -> None:
    """The harness path of bench.typescript at N=3: ggen (and turbo when installed), one
    warm-up and one measured cold run each, the outputs checked equal, the section rendered."""
    assert shutil.which("pnpm") and shutil.which("node"), "pnpm and node are needed"
    tools = find_tools(default_peers_dir(), TS_TOOLS)
    plan = Plan(reps=1, warmup=1)
    logged: list[str] = []
    results = run_ts(tools, 3, plan, tmp_path / "work", log=logged.append)
    assert [r.tool for r in results] == [t.name for t in tools]
    for r in results:
        assert r.scenario is Scenario.TS_COLD and r.workspaces == 3
        assert r.verdict is Verdict.OK, r.note
        assert len(r.samples_s) == 1
    ggen = results[0]
    assert (ggen.ran, ggen.cached) == (3, 0)
    tree = TsTree(tmp_path / "work" / "ts3" / "ggen", TsSpec(3))
    assert tree.output(2).is_file() and len(tree.outputs()) == 3 * 13
    section = render(results, plan, "ggen x")
    assert section.startswith(TS_SECTION) and "| 3 | " in section
    row = next(line for line in section.splitlines() if line.startswith("| 3 | "))
    ratio = row.split("|")[-2].strip()
    assert ratio.endswith("x") if len(tools) == 2 else ratio == "n/a"


def test_cli_run_adds_the_typescript_section(tmp_path: Path) -> None:
    out, md = tmp_path / "results", tmp_path / "RESULTS.md"
    code = main(
        [
            "--sizes", "2", "--reps", "1", "--files", "1", "--kib", "1", "--tools", "ggen",
            "--no-parallel", "--no-micro", "--ts-sizes", "3",
            "--work", str(tmp_path / "work"), "--out", str(out), "--results-md", str(md),
        ]
    )  # fmt: skip
    assert code == 0
    (json_file,) = out.glob("*.json")
    rows = orjson.loads(json_file.read_bytes())["results"]
    ts = [r for r in rows if r["scenario"] == Scenario.TS_COLD.value]
    assert [(r["tool"], r["workspaces"], r["verdict"], r["ran"]) for r in ts] == [
        ("ggen", 3, "ok", 3)
    ]
    text = md.read_text()
    assert text.startswith("# ggen benchmark results") and "| cold | 2 |" in text
    assert f"\n{TS_SECTION}\n" in text and "| 3 | " in text


def test_ts_cold_without_pnpm_is_skipped_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ggen = find_ggen()
    monkeypatch.setenv("PATH", str(tmp_path))  # no pnpm here
    (result,) = run_ts([ggen], 2, Plan(reps=1), tmp_path / "work", log=lambda _: None)
    assert (result.tool, result.scenario, result.verdict) == (
        ToolName.GGEN,
        Scenario.TS_COLD,
        Verdict.SKIPPED,
    )
    assert "could not be installed" in result.note and "pnpm not found" in result.note
    assert "| 2 | skipped | not found | n/a |" in render([result], Plan(reps=1), "ggen x")
