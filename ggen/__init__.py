"""ggen: run the lifecycle phases of a monorepo in parallel, skipping unchanged work."""

from __future__ import annotations

__version__ = "0.1.0"
