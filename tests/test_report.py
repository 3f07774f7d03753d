"""Tests of ggen.report.html: the self-contained run report, checked as text and in Chromium."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from contextlib import suppress
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import psutil
import pytest
from report_summaries import EVIL_ERROR, EVIL_WORKSPACE, history, make_summary

from ggen.report.html import format_ms, render_report, write_report
from ggen.report.model import critical_path, read_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
)
CHROMIUM_TIMEOUT = 60


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, plus the text of script elements."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: dict[str, str] = {}
        self.text: dict[str, str] = {}
        self._script: str | None = None
        self._pre: str | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.append((tag, values))
        if tag == "script":
            self._script = values.get("id", f"#{len(self.scripts)}")
            self.scripts[self._script] = ""
        if tag == "pre":
            self._pre = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None
        if tag == "pre" and self._pre is not None:
            self.text.setdefault("pre", "")
            self.text["pre"] += self._pre + "\n"
            self._pre = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self.scripts[self._script] += data
        if self._pre is not None:
            self._pre += data

    def by_id(self, element_id: str) -> dict[str, str]:
        matches = [attrs for _, attrs in self.tags if attrs.get("id") == element_id]
        assert len(matches) == 1, f"expected one #{element_id}, found {len(matches)}"
        return matches[0]

    def with_attr(self, name: str, tag: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.tags if name in a and (tag is None or t == tag)]


def _leftovers(session: int, profile: Path) -> list[psutil.Process]:
    """Live processes of a Chromium launch: its session, or anything using its profile."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        with suppress(psutil.Error, ProcessLookupError, PermissionError):
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or ())
            if os.getsid(proc.pid) == session or str(profile) in cmdline:
                found.append(proc)
    return found


def _reap_orphans() -> None:
    """Collect exited Chromium helpers handed to us as their subreaper (see conftest)."""
    for child in psutil.Process().children():
        with suppress(psutil.Error, ChildProcessError):
            if child.status() == psutil.STATUS_ZOMBIE and child.name().startswith("chrom"):
                os.waitpid(child.pid, os.WNOHANG)


