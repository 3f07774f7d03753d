"""acme-web: the Acme web site, rendered to static pages."""

from __future__ import annotations

from acme_web.site import NAV, pages, render_site

__version__ = "0.5.0"
__all__ = ["NAV", "pages", "render_site"]
