"""Workspace and phase names made safe for file names.

Names are any TOML key (``@scope/ui``, ``.`` for the project root), so wherever one becomes part
of a file name it is percent-escaped, dots included, which keeps ``.`` free as a separator.

A file name is at most 255 bytes on most filesystems, and names have no length limit, so a
task's stem longer than ``MAX_STEM`` keeps a readable prefix of each escaped name and ends
with a digest of the whole stem. Such a stem holds two dots where a short one holds one, so
the two kinds never collide.
"""

from __future__ import annotations

from urllib.parse import quote

MAX_STEM = 160  # leaves room under 255 bytes for a suffix and an atomic write's temp name
_PREFIX = 60  # characters of each escaped name kept in a shortened stem


def escape_name(name: str) -> str:
    """``@acme/ui`` -> ``%40acme%2Fui``; ``.`` -> ``%2E``; never empty, never a path."""
    return quote(name, safe="").replace(".", "%2E") or "%00"


def task_file_stem(workspace: str, phase: str) -> str:
    """A unique file-name stem for one task, e.g. ``%40acme%2Fui.build``, at most
    ``MAX_STEM`` characters (ASCII) whatever the names' length."""
    ws, ph = escape_name(workspace), escape_name(phase)
    stem = f"{ws}.{ph}"
    if len(stem) <= MAX_STEM:
        return stem
    import hashlib  # only for long names: its import costs a no-op run 2-3 ms

    digest = hashlib.sha256(stem.encode()).hexdigest()[:32]
    return f"{ws[:_PREFIX]}.{ph[:_PREFIX]}.{digest}"
