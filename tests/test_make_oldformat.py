"""The old system's make.toml files load; what ggen does not read is a warning, typos stay errors.

The rule (README, "Keys ggen does not read"): an unknown key or table within a few edits of a
known one is a likely typo and an error ("did you mean"); a name the old format wrote is always
a warning; any other unknown name, and a table where a variable's value is expected
(``[env.production]``), is a warning naming file, line and key. ``ggen validate --strict`` and
``[project] strict = true`` make warnings errors.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from monorepo import ggen, last_summary, statuses, write_tree

from ggen.errors import EXIT_USAGE, ConfigError
from ggen.make import MAKE_FILE, load_make

MINIMAL = '[project]\nname = "p"\n'
BUILD = '[lifecycle.build]\ncommand = "echo hi"\n'


def write(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / MAKE_FILE).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


# (what the old files write, the key warned about, its line)
IGNORED = [
    ("[scripts]\nclean = 'rm -rf dist'\n", "scripts", 5),
    ("[execution]\nmax_parallel_phases = 4\n", "execution", 5),
    ("[state]\nstate_file = '.ggen/state.json'\n", "state", 5),
    ("[deps]\nserde = '1'\n", "deps", 5),
    ("[monitoring]\nenable_metrics = true\n", "monitoring", 5),
    ("[security]\nvalidate_commands = true\n", "security", 5),
    ("[cache]\nenabled = true\n", "cache.enabled", 6),
    ("[cache]\ndirectory = '.ggen/cache'\n", "cache.directory", 6),
    ("[env.production]\nNODE_ENV = 'production'\n", "env.production", 5),
    ("[env]\nA = '1'\nstaging = { B = '2' }\n", "env.staging", 7),
    ("[lifecycle.build.env.production]\nX = '1'\n", "lifecycle.build.env.production", 5),
    ("[hooks]\non_success = ['build']\n", "hooks.on_success", 6),
    ("[hooks]\non_success = 'notify'\n", "hooks.on_success", 6),
]
IGNORED_IN_BUILD = [
    ("cache_key = 'build-v1'", "lifecycle.build.cache_key"),
    ("first_run_only = true", "lifecycle.build.first_run_only"),
    ("requires_approval = true", "lifecycle.build.requires_approval"),
]


@pytest.mark.parametrize(("text", "key", "line"), IGNORED)
def test_each_table_and_key_the_old_loader_ignored_is_a_warning(
    tmp_path: Path, text: str, key: str, line: int
) -> None:
    root = write(tmp_path, MINIMAL + BUILD + text)
    make = load_make(root)
    phase = make.phase("build")
    assert phase is not None and phase.commands == ("echo hi",)
    assert [(w.file, w.key, w.line) for w in make.warnings] == [(str(root / MAKE_FILE), key, line)]
    assert str(make.warnings[0]).startswith(f"{root / MAKE_FILE}:{line}: {key}: ")
    assert ", ignored" in str(make.warnings[0])


@pytest.mark.parametrize(("text", "key"), IGNORED_IN_BUILD)
def test_each_old_phase_key_is_a_warning(tmp_path: Path, text: str, key: str) -> None:
    root = write(tmp_path, MINIMAL + BUILD + text + "\n")
    make = load_make(root)
    assert [(w.key, w.line) for w in make.warnings] == [(key, 5)]
    assert make.phase("build") is not None


@pytest.mark.parametrize("key", ["author", "authors"])
def test_project_authors_are_not_taken_for_a_typo(tmp_path: Path, key: str) -> None:
    root = write(tmp_path, f'[project]\nname = "p"\n{key} = ["Ada <ada@example.com>"]\n')
    make = load_make(root)
    assert make.project.name == "p"
    assert [(w.key, w.message) for w in make.warnings] == [(f"project.{key}", "unknown key")]


def test_a_workspace_make_toml_env_profile_is_a_warning(tmp_path: Path) -> None:
    root = write(tmp_path, MINIMAL + '[env]\nA = "root"\n[workspace.api]\npath = "api"\n' + BUILD)
    write(root / "api", '[env]\nA = "api"\n[env.staging]\nA = "staging"\n')
    make = load_make(root)
    api = make.workspace("api")
    assert api is not None and api.env == (("A", "api"),)
    assert [(w.file, w.key, w.line) for w in make.warnings] == [
        (str(root / "api" / MAKE_FILE), "env.staging", 3)
    ]


def test_watch_is_a_boolean_and_port_an_integer(tmp_path: Path) -> None:
    root = write(
        tmp_path, MINIMAL + '[lifecycle.dev]\ncommand = "npm run dev"\nwatch = true\nport = 3000\n'
    )
    dev = load_make(root).phase("dev")
    assert dev is not None and (dev.watch, dev.port) == (True, 3000)


def test_a_typo_inside_a_phase_is_still_an_error(tmp_path: Path) -> None:
    root = write(tmp_path, MINIMAL + BUILD + "timout = 10\n")
    with pytest.raises(ConfigError) as info:
        load_make(root)
    assert str(info.value) == (
        f'{root / MAKE_FILE}:5: lifecycle.build.timout: unknown key, did you mean "timeout"?'
    )
    r = ggen("run", "build", cwd=root)
    assert r.returncode == EXIT_USAGE
    assert 'lifecycle.build.timout: unknown key, did you mean "timeout"?' in r.stderr
    assert "Traceback" not in r.stderr


def test_project_strict_makes_warnings_errors(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nname = "p"\nstrict = true\nauthors = ["a"]\n[scripts]\n')
    with pytest.raises(ConfigError) as info:
        load_make(root)
    err = info.value
    assert (err.file, err.key, err.line, err.exit_code) == (
        str(root / MAKE_FILE),
        "project.authors",
        4,
        EXIT_USAGE,
    )
    assert "an error with [project] strict = true" in err.message
    assert f"{root / MAKE_FILE}:5: scripts: unknown table" in err.message
    r = ggen("list", cwd=root)
    assert r.returncode == EXIT_USAGE and "project.authors" in r.stderr


def test_warnings_reach_stderr_and_validate_strict_exits_2(tmp_path: Path) -> None:
    root = write(tmp_path, MINIMAL + BUILD + "[execution]\nmax_parallel_phases = 4\n")
    r = ggen("validate", cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        f"ggen: warning: {root / MAKE_FILE}:5: execution: unknown table, ignored "
        "(known here: project, env, cache, executor, workspace, lifecycle, hooks)\n"
    )
    r = ggen("list", cwd=root)
    assert r.returncode == 0 and "execution: unknown table, ignored" in r.stderr
    r = ggen("validate", "--strict", cwd=root)
    assert r.returncode == EXIT_USAGE
    assert r.stderr.startswith(
        f"ggen: error: {root / MAKE_FILE}:5: execution: unknown table (an error with --strict)"
    )
    assert "Traceback" not in r.stderr


# ----------------------------------------------------------------- the typo rule, as a class

# Each table: how to write a key into it, the keys ggen reads there and the old format's names.
TABLES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "top": (
        "{key} = 1\n" + MINIMAL + BUILD,
        ("project", "env", "cache", "executor", "workspace", "lifecycle", "hooks"),
        (
            "scripts",
            "execution",
            "state",
            "deps",
            "monitoring",
            "security",
            "performance",
            "pipelines",
            "quality_gates",
            "backup",
            "integrations",
            "config",
            "tasks",
            "phases",
            "environments",
        ),
    ),
    "project": (
        '[project]\nname = "p"\n{key} = 1\n' + BUILD,
        ("name", "version", "type", "description", "inputs", "strict"),
        ("author", "authors", "license", "repository", "homepage", "keywords"),
    ),
    "cache": (
        MINIMAL + BUILD + "[cache]\n{key} = 1\n",
        ("dir", "max_size", "remote", "remote_read_only"),
        (
            "enabled",
            "directory",
            "enable_caching",
            "cache_directory",
            "cache_ttl_seconds",
            "invalidate_on_change",
            "distributed_cache",
            "max_cache_size_mb",
        ),
    ),
    "executor": (MINIMAL + BUILD + "[executor]\n{key} = 1\n", ("kind", "scheduler", "jobs"), ()),
    "workspace": (
        MINIMAL + BUILD + '[workspace.w]\npath = "w"\n{key} = 1\n',
        ("path", "depends_on", "description"),
        ("framework", "runtime", "package_manager"),
    ),
    "phase": (
        MINIMAL + BUILD + "{key} = 1\n",
        (
            "description",
            "command",
            "commands",
            "script",
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
        ),
        (
            "cache_key",
            "first_run_only",
            "requires_approval",
            "error_handling",
            "required",
            "requires",
            "coverage_threshold",
        ),
    ),
    "hooks": (
        MINIMAL + BUILD + "[hooks]\n{key} = 1\n",
        ("before_all", "after_all", "on_error", "before_build", "after_build"),
        ("on_success", "on_init", "on_failure"),
    ),
}
EDIT_CHARS = st.sampled_from("abcdeilmnorstuy_-")


@st.composite
def single_edits(draw: st.DrawFn) -> tuple[str, str]:
    """(table, a name one edit away from one of its known keys: insert, delete, replace a
    character or swap two neighbours) that is neither known there nor an old-format name."""
    table = draw(st.sampled_from(sorted(TABLES)))
    _, known, old = TABLES[table]
    key = draw(st.sampled_from(known))
    how = draw(st.sampled_from(["insert", "delete", "replace", "swap"]))
    at = draw(st.integers(0, len(key) - (0 if how == "insert" else 1)))
    if how == "insert":
        typo = key[:at] + draw(EDIT_CHARS) + key[at:]
    elif how == "delete":
        typo = key[:at] + key[at + 1 :]
    elif how == "replace":
        typo = key[:at] + draw(EDIT_CHARS) + key[at + 1 :]
    else:
        at = min(at, len(key) - 2)
        typo = key[:at] + key[at + 1] + key[at] + key[at + 2 :]
    from hypothesis import assume

    assume(typo and typo not in known and typo not in old)
    return table, typo


def load_with(root: Path, table: str, key: str) -> object:
    (root / "w").mkdir(exist_ok=True)
    template, _, _ = TABLES[table]
    (root / MAKE_FILE).write_text(template.replace("{key}", json.dumps(key)), encoding="utf-8")
    return load_make(root)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=single_edits())
def test_any_single_edit_typo_of_a_known_key_is_an_error(
    tmp_path: Path, case: tuple[str, str]
) -> None:
    table, typo = case
    with pytest.raises(ConfigError) as info:
        load_with(tmp_path, table, typo)
    assert "did you mean" in info.value.message
    assert info.value.exit_code == EXIT_USAGE


OLD_NAMES = [(table, name) for table, (_, _, old) in TABLES.items() for name in old]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.sampled_from(OLD_NAMES),
    value=st.sampled_from(["1", "true", '"x"', "[1, 2]", "{ a = 1 }"]),
)
def test_an_old_format_name_never_errors(tmp_path: Path, case: tuple[str, str], value: str) -> None:
    table, name = case
    (tmp_path / "w").mkdir(exist_ok=True)
    template, _, _ = TABLES[table]
    text = template.replace("{key} = 1", f"{json.dumps(name)} = {value}")
    (tmp_path / MAKE_FILE).write_text(text, encoding="utf-8")
    make = load_make(tmp_path)
    assert [w.key.rsplit(".", 1)[-1].strip('"') for w in make.warnings] == [name]
    assert make.phase("build") is not None


# ------------------------------------------- what the old loader accepted and ggen used to refuse

LINT = '[lifecycle.lint]\ncommand = "echo lint"\n'
# (a file the old loader accepted, the key warned about, its line, the message)
ACCEPTED = [
    (
        BUILD + '[lifecycle.check]\ndescription = "not written yet"\n',
        "lifecycle.check",
        5,
        "no command: the phase has nothing to do",
    ),
    (
        '[lifecycle.build]\ncommand = "echo one"\ncommands = ["echo two"]\n',
        "lifecycle.build.commands",
        5,
        'both "command" and "commands" are set: "command" runs, ignored',
    ),
    (
        BUILD + '[env]\nA = "1"\nPATHS = ["bin", "scripts"]\n',
        "env.PATHS",
        7,
        "expected a string, got array, ignored",
    ),
    (
        BUILD + 'env = { B = "2", WHEN = 1979-05-27 }\n',
        "lifecycle.build.env.WHEN",
        5,
        "expected a string, got date, ignored",
    ),
    (
        BUILD + LINT + '[hooks]\nbefore_build = ["lint", "generate"]\n',
        "hooks.before_build",
        8,
        'no phase "generate", ignored',
    ),
    (
        BUILD + '[hooks]\nafter_all = "publish"\n',
        "hooks.after_all",
        6,
        'no phase "publish", ignored',
    ),
]


@pytest.mark.parametrize(("text", "key", "line", "message"), ACCEPTED)
def test_what_the_old_loader_accepted_loads_with_a_warning(
    tmp_path: Path, text: str, key: str, line: int, message: str
) -> None:
    root = write(tmp_path, MINIMAL + text)
    make = load_make(root)
    assert [(w.key, w.line) for w in make.warnings] == [(key, line)]
    shown = str(make.warnings[0])
    assert shown.startswith(f"{root / MAKE_FILE}:{line}: {key}: {message}")

    strict = write(tmp_path / "strict", MINIMAL + "strict = true\n" + text)
    with pytest.raises(ConfigError) as info:
        load_make(strict)
    err = info.value
    assert (err.key, err.line) == (key, line + 1)
    assert err.message.startswith(message.removesuffix(", ignored"))
    assert "an error with [project] strict = true" in err.message


def test_a_phase_with_no_command_loads_and_its_tasks_have_nothing_to_do(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        MINIMAL + '[lifecycle.check]\ndescription = "later"\n'
        '[lifecycle.build]\ncommand = "echo built > out.txt"\ndepends_on = ["check"]\n',
    )
    check = load_make(root).phase("check")
    assert check is not None and (check.commands, check.script) == ((), None)
    r = ggen("run", "build", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "lifecycle.check: no command: the phase has nothing to do (add" in r.stderr
    assert "ignored" not in r.stderr
    summary = last_summary(root)
    assert statuses(summary) == {".:check": "no-script", ".:build": "ok"}
    assert "1 with nothing to do" in r.stdout
    (check_task,) = [t for t in summary["tasks"] if t["id"] == ".:check"]
    assert check_task["error"] == "nothing to do: the phase has no command"
    assert (root / "out.txt").read_text() == "built\n"
    r = ggen("explain", "check", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "nothing to do: the phase has no command" in r.stdout
    r = ggen("validate", "--strict", cwd=root)
    assert r.returncode == EXIT_USAGE
    assert "lifecycle.check: no command: the phase has nothing to do (an error with --strict)" in (
        r.stderr
    )


def test_command_wins_over_commands_and_script_with_a_command_stays_an_error(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path, MINIMAL + '[lifecycle.build]\ncommand = "echo one"\ncommands = ["echo two"]\n'
    )
    build = load_make(root).phase("build")
    assert build is not None and build.commands == ("echo one",)
    for extra in ('script = "build"\ncommand = "a"', 'script = "build"\ncommands = ["a"]'):
        write(tmp_path, MINIMAL + "[lifecycle.build]\n" + extra + "\n")
        with pytest.raises(ConfigError) as info:
            load_make(tmp_path)
        assert info.value.key == "lifecycle.build"
        assert "are set" in info.value.message and '"script"' in info.value.message


def test_env_keeps_the_strings_and_ignores_arrays(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        MINIMAL + '[env]\nA = "1"\nN = 2\nPATHS = ["bin"]\n'
        '[lifecycle.build]\ncommand = "echo hi"\nenv = { B = "2", C = [1, 2] }\n',
    )
    make = load_make(root)
    build = make.phase("build")
    assert make.env == (("A", "1"), ("N", "2"))
    assert build is not None and build.env == (("B", "2"),)
    assert [w.key for w in make.warnings] == ["env.PATHS", "lifecycle.build.env.C"]


def test_a_hook_of_no_phase_is_dropped_but_a_typo_of_one_is_an_error(tmp_path: Path) -> None:
    hooks = (
        '[hooks]\nbefore_all = ["lint", "setup"]\nbefore_build = "generate"\n'
        'after_build = ["lint"]\non_error = ["rollback"]\n'
    )
    make = load_make(write(tmp_path, MINIMAL + BUILD + LINT + hooks))
    assert make.hooks.before_all == ("lint",)
    assert make.hooks.before_phase("build") == ()
    assert make.hooks.after_phase("build") == ("lint",)
    assert make.hooks.on_error == ()
    assert [str(w).split(": ", 1)[1] for w in make.warnings] == [
        'hooks.before_all: no phase "setup", ignored (phases: build, lint)',
        'hooks.before_build: no phase "generate", ignored (phases: build, lint)',
        'hooks.on_error: no phase "rollback", ignored (phases: build, lint)',
    ]
    for body, key in (
        ('before_all = ["lnit"]', "hooks.before_all[0]"),
        ('after_build = "biuld"', "hooks.after_build"),
    ):
        write(tmp_path, MINIMAL + BUILD + LINT + "[hooks]\n" + body + "\n")
        with pytest.raises(ConfigError) as info:
            load_make(tmp_path)
        assert info.value.key == key
        assert "did you mean" in info.value.message


# ------------------------------------------------------------- a realistic old-format file

OLD_FORMAT = """\
# Lifecycle of the fullstack app, written for the old ggen lifecycle system
[project]
name = "fullstack-app"
type = "monorepo"
version = "1.0.0"
description = "Backend, frontend and a shared library"
authors = ["Ada Lovelace <ada@example.com>"]

