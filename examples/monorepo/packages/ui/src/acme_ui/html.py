"""A tiny HTML tree: build elements with h(), turn them into text with render()."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

VOID = frozenset({"br", "hr", "img", "input", "link", "meta"})


@dataclass(frozen=True)
class Element:
    """One HTML element; attributes are sorted so equal trees render to equal text."""

    tag: str
    attrs: tuple[tuple[str, str], ...] = ()
    children: tuple[Element | str, ...] = ()


def h(tag: str, *children: Element | str | None, **attrs: str | bool) -> Element:
    """An element; ``class_`` stands for ``class``, True for a bare attribute, None is skipped."""
    pairs = tuple(
        sorted(
            (name.rstrip("_").replace("_", "-"), "" if value is True else str(value))
            for name, value in attrs.items()
            if value is not False
        )
    )
    return Element(tag, pairs, tuple(child for child in children if child is not None))


def render(node: Element | str) -> str:
    """The HTML text of ``node``, with text and attribute values escaped."""
    if isinstance(node, str):
        return escape(node, quote=False)
    attrs = "".join(
        f" {name}" if value == "" else f' {name}="{escape(value)}"' for name, value in node.attrs
    )
    if node.tag in VOID:
        return f"<{node.tag}{attrs}>"
    inner = "".join(render(child) for child in node.children)
    return f"<{node.tag}{attrs}>{inner}</{node.tag}>"
