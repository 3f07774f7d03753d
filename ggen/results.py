"""The values a run produces: task outcomes and their cache status, pickle-safe.

A ``TaskResult`` crosses the process boundary (worker -> scheduler) and ends up in state files
and run summaries, so it holds only plain values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any


class Status(enum.Enum):
    """How a task ended."""

    OK = "ok"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"
    TIMEOUT = "timeout"
    # a script phase on a workspace whose package.json has no such script: nothing to do,
    # which its dependents take as success (not SKIPPED, which says a dependency failed)
    NO_SCRIPT = "no-script"

    @property
    def succeeded(self) -> bool:
        return self in (Status.OK, Status.CACHED, Status.NO_SCRIPT)


class CacheStatus(enum.Enum):
    """What the cache said about a task."""

    HIT = "hit"
    REMOTE_HIT = "remote-hit"
    MISS = "miss"
    OFF = "off"  # not looked up: cache = false, --no-cache, or the task never got that far


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task (one workspace, one phase)."""

    task_id: str
    workspace: str
    phase: str
    status: Status
    cache: CacheStatus = CacheStatus.OFF
    key: str | None = None
    exit_code: int | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    duration_ms: int = 0
    cpu_ms: int = 0
    max_rss_kb: int = 0
    worker: str = "main"
    attempts: int = 0
    log: str | None = None  # path relative to the project root
    error: str | None = None
    deps: tuple[str, ...] = ()

    def evolve(self, **changes: Any) -> TaskResult:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The task's entry in a run summary (see README, "Files written")."""
        return {
            "id": self.task_id,
            "workspace": self.workspace,
            "phase": self.phase,
            "key": self.key,
            "status": self.status.value,
            "cache": self.cache.value,
            "exit_code": self.exit_code,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "duration_ms": self.duration_ms,
            "cpu_ms": self.cpu_ms,
            "max_rss_kb": self.max_rss_kb,
            "worker": self.worker,
            "attempts": self.attempts,
            "deps": list(self.deps),
            "log": self.log,
            "error": self.error,
        }
