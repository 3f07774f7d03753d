"""make.toml -> an immutable, picklable snapshot of the project (``Make``), with validation.

The snapshot is what every other part of ggen reads: the planner builds the task graph from it,
workers receive it once (pickled) and never read make.toml themselves.

The model (frozen dataclasses) comes first, the loader (``load_make``) below it. The loader turns
every problem with a file into a ``ConfigError`` naming the file, the key path and the fix.
"""

from __future__ import annotations

import datetime
import difflib
import enum
import json
import math
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import NoReturn

import tomli

from ggen.errors import ConfigError, CycleError, UsageError

MAKE_FILE = "make.toml"
ROOT_WORKSPACE = "."

Env = tuple[tuple[str, str], ...]
"""An environment as sorted (name, value) pairs: immutable and in a canonical order."""


def env_dict(env: Env) -> dict[str, str]:
    """The pairs of an ``Env`` as a fresh dict."""
    return dict(env)


class ExecutorKind(enum.Enum):
    """Where tasks run."""

    LOKY = "loky"
    INLINE = "inline"
    DASK = "dask"


@dataclass(frozen=True)
class Phase:
    """One ``[lifecycle.NAME]`` table, as declared at the root or in a workspace's make.toml."""

    name: str
    commands: tuple[str, ...]
    description: str | None = None
    workspaces: tuple[str, ...] | None = None  # None: every workspace
    parallel: bool | None = None  # None: not said; the command line decides
    depends_on: tuple[str, ...] = ()  # "^build" (in dependency workspaces) or "codegen"
    inputs: tuple[str, ...] | None = None  # None: every file git would not ignore
    outputs: tuple[str, ...] = ()
    env: Env = ()
    env_inputs: tuple[str, ...] = ()
    cache: bool = True
    timeout: float | None = None
    retries: int = 0
    watch: tuple[str, ...] = ()  # accepted from the old format, shown by `ggen show`
    port: int | None = None  # accepted from the old format, shown by `ggen show`
    source: str = MAKE_FILE  # the file (relative to the root) that declared this phase


@dataclass(frozen=True)
class Workspace:
    """One ``[workspace.NAME]`` table (or the implicit root workspace ``.``)."""

    name: str
    path: str  # posix, relative to the project root, "." for the root itself
    depends_on: tuple[str, ...] = ()
    env: Env = ()  # root [env] with the workspace make.toml's [env] merged over it
    phases: tuple[Phase, ...] = ()  # this workspace's own make.toml [lifecycle] tables
    description: str | None = None

    @cached_property
    def _phase_map(self) -> Mapping[str, Phase]:
        return {p.name: p for p in self.phases}

    def own_phase(self, name: str) -> Phase | None:
        """The phase this workspace's own make.toml declares under ``name``, if any."""
        return self._phase_map.get(name)


@dataclass(frozen=True)
class Hooks:
    """The ``[hooks]`` table: lists of phase names."""

    before_all: tuple[str, ...] = ()
    after_all: tuple[str, ...] = ()
    on_error: tuple[str, ...] = ()
    before: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (phase, hooks) for before_PHASE
    after: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (phase, hooks) for after_PHASE

    def before_phase(self, phase: str) -> tuple[str, ...]:
        return dict(self.before).get(phase, ())

    def after_phase(self, phase: str) -> tuple[str, ...]:
        return dict(self.after).get(phase, ())


@dataclass(frozen=True)
class CacheConfig:
    """The ``[cache]`` table."""

    dir: str | None = None  # as written; relative paths are relative to the project root
    max_size: int | None = None  # bytes
    remote: str | None = None
    remote_read_only: bool = False


@dataclass(frozen=True)
class ExecutorConfig:
    """The ``[executor]`` table."""

    kind: ExecutorKind = ExecutorKind.LOKY
    scheduler: str | None = None
    jobs: int | None = None


@dataclass(frozen=True)
class Project:
    """The ``[project]`` table."""

    name: str
    version: str | None = None
    type: str | None = None
    description: str | None = None
    inputs: tuple[str, ...] = ()  # root files that enter every key


