"""Realistic run summaries for the report and trace tests.

``make_summary`` simulates a run the way the scheduler performs it: workspaces depend on
earlier ones, ``test`` waits for the workspace's ``build``, ``lint`` waits for nothing; cache
hits are answered in the main process in about no time, misses run on one of ``jobs`` worker
processes (each running one task at a time), a failure skips everything downstream.
"""

from __future__ import annotations

import random
from typing import Any

BASE_MS = 1_795_000_000_000
PHASES = ("build", "test", "lint")
EVIL_ERROR = (
    "boom </script><script>document.body.setAttribute('data-pwned','1')</script> & <u>x</u>"
)
EVIL_WORKSPACE = "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\">"


def _workspace_names(count: int, evil: bool) -> list[str]:
    fixed = ["shared", "@scope/ui", "backend", "frontend", "docs", "tools/cli"]
    if evil:
        fixed.insert(3, EVIL_WORKSPACE)
    names = fixed[:count]
    names += [f"packages/pkg-{n:04d}" for n in range(count - len(names))]
    return names


def make_summary(
    workspaces: int = 12,
    jobs: int = 4,
    seed: int = 7,
    cached_ratio: float = 0.4,
    fail: tuple[str, ...] = ("backend:build",),
    timeout: tuple[str, ...] = (),
    evil: bool = False,
    run_id: str = "20261125-182000-1a2b3c",
) -> dict[str, Any]:
    """Simulate one run and return its summary in the schema ``ggen run`` writes."""
    rng = random.Random(seed)
    names = _workspace_names(workspaces, evil)
    ws_deps = {
        name: sorted(set(rng.sample(names[:i], k=min(i, rng.randint(0, 2))))) if i else []
        for i, name in enumerate(names)
    }
    started = BASE_MS + rng.randint(0, 1000)
    worker_free = {str(41_000 + n * 7): started + 40 for n in range(jobs)}
    main_free = started + 5
    finished: dict[str, int | None] = {}
    outcome: dict[str, str] = {}
    tasks: list[dict[str, Any]] = []
    for name in names:
        for phase in PHASES:
            task_id = f"{name}:{phase}"
            deps = [f"{d}:build" for d in ws_deps[name]] if phase == "build" else []
            if phase == "test":
                deps = [f"{name}:build"]
            task: dict[str, Any] = {
                "id": task_id,
                "workspace": name,
                "phase": phase,
                "key": f"{rng.getrandbits(128):032x}",
                "deps": deps,
                "attempts": 1,
                "log": f".ggen/logs/{name.replace('/', '_')}.{phase}.log",
                "error": None,
                "max_rss_kb": 0,
                "cpu_ms": 0,
            }
            tasks.append(task)
            if any(outcome[d] in ("failed", "skipped", "timeout") for d in deps):
                outcome[task_id] = "skipped"
                finished[task_id] = None
                task.update(
                    status="skipped",
                    cache="off",
                    exit_code=None,
                    started_ms=None,
                    finished_ms=None,
                    duration_ms=0,
                    worker=None,
                    key=None,
                )
                continue
            ready = max([finished[d] or started for d in deps], default=started)
            forced = task_id in fail or task_id in timeout
            if not forced and rng.random() < cached_ratio:
                begin = max(ready, main_free) + rng.randint(0, 2)
                end = begin + rng.choice((0, 0, 1))
                main_free = end
                task.update(status="cached", cache=rng.choice(("hit", "hit", "remote-hit")))
                task.update(exit_code=0, worker="main")
            else:
                worker = min(worker_free, key=lambda w: (max(worker_free[w], ready), w))
                begin = max(worker_free[worker], ready) + rng.randint(1, 15)
                end = begin + rng.randint(60, 2500)
                worker_free[worker] = end
                task.update(status="ok", cache="miss", exit_code=0, worker=worker)
                task.update(cpu_ms=int((end - begin) * rng.uniform(0.5, 0.98)))
                task.update(max_rss_kb=rng.randint(20_000, 900_000))
                if task_id in fail:
                    task.update(status="failed", exit_code=1, attempts=2)
                    task["error"] = EVIL_ERROR if evil else "error TS2322: type mismatch"
                if task_id in timeout:
                    task.update(status="timeout", exit_code=None, error="timed out after 2 s")
            outcome[task_id] = task["status"]
            finished[task_id] = end
            task.update(started_ms=begin, finished_ms=end, duration_ms=end - begin)
    ends = [t["finished_ms"] for t in tasks if t["finished_ms"] is not None]
    finished_ms = max(ends, default=started) + 12

    def count(*statuses: str) -> int:
        return sum(1 for t in tasks if t["status"] in statuses)

    ran, cached = count("ok", "failed", "timeout"), count("cached")
    return {
        "version": 1,
        "run_id": run_id,
        "project": "acme",
        "root": "/srv/acme",
        "command": ["build", "test", "lint"],
        "executor": "loky",
        "jobs": jobs,
        "started_ms": started,
        "finished_ms": finished_ms,
        "wall_ms": finished_ms - started,
        "exit_code": 1 if count("failed", "timeout") else 0,
        "totals": {
            "tasks": len(tasks),
            "ran": ran,
            "cached": cached,
            "failed": count("failed", "timeout"),
            "skipped": count("skipped"),
            "interrupted": count("interrupted"),
            "hit_rate": round(cached / (ran + cached), 4) if ran + cached else 0.0,
            "cpu_ms": sum(t["cpu_ms"] for t in tasks),
        },
        "tasks": tasks,
    }


def history(count: int, seed: int = 3) -> list[dict[str, Any]]:
    """``count`` earlier summaries, oldest first, with varying wall time and hit rate."""
    return [
        make_summary(
            workspaces=8,
            seed=seed + n,
            cached_ratio=min(0.95, 0.1 + 0.15 * n),
            fail=(),
            run_id=f"20261124-0{n}0000-00000{n}",
        )
        for n in range(count)
    ]
