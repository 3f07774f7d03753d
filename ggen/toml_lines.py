"""Where in a TOML document a key path is written, for the line number of an error message.

TOML parsers give positions for syntax errors only; a key that parses but is wrong (an unknown
key, a value of the wrong type, a reference to nothing) is reported by its dotted path, such as
``lifecycle.build.timeout`` or ``workspace."@acme/ui".path``. ``key_line`` scans the text for
the table headers and ``key = value`` lines and answers the line that writes the longest leading
part of that path: the key itself when it is written on a line of its own, else the header of
its table, else the first dotted key inside it (``lifecycle.build.outputs = [...]``). Inline
tables and arrays count as their key's line. Multi-line strings are skipped, so a command that
looks like ``key = value`` is never taken for one.
"""

from __future__ import annotations

import json
import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_BASIC = re.compile(r'"(?:[^"\\]|\\.)*"')
_LITERAL = re.compile(r"'[^']*'")
_SPACE = re.compile(r"[ \t]*")
_INDEX = re.compile(r"\[\d+\]")


def split_key(text: str, pos: int = 0) -> tuple[list[str], int]:
    """The components of the dotted key starting at ``pos`` in ``text``, and where it ends;
    no components if there is no key there."""
    parts: list[str] = []
    while True:
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        for pattern in (_BARE, _BASIC, _LITERAL):
            m = pattern.match(text, pos)
            if m:
                break
        else:
            return [], pos
        token = m.group()
        if token.startswith('"'):
            try:
                token = json.loads(token)
            except ValueError:
                return [], pos
        elif token.startswith("'"):
            token = token[1:-1]
        parts.append(token)
        pos = _SPACE.match(text, m.end()).end()  # type: ignore[union-attr]
        if not text.startswith(".", pos):
            return parts, pos
        pos += 1


def key_path(key: str) -> list[str]:
    """The components of a key path as ggen's messages write it (indices dropped)."""
    parts, _ = split_key(_INDEX.sub("", key))
    return parts


def key_line(text: str, key: str) -> int | None:
    """The 1-based line of ``text`` that writes the longest leading part of ``key``."""
    wanted = key_path(key)
    if not wanted:
        return None
    best: tuple[int, int] | None = None  # (score, line)
    table: list[str] = []
    fence: str | None = None  # the quotes of the multi-line string being skipped
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is not None:
            if line.count(fence) % 2 == 1:
                fence = None
            continue
        stripped = line.strip()
        written: list[str] | None = None
        if stripped.startswith("["):
            inner = stripped[2:] if stripped.startswith("[[") else stripped[1:]
            parts, end = split_key(inner)
            if parts and inner[end:].lstrip().startswith("]"):
                table = parts
                written = parts
        else:
            parts, end = split_key(line)
            if parts and line[end:].startswith("="):
                written = table + parts
                value = line[end + 1 :]
                for quotes in ('"""', "'''"):
                    if value.count(quotes) % 2 == 1:
                        fence = quotes
        if written is None:
            continue
        if written == wanted[: len(written)]:
            score = 2 * len(written)  # the key itself, or a table it is in
        elif written[: len(wanted)] == wanted:
            score = 2 * len(wanted) - 1  # a key inside it: its first mention (dotted keys)
        else:
            continue
        if best is None or score > best[0]:
            best = (score, number)
    return best[1] if best else None
