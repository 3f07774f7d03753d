"""Re-exports of ``ggen.results``, where a run's values now live (below both ``runner/`` and
``report/``, so that the report package reads them without importing the runner)."""

from __future__ import annotations

from ggen.results import CacheStatus, Status, TaskResult

__all__ = ["CacheStatus", "Status", "TaskResult"]
