"""acme-api: the Acme HTTP API as a plain function of (method, path, body)."""

from __future__ import annotations

from acme_api.app import ROUTES, Api, Response, Route
from acme_api.store import Product, Store

__version__ = "0.4.0"
__all__ = ["ROUTES", "Api", "Product", "Response", "Route", "Store"]
