"""Tests of ggen.make: loading make.toml into the immutable ``Make`` snapshot, and every error."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import pickle
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ggen.errors import EXIT_USAGE, ConfigError, CycleError, UsageError
from ggen.make import (
    MAKE_FILE,
    ExecutorKind,
    Make,
    find_make_file,
    load_make,
    parse_size,
)

SPEC_EXAMPLE = """\
[project]
name = "fullstack-app"          # required
version = "1.0.0"               # optional; type, description optional too
inputs = ["package-lock.json", "tsconfig.base.json"]   # root files that enter every key

[env]                           # environment for every phase; part of every key
RUST_LOG = "info"

[cache]                         # all optional
dir = ".ggen/cache"             # default: platformdirs user cache dir, ".../ggen"
max_size = "5GB"                # LRU eviction bound for the local store
remote = "http://127.0.0.1:9090/ggen"   # HTTP remote cache (section 6)
remote_read_only = false

[executor]                      # all optional; the command line overrides
kind = "loky"                   # "loky" (default), "inline" (one process, for debugging), "dask"
scheduler = "tcp://127.0.0.1:8786"      # with kind = "dask"
jobs = 4                        # default: CPU count

[workspace.backend]
path = "backend"                # required; must resolve inside the project root
depends_on = ["shared"]         # other workspaces this one builds on

[workspace.shared]
path = "libs/shared"

[lifecycle.build]
description = "Build all workspaces"
commands = ["npm ci", "npm run build"]   # or command = "..."; exactly one of the two
workspaces = ["backend", "shared"]       # default: every workspace; "." is the project root
parallel = true                 # this phase's tasks may run at the same time
depends_on = ["^build", "codegen"]       # ^X: X in each dependency workspace first;
                                         # X: X in the same workspace first
inputs = ["src/**", "package.json", "//tools/gen.py"]  # relative to the workspace;
                                         # "//" starts a path from the project root
outputs = ["dist/**"]           # stored in the cache, restored on a hit
env = { NODE_ENV = "production" }
env_inputs = ["CI", "API_URL"]  # outside variables whose values enter the key
cache = true                    # default true; false = always run
timeout = 600                   # seconds, whole task; default: none
retries = 0

