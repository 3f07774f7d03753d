"""The site's pages, rendered with @acme/ui from the data the API serves."""

from __future__ import annotations

import os
from pathlib import Path

from acme_api import ROUTES, Api, Store
from acme_ui import Element, h, nav, page, role_badge, table

NAV = (
    ("index.html", "Home"),
    ("users.html", "Users"),
    ("products.html", "Products"),
    ("api.html", "API"),
)


def pages(api: Api, title: str) -> dict[str, str]:
    """Every page of the site: file name -> HTML text."""
    users = api.handle("GET", "/users").body
    products = api.handle("GET", "/products").body

    def doc(name: str, heading: str, *body: Element) -> str:
        return page(f"{heading} · {title}", body, header=nav(NAV, name), heading=heading)

    return {
        "index.html": doc(
            "index.html",
            "Home",
            h("p", f"{len(users)} users, {len(products)} products, {len(ROUTES)} API routes."),
        ),
        "users.html": doc(
            "users.html",
            "Users",
            table(
                ["Name", "Email", "Role"], [[u.name, u.email, role_badge(u.role)] for u in users]
            ),
        ),
        "products.html": doc(
            "products.html",
            "Products",
            table(["SKU", "Name", "Price"], [[p["sku"], p["name"], p["price"]] for p in products]),
        ),
        "api.html": doc(
            "api.html",
            "API",
            table(
                ["Method", "Path", "What"],
                [[h("code", r.method), h("code", r.pattern), r.summary] for r in ROUTES],
            ),
        ),
    }


def render_site(out_dir: str) -> None:
    """Write every page into ``out_dir``; the title comes from SITE_TITLE."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    site = pages(Api(Store.demo()), os.environ.get("SITE_TITLE", "Acme"))
    for name in sorted(site):
        (out / name).write_text(site[name], encoding="utf-8")
