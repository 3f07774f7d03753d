"""Gitignore-style glob patterns, anchored at a directory: parsing, checking, matching.

The pattern language (``*``, ``?``, ``[abc]``, ``**``, directory patterns, ``!`` negation, the
``//`` root marker) is described in ``ggen.cache.files``, which selects a task's inputs and
outputs with it. It sits below the configuration and the cache, which both match paths.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ROOT_PREFIX = "//"
_GLOB_CHARS = re.compile(r"[*?\[\\]")


def check_pattern(pattern: str, *, allow_root: bool = True) -> str | None:
    """Why ``pattern`` is not a valid input/output glob, or None when it is valid.

    Outputs pass ``allow_root=False``: they are always relative to the workspace.
    """
    body = pattern[1:] if pattern.startswith("!") else pattern
    if body.startswith(ROOT_PREFIX):
        if not allow_root:
            return "must be relative to the workspace (no leading //)"
        body = body[len(ROOT_PREFIX) :]
    if not body.strip("/"):
        return "is empty"
    if "\0" in body:
        return "contains a NUL character"
    if ".." in body.split("/"):
        return 'must not contain ".." (use "//path" for a path from the project root)'
    try:
        re.compile(_glob_regex(_normalise(body)))
    except re.error as exc:
        return f"is not a valid glob ({exc})"
    return None


def _normalise(body: str) -> str:
    """Strip the decorations that do not change what a pattern means."""
    while body.startswith("./"):
        body = body[2:]
    return body.lstrip("/")


def _glob_regex(body: str) -> str:
    """A regex (for fullmatch) over relative posix paths equivalent to the anchored glob."""
    dir_only = body.endswith("/")
    parts = [p for p in body.rstrip("/").split("/") if p not in ("", ".")]
    if not parts:
        return ".+"
    regex = ""
    after_any_dirs = False  # the previous piece was "**/": it supplies its own "/"
    for i, part in enumerate(parts):
        sep = "/" if regex and not after_any_dirs else ""
        if part == "**" and i == len(parts) - 1:
            return regex + sep + ".+"  # everything below; the directory itself is no file
        if part == "**":
            regex += sep + "(?:[^/]+/)*"
            after_any_dirs = True
            continue
        regex += sep + _component_regex(part)
        after_any_dirs = False
    # a pattern naming a directory covers everything below it
    return regex + ("/.+" if dir_only else "(?:/.+)?")


def _component_regex(part: str) -> str:
    """Translate one path component: ``*``, ``?``, ``[...]`` and ``\\`` escapes."""
    out: list[str] = []
    i = 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(part):
            i += 1
            out.append(re.escape(part[i]))
        elif c == "[" and (end := _class_end(part, i)) > 0:
            inner = part[i + 1 : end]
            negate = inner[:1] in ("!", "^")
            if negate:
                inner = inner[1:]
            body = "".join(ch if ch == "-" else re.escape(ch) for ch in inner)
            out.append(("[^/" if negate else "[") + body + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _class_end(part: str, start: int) -> int:
    """Index of the "]" closing the class opened at ``start``, or -1 (then "[" is literal)."""
    i = start + 1
    if part[i : i + 1] in ("!", "^"):
        i += 1
    if part[i : i + 1] == "]":  # a leading "]" is a member, not the end
        i += 1
    end = part.find("]", i)
    return end


@dataclass(frozen=True)
class _Pattern:
    body: str  # normalised, relative to the workspace (or the root)
    include: bool
    literal: bool  # no wildcard: names one file or directory

    @property
    def prefix(self) -> str:
        """The directory below which every match lies ("" for the whole tree)."""
        if self.literal:
            return self.body.rstrip("/")
        parts = self.body.split("/")
        fixed: list[str] = []
        for part in parts[:-1]:
            if _GLOB_CHARS.search(part):
                break
            fixed.append(part)
        return "/".join(fixed)


class Globs:
    """An ordered list of anchored gitignore-style patterns; the last one that matches decides."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[_Pattern, ...] = tuple(_parse(patterns))
        # DOTALL: a file name may hold a newline, which "." would not match
        flags = re.DOTALL
        self._regexes = tuple(
            (re.compile(_glob_regex(p.body), flags), p.include) for p in self.patterns
        )
        self._any_negation = any(not p.include for p in self.patterns)
        if not self._any_negation and self.patterns:
            joined = "|".join(f"(?:{_glob_regex(p.body)})" for p in self.patterns)
            self._union: re.Pattern[str] | None = re.compile(joined, flags)
        else:
            self._union = None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def match(self, path: str) -> bool:
        """Whether the relative posix ``path`` is selected."""
        if self._union is not None:
            return self._union.fullmatch(path) is not None
        for regex, include in reversed(self._regexes):
            if regex.fullmatch(path) is not None:
                return include
        return False

    def prefixes(self) -> list[str]:
        """The directories (relative) to look under to find every match, none inside another."""
        found = sorted({p.prefix for p in self.patterns if p.include})
        kept: list[str] = []
        for prefix in found:
            if not any(prefix == k or prefix.startswith(k + "/") or k == "" for k in kept):
                kept.append(prefix)
        return kept

    def literals(self) -> list[str]:
        """The patterns that name one path exactly (no wildcard, not negated)."""
        return [p.body.rstrip("/") for p in self.patterns if p.include and p.literal]


@functools.lru_cache(maxsize=256)
def cached_globs(patterns: tuple[str, ...]) -> Globs:
    """The (immutable) ``Globs`` of ``patterns``, built once per distinct list."""
    return Globs(patterns)


def output_globs(outputs: Sequence[str]) -> Globs:
    """The globs deciding which workspace paths are a task's outputs (``//`` ones excluded:
    they are not the task's to match)."""
    return cached_globs(tuple(p for p in outputs if not p.lstrip("!").startswith(ROOT_PREFIX)))


def _parse(patterns: Iterable[str]) -> Iterable[_Pattern]:
    for raw in patterns:
        include = not raw.startswith("!")
        body = _normalise(raw if include else raw[1:])
        if not body.strip("/") or ".." in body.split("/") or "\0" in body:
            continue  # invalid (see check_pattern): matches nothing
        try:
            re.compile(_glob_regex(body))
        except re.error:
            continue
        literal = _GLOB_CHARS.search(body) is None
        yield _Pattern(body, include, literal)


def split_patterns(patterns: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate workspace-relative patterns from ``//`` root-relative ones (marker stripped)."""
    ws: list[str] = []
    root: list[str] = []
    for raw in patterns:
        neg = "!" if raw.startswith("!") else ""
        body = raw[len(neg) :]
        if body.startswith(ROOT_PREFIX):
            root.append(neg + body[len(ROOT_PREFIX) :])
        else:
            ws.append(raw)
    return ws, root