[hooks]
before_all = ["check"]          # phases run once, before anything else in the run
after_all = ["report"]          # phases run once, after everything else succeeded
before_build = ["lint"]         # phases run before build, on the same workspaces
after_build = ["docs"]
on_error = ["cleanup"]          # phases run when any task of the run failed
"""

# the phases the example's hooks and depends_on name
EXTRA_PHASES = "".join(
    f'\n[lifecycle.{name}]\ncommand = "echo {name}"\n'
    for name in ("codegen", "check", "report", "lint", "docs", "cleanup")
)

MINIMAL = '[project]\nname = "p"\n'


def project(root: Path, text: str, dirs: tuple[str, ...] = ()) -> Path:
    """Write ``text`` as root/make.toml and create ``dirs``; returns the root."""
    root.mkdir(parents=True, exist_ok=True)
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / MAKE_FILE).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def error_of(root: Path) -> ConfigError:
    """The ConfigError that loading ``root`` raises."""
    with pytest.raises(ConfigError) as info:
        load_make(root)
    return info.value


def spec_project(tmp_path: Path) -> Path:
    return project(tmp_path, SPEC_EXAMPLE + EXTRA_PHASES, ("backend", "libs/shared"))


# ------------------------------------------------------------------------------ happy paths


def test_spec_example_loads_every_field(tmp_path: Path) -> None:
    make = load_make(spec_project(tmp_path))
    assert make.root == os.path.realpath(tmp_path)
    assert make.file == str(tmp_path / "make.toml")
    assert make.project.name == "fullstack-app"
    assert make.project.version == "1.0.0"
    assert make.project.inputs == ("package-lock.json", "tsconfig.base.json")
    assert make.env == (("RUST_LOG", "info"),)
    assert make.cache.dir == ".ggen/cache"
    assert make.cache.max_size == 5_000_000_000
    assert make.cache.remote == "http://127.0.0.1:9090/ggen"
    assert make.cache.remote_read_only is False
    assert make.executor.kind is ExecutorKind.LOKY
    assert make.executor.scheduler == "tcp://127.0.0.1:8786"
    assert make.executor.jobs == 4

    assert [w.name for w in make.workspaces] == ["backend", "shared"]
    backend, shared = make.workspaces
    assert backend.path == "backend"
    assert backend.depends_on == ("shared",)
    assert backend.env == (("RUST_LOG", "info"),)
    assert backend.phases == ()
    assert shared.path == "libs/shared"

    build = make.phase("build")
    assert build is not None
    assert build.commands == ("npm ci", "npm run build")
    assert build.description == "Build all workspaces"
    assert build.workspaces == ("backend", "shared")
    assert build.parallel is True
    assert build.depends_on == ("^build", "codegen")
    assert build.inputs == ("src/**", "package.json", "//tools/gen.py")
    assert build.outputs == ("dist/**",)
    assert build.env == (("NODE_ENV", "production"),)
    assert build.env_inputs == ("CI", "API_URL")
    assert build.cache is True
    assert build.timeout == 600.0
    assert build.retries == 0
    assert build.source == "make.toml"
    assert [p.name for p in make.lifecycle] == [
        "build", "codegen", "check", "report", "lint", "docs", "cleanup",
    ]  # fmt: skip

    assert make.hooks.before_all == ("check",)
    assert make.hooks.after_all == ("report",)
    assert make.hooks.on_error == ("cleanup",)
    assert make.hooks.before_phase("build") == ("lint",)
    assert make.hooks.after_phase("build") == ("docs",)
    assert make.hooks.before_phase("test") == ()


def test_minimal_project_has_defaults(tmp_path: Path) -> None:
    make = load_make(project(tmp_path, MINIMAL))
    assert make.project.name == "p"
    assert make.workspaces == ()
    assert make.lifecycle == ()
    assert make.default_workspaces() == (".",)
    assert make.executor.kind is ExecutorKind.LOKY
    assert make.executor.jobs is None
    assert make.cache.max_size is None
    assert make.root_workspace.path == "."


def test_phase_defaults_and_old_format_keys(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        MINIMAL
        + """
        [lifecycle.dev]
        command = "npm run dev"
        watch = true
        port = 3000
        parallel = false
        cache = false
        timeout = 1.5
        retries = 2

        [lifecycle.serve]
        command = "serve"
        """,
    )
    make = load_make(root)
    assert make.warnings == ()
    dev = make.phase("dev")
    assert dev is not None
    assert (dev.commands, dev.watch, dev.port) == (("npm run dev",), True, 3000)
    assert (dev.parallel, dev.cache, dev.timeout, dev.retries) == (False, False, 1.5, 2)
    assert dev.workspaces is None and dev.inputs is None and dev.outputs == ()
    serve = make.phase("serve")
    assert serve is not None
    assert (serve.watch, serve.port) == (False, None)
    assert serve.parallel is None


def test_env_values_are_strings_and_sorted(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        MINIMAL
        + """
        [env]
        ZED = "z"
        ALPHA = 1
        RATIO = 1.5
        DEBUG = true
        QUIET = false

        [lifecycle.build]
        command = "make"
        env = { Z = "1", A = 2, M = "x" }
        """,
    )
    make = load_make(root)
    assert make.env == (
        ("ALPHA", "1"), ("DEBUG", "true"), ("QUIET", "false"), ("RATIO", "1.5"), ("ZED", "z"),
    )  # fmt: skip
    build = make.phase("build")
    assert build is not None
    assert build.env == (("A", "2"), ("M", "x"), ("Z", "1"))


def test_quoted_scoped_workspace_names(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        MINIMAL
        + """
        [workspace."@scope/ui"]
        path = "packages/ui"
        description = "the UI kit"

        [workspace."@scope/app"]
        path = "./packages/app/"
        depends_on = ["@scope/ui"]

        [lifecycle.build]
        command = "npm run build"
        workspaces = ["@scope/app", "."]
        """,
        ("packages/ui", "packages/app"),
    )
    make = load_make(root)
    ui = make.workspace("@scope/ui")
    app = make.workspace("@scope/app")
    assert ui is not None and app is not None
    assert (ui.path, ui.description) == ("packages/ui", "the UI kit")
    assert (app.path, app.depends_on) == ("packages/app", ("@scope/ui",))
    build = make.phase("build")
    assert build is not None and build.workspaces == ("@scope/app", ".")


def test_quoted_name_is_quoted_in_error_key(tmp_path: Path) -> None:
    root = project(tmp_path, MINIMAL + '[workspace."@scope/ui"]\npath = "nowhere"\n')
    err = error_of(root)
    assert err.key == 'workspace."@scope/ui".path'
    assert '"nowhere" does not exist' in err.message


def test_explicit_root_workspace(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        MINIMAL + '[workspace."."]\npath = "."\ndescription = "root"\n[workspace.a]\npath = "a"\n',
        ("a",),
    )
    make = load_make(root)
    assert make.root_workspace.description == "root"
    assert make.root_workspace.path == "."
    assert make.workspace(".") is make.root_workspace
    assert make.default_workspaces() == (".", "a")


def test_root_workspace_must_be_the_root(tmp_path: Path) -> None:
    err = error_of(project(tmp_path, MINIMAL + '[workspace."."]\npath = "a"\n', ("a",)))
    assert err.key == 'workspace.".".path'
    assert 'the workspace "." is the project root' in str(err)


def test_workspace_make_toml_overrides_phases_and_env(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        MINIMAL
        + """
        [env]
        SHARED = "root"
        LEVEL = "root"

        [workspace.backend]
        path = "backend"

        [workspace.web]
        path = "web"

        [lifecycle.build]
        command = "make"
        """,
        ("backend", "web"),
    )
    (root / "backend" / MAKE_FILE).write_text(
        '[env]\nLEVEL = "backend"\nPORT = 8080\n\n'
        '[lifecycle.build]\ncommands = ["cargo build"]\n\n'
        '[lifecycle.migrate]\ncommand = "./migrate"\ndepends_on = ["build"]\n',
        encoding="utf-8",
    )
    make = load_make(root)
    backend, web = make.workspaces
    assert backend.env == (("LEVEL", "backend"), ("PORT", "8080"), ("SHARED", "root"))
    assert web.env == make.env == (("LEVEL", "root"), ("SHARED", "root"))
    assert [p.name for p in backend.phases] == ["build", "migrate"]
    assert {p.source for p in backend.phases} == {"backend/make.toml"}
    own = make.phase_for("backend", "build")
    assert own is not None and own.commands == ("cargo build",)
    fallback = make.phase_for("web", "build")
    assert fallback is not None and fallback.commands == ("make",)
    assert make.phase_for("web", "migrate") is None
    assert make.phase_names() == ("build", "migrate")


def test_workspace_make_toml_may_only_hold_env_and_lifecycle(tmp_path: Path) -> None:
    root = project(tmp_path, MINIMAL + '[workspace.api]\npath = "api"\n', ("api",))
    (root / "api" / MAKE_FILE).write_text('[project]\nname = "api"\n', encoding="utf-8")
    (warning,) = load_make(root).warnings
    assert (warning.file, warning.key, warning.line) == (
        str(root / "api" / "make.toml"),
        "project",
        1,
    )
    assert warning.message == "unknown table in a workspace make.toml (only [env] and [lifecycle])"

    (root / "api" / MAKE_FILE).write_text('[lifecyle.build]\ncommand = "x"\n', encoding="utf-8")
    err = error_of(root)
    assert err.key == "lifecyle"
    assert 'did you mean "lifecycle"?' in err.message


def test_workspace_make_toml_errors_name_that_file(tmp_path: Path) -> None:
    root = project(tmp_path, MINIMAL + '[workspace.api]\npath = "api"\n', ("api",))
    (root / "api" / MAKE_FILE).write_text(
        '[lifecycle.build]\ncommands = ["ok", 3]\n', encoding="utf-8"
    )
    err = error_of(root)
    assert str(err) == (
        f"{root / 'api' / 'make.toml'}:2: lifecycle.build.commands[1]: expected a string, "
        'got integer (write it in quotes, e.g. "value")'
    )
    (root / "api" / MAKE_FILE).write_text("[lifecycle.build\n", encoding="utf-8")
    err = error_of(root)
    assert err.file == str(root / "api" / "make.toml")
    assert err.line == 1


def test_symlink_inside_root_is_stored_resolved(tmp_path: Path) -> None:
    root = project(tmp_path, MINIMAL + '[workspace.cur]\npath = "current"\n', ("libs/v2",))
    (root / "current").symlink_to(root / "libs" / "v2")
    make = load_make(root)
    assert make.workspaces[0].path == "libs/v2"


def test_relative_start_and_dotdot_inside_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path, MINIMAL + '[workspace.a]\npath = "x/../a"\n', ("a", "x"))
    monkeypatch.chdir(tmp_path)
    make = load_make(".")
    assert make.file == "make.toml"
    assert make.root == os.path.realpath(tmp_path)
    assert make.workspaces[0].path == "a"


def test_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / MAKE_FILE).write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_make(tmp_path).project.name == "p"


def test_pickle_round_trip(tmp_path: Path) -> None:
    root = spec_project(tmp_path)
    (root / "backend" / MAKE_FILE).write_text(
        '[env]\nX = "1"\n[lifecycle.build]\ncommand = "b"\n', encoding="utf-8"
    )
    make = load_make(root)
    # cached lookups already filled must not break pickling or equality
    assert make.phase_for("backend", "build") is not None
    clone = pickle.loads(pickle.dumps(make))
    assert clone == make
    assert clone.phase_for("backend", "build") == make.phase_for("backend", "build")
    assert clone.executor.kind is ExecutorKind.LOKY
    assert hash(clone) == hash(make)


def test_snapshot_is_immutable(tmp_path: Path) -> None:
    make = load_make(spec_project(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        make.root = "/elsewhere"  # type: ignore[misc]
    assert isinstance(make.workspaces, tuple) and isinstance(make.lifecycle[0].commands, tuple)


def test_loading_many_workspaces_is_fast(tmp_path: Path) -> None:
    parts = [MINIMAL, '[lifecycle.build]\ncommand = "true"\ndepends_on = ["^build"]\n']
    for i in range(1000):
        (tmp_path / "packages" / f"pkg-{i}").mkdir(parents=True)
        dep = f'depends_on = ["pkg-{i - 1}"]\n' if i else ""
        parts.append(f'[workspace.pkg-{i}]\npath = "packages/pkg-{i}"\n{dep}')
    (tmp_path / MAKE_FILE).write_text("".join(parts), encoding="utf-8")
    load_make(tmp_path)  # warm the OS caches
    started = time.perf_counter()
    make = load_make(tmp_path)
    elapsed = time.perf_counter() - started
    assert len(make.workspaces) == 1000
    assert make.workspaces[-1].depends_on == ("pkg-998",)
    assert elapsed < 1.0, f"loading 1000 workspaces took {elapsed:.3f}s"


# -------------------------------------------------------------------- sizes and simple tables


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5GB", 5_000_000_000),
        ("500MB", 500_000_000),
        ("1.5GiB", 1_610_612_736),
        ("10 kib", 10_240),
        ("2TB", 2_000_000_000_000),
        ("123", 123),
        ("7B", 7),
        (4096, 4096),
    ],
)
def test_max_size_is_read_in_bytes(tmp_path: Path, text: object, expected: int) -> None:
    value = json.dumps(text)
    make = load_make(project(tmp_path, MINIMAL + f"[cache]\nmax_size = {value}\n"))
    assert make.cache.max_size == expected
    assert parse_size(text, "--max-size") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"5 GBs"', 'cannot read "5 GBs" as a size'),
        ('""', 'cannot read "" as a size'),
        ("1.5", "cannot read float as a size"),
        ("true", "cannot read boolean as a size"),
        ("-1", "must be positive, got -1"),
        ('"0B"', "must be positive, got 0"),
        ('"1e9"', 'cannot read "1e9" as a size'),
    ],
)
def test_bad_max_size(tmp_path: Path, value: str, message: str) -> None:
    err = error_of(project(tmp_path, MINIMAL + f"[cache]\nmax_size = {value}\n"))
    assert err.key == "cache.max_size"
    assert message in err.message
    assert err.hint is not None and "5GB" in err.hint


@pytest.mark.parametrize("text", ["5 GBs", "", "-1", "0MB", "1e9", "GB"])
def test_parse_size_rejects_bad_command_line_sizes(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_size(text, "--max-size")
    assert str(info.value).startswith("--max-size: ")
    assert '"5GB"' in str(info.value)
    assert info.value.exit_code == EXIT_USAGE


def test_executor_kinds(tmp_path: Path) -> None:
    root = project(tmp_path, MINIMAL + '[executor]\nkind = "dask"\nscheduler = "tcp://h:1"\n')
    make = load_make(root)
    assert make.executor.kind is ExecutorKind.DASK
    assert make.executor.scheduler == "tcp://h:1"
    err = error_of(project(tmp_path, MINIMAL + '[executor]\nkind = "lokky"\n'))
    assert str(err) == (
        f'{tmp_path / "make.toml"}:4: executor.kind: unknown executor "lokky", did you mean '
        '"loky"? (expected one of: loky, inline, dask)'
    )


def test_remote_must_be_http(tmp_path: Path) -> None:
    err = error_of(project(tmp_path, MINIMAL + '[cache]\nremote = "ftp://x"\n'))
    assert err.key == "cache.remote"
    assert 'not an HTTP URL: "ftp://x"' in err.message


# ------------------------------------------------------------------------ file-level errors


def test_missing_make_toml_names_path_and_fix(tmp_path: Path) -> None:
    err = error_of(tmp_path)
    assert err.file == str(tmp_path / "make.toml")
    assert err.exit_code == EXIT_USAGE
    assert "not found" in str(err)
    assert "create make.toml or use -C DIR" in str(err)
    with pytest.raises(ConfigError):
        find_make_file(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    err = error_of(tmp_path / "nope")
    assert f"no such directory: {tmp_path / 'nope'}" in str(err)


def test_start_that_is_a_file(tmp_path: Path) -> None:
    project(tmp_path, MINIMAL)
    err = error_of(tmp_path / "make.toml")
    assert err.file == str(tmp_path / "make.toml")
    assert err.message == "not a directory"
    assert err.hint is not None and "project directory" in err.hint


def test_make_toml_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / MAKE_FILE).mkdir()
    assert "not a regular file" in str(error_of(tmp_path))


def test_find_make_file(tmp_path: Path) -> None:
    project(tmp_path, MINIMAL)
    assert find_make_file(tmp_path) == tmp_path / "make.toml"


def test_find_make_file_searches_parents_for_a_project_table(tmp_path: Path) -> None:
    root = project(tmp_path, MINIMAL + '[workspace.api]\npath = "services/api"\n')
    deep = root / "services/api/src/x"
    deep.mkdir(parents=True)
    # a workspace's own make.toml has no [project] table: the search passes it by
    (root / "services/api/make.toml").write_text('[lifecycle.build]\ncommand = "true"\n')
    assert find_make_file(deep) == root / "make.toml"
    assert find_make_file(root / "services/api") == root / "make.toml"
    make = load_make(deep)
    assert make.root == str(root.resolve())
    assert [w.name for w in make.workspaces] == ["api"]
    # a nested project (any spelling of [project]) is the nearer root
    for text in (
        'project = { name = "n" }\n',
        'project.name = "n"\n',
        "[ project ] # n\nname = 'n'\n",
    ):
        (root / "services/make.toml").write_text(text)
        assert find_make_file(deep) == root / "services/make.toml", text
    # an unreadable nearest file counts as a root, so that loading says what is wrong with it
    (root / "services/make.toml").write_text("project = = 1\n")
    assert find_make_file(deep) == root / "services/make.toml"
    assert error_of(deep).line == 1


def test_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    root = project(tmp_path, '[project]\nname = "p"\nversion = = "1"\n')
    err = error_of(root)
    assert (err.line, err.column) == (3, 11)
    assert err.key is None
    assert str(err).startswith(f"{tmp_path / 'make.toml'}:3:11: Invalid value")
    assert "fix the TOML syntax" in str(err)


def test_duplicate_key_is_a_syntax_error(tmp_path: Path) -> None:
    err = error_of(project(tmp_path, '[project]\nname = "p"\nname = "q"\n'))
    assert err.line == 3
    assert "Cannot overwrite a value" in err.message


def test_invalid_utf8_has_line_and_column(tmp_path: Path) -> None:
    (tmp_path / MAKE_FILE).write_bytes(b'[project]\nname = "p\xff"\n')
    err = error_of(tmp_path)
    assert (err.line, err.column) == (2, 10)
    assert err.message == "not valid UTF-8"


def test_deep_nesting_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / MAKE_FILE).write_text("a = " + "[" * 5000 + "]" * 5000, encoding="utf-8")
    assert "nested too deeply" in error_of(tmp_path).message


def test_integer_too_long_for_python(tmp_path: Path) -> None:
    (tmp_path / MAKE_FILE).write_text(MINIMAL + "[env]\nA = " + "9" * 5000, encoding="utf-8")
    assert "4300" in error_of(tmp_path).message
    (tmp_path / MAKE_FILE).write_text(MINIMAL + "[env]\nA = 0x" + "f" * 5000, encoding="utf-8")
    err = error_of(tmp_path)
    assert (err.key, err.message) == ("env.A", "the number is too large")


# ------------------------------------------------------------------ unknown keys and types


def test_unknown_key_suggests_nearest(tmp_path: Path) -> None:
    root = project(tmp_path, MINIMAL + '[lifecycle.build]\ncommand = "x"\noutput = ["dist"]\n')
    err = error_of(root)
    assert str(err) == (
        f'{tmp_path / "make.toml"}:5: lifecycle.build.output: unknown key, did you mean "outputs"?'
    )


def test_unknown_table_suggests_nearest(tmp_path: Path) -> None:
    err = error_of(project(tmp_path, MINIMAL + '[lifecyle.build]\ncommand = "x"\n'))
    assert err.key == "lifecyle"
    assert err.message == 'unknown table, did you mean "lifecycle"?'


def test_unknown_key_without_close_match_is_a_warning_listing_known(tmp_path: Path) -> None:
    make = load_make(project(tmp_path, MINIMAL + '[cache]\nzzz = "x"\n'))
    assert [str(w) for w in make.warnings] == [
        f"{tmp_path / 'make.toml'}:4: cache.zzz: unknown key, ignored "
        "(known here: dir, max_size, remote, remote_read_only, remote_timeout)"
    ]


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        (
            'commands = ["a", "b", 3]',
            "lifecycle.build.commands[2]",
            "expected a string, got integer",
        ),
        ('command = ["a"]', "lifecycle.build.command", "expected a string, got array"),
        ('commands = "a"', "lifecycle.build.commands", "expected an array of strings, got string"),
        (
            'command = "a"\ntimeout = "10"',
            "lifecycle.build.timeout",
            "expected a number, got string",
        ),
        ('command = "a"\ntimeout = 0', "lifecycle.build.timeout", "must be a positive number"),
        (
            'command = "a"\ntimeout = true',
            "lifecycle.build.timeout",
            "expected a number, got boolean",
        ),
        ('command = "a"\ntimeout = nan', "lifecycle.build.timeout", "must be a positive number"),
        (
            'command = "a"\nretries = -1',
            "lifecycle.build.retries",
            "must be between 0 and 100, got -1",
        ),
        (
            'command = "a"\nretries = 1.0',
            "lifecycle.build.retries",
            "expected an integer, got float",
        ),
        (
            'command = "a"\nparallel = "yes"',
            "lifecycle.build.parallel",
            "expected a boolean, got string",
        ),
        ('command = "a"\ncache = 1', "lifecycle.build.cache", "expected a boolean, got integer"),
        ('command = "a"\nport = 70000', "lifecycle.build.port", "must be between 1 and 65535"),
        ('command = "a"\nwatch = 3', "lifecycle.build.watch", "expected a boolean, got integer"),
        (
            'command = "a"\nwatch = "src/**"',
            "lifecycle.build.watch",
            "expected a boolean, got string",
        ),
        ('command = "a"\nwatch = ["a"]', "lifecycle.build.watch", "expected a boolean, got array"),
        ('command = "a"\nport = 0', "lifecycle.build.port", "must be between 1 and 65535"),
        ('command = "a"\nport = "3000"', "lifecycle.build.port", "expected an integer"),
        ('command = "a"\nenv = { "A=B" = "1" }', 'lifecycle.build.env."A=B"', "cannot contain '='"),
        ('command = "a"\nenv = "A=1"', "lifecycle.build.env", "expected a table, got string"),
        ('command = "a"\nenv_inputs = [""]', "lifecycle.build.env_inputs[0]", "must not be empty"),
        ('command = "a"\nworkspaces = []', "lifecycle.build.workspaces", "at least one workspace"),
        ('command = "a"\noutputs = ["/abs"]', "lifecycle.build.outputs[0]", 'absolute path "/abs"'),
        (
            'command = "a"\noutputs = ["../up"]',
            "lifecycle.build.outputs[0]",
            "leaves the workspace",
        ),
        ('command = "a"\ninputs = ["/etc/x"]', "lifecycle.build.inputs[0]", "absolute path"),
        ('command = "a"\ndescription = 1', "lifecycle.build.description", "expected a string"),
        ('script = "b"\ncommand = "a"', "lifecycle.build", 'both "command" and "script" are set'),
        ('script = ""', "lifecycle.build.script", "must not be empty"),
        ("script = 1", "lifecycle.build.script", "expected a string, got integer"),
        ("commands = []", "lifecycle.build.commands", "at least one command"),
        ('commands = ["a", " "]', "lifecycle.build.commands[1]", "must not be empty"),
        ('command = ""', "lifecycle.build.command", "must not be empty"),
        ("command = 1979-05-27", "lifecycle.build.command", "expected a string, got date"),
    ],
)
def test_bad_phase(tmp_path: Path, body: str, key: str, message: str) -> None:
    err = error_of(project(tmp_path, MINIMAL + "[lifecycle.build]\n" + body + "\n"))
    assert err.key == key
    assert message in err.message
    assert err.file == str(tmp_path / "make.toml")
    assert err.hint, "every error says how to fix it"
    assert err.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("", "project", "missing [project] table"),
        ("[project]\nversion = '1'\n", "project.name", "missing required key"),
        ("[project]\nname = ''\n", "project.name", "must not be empty"),
        ("[project]\nname = 1\n", "project.name", "expected a string, got integer"),
        ("project = 'x'\n", "project", "expected a table, got string"),
        (
            MINIMAL + "[project.inputs]\n",
            "project.inputs",
            "expected an array of strings, got table",
        ),
        (MINIMAL + "[executor]\njobs = 0\n", "executor.jobs", "must be between 1 and 1024, got 0"),
        (
            MINIMAL + "[executor]\njobs = true\n",
            "executor.jobs",
            "expected an integer, got boolean",
        ),
        (MINIMAL + "[executor]\nkind = 1\n", "executor.kind", "expected a string, got integer"),
        (
            MINIMAL + "[cache]\nremote_read_only = 'no'\n",
            "cache.remote_read_only",
            "expected a boolean",
        ),
        (MINIMAL + "[cache]\ndir = ''\n", "cache.dir", "must not be empty"),
        (
            MINIMAL + "[[lifecycle.build]]\ncommand = 'x'\n",
            "lifecycle.build",
            "expected a table, got array",
        ),
        ("lifecycle = 3\n" + MINIMAL, "lifecycle", "expected a table, got integer"),
        (
            MINIMAL + "[lifecycle.'^x']\ncommand = 'x'\n",
            'lifecycle."^x"',
            "must not be empty, start with '^'",
        ),
        (MINIMAL + "[lifecycle.'a:b']\ncommand = 'x'\n", 'lifecycle."a:b"', "contain ':'"),
        (
            MINIMAL + "[workspace.a]\ndepends_on = 'b'\n",
            "workspace.a.depends_on",
            "expected an array",
        ),
        (
            MINIMAL + "[workspace.a]\ndescription = 'x'\n",
            "workspace.a.path",
            "missing required key",
        ),
        (MINIMAL + "[workspace.a]\npth = 'a'\n", "workspace.a.pth", 'did you mean "path"?'),
        (MINIMAL + "[workspace.'']\npath = 'a'\n", 'workspace.""', "must not be empty"),
        (
            MINIMAL + "[hooks]\nbefore_all = 3\n",
            "hooks.before_all",
            "expected a string or an array",
        ),
        (MINIMAL + "name2 = 'x'\n", "project.name2", 'did you mean "name"?'),
    ],
)
def test_bad_document(tmp_path: Path, text: str, key: str, message: str) -> None:
    err = error_of(project(tmp_path, text))
    assert err.key == key
    assert message in err.message
    assert err.hint or "did you mean" in err.message


# ------------------------------------------------------------------------ workspace paths


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../outside", '"../outside" is outside the project root'),
        ("a/../../outside", '"a/../../outside" is outside the project root'),
        ("missing", '"missing" does not exist'),
        ("a/missing", '"a/missing" does not exist'),
        ("file.txt", '"file.txt" is not a directory'),
        ("file.txt/x", '"file.txt/x" does not exist'),
        ("", "must not be empty"),
    ],
)
def test_bad_workspace_path(tmp_path: Path, path: str, message: str) -> None:
    (tmp_path / "outside").mkdir()
    root = project(
        tmp_path / "root", MINIMAL + f"[workspace.w]\npath = {json.dumps(path)}\n", ("a",)
    )
    (root / "file.txt").write_text("x", encoding="utf-8")
    err = error_of(root)
    assert err.key == "workspace.w.path"
    assert message in err.message
    assert err.hint


def test_absolute_workspace_path(tmp_path: Path) -> None:
    root = project(tmp_path, MINIMAL + f"[workspace.w]\npath = {json.dumps(str(tmp_path))}\n")
    err = error_of(root)
    assert "is an absolute path" in err.message
    assert err.hint == "write it relative to the project root"


def test_symlink_pointing_out_of_root(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    root = project(tmp_path / "root", MINIMAL + '[workspace.w]\npath = "link/sub"\n')
    (tmp_path / "outside" / "sub").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    err = error_of(root)
    assert err.key == "workspace.w.path"
    assert '"link/sub" is outside the project root' in err.message
    assert str(os.path.realpath(tmp_path / "outside" / "sub")) in err.message


def test_broken_symlink(tmp_path: Path) -> None:
    root = project(tmp_path, MINIMAL + '[workspace.w]\npath = "dangling"\n')
    (root / "dangling").symlink_to(root / "gone")
    assert "broken link" in error_of(root).message


def test_two_workspaces_in_one_directory(tmp_path: Path) -> None:
    root = project(
        tmp_path, MINIMAL + '[workspace.a]\npath = "a"\n[workspace.b]\npath = "./a"\n', ("a",)
    )
    err = error_of(root)
    assert err.key == "workspace.b.path"
    assert 'same directory as workspace "a": a' in err.message


# ------------------------------------------------------------------------ cross-references


def test_workspace_depends_on_unknown(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        MINIMAL + '[workspace.backend]\npath = "b"\n[workspace.web]\npath = "w"\n'
        'depends_on = ["backnd"]\n',
        ("b", "w"),
    )
    err = error_of(root)
    assert str(err) == (
        f'{tmp_path / "make.toml"}:7: workspace.web.depends_on[0]: unknown workspace "backnd", '
        'did you mean "backend"? (declare [workspace.backnd] or fix the name)'
    )


def test_phase_workspaces_unknown_and_root_allowed(tmp_path: Path) -> None:
    base = MINIMAL + '[workspace.api]\npath = "api"\n[lifecycle.build]\ncommand = "x"\n'
    make = load_make(project(tmp_path, base + 'workspaces = [".", "api"]\n', ("api",)))
    build = make.phase("build")
    assert build is not None and build.workspaces == (".", "api")
    err = error_of(project(tmp_path, base + 'workspaces = ["api", "ap1"]\n'))
    assert err.key == "lifecycle.build.workspaces[1]"
    assert err.message == 'unknown workspace "ap1", did you mean "api"?'


def test_phase_depends_on_unknown(tmp_path: Path) -> None:
    text = MINIMAL + '[lifecycle.build]\ncommand = "x"\n[lifecycle.test]\ncommand = "t"\n'
    make = load_make(project(tmp_path, text + 'depends_on = ["^build", "build"]\n'))
    test = make.phase("test")
    assert test is not None and test.depends_on == ("^build", "build")
    err = error_of(project(tmp_path, text + 'depends_on = ["^biuld"]\n'))
    assert err.key == "lifecycle.test.depends_on[0]"
    assert err.message == 'unknown phase "biuld", did you mean "build"?'
    err = error_of(project(tmp_path, text + 'depends_on = ["^"]\n'))
    assert err.message == 'unknown phase ""'
    assert err.hint is not None and "phases: build, test" in err.hint


def test_workspace_phase_refs_are_checked_in_its_file(tmp_path: Path) -> None:
    root = project(tmp_path, MINIMAL + '[workspace.api]\npath = "api"\n', ("api",))
    (root / "api" / MAKE_FILE).write_text(
        '[lifecycle.build]\ncommand = "x"\ndepends_on = ["gen"]\n', encoding="utf-8"
    )
    err = error_of(root)
    assert err.file == str(root / "api" / "make.toml")
    assert err.key == "lifecycle.build.depends_on[0]"
    assert 'unknown phase "gen"' in err.message


def test_hooks(tmp_path: Path) -> None:
    phases = "".join(f'[lifecycle.{p}]\ncommand = "{p}"\n' for p in ("build", "lint", "docs"))
    root = project(
        tmp_path, MINIMAL + phases + '[hooks]\nbefore_all = "lint"\nbefore_build = ["lint"]\n'
    )
    make = load_make(root)
    assert make.hooks.before_all == ("lint",)
    assert make.hooks.before == (("build", ("lint",)),)

    cases = [
        ('after_all = ["lnt"]', "hooks.after_all[0]", 'unknown phase "lnt", did you mean "lint"?'),
        ('on_error = "lnit"', "hooks.on_error", 'unknown phase "lnit", did you mean "lint"?'),
        ('before_biuld = ["lint"]', "hooks.before_biuld",
         'no phase named "biuld", did you mean "before_build"?'),
        ('befor_build = ["lint"]', "hooks.befor_build",
         'unknown key, did you mean "before_build"?'),
    ]  # fmt: skip
    for body, key, message in cases:
        err = error_of(project(tmp_path, MINIMAL + phases + "[hooks]\n" + body + "\n"))
        assert (err.key, err.message) == (key, message)
        assert err.hint or "did you mean" in message


def test_workspace_cycle(tmp_path: Path) -> None:
    text = MINIMAL + "".join(
        f'[workspace.{n}]\npath = "{n}"\ndepends_on = {json.dumps(d)}\n'
        for n, d in (("a", ["b"]), ("b", ["c"]), ("c", ["a"]), ("d", ["a"]))
    )
    with pytest.raises(CycleError) as info:
        load_make(project(tmp_path, text, ("a", "b", "c", "d")))
    assert info.value.message == "workspace cycle: a -> b -> c -> a"
    assert info.value.key == "workspace.a.depends_on"
    assert info.value.exit_code == EXIT_USAGE


def test_workspace_self_cycle(tmp_path: Path) -> None:
    text = MINIMAL + '[workspace.a]\npath = "a"\ndepends_on = ["a"]\n'
    with pytest.raises(CycleError, match="workspace cycle: a -> a"):
        load_make(project(tmp_path, text, ("a",)))


def test_long_workspace_chain_is_not_a_cycle(tmp_path: Path) -> None:
    n = 1200  # deeper than the default recursion limit (1000)
    text = (
        MINIMAL
        + '[workspace.w0]\npath = "d"\n'
        + "".join(
            f'[workspace.w{i}]\npath = "d/{i}"\ndepends_on = ["w{i - 1}"]\n' for i in range(1, n)
        )
    )
    for i in range(1, n):
        (tmp_path / "d" / str(i)).mkdir(parents=True)
    assert len(load_make(project(tmp_path, text)).workspaces) == n


# ------------------------------------------------------------------------ property test
#
# Documents are drawn valid (against the directories of ``fuzz_root``), then mutated at a few
# random spots: a value replaced by any TOML value, a key misspelt, removed or added. So each
# example mostly carries one defect, deep in the document, and valid ones are common too.

WS_PATHS = {"a": "a", "b": "b", "@scope/ui": "b/c", ".": "."}
PHASES = ["build", "test", "lint"]
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"),
               max_size=6)  # fmt: skip
SCALARS = st.one_of(
    TEXT,
    st.sampled_from(["a", "b", "build", "^build", ".", "", "../x", "/tmp", "link", "f.txt",
                     "missing", "5GB", "1.5GiB", "dask", "http://h/c", "x:y"]),
    st.integers(-3, 70000),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.dates(),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(TEXT, SCALARS.map(str)), inner,
                                                     max_size=3)
    ),
    max_leaves=6,
)  # fmt: skip


def phase_table(draw: st.DrawFn, phases: list[str], workspaces: list[str]) -> dict[str, object]:
    some = st.lists(st.sampled_from(phases), unique=True, max_size=2)
    optional: dict[str, st.SearchStrategy[object]] = {
        "description": TEXT,
        "workspaces": st.lists(st.sampled_from([*workspaces, "."]), unique=True, min_size=1),
        "parallel": st.booleans(),
        "depends_on": some.map(lambda names: [f"^{n}" if len(n) % 2 else n for n in names]),
        "inputs": st.lists(st.sampled_from(["src/**", "//tools/x", "a.txt"]), max_size=2),
        "outputs": st.lists(st.sampled_from(["dist/**", "out"]), max_size=2),
        "env": st.dictionaries(st.sampled_from(["A", "B"]), st.one_of(TEXT, st.booleans())),
        "env_inputs": st.lists(st.sampled_from(["CI", "HOME"]), max_size=2),
        "cache": st.booleans(),
        "timeout": st.floats(0.5, 1000),
        "retries": st.integers(0, 3),
        "watch": st.booleans(),
        "port": st.integers(1, 65535),
    }
    keys = draw(st.sets(st.sampled_from(sorted(optional)), max_size=4))
    table: dict[str, object] = {k: draw(optional[k]) for k in sorted(keys)}
    if draw(st.booleans()):
        table["command"] = "echo one"
    else:
        table["commands"] = ["echo one", "echo two"]
    return table


@st.composite
def valid_documents(draw: st.DrawFn) -> tuple[dict[str, object], dict[str, object]]:
    """A valid root document and a valid make.toml for workspace ``a``."""
    names = draw(st.lists(st.sampled_from(sorted(WS_PATHS)), unique=True, max_size=4))
    phases = draw(st.lists(st.sampled_from(PHASES), unique=True, max_size=3))
    env = st.dictionaries(st.sampled_from(["A", "B", "C"]), st.one_of(TEXT, st.integers(0, 9)))
    doc: dict[str, object] = {"project": {"name": "p", "version": "1"}, "env": draw(env)}
    doc["cache"] = {"max_size": draw(st.sampled_from(["5GB", "1.5GiB", 4096])), "dir": "c"}
    doc["executor"] = {"kind": draw(st.sampled_from(["loky", "inline", "dask"])), "jobs": 2}
    others = {n: [m for m in names if m != n] or ["."] for n in names}
    doc["workspace"] = {
        n: {
            "path": WS_PATHS[n],
            "depends_on": draw(st.lists(st.sampled_from(others[n]), max_size=1)),
        }
        for n in names
    }
    doc["lifecycle"] = {p: phase_table(draw, phases, names) for p in phases}
    if phases:
        hook_keys = ["before_all", "after_all", "on_error"]
        hook_keys += [f"{w}_{p}" for w in ("before", "after") for p in phases]
        doc["hooks"] = {
            k: draw(st.lists(st.sampled_from(phases), max_size=2))
            for k in draw(st.sets(st.sampled_from(hook_keys), max_size=3))
        }
    own = {"env": draw(env), "lifecycle": {p: phase_table(draw, phases, names) for p in phases}}
    return doc, own


def spots(node: object) -> list[tuple[dict[str, object] | list[object], object]]:
    """Every (container, key or index) in a parsed document."""
    found: list[tuple[dict[str, object] | list[object], object]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((node, key))
            found.extend(spots(value))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.append((node, i))
            found.extend(spots(value))
    return found


def replace(parent: dict[str, object] | list[object], key: object, value: object) -> None:
    if isinstance(parent, list):
        assert isinstance(key, int)
        parent[key] = value
    else:
        assert isinstance(key, str)
        parent[key] = value


def mutate(draw: st.DrawFn, doc: dict[str, object]) -> None:
    """Break ``doc`` at up to two random places."""
    for _ in range(draw(st.integers(0, 2))):
        places = spots(doc)
        if not places:
            return
        parent, key = draw(st.sampled_from(places))
        how = draw(st.sampled_from(["value", "rename", "delete", "add"]))
        if how == "value":
            replace(parent, key, draw(VALUES))
        elif isinstance(parent, dict) and isinstance(key, str):
            value = parent.pop(key)
            if how == "rename":
                at = draw(st.integers(0, len(key)))
                parent[key[:at] + key[at + 1 :] + draw(st.sampled_from(["", "s", "_"]))] = value
            elif how == "add":
                parent[key] = value
                parent[draw(st.one_of(TEXT, st.sampled_from(["output", "path", "name"])))] = value
        elif isinstance(parent, list) and isinstance(key, int):
            del parent[key]


@st.composite
def broken_documents(draw: st.DrawFn) -> tuple[dict[str, object], dict[str, object] | None]:
    doc, own = draw(valid_documents())
    mutate(draw, doc)
    if draw(st.booleans()):
        return doc, None
    mutate(draw, own)
    return doc, own


def toml_value(value: object) -> str:
    """``value`` written as TOML (inline tables and arrays only)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (int, datetime.date)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise AssertionError(f"no TOML for {value!r}")


