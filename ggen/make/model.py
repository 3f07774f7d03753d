"""The configuration model: an immutable, picklable snapshot of the project (``Make``).

The snapshot is what every other part of ggen reads: the planner builds the task graph from it,
workers receive it once (pickled) and never read make.toml themselves. It is made by
``ggen.make.loader`` and imported by everyone through ``ggen.make``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

MAKE_FILE = "make.toml"
ROOT_WORKSPACE = "."

# Upper bounds of numbers read from make.toml and the command line (README, "Limits"): beyond
# them a value is a mistake, and some would break the machinery (a timeout past what select()
# and time_t accept, retries that never end, a pool of a million processes).
MAX_TIMEOUT_S = 7 * 24 * 3600  # a week
MAX_GRACE_S = 3600
MAX_RETRIES = 100
MAX_JOBS = 1024

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
    commands: tuple[str, ...]  # empty when the phase names a package script
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
    watch: bool = False  # a long-running phase (dev server, watcher), as in the old format
    port: int | None = None  # the loopback port whose opening says a watch phase is ready
    source: str = MAKE_FILE  # the file (relative to the root) that declared this phase
    script: str | None = None  # run this package.json script instead of commands


@dataclass(frozen=True)
class Workspace:
    """One ``[workspace.NAME]`` table (or the implicit root workspace ``.``)."""

    name: str
    path: str  # posix, relative to the project root, "." for the root itself
    depends_on: tuple[str, ...] = ()
    env: Env = ()  # root [env] with the workspace make.toml's [env] merged over it
    phases: tuple[Phase, ...] = ()  # this workspace's own make.toml [lifecycle] tables
    description: str | None = None
    # where it was declared: make.toml, or the manifest that discovery found it in
    # ("pnpm-workspace.yaml"), or both ("pnpm-workspace.yaml + make.toml") when a table overrides
    source: str = MAKE_FILE

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
    remote_timeout: float | None = None  # seconds per remote transfer; None: the default


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
    strict: bool = False  # every warning about the configuration is an error


@dataclass(frozen=True)
class ConfigWarning:
    """Something in a make.toml that ggen ignores: an unknown key or table that is not a likely
    typo (the old format's ``[scripts]``, ``authors``...), or a table where a variable's value
    is expected (an ``[env.production]`` profile). Printed by every command that loads the
    project; ``ggen validate --strict`` and ``[project] strict = true`` make it an error."""

    file: str
    key: str
    message: str  # what it is: "unknown table", "no phase named ..."
    hint: str | None = None  # what ggen reads there instead
    line: int | None = None
    ignored: bool = True  # False: loaded as written (an old-format phase with no command)

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.key}: {self.message}" + (", ignored" if self.ignored else "")
        return f"{text} ({self.hint})" if self.hint else text


@dataclass(frozen=True)
class PackageScripts:
    """What a workspace's ``package.json`` says that ``script`` phases use, read when the
    project is loaded so that the key and the worker see the same text (``ggen.scripts``)."""

    path: str  # the workspace's path, relative to the project root ("." for the root)
    name: str | None = None  # "name" of package.json, npm's npm_package_name
    version: str | None = None  # "version", npm's npm_package_version
    scripts: tuple[tuple[str, str], ...] = ()  # (name, text) of X, preX, postX for each script X


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
    # every file the configuration was read from (root-relative posix paths): the make.toml
    # files and the manifests that workspace discovery read; editing one may change the snapshot
    config_files: tuple[str, ...] = (MAKE_FILE,)
    warnings: tuple[ConfigWarning, ...] = ()  # what the files say that ggen ignores
    packages: tuple[PackageScripts, ...] = ()  # package.json of each workspace, if script phases

    @cached_property
    def _package_map(self) -> Mapping[str, PackageScripts]:
        return {p.path: p for p in self.packages}

    def package(self, path: str) -> PackageScripts | None:
        """The package.json scripts of the workspace at ``path``, if it has a package.json."""
        return self._package_map.get(path)

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
