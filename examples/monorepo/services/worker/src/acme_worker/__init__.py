"""acme-worker: runs background jobs, retrying the ones that fail on I/O."""

from __future__ import annotations

from acme_worker.jobs import HANDLERS, Job, Outcome, Result, receipt, reindex, run

__version__ = "0.2.0"
__all__ = ["HANDLERS", "Job", "Outcome", "Result", "receipt", "reindex", "run"]
