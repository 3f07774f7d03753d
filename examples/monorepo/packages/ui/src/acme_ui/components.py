"""Page-level components built from acme_ui.html elements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from acme_core import Role

from acme_ui.html import Element, h, render

ROLE_COLOURS = {Role.ADMIN: "red", Role.MEMBER: "green", Role.VIEWER: "grey"}


def role_badge(role: Role) -> Element:
    """A coloured badge naming a user's role."""
    return h("span", role.value, class_=f"badge badge-{ROLE_COLOURS[role]}")


def table(headers: Sequence[str], rows: Iterable[Sequence[Element | str]]) -> Element:
    """A table with a header row; every row must have as many cells as there are headers."""
    body = []
    for number, row in enumerate(rows, start=1):
        if len(row) != len(headers):
            raise ValueError(f"row {number} has {len(row)} cells, expected {len(headers)}")
        body.append(h("tr", *(h("td", cell) for cell in row)))
    head = h("thead", h("tr", *(h("th", title) for title in headers)))
    return h("table", head, h("tbody", *body))


def nav(links: Sequence[tuple[str, str]], current: str) -> Element:
    """A navigation bar; the link to ``current`` is marked with aria-current."""
    items = [
        h("a", label, href=href, aria_current="page" if href == current else False)
        for href, label in links
    ]
    return h("nav", *items)


def page(
    title: str, body: Sequence[Element], header: Element | None = None, heading: str = ""
) -> str:
    """A whole HTML document; the page's <h1> is ``heading``, or the title without one."""
    head = h("head", h("meta", charset="utf-8"), h("title", title))
    main = h("main", h("h1", heading or title), *body)
    return "<!doctype html>\n" + render(h("html", head, h("body", header, main), lang="en")) + "\n"