@dataclass(frozen=True)
class Make:
    """The whole configuration of one project: immutable and picklable."""

    root: str  # absolute path of the project root
    project: Project
    env: Env = ()
    cache: CacheConfig = field(default_factory=CacheConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    workspaces: tuple[Workspace, ...] = ()  # declared ones, in file order
    lifecycle: tuple[Phase, ...] = ()  # the root's phases, in file order
    hooks: Hooks = field(default_factory=Hooks)
    file: str = MAKE_FILE  # path of the root make.toml, as shown in messages

    @cached_property
    def _workspace_map(self) -> Mapping[str, Workspace]:
        return {w.name: w for w in self.workspaces}

    @cached_property
    def _phase_map(self) -> Mapping[str, Phase]:
        return {p.name: p for p in self.lifecycle}

    @cached_property
    def root_workspace(self) -> Workspace:
        """The project root as a workspace named ``.`` (declared or implicit)."""
        declared = self._workspace_map.get(ROOT_WORKSPACE)
        return declared or Workspace(name=ROOT_WORKSPACE, path=".", env=self.env)

    def workspace(self, name: str) -> Workspace | None:
        """The workspace called ``name`` (``.`` is the project root), or None."""
        if name == ROOT_WORKSPACE:
            return self.root_workspace
        return self._workspace_map.get(name)

    def phase(self, name: str) -> Phase | None:
        """The root make.toml's phase called ``name``, or None."""
        return self._phase_map.get(name)

    def phase_for(self, workspace: str, name: str) -> Phase | None:
        """The phase ``name`` for ``workspace``: its own make.toml's, else the root's."""
        ws = self.workspace(workspace)
        if ws is not None:
            own = ws.own_phase(name)
            if own is not None:
                return own
        return self._phase_map.get(name)

    def phase_names(self) -> tuple[str, ...]:
        """Every phase name declared at the root or in any workspace, root ones first."""
        names = [p.name for p in self.lifecycle]
        for ws in self.workspaces:
            names.extend(p.name for p in ws.phases if p.name not in names)
        return tuple(names)

    def default_workspaces(self) -> tuple[str, ...]:
        """The workspaces a phase runs on when it lists none: all declared, else the root."""
        return tuple(w.name for w in self.workspaces) or (ROOT_WORKSPACE,)


# --------------------------------------------------------------------------------------- loader

_TOP_KEYS = ("project", "env", "cache", "executor", "workspace", "lifecycle", "hooks")
_WORKSPACE_FILE_KEYS = ("env", "lifecycle")
_PROJECT_KEYS = ("name", "version", "type", "description", "inputs")
_CACHE_KEYS = ("dir", "max_size", "remote", "remote_read_only")
_EXECUTOR_KEYS = ("kind", "scheduler", "jobs")
_WORKSPACE_KEYS = ("path", "depends_on", "description")
_PHASE_KEYS = (
    "description",
    "command",
    "commands",
    "workspaces",
    "parallel",
    "depends_on",
    "inputs",
    "outputs",
    "env",
    "env_inputs",
    "cache",
    "timeout",
    "retries",
    "watch",
    "port",
)
_GLOBAL_HOOKS = ("before_all", "after_all", "on_error")

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
_SIZE_HINT = 'write a byte count or a size such as "500MB", "5GB" or "1.5GiB"'
_DECODE_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")

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


def _quote(name: str) -> str:
    """``name`` as it would be written as a TOML key: bare when possible, else quoted."""
    if _BARE_KEY.fullmatch(name):
        return name
    return json.dumps(name, ensure_ascii=False)


def _join(prefix: str, name: str) -> str:
    """The key path of ``name`` inside the table at ``prefix``."""
    return f"{prefix}.{_quote(name)}" if prefix else _quote(name)


def _type_name(value: object) -> str:
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


def _suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (a likely typo), if any is close enough."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _listing(names: Sequence[str], limit: int = 12) -> str:
    """A short, readable list of names for a hint."""
    shown = ", ".join(_quote(n) for n in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return shown or "none"


def _number(value: float) -> str:
    """A number for a message; integers too long to print (TOML allows them) are summarised."""
    if isinstance(value, int) and value.bit_length() > 64:
        return "a number too large to use"
    return str(value)


def _fail(file: str, key: str | None, message: str, hint: str | None = None) -> NoReturn:
    raise ConfigError(message, file=file, key=key or None, hint=hint)


def _wrong_type(file: str, key: str, expected: str, value: object) -> NoReturn:
    _fail(file, key, f"expected {expected}, got {_type_name(value)}", _EXPECTED_HINT.get(expected))


class _Table:
    """One parsed TOML table with the file and key path it came from, for typed access."""

    __slots__ = ("data", "file", "path")

    def __init__(self, data: Mapping[str, object], file: str, path: str) -> None:
        self.data = data
        self.file = file
        self.path = path

    @classmethod
    def of(cls, value: object, file: str, path: str) -> _Table:
        if not isinstance(value, dict):
            _wrong_type(file, path, "a table", value)
        return cls(value, file, path)

    def key(self, name: str) -> str:
        return _join(self.path, name)

    def fail(self, name: str | None, message: str, hint: str | None = None) -> NoReturn:
        _fail(self.file, self.path if name is None else self.key(name), message, hint)

    def check_keys(self, known: Sequence[str], where: str | None = None) -> None:
        """Reject any key not in ``known``, suggesting the nearest known one."""
        for name, value in self.data.items():
            if name in known:
                continue
            what = "unknown table" if isinstance(value, dict) else "unknown key"
            if where:
                what += f" in {where}"
            close = _suggest(name, known)
            if close is not None:
                self.fail(name, f'{what}, did you mean "{close}"?')
            self.fail(name, what, f"expected one of: {_listing(known)}")

    def sub(self, name: str) -> _Table | None:
        value = self.data.get(name)
        return None if value is None else _Table.of(value, self.file, self.key(name))

    def str_(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            _wrong_type(self.file, self.key(name), "a string", value)
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
                name, f"must be {bound}, got {_number(value)}", f"write a whole number {bound}"
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
        return tuple(value)


def _env_name_error(name: str) -> str | None:
    if not name:
        return "an environment variable name must not be empty"
    if "=" in name or "\0" in name:
        return "an environment variable name cannot contain '=' or NUL"
    return None


def _parse_env(value: object, file: str, path: str) -> dict[str, str]:
    """An ``[env]`` table: names to strings; integers, floats and booleans become strings."""
    table = _Table.of(value, file, path)
    env: dict[str, str] = {}
    for name, raw in table.data.items():
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
            _wrong_type(file, table.key(name), "a string", raw)
        if "\0" in text:
            table.fail(name, "a value cannot contain a NUL character", "remove it")
        env[name] = text
    return env


def _sorted_env(env: Mapping[str, str]) -> Env:
    return tuple(sorted(env.items()))


def _size_bytes(value: object) -> int | None:
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
    size = _size_bytes(value)
    if size is None:
        raise UsageError(f"{what}: cannot read {json.dumps(str(value))} as a size ({_SIZE_HINT})")
    if size <= 0:
        raise UsageError(f"{what}: must be positive, got {_number(size)} ({_SIZE_HINT})")
    return size


def _read_toml(path: str, display: str) -> dict[str, object]:
    """Parse one TOML file; every failure (I/O, encoding, syntax) becomes a ConfigError."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        _fail(display, None, "not found", "create make.toml or use -C DIR to name the project")
    except OSError as exc:
        _fail(display, None, f"cannot read: {exc.strerror or exc}", "check the file's permissions")
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
        message, line_no, column_no = _decode_error_parts(exc)
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


def _decode_error_parts(exc: tomli.TOMLDecodeError) -> tuple[str, int | None, int | None]:
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


def find_make_file(root: str | os.PathLike[str]) -> Path:
    """The make.toml of the project whose root directory is ``root``.

    Parent directories are not searched: the project root is the directory ggen starts in or the
    one named with ``-C DIR``, so what runs never depends on where a make.toml happens to lie.
    """
    root_path = Path(root)
    file = root_path / MAKE_FILE
    if os.path.isfile(file):
        return file
    display = os.path.normpath(file)
    if os.path.isfile(root_path):
        _fail(
            os.path.normpath(root_path),
            None,
            "not a directory",
            "name the project directory (the one that holds make.toml), not a file",
        )
    if not os.path.isdir(root_path):
        _fail(
            display, None, f"no such directory: {root_path}", "use -C DIR with a project directory"
        )
    if os.path.exists(file):
        _fail(display, None, "not a regular file", "make.toml must be a file")
    _fail(
        display, None, "not found", "create make.toml or use -C DIR to name the project directory"
    )


def load_make(start: str | os.PathLike[str]) -> Make:
    """Read, validate and snapshot the project whose root directory is ``start``.

    Reads the root make.toml and the make.toml of every workspace that has one, checks every key,
    type, path and cross-reference, and returns the immutable ``Make``. Any problem raises a
    ``ConfigError`` (``CycleError`` for a workspace dependency cycle) naming file, key and fix.
    """
    file = find_make_file(start)
    root_given = os.fspath(start)
    display = os.path.normpath(file)
    doc = _read_toml(os.fspath(file), display)
    return _Loader(root_given, os.path.realpath(root_given), display).load(doc)


class _Loader:
    """One load: the root's location and the file shown in messages."""

    def __init__(self, root_given: str, root_real: str, file: str) -> None:
        self.root_given = root_given
        self.root_real = root_real
        self.root_prefix = root_real if root_real.endswith(os.sep) else root_real + os.sep
        self.file = file
        # Real path (and whether it is a directory) of each relative path already walked, so
        # that workspaces sharing parents cost one lstat each.
        self.walked: dict[str, tuple[str, bool]] = {}

    def load(self, doc: dict[str, object]) -> Make:
        top = _Table(doc, self.file, "")
        top.check_keys(_TOP_KEYS)
        project = self.project(top)
        env = _parse_env(doc.get("env", {}), self.file, "env")
        cache = self.cache(top.sub("cache"))
        executor = self.executor(top.sub("executor"))
        lifecycle = self.lifecycle(top.sub("lifecycle"), self.file, MAKE_FILE)
        workspaces = self.workspaces(top.sub("workspace"), env)

        phase_names = {p.name: p.source for p in lifecycle}
        for ws in workspaces:
            for p in ws.phases:
                phase_names.setdefault(p.name, p.source)
        hooks = self.hooks(top.sub("hooks"), phase_names)

        ws_names = [w.name for w in workspaces]
        known_ws = {*ws_names, ROOT_WORKSPACE}
        for ws in workspaces:
            key = f"{_join('workspace', ws.name)}.depends_on"
            self.check_refs(self.file, key, ws.depends_on, known_ws, ws_names, "workspace")
        self.check_phase_refs(lifecycle, self.file, known_ws, ws_names, phase_names)
        for ws in workspaces:
            if ws.phases:
                own_file = self.own_file_display(ws.path)
                self.check_phase_refs(ws.phases, own_file, known_ws, ws_names, phase_names)
        self.check_cycles(workspaces)

        return Make(
            root=self.root_real,
            project=project,
            env=_sorted_env(env),
            cache=cache,
            executor=executor,
            workspaces=workspaces,
            lifecycle=lifecycle,
            hooks=hooks,
            file=self.file,
        )

    # -- simple tables ------------------------------------------------------------------------

    def project(self, top: _Table) -> Project:
        table = top.sub("project")
        if table is None:
            _fail(
                self.file,
                "project",
                "missing [project] table",
                'add [project] with name = "my-project"',
            )
        table.check_keys(_PROJECT_KEYS)
        return Project(
            name=table.required_str("name", '"my-project"'),
            version=table.str_("version"),
            type=table.str_("type"),
            description=table.str_("description"),
            inputs=table.str_list("inputs") or (),
        )

    def cache(self, table: _Table | None) -> CacheConfig:
        if table is None:
            return CacheConfig()
        table.check_keys(_CACHE_KEYS)
        directory = table.str_("dir")
        if directory == "":
            table.fail("dir", "must not be empty", "remove it to use the default cache directory")
        max_size = None
        if "max_size" in table.data:
            raw = table.data["max_size"]
            max_size = _size_bytes(raw)
            if max_size is None:
                shown = json.dumps(raw) if isinstance(raw, str) else _type_name(raw)
                table.fail("max_size", f"cannot read {shown} as a size", _SIZE_HINT)
            if max_size <= 0:
                table.fail("max_size", f"must be positive, got {_number(max_size)}", _SIZE_HINT)
        remote = table.str_("remote")
        if remote is not None and not remote.startswith(("http://", "https://")):
            table.fail(
                "remote",
                f"not an HTTP URL: {json.dumps(remote)}",
                'write an http:// or https:// URL, e.g. "http://127.0.0.1:9090/ggen"',
            )
        return CacheConfig(
            dir=directory,
            max_size=max_size,
            remote=remote,
            remote_read_only=table.bool_("remote_read_only", False),
        )

    def executor(self, table: _Table | None) -> ExecutorConfig:
        if table is None:
            return ExecutorConfig()
        table.check_keys(_EXECUTOR_KEYS)
        kind = ExecutorKind.LOKY
        written = table.str_("kind")
        if written is not None:
            choices = [k.value for k in ExecutorKind]
            if written not in choices:
                close = _suggest(written, choices)
                more = f', did you mean "{close}"?' if close else ""
                table.fail(
                    "kind",
                    f"unknown executor {json.dumps(written)}{more}",
                    f"expected one of: {', '.join(choices)}",
                )
            kind = ExecutorKind(written)
        return ExecutorConfig(
            kind=kind, scheduler=table.str_("scheduler"), jobs=table.int_("jobs", 1)
        )

    def hooks(self, table: _Table | None, phases: Mapping[str, str]) -> Hooks:
        if table is None:
            return Hooks()
        names = list(phases)
        found: dict[str, tuple[str, ...]] = {}
        before: list[tuple[str, tuple[str, ...]]] = []
        after: list[tuple[str, tuple[str, ...]]] = []
        for key in table.data:
            when, _, phase = key.partition("_")
            if key in _GLOBAL_HOOKS:
                pass
            elif when in ("before", "after") and phase:
                if phase not in phases:
                    close = _suggest(phase, names)
                    more = f', did you mean "{when}_{close}"?' if close else ""
                    table.fail(
                        key,
                        f'no phase named "{phase}"{more}',
                        f"declare [lifecycle.{_quote(phase)}] or use one of: "
                        f"{', '.join(_GLOBAL_HOOKS)}, before_PHASE, after_PHASE",
                    )
            else:
                known = [*_GLOBAL_HOOKS, *(f"{w}_{p}" for w in ("before", "after") for p in names)]
                close = _suggest(key, known)
                if close is not None:
                    table.fail(key, f'unknown key, did you mean "{close}"?')
                table.fail(
                    key,
                    "unknown key",
                    f"expected one of: {', '.join(_GLOBAL_HOOKS)}, before_PHASE, after_PHASE",
                )
            listed = table.str_list(key, single=True) or ()
            for i, hook in enumerate(listed):
                index = f"[{i}]" if isinstance(table.data[key], list) else ""
                self.check_ref(self.file, f"{table.key(key)}{index}", hook, phases, names, "phase")
            if key in _GLOBAL_HOOKS:
                found[key] = listed
            else:
                (before if when == "before" else after).append((phase, listed))
        return Hooks(
            before_all=found.get("before_all", ()),
            after_all=found.get("after_all", ()),
            on_error=found.get("on_error", ()),
            before=tuple(before),
            after=tuple(after),
        )

    # -- phases -------------------------------------------------------------------------------

    def lifecycle(self, table: _Table | None, file: str, source: str) -> tuple[Phase, ...]:
        if table is None:
            return ()
        return tuple(self.phase(name, value, file, source) for name, value in table.data.items())

    def phase(self, name: str, value: object, file: str, source: str) -> Phase:
        table = _Table.of(value, file, _join("lifecycle", name))
        if not name or name.startswith("^") or ":" in name:
            table.fail(
                None,
                "a phase name must not be empty, start with '^' or contain ':'",
                "rename the phase",
            )
        table.check_keys(_PHASE_KEYS)
        return Phase(
            name=name,
            commands=self.commands(table),
            description=table.str_("description"),
            workspaces=self.workspace_list(table),
            parallel=table.opt_bool("parallel"),
            depends_on=table.str_list("depends_on") or (),
            inputs=self.globs(table, "inputs"),
            outputs=self.globs(table, "outputs") or (),
            env=_sorted_env(_parse_env(table.data.get("env", {}), file, table.key("env"))),
            env_inputs=self.env_inputs(table),
            cache=table.bool_("cache", True),
            timeout=self.timeout(table),
            retries=table.int_("retries", 0) or 0,
            watch=table.str_list("watch", single=True) or (),
            port=table.int_("port", 1, 65535),
            source=source,
        )

    @staticmethod
    def commands(table: _Table) -> tuple[str, ...]:
        has_one, has_many = "command" in table.data, "commands" in table.data
        if has_one and has_many:
            table.fail(None, 'both "command" and "commands" are set', "keep exactly one of them")
        if has_one:
            command = table.str_("command") or ""
            if not command.strip():
                table.fail("command", "must not be empty", "write the shell command to run")
            return (command,)
        if not has_many:
            table.fail(
                None,
                'no "command" or "commands"',
                'add command = "..." or commands = ["...", "..."]',
            )
        commands = table.str_list("commands") or ()
        if not commands:
            table.fail("commands", "must list at least one command", 'write ["cmd1", "cmd2"]')
        for i, command in enumerate(commands):
            if not command.strip():
                _fail(
                    table.file,
                    f"{table.key('commands')}[{i}]",
                    "must not be empty",
                    "remove it or write the command",
                )
        return commands

    @staticmethod
    def workspace_list(table: _Table) -> tuple[str, ...] | None:
        listed = table.str_list("workspaces")
        if listed is not None and not listed:
            table.fail(
                "workspaces",
                "must name at least one workspace",
                'remove the key to run on every workspace, or list some ("." = the root)',
            )
        return listed

    @staticmethod
    def globs(table: _Table, name: str) -> tuple[str, ...] | None:
        patterns = table.str_list(name)
        if patterns is None:
            return None
        for i, pattern in enumerate(patterns):
            key = f"{table.key(name)}[{i}]"
            if not pattern:
                _fail(table.file, key, "must not be empty", "remove it")
            if pattern.startswith("/") and not pattern.startswith("//"):
                _fail(
                    table.file,
                    key,
                    f"absolute path {json.dumps(pattern)}",
                    'write it relative to the workspace, or start it with "//" for the root',
                )
            if name == "outputs" and ".." in pattern.split("/"):
                _fail(
                    table.file,
                    key,
                    f"{json.dumps(pattern)} leaves the workspace",
                    "outputs must lie inside the workspace",
                )
        return patterns

    @staticmethod
    def env_inputs(table: _Table) -> tuple[str, ...]:
        names = table.str_list("env_inputs") or ()
        for i, name in enumerate(names):
            problem = _env_name_error(name)
            if problem:
                _fail(table.file, f"{table.key('env_inputs')}[{i}]", problem, "fix the name")
        return names

    @staticmethod
    def timeout(table: _Table) -> float | None:
        value = table.data.get("timeout")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _wrong_type(table.file, table.key("timeout"), "a number", value)
        seconds = (
            float(value) if not isinstance(value, int) or value.bit_length() < 64 else math.inf
        )
        if not (math.isfinite(seconds) and seconds > 0):
            table.fail(
                "timeout",
                f"must be a positive number of seconds, got {_number(value)}",
                "write e.g. timeout = 600, or remove it for no timeout",
            )
        return seconds

    # -- workspaces ---------------------------------------------------------------------------

    def workspaces(
        self, table: _Table | None, root_env: Mapping[str, str]
    ) -> tuple[Workspace, ...]:
        if table is None:
            return ()
        found: list[Workspace] = []
        by_dir: dict[str, str] = {}
        root_env_sorted = _sorted_env(root_env)
        for name, value in table.data.items():
            ws = _Table.of(value, self.file, _join("workspace", name))
            if not name:
                ws.fail(None, "a workspace name must not be empty", "name the workspace")
            ws.check_keys(_WORKSPACE_KEYS)
            depends_on = ws.str_list("depends_on") or ()
            description = ws.str_("description")
            written = ws.str_("path")
            if written is None:
                if name != ROOT_WORKSPACE:
                    ws.fail(
                        "path", "missing required key", f'add path = "dir/of/{name}" to [{ws.path}]'
                    )
                written = "."
            rel, real = self.resolve(ws, written)
            if name == ROOT_WORKSPACE and rel != ".":
                ws.fail("path", 'the workspace "." is the project root', 'write path = "."')
            other = by_dir.get(rel)
            if other is not None:
                ws.fail(
                    "path",
                    f'same directory as workspace "{other}": {rel}',
                    "give each workspace its own directory",
                )
            by_dir[rel] = name
            env: Env = root_env_sorted
            phases: tuple[Phase, ...] = ()
            if rel != "." and os.path.isfile(os.path.join(real, MAKE_FILE)):
                env, phases = self.own_file(rel, real, root_env)
            found.append(
                Workspace(
                    name=name,
                    path=rel,
                    depends_on=depends_on,
                    env=env,
                    phases=phases,
                    description=description,
                )
            )
        return tuple(found)

    def own_file_display(self, rel: str) -> str:
        return os.path.normpath(os.path.join(self.root_given, rel, MAKE_FILE))

    def own_file(
        self, rel: str, real: str, root_env: Mapping[str, str]
    ) -> tuple[Env, tuple[Phase, ...]]:
        """A workspace's own make.toml: its [env] merged over the root's, and its phases."""
        display = self.own_file_display(rel)
        doc = _read_toml(os.path.join(real, MAKE_FILE), display)
        top = _Table(doc, display, "")
        top.check_keys(_WORKSPACE_FILE_KEYS, "a workspace make.toml (only [env] and [lifecycle])")
        env = dict(root_env)
        if "env" in doc:
            env.update(_parse_env(doc["env"], display, "env"))
        phases = self.lifecycle(top.sub("lifecycle"), display, f"{rel}/{MAKE_FILE}")
        return _sorted_env(env), phases

    def resolve(self, ws: _Table, written: str) -> tuple[str, str]:
        """The workspace directory as (posix path relative to the root, real absolute path).

        Symlinks are resolved; the result must be a directory inside the project root. Each
        component is lstat'ed once per load (shared parents are remembered).
        """
        key = ws.key("path")
        shown = json.dumps(written)
        if not written:
            _fail(self.file, key, "must not be empty", 'use "." for the project root')
        if "\0" in written:
            _fail(self.file, key, "contains a NUL character", "fix the path")
        if os.path.isabs(written):
            _fail(
                self.file,
                key,
                f"{shown} is an absolute path",
                "write it relative to the project root",
            )
        parts = [p for p in written.split("/") if p and p != "."]
        if ".." in parts:
            # ".." after a symlink means the link's parent: let the OS decide, then check.
            real = os.path.realpath(os.path.join(self.root_real, written))
            self.check_inside(key, shown, real)
            if not os.path.exists(real):
                _fail(
                    self.file,
                    key,
                    f"{shown} does not exist",
                    "create the directory or fix the path",
                )
            is_dir = os.path.isdir(real)
        else:
            real, is_dir = self.root_real, True
            rel = ""
            for part in parts:
                rel = f"{rel}/{part}" if rel else part
                known = self.walked.get(rel)
                if known is not None:
                    real, is_dir = known
                    continue
                real, is_dir = self.step(key, shown, real, part)
                self.walked[rel] = (real, is_dir)
            self.check_inside(key, shown, real)
        if not is_dir:
            _fail(self.file, key, f"{shown} is not a directory", "point it at a directory")
        rel_path = "." if real == self.root_real else real[len(self.root_prefix) :]
        return rel_path.replace(os.sep, "/"), real

    def step(self, key: str, shown: str, parent: str, part: str) -> tuple[str, bool]:
        """One path component below ``parent``: its real path and whether it is a directory."""
        candidate = os.path.join(parent, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            _fail(
                self.file,
                key,
                f"{shown} does not exist (no {candidate})",
                "create the directory or fix the path",
            )
        except OSError as exc:
            _fail(
                self.file,
                key,
                f"cannot access {candidate}: {exc.strerror or exc}",
                "check the path and its permissions",
            )
        if stat.S_ISLNK(st.st_mode):
            real = os.path.realpath(candidate)
            if not os.path.exists(real):
                _fail(
                    self.file,
                    key,
                    f"{shown} does not exist ({candidate} is a broken link)",
                    "create the directory or fix the link",
                )
            return real, os.path.isdir(real)
        return candidate, stat.S_ISDIR(st.st_mode)

    def check_inside(self, key: str, shown: str, real: str) -> None:
        if real != self.root_real and not real.startswith(self.root_prefix):
            _fail(
                self.file,
                key,
                f"{shown} is outside the project root (it resolves to {real})",
                f"use a directory inside {self.root_real}",
            )

    # -- references ---------------------------------------------------------------------------

    @staticmethod
    def check_ref(
        file: str,
        key: str,
        name: str,
        known: Mapping[str, object] | set[str],
        ordered: Sequence[str],
        what: str,
    ) -> None:
        """Fail unless ``name`` is one of the ``known`` workspaces or phases."""
        if name in known:
            return
        close = _suggest(name, ordered)
        more = f', did you mean "{close}"?' if close else ""
        declare = (
            f"[workspace.{_quote(name)}]" if what == "workspace" else f"[lifecycle.{_quote(name)}]"
        )
        hint = f"declare {declare} or fix the name"
        if close is None:
            hint += f"; {what}s: {_listing(ordered)}"
        _fail(file, key, f'unknown {what} "{name}"{more}', hint)

    def check_refs(
        self,
        file: str,
        key: str,
        names: Sequence[str],
        known: Mapping[str, object] | set[str],
        ordered: Sequence[str],
        what: str,
    ) -> None:
        for i, name in enumerate(names):
            self.check_ref(file, f"{key}[{i}]", name, known, ordered, what)

    def check_phase_refs(
        self,
        phases: Sequence[Phase],
        file: str,
        known_ws: set[str],
        ws_names: Sequence[str],
        phase_names: Mapping[str, str],
    ) -> None:
        ordered = list(phase_names)
        for phase in phases:
            key = _join("lifecycle", phase.name)
            if phase.workspaces is not None:
                self.check_refs(
                    file,
                    f"{key}.workspaces",
                    phase.workspaces,
                    known_ws,
                    [*ws_names, ROOT_WORKSPACE],
                    "workspace",
                )
            for i, dep in enumerate(phase.depends_on):
                self.check_ref(
                    file,
                    f"{key}.depends_on[{i}]",
                    dep.removeprefix("^"),
                    phase_names,
                    ordered,
                    "phase",
                )

    def check_cycles(self, workspaces: Sequence[Workspace]) -> None:
        graph = {w.name: w.depends_on for w in workspaces}
        cycle = _find_cycle(graph)
        if cycle is not None:
            raise CycleError(
                "workspace cycle: " + " -> ".join(cycle),
                file=self.file,
                key=f"{_join('workspace', cycle[0])}.depends_on",
                hint="remove one of these depends_on entries",
            )


def _find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The first cycle of a directed graph, as a path that ends where it starts; else None.

    Iterative depth-first search in the graph's order, so long chains cannot hit the recursion
    limit and the reported cycle is always the same one.
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in graph:
        if start in state:
            continue
        state[start] = 1
        path = [start]
        stack = [iter(graph.get(start, ()))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                state[path.pop()] = 2
                continue
            seen = state.get(nxt)
            if seen == 1:
                return [*path[path.index(nxt) :], nxt]
            if seen is None:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(graph.get(nxt, ())))
    return None