def _end_chromium(session: int, profile: Path) -> None:
    with suppress(ProcessLookupError):
        os.killpg(session, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while leftovers := _leftovers(session, profile):
        for proc in leftovers:
            with suppress(psutil.Error):
                proc.kill()
        assert time.monotonic() < deadline, f"chromium processes left behind: {leftovers}"
        time.sleep(0.05)
    _reap_orphans()


def chromium(page: Path, workdir: Path, *args: str) -> str:
    """Run headless Chromium on a file and return its stdout; no process survives it.

    Console output goes to stderr, so a script error on the page fails the test.
    """
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is required for the report's browser tests")
    profile = workdir / f"profile-{len(list(workdir.glob('profile-*')))}"
    command = [
        str(CHROMIUM),
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        page.as_uri(),
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT} s")
    finally:
        _end_chromium(proc.pid, profile)
    log = err.decode(errors="replace")
    assert proc.returncode == 0, log[-2000:]
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert not console, "\n".join(console)
    return out.decode()


@pytest.fixture
def evil_summary() -> dict[str, Any]:
    return make_summary(workspaces=14, jobs=4, evil=True, timeout=("docs:test",))


@pytest.fixture
def big_summary() -> dict[str, Any]:
    summary = make_summary(
        workspaces=667, jobs=8, cached_ratio=0.6, fail=("backend:build", "packages/pkg-0100:build")
    )
    assert len(summary["tasks"]) == 2001
    return summary


def _embedded_data(page: Elements) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(page.scripts["run-data"])
    return data


def test_page_is_self_contained(evil_summary: dict[str, Any]) -> None:
    page = render_report(evil_summary, history(4))
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<link" not in page.lower()
    assert "@import" not in page and "url(" not in page
    parsed = Elements(page)
    scripts = [a for t, a in parsed.tags if t == "script"]
    assert all("src" not in a for a in scripts)
    assert len(scripts) == 2
    assert [t for t, _ in parsed.tags].count("style") == 1


def test_every_string_from_the_summary_is_escaped(evil_summary: dict[str, Any]) -> None:
    page = render_report(evil_summary)
    assert "<script>document" not in page
    assert "<img" not in page
    assert "<u>" not in page
    assert page.count("<script") == 2
    assert page.count("</script>") == 2
    parsed = Elements(page)
    data = _embedded_data(parsed)
    ids = [t["id"] for t in data["tasks"]]
    assert ids == [t["id"] for t in evil_summary["tasks"]]
    assert f"{EVIL_WORKSPACE}:build" in ids
    failed = next(t for t in data["tasks"] if t["id"] == "backend:build")
    assert failed["err"] == EVIL_ERROR
    assert EVIL_ERROR in parsed.text["pre"]
    crit = [a["data-crit"] for a in parsed.with_attr("data-crit")]
    assert f"{EVIL_WORKSPACE}:build" in crit
    assert "@scope/ui:build" in ids


def test_totals_and_critical_path_are_written_into_the_page(evil_summary: dict[str, Any]) -> None:
    parsed = Elements(render_report(evil_summary))
    totals = parsed.by_id("totals")
    expected = evil_summary["totals"]
    for name in ("tasks", "ran", "cached", "failed", "skipped", "interrupted", "cpu_ms"):
        assert int(totals[f"data-{name.replace('_', '-')}"]) == expected[name]
    assert float(totals["data-hit-rate"]) == expected["hit_rate"]
    assert int(totals["data-wall-ms"]) == evil_summary["wall_ms"]

    run = read_run(evil_summary)
    path = critical_path(run)
    chain = [a["data-crit"] for a in parsed.with_attr("data-crit")]
    assert chain == [run.tasks[i].id for i in path.tasks]
    assert (
        chain[-1]
        == max(
            (t for t in evil_summary["tasks"] if t["finished_ms"]), key=lambda t: t["finished_ms"]
        )["id"]
    )
    assert float(parsed.by_id("crit-share")["data-share"]) == pytest.approx(path.share, abs=1e-4)
    assert _embedded_data(parsed)["crit"] == list(path.tasks)
    failures = [a["data-failure"] for a in parsed.with_attr("data-failure")]
    assert failures == ["backend:build", "docs:test"]


def test_history_chart_needs_two_earlier_runs(evil_summary: dict[str, Any]) -> None:
    assert 'id="history"' not in render_report(evil_summary, history(1))
    parsed = Elements(render_report(evil_summary, history(5)))
    runs = [a["data-run"] for a in parsed.with_attr("data-run", "g")]
    assert runs == [h["run_id"] for h in history(5)] + [evil_summary["run_id"]]
    assert parsed.by_id("history")
    assert parsed.by_id("wall-change")
    long = Elements(render_report(evil_summary, history(40)))
    assert len(long.with_attr("data-run", "g")) == 30


def test_history_stops_before_the_reported_run(evil_summary: dict[str, Any]) -> None:
    recorded = history(4)
    reported = recorded[2]
    parsed = Elements(render_report(reported, [*recorded, evil_summary]))
    runs = [a["data-run"] for a in parsed.with_attr("data-run", "g")]
    assert runs == [recorded[0]["run_id"], recorded[1]["run_id"], reported["run_id"]]
    assert 'id="history"' not in render_report(recorded[1], recorded)


def test_format_ms_reads_well() -> None:
    assert [format_ms(v) for v in (0, 999, 1000, 12_345, 61_000, 3_725_000)] == [
        "0 ms",
        "999 ms",
        "1.00 s",
        "12.3 s",
        "1m 01s",
        "1h 02m",
    ]


def test_write_report_is_atomic_and_complete(tmp_path: Path, evil_summary: dict[str, Any]) -> None:
    target = tmp_path / "site" / "report.html"
    write_report(evil_summary, target, history(3))
    assert target.read_text() == render_report(evil_summary, history(3))
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]
    assert target.stat().st_mode & 0o777 == 0o644


def _is_png(path: Path, width: int, height: int) -> bool:
    head = path.read_bytes()[:24]
    return (
        head[:8] == b"\x89PNG\r\n\x1a\n"
        and int.from_bytes(head[16:20], "big") == width
        and int.from_bytes(head[20:24], "big") == height
    )


def test_chromium_renders_every_task_and_the_totals(
    tmp_path: Path, evil_summary: dict[str, Any]
) -> None:
    report = tmp_path / "report.html"
    write_report(evil_summary, report, history(5))

    shot = tmp_path / "shot.png"
    chromium(report, tmp_path, f"--screenshot={shot}")
    assert _is_png(shot, 1280, 800)
    assert shot.stat().st_size > 30_000  # a blank or unstyled page compresses far smaller

    dom = Elements(chromium(report, tmp_path, "--dump-dom"))
    body = next(a for t, a in dom.tags if t == "body")
    assert "data-pwned" not in body
    assert float(body["data-render-ms"]) > 0
    bars = dom.with_attr("data-task", "div")
    rows = dom.with_attr("data-task", "tr")
    started = {t["id"]: t["status"] for t in evil_summary["tasks"] if t["started_ms"]}
    assert {b["data-task"]: b["data-status"] for b in bars} == started
    assert all("bar" in b["class"].split() for b in bars)
    assert {r["data-task"]: r["data-status"] for r in rows} == {
        t["id"]: t["status"] for t in evil_summary["tasks"]
    }
    assert len(rows) == len(evil_summary["tasks"])
    crit = {b["data-task"] for b in bars if "crit" in b["class"].split()}
    assert crit == {a["data-crit"] for a in dom.with_attr("data-crit")}
    totals = dom.by_id("totals")
    for name, value in evil_summary["totals"].items():
        assert float(totals[f"data-{name.replace('_', '-')}"]) == value
    assert int(totals["data-wall-ms"]) == evil_summary["wall_ms"]
    lanes = [a["data-lane"] for a in dom.with_attr("data-lane")]
    assert lanes[0] == "main" and len(lanes) == 5


