"""Identifiers derived from content, so the same data always gets the same id."""

from __future__ import annotations

import hashlib
import re
import unicodedata


def slugify(text: str) -> str:
    """``"Héllo, World!"`` -> ``"hello-world"``: lowercase ASCII words joined by dashes."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def stable_id(prefix: str, *parts: str) -> str:
    """``prefix_`` + 12 hex digits of a digest of ``parts``: stable across runs and machines."""
    if not prefix.isidentifier():
        raise ValueError(f"id prefix must be an identifier, got {prefix!r}")
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"{prefix}_{digest[:12]}"
