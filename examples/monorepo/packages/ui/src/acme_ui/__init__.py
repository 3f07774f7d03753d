"""acme-ui (@acme/ui): HTML elements and page components that render deterministically."""

from __future__ import annotations

from acme_ui.components import nav, page, role_badge, table
from acme_ui.html import Element, h, render

__version__ = "1.1.0"
__all__ = ["Element", "h", "nav", "page", "render", "role_badge", "table"]