[env]
APP_NAME = "fullstack"
EXTRA_PATHS = ["node_modules/.bin", "target/debug"]

[workspace.shared]
path = "libs/shared"
framework = "none"

[workspace.backend]
path = "backend"
framework = "axum"
runtime = "rust"

[workspace.frontend]
path = "frontend"
framework = "nextjs"
package_manager = "npm"

[lifecycle.lint]
description = "Lint every workspace"
command = "echo lint"
inputs = ["src.txt"]
cache = false

[lifecycle.build]
description = "Build every workspace"
commands = ["mkdir -p dist", "echo \\"built $GGEN_WORKSPACE\\" > dist/out.txt"]
outputs = ["dist/**"]
cache = true
cache_key = "build-v1"
parallel = true

[lifecycle.build.env.production]
OPTIMIZE = "true"

[lifecycle.dev]
description = "Start the dev server"
command = "echo dev"
workspaces = ["frontend"]
watch = true
port = 3000
first_run_only = false

[lifecycle.deploy]
description = "Ship it"
command = "echo deploy"
requires_approval = true

[lifecycle.notify]
command = "echo done"

[lifecycle.typecheck]
description = "Type-check (to be written)"
inputs = ["src.txt"]

[lifecycle.test]
description = "Test what was built"
command = "test -f dist/out.txt && echo \\"tested $APP_NAME\\""
commands = ["echo never"]

