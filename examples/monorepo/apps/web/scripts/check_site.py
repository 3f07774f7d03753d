"""Check a built site: every page parses, has a title, and every local link resolves.

Usage: python3 scripts/check_site.py SITE_DIR   (run by apps/web's test phase)
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit


class PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.title = ""
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_title = tag == "title"
        self.links += [value for name, value in attrs if name in ("href", "src") and value]

    def handle_endtag(self, tag: str) -> None:
        self.in_title = False

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data


def check(site: Path) -> list[str]:
    """Problems found in ``site``, as ``page: message`` strings."""
    pages = sorted(site.glob("*.html"))
    if not pages:
        return [f"{site}: no pages (was the build run?)"]
    problems = []
    linked: set[str] = set()
    for path in pages:
        parser = PageParser()
        parser.feed(path.read_text(encoding="utf-8"))
        parser.close()
        if not parser.title.strip():
            problems.append(f"{path.name}: no <title>")
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            linked.add(parts.path)
            if not (site / parts.path).is_file():
                problems.append(f"{path.name}: broken link {link!r}")
    problems += [f"{p.name}: no page links to it" for p in pages if p.name not in linked]
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_site.py SITE_DIR", file=sys.stderr)
        return 2
    site = Path(argv[0])
    problems = check(site)
    for problem in problems:
        print(f"check_site: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"check_site: {len(list(site.glob('*.html')))} pages in {site}, all links resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
