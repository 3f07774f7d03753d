"""Typed access to parsed make.toml tables.

Owns what the loader (``ggen.make.loader``) builds on: ``Table`` (typed getters that turn every
wrong value into a ``ConfigError`` naming file, key path and fix), TOML type names and key
quoting for messages, did-you-mean suggestions, ``[env]`` parsing, size parsing (``parse_size``)
and the checks of the single-value fields of a ``[lifecycle.NAME]`` table (commands, globs,
timeout...).

Imported only when a make.toml is loaded or a size parsed, never by ``import ggen.make``.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, NoReturn

from ggen.errors import ConfigError, UsageError
from ggen.make.model import MAX_TIMEOUT_S, ConfigWarning, Env

if TYPE_CHECKING:
    from ggen.make.discover import Source

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")
_SIZE_UNITS: Mapping[str, int] = MappingProxyType(
    {
        "": 1,
        "b": 1,
        "kb": 1000,
        "mb": 1000**2,
        "gb": 1000**3,
        "tb": 1000**4,
        "kib": 1024,
        "mib": 1024**2,
        "gib": 1024**3,
        "tib": 1024**4,
    }
)
SIZE_HINT = 'write a byte count or a size such as "500MB", "5GB" or "1.5GiB"'

_EXPECTED_HINT: Mapping[str, str] = MappingProxyType(
    {
        "a string": 'write it in quotes, e.g. "value"',
        "a boolean": "write true or false",
        "an integer": "write a whole number",
        "a number": "write a number",
        "a table": "write it as a [table] or an inline { key = value } table",
        "an array of strings": 'write a list such as ["a", "b"]',
        "a string or an array of strings": 'write "a" or ["a", "b"]',
    }
)


def quote_key(name: str) -> str:
    """``name`` as it would be written as a TOML key: bare when possible, else quoted."""
    if _BARE_KEY.fullmatch(name):
        return name
    return json.dumps(name, ensure_ascii=False)


def join_key(prefix: str, name: str) -> str:
    """The key path of ``name`` inside the table at ``prefix``."""
    return f"{prefix}.{quote_key(name)}" if prefix else quote_key(name)


def type_name(value: object) -> str:
    """The TOML name of the type of a parsed value, for messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, datetime.datetime):
        return "datetime"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    return type(value).__name__


def _edits(a: str, b: str, bound: int) -> int:
    """The number of single-character insertions, deletions, substitutions and transpositions
    of neighbours that turn ``a`` into ``b`` (optimal string alignment), or ``bound + 1`` as
    soon as it is known to exceed ``bound``."""
    if abs(len(a) - len(b)) > bound:
        return bound + 1
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > bound:
            return bound + 1
        before, row = row, current
    return row[-1]


