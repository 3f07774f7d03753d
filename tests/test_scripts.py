"""Tests of ggen.make.scripts: package.json scripts as the commands of ``script = NAME`` phases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from monorepo import ggen, last_summary, statuses, write_tree

from ggen.errors import EXIT_TASK_FAILED, EXIT_USAGE, ConfigError
from ggen.make import load_make
from ggen.make.scripts import (
    PACKAGE_FILE,
    bin_dirs,
    read_packages,
    recipe_commands,
    script_commands,
    wanted_scripts,
)
from ggen.runner.execute import ExecOptions, task_spec

MAKE = """\
[project]
name = "js"

[workspace.a]
path = "packages/a"

[workspace.b]
path = "packages/b"
depends_on = ["a"]

[workspace.c]
path = "packages/c"
depends_on = ["b"]

[lifecycle.build]
script = "build"
depends_on = ["^build"]
outputs = ["out.txt"]
"""


def package(root: Path, rel: str, scripts: dict[str, str], **fields: str) -> None:
    path = root / rel / PACKAGE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**fields, "scripts": scripts}), encoding="utf-8")


def project(root: Path, make: str = MAKE) -> Path:
    write_tree(root, {"make.toml": make})
    for rel in ("packages/a", "packages/b", "packages/c"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    return root


# ------------------------------------------------------------------------ reading package.json


def test_only_the_named_scripts_and_their_pre_and_post_are_kept(tmp_path: Path) -> None:
    package(
        tmp_path,
        "a",
        {"prebuild": "p", "build": "b", "postbuild": "q", "test": "t", "prebuilder": "x"},
        name="@x/a",
        version="1.0.0",
    )
    (found,) = read_packages(str(tmp_path), "shown", ["a", "missing"], wanted_scripts(["build"]))
    assert (found.path, found.name, found.version) == ("a", "@x/a", "1.0.0")
    assert found.scripts == (("build", "b"), ("postbuild", "q"), ("prebuild", "p"))


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("{", None, "not valid JSON"),
        ("[1]", None, "expected a JSON object"),
        ('{"scripts": ["build"]}', "scripts", "expected an object of script names"),
        ('{"scripts": {"build": 1}}', "scripts.build", "expected a string"),
    ],
)
def test_a_package_json_npm_could_not_use_is_a_config_error(
    tmp_path: Path, text: str, key: str | None, message: str
) -> None:
    root = project(tmp_path)
    (root / "packages/a" / PACKAGE_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_make(root)
    err = info.value
    assert (err.file, err.key, err.exit_code) == (
        str(root / "packages/a" / PACKAGE_FILE),
        key,
        EXIT_USAGE,
    )
    assert message in err.message and err.hint


def test_package_json_is_read_only_when_a_phase_names_a_script(tmp_path: Path) -> None:
    root = project(tmp_path, MAKE.replace('script = "build"', 'command = "true"'))
    (root / "packages/a" / PACKAGE_FILE).write_text("{", encoding="utf-8")
    assert load_make(root).packages == ()


def test_pre_main_post_in_order_and_nothing_without_the_main_script(tmp_path: Path) -> None:
    root = project(tmp_path)
    package(root, "packages/a", {"postbuild": "3", "build": "2", "prebuild": "1"})
    package(root, "packages/b", {"prebuild": "1", "postbuild": "3"})  # no build: npm fails
    make = load_make(root)
    phase = make.phase("build")
    a, b, c = (make.workspace(n) for n in "abc")
    assert phase is not None and a is not None and b is not None and c is not None
    assert [(x.event, x.text) for x in script_commands(make, a, phase)] == [
        ("prebuild", "1"),
        ("build", "2"),
        ("postbuild", "3"),
    ]
    assert script_commands(make, b, phase) == ()
    assert script_commands(make, c, phase) == ()  # no package.json at all


def test_the_key_commands_hold_script_text_name_and_version(tmp_path: Path) -> None:
    root = project(tmp_path)
    package(root, "packages/a", {"build": "tsc -b"}, name="@x/a", version="1.0.0")
    make = load_make(root)
    a = make.workspace("a")
    phase = make.phase("build")
    assert a is not None and phase is not None
    first = recipe_commands(make, a, phase)
    assert first == ("[script build of @x/a@1.0.0] tsc -b",)
    for scripts, fields in [
        ({"build": "tsc -b --verbose"}, {"name": "@x/a", "version": "1.0.0"}),
        ({"build": "tsc -b"}, {"name": "@x/a", "version": "1.0.1"}),
        ({"build": "tsc -b"}, {"name": "@x/b", "version": "1.0.0"}),
        ({"build": "tsc -b", "prebuild": "rm -rf dist"}, {"name": "@x/a", "version": "1.0.0"}),
    ]:
        package(root, "packages/a", scripts, **fields)
        again = load_make(root)
        ws = again.workspace("a")
        assert ws is not None
        assert recipe_commands(again, ws, phase) != first


def test_a_commands_phase_keys_its_commands_as_before(tmp_path: Path) -> None:
    root = project(tmp_path, MAKE.replace('script = "build"', 'commands = ["a", "b"]'))
    make = load_make(root)
    a, phase = make.workspace("a"), make.phase("build")
    assert a is not None and phase is not None
    assert recipe_commands(make, a, phase) == ("a", "b")


def test_task_spec_runs_the_scripts_with_npm_variables_and_bin_dirs(tmp_path: Path) -> None:
    root = project(tmp_path)
    package(root, "packages/a", {"build": "tsc", "postbuild": "echo ok"}, name="@x/a")
    make = load_make(root)
    spec = task_spec(make, "a", "build", ExecOptions(str(tmp_path / "l"), str(tmp_path / "c")))
    assert spec.commands == ("tsc", "echo ok")
    real = os.path.realpath(root)
    assert spec.path_prefix == (
        f"{real}/packages/a/node_modules/.bin",
        f"{real}/packages/node_modules/.bin",
        f"{real}/node_modules/.bin",
    )
    assert [dict(e) for e in spec.command_env] == [
        {
            "npm_lifecycle_event": event,
            "npm_lifecycle_script": text,
            "npm_package_json": f"{real}/packages/a/package.json",
            "npm_package_name": "@x/a",
        }
        for event, text in (("build", "tsc"), ("postbuild", "echo ok"))
    ]
    root_ws = make.workspace(".")
    assert root_ws is not None
    assert bin_dirs(make, root_ws) == (f"{real}/node_modules/.bin",)


# ----------------------------------------------------------------------- end to end, with npm


def npm_workspace(root: Path) -> Path:
    """An npm workspaces repo: a local tool package whose bin npm links into node_modules/.bin,
    a package ``@x/a`` whose scripts use it, ``@x/b`` without a build script, ``@x/c``."""
    write_tree(
        root,
        {
            "package.json": '{"name": "root", "private": true, "workspaces": ["packages/*"]}\n',
            "packages/tool/package.json": json.dumps(
                {"name": "@x/tool", "version": "0.0.1", "bin": {"xtool": "bin.js"}}
            ),
            "packages/tool/bin.js": """
                #!/usr/bin/env node
                console.log("xtool " + process.argv.slice(2).join(" "));
            """,
            "packages/a/src/in.txt": "a\n",
            "packages/b/src/in.txt": "b\n",
            "packages/c/src/in.txt": "c\n",
            "make.toml": MAKE.replace(
                'outputs = ["out.txt"]', 'outputs = ["out.txt"]\ninputs = ["src/**"]'
            )
            + '\n[workspace.tool]\npath = "packages/tool"\n',
        },
    )
    (root / "packages/tool/bin.js").chmod(0o755)
    say = 'echo "$npm_lifecycle_event $npm_package_name $npm_package_version" >> out.txt'
    package(
        root,
        "packages/a",
        {
            "prebuild": f"rm -f out.txt; {say}",
            "build": f"xtool built >> out.txt; {say}",
            "postbuild": say,
        },
        name="@x/a",
        version="1.0.0",
    )
    (root / "packages/a/package.json").write_text(
        json.dumps(
            {
                **json.loads((root / "packages/a/package.json").read_text()),
                "dependencies": {"@x/tool": "*"},
            }
        )
    )
    package(root, "packages/b", {"test": "exit 1"}, name="@x/b", version="2.0.0")
    package(root, "packages/c", {"build": "cat ../a/out.txt > out.txt"}, name="@x/c")
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: the test needs the real npm")
    subprocess.run(
        [npm, "install", "--offline", "--no-audit", "--no-fund"],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert (root / "node_modules/.bin/xtool").exists()
    return root


def test_scripts_run_as_npm_runs_them(tmp_path: Path) -> None:
    root = npm_workspace(tmp_path / "repo")
    env = {"PATH": os.environ["PATH"]}
    r = ggen("run", "build", "--output", "grouped", cwd=root, env=env)
    assert r.returncode == 0, r.stderr
    ggen_out = (root / "packages/a/out.txt").read_text()
    assert ggen_out == (
        "prebuild @x/a 1.0.0\nxtool built\nbuild @x/a 1.0.0\npostbuild @x/a 1.0.0\n"
    )
    assert (root / "packages/c/out.txt").read_text() == ggen_out
    summary = last_summary(root)
    assert statuses(summary) == {
        "a:build": "ok",
        "b:build": "no-script",
        "c:build": "ok",
        "tool:build": "no-script",
    }
    assert summary["totals"]["no_script"] == 2 and summary["totals"]["skipped"] == 0
    assert '── b:build [no-script] no "build" script in packages/b/package.json' in r.stdout
    assert "2 with nothing to do" in r.stdout

    # npm itself gives the same file
    subprocess.run(["npm", "run", "build", "-w", "@x/a"], cwd=root, check=True, capture_output=True)
    assert (root / "packages/a/out.txt").read_text() == ggen_out


def test_a_failing_pre_script_stops_the_task(tmp_path: Path) -> None:
    root = project(tmp_path)
    package(
        root,
        "packages/a",
        {"prebuild": "exit 3", "build": "touch built", "postbuild": "touch post"},
    )
    r = ggen("run", "build", cwd=root)
    assert r.returncode == EXIT_TASK_FAILED
    assert statuses(last_summary(root)) == {
        "a:build": "failed",
        "b:build": "skipped",
        "c:build": "skipped",
    }
    assert not (root / "packages/a/built").exists()
    assert not (root / "packages/a/post").exists()


def test_a_workspace_without_the_script_does_not_hold_back_its_dependents(tmp_path: Path) -> None:
    root = project(tmp_path)
    package(root, "packages/a", {"build": "echo a > out.txt"})
    package(root, "packages/c", {"build": "echo c > out.txt"})  # b has no package.json
    r = ggen("run", "build", cwd=root)
    assert r.returncode == 0, r.stderr
    assert statuses(last_summary(root)) == {
        "a:build": "ok",
        "b:build": "no-script",
        "c:build": "ok",
    }
    assert (root / "packages/c/out.txt").read_text() == "c\n"
    r = ggen("explain", "build", "-w", "b", cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == (
        "nothing to do: package.json has no such script: build (packages/b/package.json)"
    )
    r = ggen("report", "-o", "report.html", cwd=root)
    assert r.returncode == 0, r.stderr
    assert '<i class="sw s-no-script"></i>no script 1' in (root / "report.html").read_text()


def test_editing_a_script_is_a_cache_miss_even_when_package_json_is_no_input(
    tmp_path: Path,
) -> None:
    root = project(
        tmp_path,
        MAKE.replace('outputs = ["out.txt"]', 'outputs = ["out.txt"]\ninputs = ["src/**"]'),
    )
    for rel in ("packages/a", "packages/b", "packages/c"):
        package(root, rel, {"build": "echo v1 > out.txt"})

    def run() -> dict[str, str]:
        r = ggen("run", "build", cwd=root)
        assert r.returncode == 0, r.stderr
        return statuses(last_summary(root))

    assert set(run().values()) == {"ok"}
    assert set(run().values()) == {"cached"}
    package(root, "packages/a", {"build": "echo v2 > out.txt"})
    # a runs again; b and c too, their upstream key changed
    assert run() == {"a:build": "ok", "b:build": "ok", "c:build": "ok"}
    assert (root / "packages/a/out.txt").read_text() == "v2\n"
    r = ggen("explain", "build", "-w", "a", cwd=root)
    assert "cached" in r.stdout
    package(root, "packages/a", {"build": "echo v1 > out.txt"})
    assert run()["a:build"] == "cached"
    assert (root / "packages/a/out.txt").read_text() == "v1\n"
    package(root, "packages/a", {"prebuild": "true", "build": "echo v1 > out.txt"})
    assert run()["a:build"] == "ok"


def test_show_names_the_script(tmp_path: Path) -> None:
    root = project(tmp_path)
    r = ggen("show", "build", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "script:       build (of each workspace's package.json)" in r.stdout
    assert "commands:" not in r.stdout