def test_two_thousand_tasks_stay_small_and_render_fast(
    tmp_path: Path, big_summary: dict[str, Any]
) -> None:
    report = tmp_path / "big.html"
    write_report(big_summary, report, history(10))
    size = report.stat().st_size
    assert size < 2_000_000

    dom = Elements(chromium(report, tmp_path, "--dump-dom"))
    render_ms = float(next(a for t, a in dom.tags if t == "body")["data-render-ms"])
    print(f"\n2,001 tasks: page {size / 1024:.0f} KiB, rendered in {render_ms:.0f} ms")
    assert render_ms < 2000
    started = {t["id"] for t in big_summary["tasks"] if t["started_ms"]}
    assert {b["data-task"] for b in dom.with_attr("data-task", "div")} == started
    assert len(dom.with_attr("data-task", "tr")) == len(big_summary["tasks"])
    assert int(dom.by_id("totals")["data-tasks"]) == 2001


PROBE = """<script>
(function () {
  var out = {}, rows = function () {
    return Array.prototype.map.call(document.querySelectorAll("#tasks tbody tr"),
      function (r) { return r.getAttribute("data-task"); });
  };
  var th = document.querySelector('#tasks th[data-col="6"]');
  th.click();
  out.first = th.getAttribute("aria-sort");
  out.byDuration = rows();
  th.click();
  out.second = th.getAttribute("aria-sort");
  out.byDurationAgain = rows();
  var bar = document.querySelector('.bar[data-task="' + HOVER + '"]');
  bar.dispatchEvent(new MouseEvent("mouseover", {bubbles: true, clientX: 200, clientY: 200}));
  var tip = document.getElementById("tip");
  out.tipShown = tip.style.display;
  out.tipText = tip.textContent;
  out.deps = Array.prototype.map.call(document.querySelectorAll(".bar.dep"),
    function (b) { return b.getAttribute("data-task"); });
  document.getElementById("zoom-in").click();
  out.zoom = document.querySelector(".tl-inner").style.width;
  out.barsAfterZoom = document.querySelectorAll(".bar").length;
  var status = document.getElementById("status-filter");
  status.value = "failed";
  status.dispatchEvent(new Event("change"));
  out.failedRows = rows();
  out.shown = document.getElementById("shown").textContent;
  document.body.setAttribute("data-probe", JSON.stringify(out));
})();
</script>"""


def test_table_sorts_and_filters_and_bars_explain_themselves(
    tmp_path: Path, evil_summary: dict[str, Any]
) -> None:
    tasks = evil_summary["tasks"]
    hover = "@scope/ui:build"
    deps = {d for t in tasks if t["id"] == hover for d in t["deps"]}
    assert deps
    page = render_report(evil_summary)
    probe = PROBE.replace("HOVER", json.dumps(hover))
    report = tmp_path / "probe.html"
    report.write_text(page.replace("</body>", probe + "</body>"))

    dom = Elements(chromium(report, tmp_path, "--dump-dom"))
    out = json.loads(next(a for t, a in dom.tags if t == "body")["data-probe"])
    duration = {t["id"]: t["duration_ms"] for t in tasks}
    assert out["first"] == "descending" and out["second"] == "ascending"
    assert [duration[i] for i in out["byDuration"]] == sorted(duration.values(), reverse=True)
    assert [duration[i] for i in out["byDurationAgain"]] == sorted(duration.values())
    assert out["tipShown"] == "block"
    run = read_run(evil_summary)
    on_path = hover in {run.tasks[i].id for i in critical_path(run).tasks}
    assert hover in out["tipText"] and ("critical path" in out["tipText"]) == on_path
    assert set(out["deps"]) == deps
    assert out["zoom"] == "200%"
    assert out["barsAfterZoom"] == sum(1 for t in tasks if t["started_ms"])
    assert out["failedRows"] == ["backend:build"]
    assert out["shown"] == f"1 of {len(tasks)} tasks"
