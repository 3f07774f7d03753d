"""Workspace and phase names made safe for file names.

Names are any TOML key (``@scope/ui``, ``.`` for the project root), so wherever one becomes part
of a file name it is percent-escaped, dots included, which keeps ``.`` free as a separator.
"""

from __future__ import annotations

from urllib.parse import quote


def escape_name(name: str) -> str:
    """``@acme/ui`` -> ``%40acme%2Fui``; ``.`` -> ``%2E``; never empty, never a path."""
    return quote(name, safe="").replace(".", "%2E") or "%00"


def task_file_stem(workspace: str, phase: str) -> str:
    """A unique file-name stem for one task, e.g. ``%40acme%2Fui.build``."""
    return f"{escape_name(workspace)}.{escape_name(phase)}"
