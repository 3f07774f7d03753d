"""Canonical JSON for the core records: sorted keys, no spaces, so equal data gives equal text."""

from __future__ import annotations

import json
from typing import Any

from acme_core import Order


def _plain(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """``value`` (records included) as canonical JSON text."""
    return json.dumps(value, default=_plain, sort_keys=True, separators=(",", ":"))


def load_order(text: str) -> Order:
    """An Order from JSON text, validated."""
    return Order.from_dict(json.loads(text))
