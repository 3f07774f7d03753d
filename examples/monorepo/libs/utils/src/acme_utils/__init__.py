"""acme-utils: small helpers for text, money, retries and JSON, shared by the services."""

from __future__ import annotations

from acme_utils.jsonio import dumps, load_order
from acme_utils.retry import backoff_schedule, retry
from acme_utils.text import format_cents, truncate

__version__ = "0.2.0"
__all__ = ["backoff_schedule", "dumps", "format_cents", "load_order", "retry", "truncate"]
