"""TOML files: reading one with errors that name the place, and the line a key was written on.

``read_toml`` turns every failure (I/O, encoding, syntax) into a ``ConfigError`` naming the
file, line and column; ``key_line`` finds where a key of a loaded table stands, for messages.
"""

from __future__ import annotations

import json
import re

import tomli

from ggen.errors import ConfigError

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


_DECODE_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def read_toml(path: str, display: str) -> dict[str, object]:
    """Parse one TOML file; every failure (I/O, encoding, syntax) becomes a ConfigError."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ConfigError(
            "not found", file=display, hint="create make.toml or use -C DIR to name the project"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read: {exc.strerror or exc}", file=display, hint="check the file's permissions"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        line = raw.count(b"\n", 0, start) + 1
        column = start - (raw.rfind(b"\n", 0, start) + 1) + 1
        raise ConfigError(
            "not valid UTF-8", file=display, line=line, column=column, hint="save it as UTF-8"
        ) from None
    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        message, line_no, column_no = _syntax_error_parts(exc)
        raise ConfigError(
            message, file=display, line=line_no, column=column_no, hint="fix the TOML syntax"
        ) from None
    except ValueError as exc:  # tomli lets int() refuse numbers of more than 4300 digits
        raise ConfigError(str(exc), file=display, hint="shorten the number") from None
    except RecursionError:
        raise ConfigError(
            "arrays or inline tables are nested too deeply",
            file=display,
            hint="flatten the nesting",
        ) from None


def _syntax_error_parts(exc: tomli.TOMLDecodeError) -> tuple[str, int | None, int | None]:
    """Message, line and column of a TOML syntax error (attributes in tomli >= 2.1, else text)."""
    message = getattr(exc, "msg", None)
    line = getattr(exc, "lineno", None)
    column = getattr(exc, "colno", None)
    if isinstance(message, str) and isinstance(line, int):
        return message, line, column if isinstance(column, int) else None
    text = str(exc)
    found = _DECODE_POSITION.search(text)
    if found is None:
        return text, None, None
    return text[: found.start()].rstrip(), int(found.group(1)), int(found.group(2))