def toml_document(doc: dict[str, object]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fuzz")
    root = base / "root"
    for d in ("a", "b/c", "../x"):
        (root / d).mkdir(parents=True)
    (root / "f.txt").write_text("x", encoding="utf-8")
    (root / "link").symlink_to(base / "x")
    return root


def check_loads_or_config_error(root: Path) -> None:
    """The property: a Make (that survives pickling) or a ConfigError, never anything else."""
    try:
        make = load_make(root)
    except ConfigError as err:
        assert err.file and str(err)
        return
    assert isinstance(make, Make)
    assert pickle.loads(pickle.dumps(make)) == make
    assert list(make.env) == sorted(make.env)
    for ws in make.workspaces:
        assert list(ws.env) == sorted(ws.env)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=broken_documents())
def test_random_documents_load_or_raise_config_error(
    fuzz_root: Path, docs: tuple[dict[str, object], dict[str, object] | None]
) -> None:
    doc, own = docs
    (fuzz_root / MAKE_FILE).write_text(toml_document(doc), encoding="utf-8")
    own_file = fuzz_root / "a" / MAKE_FILE
    if own is None:
        own_file.unlink(missing_ok=True)
    else:
        own_file.write_text(toml_document(own), encoding="utf-8")
    check_loads_or_config_error(fuzz_root)


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=80),
        st.text(alphabet="[]{}=\"\n .,_-#'01239abcdefghijklmnoprstuvwxyz", max_size=120),
    ),
    cut=st.integers(0, 2000),
)
def test_random_text_loads_or_raises_config_error(fuzz_root: Path, text: str, cut: int) -> None:
    # random text alone, and random text spliced into a valid document
    valid = SPEC_EXAMPLE.replace("backend", "a").replace("libs/shared", "b")
    at = cut % len(valid)
    for document in (text, valid[:at] + text + valid[at:]):
        (fuzz_root / MAKE_FILE).write_text(document, encoding="utf-8", errors="surrogatepass")
        (fuzz_root / "a" / MAKE_FILE).unlink(missing_ok=True)
        check_loads_or_config_error(fuzz_root)


