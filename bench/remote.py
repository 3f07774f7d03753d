"""``python -m bench.remote``: restoring from a shared HTTP cache against a cold build.

A real nginx (WebDAV PUT) on loopback serves as the remote cache. For the example monorepo and
for a synthetic monorepo of N workspaces, each round:

1. cold: checkout A, empty local cache, empty remote: every task runs and is uploaded;
2. baseline: checkout B, no remote, empty local cache: every task runs (nothing uploaded);
3. remote restore: checkout C, empty local cache, the remote filled by step 1: nothing runs,
   every output comes from the remote.

The figures are medians over the rounds; the table gives the restore as a ratio to both
cold builds. Results go to bench/results/remote-<time>.md, are printed, and replace the
"Remote cache restore" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.generate import TreeSpec, generate
from bench.measure import run_measured
from bench.scenarios import parse_summary

BENCH_DIR = Path(__file__).resolve().parent
EXAMPLE = BENCH_DIR.parent / "examples" / "monorepo"
NGINX = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
SECTION = "## Remote cache restore"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def nginx(root: Path) -> Iterator[str]:
    """An nginx serving ``root/www`` with PUT on 127.0.0.1; yields its base URL."""
    binary = next((b for b in NGINX if os.access(b, os.X_OK)), shutil.which("nginx"))
    if binary is None:
        raise SystemExit("nginx is not installed (apt-get install nginx)")
    port = _free_port()
    (root / "www").mkdir(parents=True)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 2;\npid {root}/nginx.pid;\n"
        f"error_log {root}/error.log;\nevents {{ worker_connections 256; }}\n"
        "http {\n  access_log off;\n"
        f"  client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n"
        f"  fastcgi_temp_path {root}/fcgi;\n  uwsgi_temp_path {root}/uwsgi;\n"
        f"  scgi_temp_path {root}/scgi;\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    root {root}/www;\n"
        "    client_max_body_size 1g;\n"
        "    location / { dav_methods PUT; create_full_put_path on; }\n  }\n}\n"
    )
    proc = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(root / "nginx.conf")],
        start_new_session=True,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (root / "error.log").read_text() if (root / "error.log").exists() else ""
                    raise SystemExit(f"nginx did not start: {log[-500:]}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/ggen"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _ggen() -> list[str]:
    found = shutil.which("ggen")
    return [found] if found else [sys.executable, "-m", "ggen"]


def _run(repo: Path, phases: list[str], cache: Path, remote: str | None) -> tuple[float, str]:
    argv = [*_ggen(), "run", *phases, "-j2", "--json"]
    if remote:
        argv += ["--remote-cache", remote]
    env = {"GGEN_CACHE_DIR": str(cache)}
    sample = run_measured(argv, cwd=repo, env=env, timeout_s=600)
    if sample.exit_code != 0 or "warning" in sample.stderr_tail:
        raise SystemExit(f"ggen failed or warned in {repo}: {sample.stderr_tail}")
    summary = parse_summary(sample.stdout)
    counts = f"ran {summary.ran}, cached {summary.cached}" if summary else "?"
    return sample.wall_s, counts


def _cache_dir_line(repo: Path) -> None:
    # the example keeps its cache inside the project; the benchmark gives each run its own
    toml = repo / "make.toml"
    toml.write_text(toml.read_text().replace('dir = ".ggen/cache"\n', ""))


def measure(
    name: str, make_tree: object, phases: list[str], rounds: int, work: Path
) -> dict[str, object]:
    """Median wall seconds of cold (with upload), baseline cold, and remote restore."""
    cold, base, restore = [], [], []
    counts = ""
    for r in range(rounds):
        rd = work / f"{''.join(ch if ch.isalnum() else '-' for ch in name)}-{r}"
        with nginx(rd / "nginx") as url:
            trees = {}
            for role in ("a", "b", "c"):
                trees[role] = rd / role / "repo"
                make_tree(trees[role])  # type: ignore[operator]
            cold.append(_run(trees["a"], phases, rd / "cache-a", url)[0])
            base.append(_run(trees["b"], phases, rd / "cache-b", None)[0])
            wall, counts = _run(trees["c"], phases, rd / "cache-c", url)
            restore.append(wall)
        shutil.rmtree(rd, ignore_errors=True)
    c, b, x = (statistics.median(v) for v in (cold, base, restore))
    return {
        "name": name,
        "cold_upload_s": c,
        "cold_s": b,
        "restore_s": x,
        "ratio_cold": x / b,
        "ratio_cold_upload": x / c,
        "restore_counts": counts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.remote", description=__doc__)
    parser.add_argument("-n", type=int, default=200, help="workspaces of the synthetic tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--results-md", type=Path, default=BENCH_DIR / "RESULTS.md")
    args = parser.parse_args(argv)

    def example(dest: Path) -> None:
        shutil.copytree(
            EXAMPLE,
            dest,
            ignore=shutil.ignore_patterns(".ggen", "dist", "build", "gen", "__pycache__"),
        )
        _cache_dir_line(dest)

    def synthetic(dest: Path) -> None:
        generate(TreeSpec(args.n), dest)

    with tempfile.TemporaryDirectory(prefix="ggen-bench-remote-") as tmp:
        work = Path(tmp)
        rows = [
            measure("example monorepo (build test)", example, ["build", "test"], args.rounds, work),
            measure(f"synthetic N={args.n} (build)", synthetic, ["build"], args.rounds, work),
        ]
    lines = [
        "| tree | cold, no remote (s) | cold + upload (s) | remote restore (s) | "
        "restore / cold | restore / cold+upload | restore run |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['cold_s']:.3f} | {row['cold_upload_s']:.3f} | "
            f"{row['restore_s']:.3f} | {row['ratio_cold']:.2f}x | "
            f"{row['ratio_cold_upload']:.2f}x | {row['restore_counts']} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"remote-{time.strftime('%Y%m%d-%H%M%S')}.md").write_text(table)
    _into_results(args.results_md, args.n, args.rounds, table)
    return 0


def _into_results(path: Path, n: int, rounds: int, table: str) -> None:
    """Put the table in the results file as its "Remote cache restore" section (replaced)."""
    text = path.read_text() if path.exists() else "# ggen benchmark results\n"
    text = text.split(SECTION)[0].rstrip() + "\n\n"
    text += (
        f"{SECTION}\n\nMedians of {rounds} rounds, -j2, real nginx on loopback "
        f"(`python -m bench.remote -n {n}`): a checkout with an empty local cache restoring "
        "from the remote, against cold builds with and without uploading.\n\n" + table
    )
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