def typo_of(name: str, known: Iterable[str]) -> str | None:
    """The known key that ``name`` is a likely typo of, if any: the nearest one within
    ``max(1, len(known) // 4)`` edits (insert, delete, replace a character, or swap two
    neighbours). One edit always counts (``timout``, ``output``, ``lifecyle``, ``depend_on``);
    longer keys allow more (``paralel`` for ``parallel``). Names farther away are not typos but
    other keys: ``authors`` is not ``inputs``, ``dev`` is not ``env``, ``requires`` is not
    ``retries`` (the caller warns that they are ignored)."""
    best: tuple[int, str] | None = None
    for candidate in known:
        bound = max(1, len(candidate) // 4)
        distance = _edits(name, candidate, bound)
        if distance <= bound and (best is None or distance < best[0]):
            best = (distance, candidate)
    return best[1] if best else None


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (a likely typo), if any is close enough."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def listing(names: Sequence[str], limit: int = 12) -> str:
    """A short, readable list of names for a hint."""
    shown = ", ".join(quote_key(n) for n in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return shown or "none"


def format_number(value: float) -> str:
    """A number for a message; integers too long to print (TOML allows them) are summarised."""
    if isinstance(value, int) and value.bit_length() > 64:
        return "a number too large to use"
    return str(value)


def raise_error(file: str, key: str | None, message: str, hint: str | None = None) -> NoReturn:
    raise ConfigError(message, file=file, key=key or None, hint=hint)


def _wrong_type(file: str, key: str, expected: str, value: object) -> NoReturn:
    raise_error(
        file, key, f"expected {expected}, got {type_name(value)}", _EXPECTED_HINT.get(expected)
    )


class Table:
    """One parsed TOML table with the file and key path it came from, for typed access.

    ``warnings`` is the load's list of things ignored (shared by every table of a load), where
    ``check_keys`` and ``parse_env`` put what they do not read.
    """

    __slots__ = ("data", "file", "path", "warnings")

    def __init__(
        self,
        data: Mapping[str, object],
        file: str,
        path: str,
        warnings: list[ConfigWarning] | None = None,
    ) -> None:
        self.data = data
        self.file = file
        self.path = path
        self.warnings = warnings if warnings is not None else []

    @classmethod
    def of(
        cls, value: object, file: str, path: str, warnings: list[ConfigWarning] | None = None
    ) -> Table:
        if not isinstance(value, dict):
            _wrong_type(file, path, "a table", value)
        return cls(value, file, path, warnings)

    def key(self, name: str) -> str:
        return join_key(self.path, name)

    def fail(self, name: str | None, message: str, hint: str | None = None) -> NoReturn:
        raise_error(self.file, self.path if name is None else self.key(name), message, hint)

    def warn(self, name: str, message: str, hint: str | None = None) -> None:
        """Record that the key ``name`` of this table is ignored: what it is, what is read."""
        self.warnings.append(ConfigWarning(self.file, self.key(name), message, hint))

    def check_keys(
        self, known: Sequence[str], where: str | None = None, old: Collection[str] = ()
    ) -> None:
        """Reject an unknown key that is a likely typo of a ``known`` one; warn about the others.

        ``old`` names keys the old format wrote here and ggen does not read: always a warning,
        even when one looks like a typo (``cache_key`` next to ``cache``). See ``typo_of``.
        """
        for name, value in self.data.items():
            if name in known:
                continue
            what = "unknown table" if isinstance(value, dict) else "unknown key"
            if where:
                what += f" in {where}"
            close = None if name in old else typo_of(name, known)
            if close is not None:
                self.fail(name, f'{what}, did you mean "{close}"?')
            self.warn(name, what, f"known here: {listing(known, 20)}")

    def sub(self, name: str) -> Table | None:
        value = self.data.get(name)
        if value is None:
            return None
        return Table.of(value, self.file, self.key(name), self.warnings)

    def str_(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            _wrong_type(self.file, self.key(name), "a string", value)
        _check_nul(self.file, self.key(name), value)
        return value

    def required_str(self, name: str, example: str) -> str:
        value = self.str_(name)
        if value is None:
            where = f"[{self.path}]" if self.path else "the file"
            self.fail(name, "missing required key", f"add {name} = {example} to {where}")
        if not value:
            self.fail(name, "must not be empty", f"write it as {name} = {example}")
        return value

    def bool_(self, name: str, default: bool) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            _wrong_type(self.file, self.key(name), "a boolean", value)
        return value

    def opt_bool(self, name: str) -> bool | None:
        return self.bool_(name, False) if name in self.data else None

    def int_(self, name: str, minimum: int, maximum: int | None = None) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            _wrong_type(self.file, self.key(name), "an integer", value)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.fail(
                name,
                f"must be {bound}, got {format_number(value)}",
                f"write a whole number {bound}",
            )
        return value

    def str_list(self, name: str, *, single: bool = False) -> tuple[str, ...] | None:
        """An array of strings (or, with ``single``, one string standing for a list of one)."""
        value = self.data.get(name)
        if value is None:
            return None
        if single and isinstance(value, str):
            return (value,)
        expected = "a string or an array of strings" if single else "an array of strings"
        if not isinstance(value, list):
            _wrong_type(self.file, self.key(name), expected, value)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                _wrong_type(self.file, f"{self.key(name)}[{i}]", "a string", item)
            _check_nul(self.file, f"{self.key(name)}[{i}]", item)
        return tuple(value)


def _check_nul(file: str, key: str, text: str) -> None:
    """Refuse a NUL character: no command, path, name or environment value can hold one."""
    if "\0" in text:
        raise_error(file, key, "contains a NUL character", "remove it")


def check_name(table: Table, name: str, what: str) -> None:
    """A workspace or phase name reaches commands as ``GGEN_WORKSPACE``/``GGEN_PHASE``, and an
    environment value cannot hold a NUL character."""
    if "\0" in name:
        table.fail(None, f"a {what} name cannot contain a NUL character", f"rename the {what}")


def _env_name_error(name: str) -> str | None:
    if not name:
        return "an environment variable name must not be empty"
    if "=" in name or "\0" in name:
        return "an environment variable name cannot contain '=' or NUL"
    return None


def parse_env(
    value: object, file: str, path: str, warnings: list[ConfigWarning] | None = None
) -> dict[str, str]:
    """An ``[env]`` table: names to strings; integers, floats and booleans become strings.

    A table in place of a value is the old format's per-environment profile
    (``[env.production]``): ignored, with a warning in ``warnings``; so is any other value
    that is not a string, number or boolean (an array), which the old loader ignored too."""
    table = Table.of(value, file, path, warnings)
    env: dict[str, str] = {}
    for name, raw in table.data.items():
        if isinstance(raw, dict):
            table.warn(
                name,
                "a table where a variable's value is expected (a per-environment profile?)",
                'write NAME = "value"',
            )
            continue
        problem = _env_name_error(name)
        if problem:
            table.fail(name, problem, "rename the variable")
        if isinstance(raw, str):
            text = raw
        elif isinstance(raw, bool):
            text = "true" if raw else "false"
        elif isinstance(raw, (int, float)):
            try:
                text = str(raw)
            except ValueError:  # an integer of more than 4300 digits (hex in the file)
                table.fail(name, "the number is too large", "write it as a string")
        else:
            table.warn(
                name,
                f"expected a string, got {type_name(raw)}",
                'write NAME = "value"',
            )
            continue
        if "\0" in text:
            table.fail(name, "a value cannot contain a NUL character", "remove it")
        env[name] = text
    return env


def sorted_env(env: Mapping[str, str]) -> Env:
    return tuple(sorted(env.items()))


def size_bytes(value: object) -> int | None:
    """Bytes from an integer or a size such as ``"500MB"``; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    match = _SIZE.fullmatch(value)
    if match is None:
        return None
    unit = _SIZE_UNITS.get(match.group(2).lower())
    amount = float(match.group(1)) * (unit or 0)
    if unit is None or not math.isfinite(amount):
        return None
    return round(amount)


def parse_size(value: object, what: str = "size") -> int:
    """Bytes from an integer or a size such as ``"500MB"``, ``"5GB"``, ``"1.5GiB"``.

    KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers of 1024 (units are case-insensitive).
    Shared by ``[cache] max_size`` and the command line; ``what`` names the option in the
    ``UsageError`` raised for anything that is not a positive size.
    """
    size = size_bytes(value)
    if size is None:
        raise UsageError(f"{what}: cannot read {json.dumps(str(value))} as a size ({SIZE_HINT})")
    if size <= 0:
        raise UsageError(f"{what}: must be positive, got {format_number(size)} ({SIZE_HINT})")
    return size


# -- [project] workspaces ----------------------------------------------------------------------


def workspace_sources(table: Table, root: str) -> tuple[Source, ...]:
    """``[project] workspaces``: the sources to discover workspaces from (none when absent).

    ``"auto"`` means every source the root declares a workspace in; a list names them, and an
    unknown name is an error suggesting the nearest one.
    """
    from ggen.make.discover import Source, sources_present

    value = table.data.get("workspaces")
    if value is None:
        return ()
    if value == "auto":
        return sources_present(root)
    names = [s.value for s in Source]
    hint = 'write "auto" or a list of: ' + ", ".join(json.dumps(n) for n in names)
    if not isinstance(value, (list, str)):
        raise_error(
            table.file, table.key("workspaces"), f"expected a list, got {type_name(value)}", hint
        )
    sources: list[Source] = []
    for i, name in enumerate([value] if isinstance(value, str) else value):
        key = table.key("workspaces") + ("" if isinstance(value, str) else f"[{i}]")
        if not isinstance(name, str):
            _wrong_type(table.file, key, "a string", name)
        if name not in names:
            close = suggest(name, [*names, "auto"])
            more = f', did you mean "{close}"?' if close else ""
            raise_error(table.file, key, f"unknown workspace source {json.dumps(name)}{more}", hint)
        sources.append(Source(name))
    return tuple(sources)


# -- fields of a [lifecycle.NAME] table ---------------------------------------------------------


def phase_commands(table: Table) -> tuple[tuple[str, ...], str | None]:
    """(commands, script): exactly one of ``command`` (one), ``commands`` (a non-empty list)
    and ``script`` (a package.json script name, run by ``ggen.make.scripts``), no empty one. As the
    old loader did, a phase with none of them loads with no command (a warning), and one with
    ``command`` and ``commands`` runs ``command`` (a warning)."""
    given = [k for k in ("command", "commands", "script") if k in table.data]
    if given == ["command", "commands"]:  # the old loader took "command"
        table.warn(
            "commands",
            'both "command" and "commands" are set: "command" runs',
            "keep one of them",
        )
        given = ["command"]
    if len(given) > 1:
        both = " and ".join(f'"{k}"' for k in given)
        table.fail(None, f"both {both} are set", "keep exactly one of command, commands, script")
    if not given:  # the old loader accepted it: its tasks end as no-script (nothing to do)
        table.warnings.append(
            ConfigWarning(
                table.file,
                table.path,
                "no command: the phase has nothing to do",
                'add command = "...", commands = ["...", "..."] or script = "build" (a package.json'
                " script)",
                ignored=False,
            )
        )
        return (), None
    if given[0] == "script":
        script = table.str_("script") or ""
        if not script.strip():
            table.fail("script", "must not be empty", 'name a package.json script, e.g. "build"')
        return (), script
    if given[0] == "command":
        command = table.str_("command") or ""
        if not command.strip():
            table.fail("command", "must not be empty", "write the shell command to run")
        return (command,), None
    commands = table.str_list("commands") or ()
    if not commands:
        table.fail("commands", "must list at least one command", 'write ["cmd1", "cmd2"]')
    for i, command in enumerate(commands):
        if not command.strip():
            raise_error(
                table.file,
                f"{table.key('commands')}[{i}]",
                "must not be empty",
                "remove it or write the command",
            )
    return commands, None


def phase_workspaces(table: Table) -> tuple[str, ...] | None:
    """``workspaces``: None when absent (every workspace), else a non-empty list."""
    listed = table.str_list("workspaces")
    if listed is not None and not listed:
        table.fail(
            "workspaces",
            "must name at least one workspace",
            'remove the key to run on every workspace, or list some ("." = the root)',
        )
    return listed


def phase_globs(table: Table, name: str) -> tuple[str, ...] | None:
    """``inputs`` or ``outputs``: relative patterns (``//`` = the root; outputs stay inside)."""
    patterns = table.str_list(name)
    if patterns is None:
        return None
    for i, pattern in enumerate(patterns):
        key = f"{table.key(name)}[{i}]"
        if not pattern:
            raise_error(table.file, key, "must not be empty", "remove it")
        if pattern.startswith("/") and not pattern.startswith("//"):
            raise_error(
                table.file,
                key,
                f"absolute path {json.dumps(pattern)}",
                'write it relative to the workspace, or start it with "//" for the root',
            )
        if name == "outputs" and ".." in pattern.split("/"):
            raise_error(
                table.file,
                key,
                f"{json.dumps(pattern)} leaves the workspace",
                "outputs must lie inside the workspace",
            )
    return patterns


def phase_env_inputs(table: Table) -> tuple[str, ...]:
    """``env_inputs``: environment variable names whose values enter the key."""
    names = table.str_list("env_inputs") or ()
    for i, name in enumerate(names):
        problem = _env_name_error(name)
        if problem:
            raise_error(table.file, f"{table.key('env_inputs')}[{i}]", problem, "fix the name")
    return names


def phase_timeout(table: Table) -> float | None:
    """``timeout``: a positive number of seconds up to ``MAX_TIMEOUT_S``, or None."""
    value = table.data.get("timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _wrong_type(table.file, table.key("timeout"), "a number", value)
    seconds = float(value) if not isinstance(value, int) or value.bit_length() < 64 else math.inf
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S):
        table.fail(
            "timeout",
            f"must be a positive number of seconds up to {MAX_TIMEOUT_S} (a week), "
            f"got {format_number(value)}",
            "write e.g. timeout = 600, or remove it for no timeout",
        )
    return seconds
