"""The make.toml loader: schema, workspace files, cross-references and cycles.

Owns ``load_make`` and ``find_make_file`` (re-exposed by ``ggen.make``): the known keys of every
table, the ``_Loader`` that turns the root make.toml and each workspace's own make.toml into the
frozen model of ``ggen.make``, workspace path resolution (inside the project root, symlinks
resolved), the checks that every referenced workspace and phase exists, and workspace dependency
cycle detection. Every problem becomes a ``ConfigError`` (``CycleError`` for a cycle).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from ggen.errors import ConfigError, CycleError
from ggen.make import (
    MAKE_FILE,
    MAX_JOBS,
    MAX_RETRIES,
    ROOT_WORKSPACE,
    CacheConfig,
    Env,
    ExecutorConfig,
    ExecutorKind,
    Hooks,
    Make,
    Phase,
    Project,
    Workspace,
)
from ggen.make_values import (
    _SIZE_HINT,
    _fail,
    _join,
    _listing,
    _number,
    _parse_env,
    _phase_commands,
    _phase_env_inputs,
    _phase_globs,
    _phase_timeout,
    _phase_workspaces,
    _quote,
    _read_toml,
    _size_bytes,
    _sorted_env,
    _suggest,
    _Table,
    _type_name,
    check_name,
)

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
    try:
        doc = _read_toml(os.fspath(file), display)
        return _Loader(root_given, os.path.realpath(root_given), display).load(doc)
    except ConfigError as err:
        _add_line(err)
        raise


def _add_line(err: ConfigError) -> None:
    """Give an error about a key (not about syntax) the line that writes that key."""
    if err.line is not None or not err.key or not err.file:
        return
    from ggen.toml_lines import key_line

    try:
        with open(err.file, encoding="utf-8-sig") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return
    err.line = key_line(text, err.key)


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
            kind=kind, scheduler=table.str_("scheduler"), jobs=table.int_("jobs", 1, MAX_JOBS)
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
        check_name(table, name, "phase")
        table.check_keys(_PHASE_KEYS)
        return Phase(
            name=name,
            commands=_phase_commands(table),
            description=table.str_("description"),
            workspaces=_phase_workspaces(table),
            parallel=table.opt_bool("parallel"),
            depends_on=table.str_list("depends_on") or (),
            inputs=_phase_globs(table, "inputs"),
            outputs=_phase_globs(table, "outputs") or (),
            env=_sorted_env(_parse_env(table.data.get("env", {}), file, table.key("env"))),
            env_inputs=_phase_env_inputs(table),
            cache=table.bool_("cache", True),
            timeout=_phase_timeout(table),
            retries=table.int_("retries", 0, MAX_RETRIES) or 0,
            watch=table.str_list("watch", single=True) or (),
            port=table.int_("port", 1, 65535),
            source=source,
        )

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
            check_name(ws, name, "workspace")
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