[hooks]
before_build = ["lint", "typecheck"]
after_build = ["test"]
after_all = ["publish"]
on_error = ["rollback"]
on_success = ["notify"]

[scripts]
clean = "rm -rf dist"

[execution]
max_parallel_phases = 4
timeout_seconds = 300

[state]
persist_execution_state = true

[deps]
node = ">=18"

[monitoring]
enable_metrics = true

[security]
validate_commands = true

[cache]
enabled = true
directory = ".ggen/cache"

[env.production]
NODE_ENV = "production"

[env.development]
NODE_ENV = "development"
"""


def test_a_realistic_old_format_file_loads_and_runs(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "app",
        {
            "make.toml": OLD_FORMAT,
            "libs/shared/src.txt": "s",
            "backend/src.txt": "b",
            "frontend/src.txt": "f",
        },
    )
    make = load_make(root)
    assert [w.name for w in make.workspaces] == ["shared", "backend", "frontend"]
    assert [p.name for p in make.lifecycle] == [
        "lint", "build", "dev", "deploy", "notify", "typecheck", "test"
    ]  # fmt: skip
    build = make.phase("build")
    dev = make.phase("dev")
    assert build is not None and dev is not None
    assert build.commands == ("mkdir -p dist", 'echo "built $GGEN_WORKSPACE" > dist/out.txt')
    assert build.env == ()  # the profile is ignored
    assert (dev.watch, dev.port, dev.workspaces) == (True, 3000, ("frontend",))
    assert make.hooks.before_phase("build") == ("lint", "typecheck")
    assert make.hooks.after_phase("build") == ("test",)
    assert (make.hooks.after_all, make.hooks.on_error) == ((), ())
    typecheck, test = make.phase("typecheck"), make.phase("test")
    assert typecheck is not None and (typecheck.commands, typecheck.script) == ((), None)
    assert test is not None and test.commands == (
        'test -f dist/out.txt && echo "tested $APP_NAME"',
    )
    assert make.env == (("APP_NAME", "fullstack"),)
    assert {w.key for w in make.warnings} == {
        "project.authors",
        "workspace.shared.framework",
        "workspace.backend.framework",
        "workspace.backend.runtime",
        "workspace.frontend.framework",
        "workspace.frontend.package_manager",
        "lifecycle.build.cache_key",
        "lifecycle.build.env.production",
        "lifecycle.dev.first_run_only",
        "lifecycle.deploy.requires_approval",
        "hooks.on_success",
        "scripts",
        "execution",
        "state",
        "deps",
        "monitoring",
        "security",
        "cache.enabled",
        "cache.directory",
        "env.production",
        "env.development",
        "env.EXTRA_PATHS",
        "lifecycle.typecheck",
        "lifecycle.test.commands",
        "hooks.after_all",
        "hooks.on_error",
    }
    assert all(w.line is not None for w in make.warnings)

    r = ggen("run", "build", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "scripts: unknown table, ignored" in r.stderr
    assert statuses(last_summary(root)) == {
        f"{ws}:{phase}": status
        for ws in ("shared", "backend", "frontend")
        for phase, status in (
            ("lint", "ok"), ("typecheck", "no-script"), ("build", "ok"), ("test", "ok")
        )
    }  # fmt: skip
    assert "3 with nothing to do" in r.stdout
    assert (root / "backend" / "dist" / "out.txt").read_text() == "built backend\n"
    assert "frontend:test | tested fullstack" in r.stdout
    assert "never" not in r.stdout
    r = ggen("run", "build", cwd=root)
    assert r.returncode == 0, r.stderr
    summary = statuses(last_summary(root))
    assert {summary[f"{ws}:build"] for ws in ("shared", "backend", "frontend")} == {"cached"}

    r = ggen("validate", "--strict", cwd=root)
    assert r.returncode == EXIT_USAGE
    assert f"{root / MAKE_FILE}:7: project.authors: unknown key (an error with --strict)" in (
        r.stderr
    )