BUILD = '[lifecycle.build]\ncommand = "a"\n'


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (BUILD + "timeout = 1e308", "lifecycle.build.timeout", "up to 604800"),
        (BUILD + "timeout = inf", "lifecycle.build.timeout", "up to 604800"),
        (BUILD + "timeout = 604801", "lifecycle.build.timeout", "up to 604800"),
        (BUILD + "retries = 100000000000000000", "lifecycle.build.retries", "between 0 and 100"),
        (BUILD + "retries = 101", "lifecycle.build.retries", "between 0 and 100"),
        ("[executor]\njobs = 100000000000", "executor.jobs", "between 1 and 1024"),
        ('[lifecycle.build]\ncommand = "echo \\u0000 x"', "lifecycle.build.command", "NUL"),
        ('[lifecycle.build]\ncommands = ["a\\u0000"]', "lifecycle.build.commands[0]", "NUL"),
        (BUILD + 'outputs = ["d\\u0000"]', "lifecycle.build.outputs[0]", "NUL"),
        (BUILD + 'inputs = ["s\\u0000"]', "lifecycle.build.inputs[0]", "NUL"),
        (BUILD + 'env = { A = "\\u0000" }', "lifecycle.build.env.A", "NUL"),
        (BUILD + 'env_inputs = ["A\\u0000"]', "lifecycle.build.env_inputs[0]", "NUL"),
        ('[lifecycle."b\\u0000"]\ncommand = "a"', 'lifecycle."b\\u0000"', "NUL"),
        ('[workspace."w\\u0000"]\npath = "."', 'workspace."w\\u0000"', "NUL"),
        ('[workspace.w]\npath = "a\\u0000"', "workspace.w.path", "NUL"),
        ('[cache]\ndir = "c\\u0000"', "cache.dir", "NUL"),
        ('[cache]\nremote = "http://h/\\u0000"', "cache.remote", "NUL"),
        ('[executor]\nscheduler = "tcp://h\\u0000"', "executor.scheduler", "NUL"),
        ('[project]\nname = "p"\ninputs = ["a\\u0000"]', "project.inputs[0]", "NUL"),
    ],
)  # fmt: skip
def test_values_out_of_bounds_or_holding_nul_are_refused_at_load(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    body = text if text.startswith("[project]") else MINIMAL + text
    err = error_of(project(tmp_path, body + "\n"))
    assert (err.key, err.exit_code) == (key, EXIT_USAGE)
    assert message in err.message
    assert err.file == str(tmp_path / "make.toml") and err.hint


@given(st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_timeout_loads_bounded_or_is_refused(tmp_path: Path, seconds: float) -> None:
    written = json.dumps(seconds).replace("Infinity", "inf").replace("NaN", "nan")
    root = project(tmp_path, MINIMAL + f'[lifecycle.b]\ncommand = "a"\ntimeout = {written}\n')
    try:
        timeout = load_make(root).lifecycle[0].timeout
    except ConfigError as err:
        assert err.key == "lifecycle.b.timeout" and "up to 604800" in err.message
        assert not (0 < seconds <= 604800)
    else:
        assert timeout is not None and 0 < timeout <= 604800 and timeout == seconds
