"""The run summary as a typed value: ``RunSummary``, written as JSON to ``.ggen/runs`` (and
``--summary``) and read back by ``ggen report``, ``ggen status`` and the benchmarks, whose
document (README, "Files written") ``to_json`` keeps field for field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ggen.runner.results import TaskResult
from ggen.runner.state import STATE_VERSION, totals


@dataclass(frozen=True)
class RunTotals:
    """Counts per outcome, cache hit rate and CPU time of a run."""

    tasks: int
    ran: int
    cached: int
    failed: int
    skipped: int
    no_script: int
    interrupted: int
    hit_rate: float
    cpu_ms: int

    @staticmethod
    def of(results: Sequence[TaskResult]) -> RunTotals:
        return RunTotals(**totals(results))

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "ran": self.ran,
            "cached": self.cached,
            "failed": self.failed,
            "skipped": self.skipped,
            "no_script": self.no_script,
            "interrupted": self.interrupted,
            "hit_rate": self.hit_rate,
            "cpu_ms": self.cpu_ms,
        }


@dataclass(frozen=True)
class RunSummary:
    """One run: what was asked, how, when, how it ended, and every task's result."""

    run_id: str
    project: str
    root: str
    command: tuple[str, ...]
    executor: str
    jobs: int
    started_ms: int
    finished_ms: int
    exit_code: int
    totals: RunTotals
    tasks: tuple[TaskResult, ...]
    version: int = STATE_VERSION

    @property
    def wall_ms(self) -> int:
        return self.finished_ms - self.started_ms

    def to_json(self) -> dict[str, Any]:
        """The summary document (README, "Files written")."""
        return {
            "version": self.version,
            "run_id": self.run_id,
            "project": self.project,
            "root": self.root,
            "command": list(self.command),
            "executor": self.executor,
            "jobs": self.jobs,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "wall_ms": self.wall_ms,
            "exit_code": self.exit_code,
            "totals": self.totals.to_json(),
            "tasks": [r.to_json() for r in self.tasks],
        }
