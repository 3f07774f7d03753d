"""ggen.init: turbo.json and package scripts -> make.toml, and the `ggen init` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from monorepo import ggen, write_tree

from ggen.errors import ConfigError
from ggen.init import (
    Facts,
    PhaseOrigin,
    PhaseSpec,
    Plan,
    gather,
    make_plan,
    package_phases,
    plan_from_turbo,
    render,
    render_files,
    script_phases,
    strip_jsonc,
)
from ggen.make import Phase
from ggen.make.discover import Source
from ggen.make.loader import load_make_text


def _phases(doc: dict[str, Any], **kw: Any) -> dict[str, PhaseSpec]:
    phases, _, _ = plan_from_turbo(doc, **kw)
    return {p.name: p for p in phases}


def _unmapped(doc: dict[str, Any], **kw: Any) -> list[str]:
    _, _, unmapped = plan_from_turbo(doc, **kw)
    return [u.where for u in unmapped]


# -- turbo.json -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["tasks", "pipeline"])  # turbo 2, turbo 1
def test_each_task_becomes_a_script_phase(key: str) -> None:
    phases = _phases({key: {"build": {}, "check-types": {}}})
    assert list(phases) == ["build", "check-types"]
    assert phases["build"] == PhaseSpec("build", "build")


@pytest.mark.parametrize("key", ["tasks", "pipeline"])
def test_depends_on_keeps_caret_and_same_workspace_and_lists_pkg_tasks(key: str) -> None:
    build = {"dependsOn": ["^build", "codegen", "web#build"], "outputs": []}
    doc = {key: {"build": build, "codegen": {"outputs": []}}}
    assert _phases(doc)["build"].depends_on == ("^build", "codegen")
    assert _unmapped(doc) == [f'turbo.json: {key}.build.dependsOn[2] "web#build"']


def test_task_names_with_colons_become_phase_names_with_dashes() -> None:
    doc = {"tasks": {"build:lib": {}, "test:unit": {"dependsOn": ["^build:lib", "build:lib"]}}}
    phases = _phases(doc)
    assert phases["test-unit"] == PhaseSpec(
        "test-unit", "test:unit", depends_on=("^build-lib", "build-lib")
    )
    assert phases["build-lib"].script == "build:lib"
    assert _unmapped(doc) == ["turbo.json: tasks.build:lib", "turbo.json: tasks.test:unit"]


def test_a_renamed_task_never_takes_the_name_of_another() -> None:
    doc = {"tasks": {"test:unit": {}, "test-unit": {}}}
    assert [(p.name, p.script) for p in _phases(doc).values()] == [("test-unit", "test-unit")]
    _, _, unmapped = plan_from_turbo(doc)
    assert [u.why for u in unmapped] == [
        'no equivalent: its phase name "test-unit" is taken by "test-unit"'
    ]


def test_depends_on_a_task_turbo_json_does_not_define_is_listed() -> None:
    doc = {"tasks": {"test": {"dependsOn": ["build", "^lint"]}}}
    assert _phases(doc)["test"].depends_on == ()
    assert len(_unmapped(doc)) == 2


def test_turbo1_env_dependencies_in_depends_on_become_env_inputs() -> None:
    doc = {"pipeline": {"build": {"dependsOn": ["^build", "$API_URL"]}}}
    build = _phases(doc)["build"]
    assert build.depends_on == ("^build",)
    assert build.env_inputs == ("API_URL",)


def test_outputs_keep_exclusions_and_lose_leading_dot_slash() -> None:
    doc = {"tasks": {"build": {"outputs": ["./dist/**", ".next/**", "!.next/cache/**"]}}}
    assert _phases(doc)["build"].outputs == ("dist/**", ".next/**", "!.next/cache/**")


def test_inputs_default_alone_is_left_unset_and_among_others_is_everything() -> None:
    doc = {
        "tasks": {
            "a": {"inputs": ["$TURBO_DEFAULT$"]},
            "b": {"inputs": ["$TURBO_DEFAULT$", "!README.md", "$TURBO_ROOT$/tsconfig.json"]},
            "c": {"inputs": ["src/**/*.ts"]},
            "d": {},
        }
    }
    phases = _phases(doc)
    assert phases["a"].inputs is None
    assert phases["b"].inputs == ("**", "!README.md", "//tsconfig.json")
    assert phases["c"].inputs == ("src/**/*.ts",)
    assert phases["d"].inputs is None


def test_env_and_global_env_become_env_inputs_and_wildcards_are_listed() -> None:
    doc = {
        "globalEnv": ["CI", "NEXT_PUBLIC_*"],
        "tasks": {"build": {"env": ["NODE_ENV", "!SECRET", "CI"]}, "lint": {}},
    }
    phases = _phases(doc)
    assert phases["build"].env_inputs == ("CI", "NODE_ENV")
    assert phases["lint"].env_inputs == ("CI",)
    assert _unmapped(doc) == [
        'turbo.json: globalEnv[1] "NEXT_PUBLIC_*"',
        'turbo.json: tasks.build.env[1] "!SECRET"',
    ]


def test_cache_false_and_persistent() -> None:
    doc = {"tasks": {"dev": {"cache": False, "persistent": True}, "clean": {"cache": False}}}
    phases = _phases(doc)
    assert (phases["dev"].cache, phases["dev"].watch) == (False, True)
    assert (phases["clean"].cache, phases["clean"].watch) == (False, False)


def test_global_dependencies_become_project_inputs() -> None:
    _, inputs, _ = plan_from_turbo(
        {"globalDependencies": ["tsconfig.base.json", ".env.*", "$TURBO_ROOT$/x"], "tasks": {}}
    )
    assert inputs == ("tsconfig.base.json", ".env.*", "x")


def test_keys_without_equivalent_are_listed_never_dropped() -> None:
    doc = {
        "$schema": "https://turbo.build/schema.json",
        "ui": "tui",
        "globalPassThroughEnv": ["AWS_*"],
        "tasks": {
            "build": {
                "outputLogs": "new-only",
                "interactive": False,
                "passThroughEnv": ["HOME"],
                "with": ["x"],
                "someFutureKey": 1,
            },
            "web#build": {},
        },
    }
    listed = _unmapped(doc)
    assert listed == [
        "turbo.json: ui",
        "turbo.json: globalPassThroughEnv",
        "turbo.json: tasks.web#build",
        "turbo.json: tasks.build.outputLogs",
        "turbo.json: tasks.build.interactive",
        "turbo.json: tasks.build.passThroughEnv",
        "turbo.json: tasks.build.with",
        "turbo.json: tasks.build.someFutureKey",
    ]


def test_turbo1_output_mode_is_listed() -> None:
    assert _unmapped({"pipeline": {"build": {"outputMode": "hash-only", "outputs": []}}}) == [
        "turbo.json: pipeline.build.outputMode"
    ]


def test_turbo1_tasks_without_outputs_are_listed_for_the_old_default() -> None:
    doc = {"pipeline": {"build": {}, "dev": {"cache": False}, "lint": {"outputs": []}}}
    assert _unmapped(doc) == ["turbo.json: pipeline.build.outputs"]
    assert _phases(doc)["build"].outputs == ()
    assert _unmapped({"tasks": {"build": {}}}) == []  # turbo 2: no default outputs


def test_root_task_runs_on_the_root_only_unless_a_package_task_has_its_name() -> None:
    doc = {"tasks": {"//#format": {"cache": False}, "build": {}, "//#build": {}}}
    phases = _phases(doc)
    assert phases["format"].workspaces == (".",)
    assert phases["build"].workspaces is None
    assert _unmapped(doc) == ["turbo.json: tasks.//#build"]


def test_package_turbo_json_overrides_the_root_task_key_by_key() -> None:
    root = {
        "globalEnv": ["CI"],
        "tasks": {
            "build": {"dependsOn": ["^build"], "outputs": ["dist/**"], "env": ["A"]},
            "test:unit": {"outputLogs": "full"},  # listed for turbo.json, not again here
        },
    }
    doc = {
        "extends": ["//"],
        "tags": ["web"],
        "tasks": {
            "build": {"outputs": ["$TURBO_EXTENDS$", ".next/**"], "env": ["B"]},
            "test:unit": {"dependsOn": ["build"]},
            "web#build": {},
        },
    }
    phases, unmapped = package_phases(root, doc, "apps/web/turbo.json")
    build, test = phases
    assert build == PhaseSpec(
        "build",
        "build",
        depends_on=("^build",),
        outputs=("dist/**", ".next/**"),
        env_inputs=("CI", "B"),
    )
    assert test == PhaseSpec("test-unit", "test:unit", depends_on=("build",), env_inputs=("CI",))
    assert [u.where for u in unmapped] == [
        "apps/web/turbo.json: tags",
        "apps/web/turbo.json: tasks.web#build",
    ]


def test_package_turbo_json_without_extends_root_is_listed() -> None:
    _, unmapped = package_phases({"tasks": {}}, {"extends": ["x"], "tasks": {}}, "a/turbo.json")
    assert [u.where for u in unmapped] == ["a/turbo.json: extends"]


def test_package_turbo_json_becomes_the_workspace_make_toml(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "package.json": '{"name": "r", "workspaces": ["apps/*"]}',
            "turbo.json": '{"tasks": {"build": {"outputs": ["dist/**"]}, "lint": {}}}',
            "apps/web/package.json": '{"name": "web"}',
            "apps/web/turbo.json": '{"extends": ["//"], "tasks": {"build": {"cache": false}}}',
            "apps/api/package.json": '{"name": "api"}',
        },
    )
    plan = make_plan(gather(str(tmp_path)))
    files = render_files(plan)
    assert list(files) == ["make.toml", "apps/web/make.toml"]
    own = {"apps/web": files["apps/web/make.toml"]}
    make = load_make_text(tmp_path, files["make.toml"], own)
    web = next(w for w in make.workspaces if w.name == "web")
    assert [(p.name, p.outputs, p.cache) for p in web.phases] == [("build", ("dist/**",), False)]
    api = next(w for w in make.workspaces if w.name == "api")
    assert api.phases == ()


def test_tasks_that_is_not_an_object_is_an_error() -> None:
    with pytest.raises(ConfigError, match="tasks"):
        plan_from_turbo({"tasks": ["build"]})


def test_jsonc_comments_and_trailing_commas_are_stripped_but_not_inside_strings() -> None:
    text = '{\n  // c\n  "a": "http://x/*y*/",  /* b */\n  "t": [1, 2,],\n}\n'
    assert json.loads(strip_jsonc(text)) == {"a": "http://x/*y*/", "t": [1, 2]}


# -- package scripts --------------------------------------------------------------------------


def test_scripts_shared_by_half_the_workspaces_become_phases() -> None:
    scripts = [("build", "test", "lint"), ("build", "test"), ("build", "storybook"), ()]
    phases, unmapped = script_phases(scripts, linked=True)
    assert [p.name for p in phases] == ["build", "test"]
    assert phases[0].depends_on == ("^build",)
    assert phases[1].depends_on == ("build",)
    assert [u.where for u in unmapped] == ["lifecycle.build", "lifecycle.test"]


def test_build_depends_on_caret_build_only_when_workspaces_are_linked() -> None:
    phases, _ = script_phases([("build",), ("build",)], linked=False)
    assert phases[0].depends_on == ()


def test_npm_lifecycle_and_pre_post_scripts_are_not_phases_and_dev_is_long_running() -> None:
    scripts = [("prebuild", "build", "postbuild", "prepare", "dev", "preview")]
    phases, _ = script_phases(scripts, linked=False)
    assert [p.name for p in phases] == ["build", "dev", "preview"]  # "view" is no script
    assert [(p.watch, p.cache) for p in phases] == [(False, True), (True, False), (True, False)]


def test_a_single_package_gives_all_its_scripts() -> None:
    phases, _ = script_phases([("compile", "check")], linked=False)
    assert [p.name for p in phases] == ["compile", "check"]


def test_no_turbo_and_no_scripts_gives_no_phases() -> None:
    facts = Facts("x", (), (), None, None, scripts=())
    plan = make_plan(facts)
    assert plan.origin is PhaseOrigin.NONE
    assert plan.phases == ()


# -- the text ---------------------------------------------------------------------------------


def test_rendered_plan_loads_with_the_same_phases(tmp_path: Path) -> None:
    doc = {
        "globalDependencies": ["tsconfig.json"],
        "globalEnv": ["CI"],
        "tasks": {
            "build": {"dependsOn": ["^build"], "outputs": ["dist/**", "!dist/x"], "env": ["E"]},
            "test": {"dependsOn": ["build"], "inputs": ["$TURBO_DEFAULT$", "$TURBO_ROOT$/j"]},
            "dev": {"cache": False, "persistent": True},
            "//#format": {"cache": False},
            "ui": {"outputLogs": "full"},
        },
    }
    phases, inputs, unmapped = plan_from_turbo(doc)
    text = render(Plan("demo", (), PhaseOrigin.TURBO, phases, inputs, unmapped))
    assert "#   turbo.json: tasks.ui.outputLogs: no equivalent" in text
    make = load_make_text(tmp_path, text)
    assert make.project.name == "demo"
    assert make.project.inputs == ("tsconfig.json",)
    loaded = {p.name: p for p in make.lifecycle}
    assert loaded["build"] == Phase(
        "build",
        (),
        depends_on=("^build",),
        outputs=("dist/**", "!dist/x"),
        env_inputs=("CI", "E"),
        script="build",
    )
    assert loaded["test"].inputs == ("**", "//j")
    assert loaded["test"].depends_on == ("build",)
    assert (loaded["dev"].watch, loaded["dev"].cache) == (True, True)  # watch is never cached
    assert (loaded["format"].workspaces, loaded["format"].cache) == ((".",), False)


def test_rendered_workspaces_auto(tmp_path: Path) -> None:
    text = render(Plan("demo", (Source.NPM,), PhaseOrigin.NONE, ()))
    assert 'workspaces = "auto"  # found: npm' in text


names = st.text(min_size=1, max_size=20).filter(lambda s: "#" not in s and "$" not in s[:1])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tasks=st.dictionaries(names, st.lists(names, max_size=3), min_size=1, max_size=5),
    # _project_name never gives a name make.toml refuses (NUL): test_a_project_name_with_nul
    project=st.text(min_size=1, max_size=20).filter(lambda s: "\0" not in s),
    globs=st.lists(st.text(min_size=1, max_size=12).filter(lambda s: s[:1] != "/"), max_size=3),
)
def test_generated_toml_always_loads(
    tmp_path: Path, tasks: dict[str, list[str]], project: str, globs: list[str]
) -> None:
    """Whatever the task names (scoped, quoted, unicode), the text loads with those phases."""
    doc = {
        "tasks": {
            name: {"dependsOn": [f"^{d}" for d in deps if d in tasks], "outputs": globs}
            for name, deps in tasks.items()
        }
    }
    phases, inputs, unmapped = plan_from_turbo(doc)
    text = render(Plan(project, (), PhaseOrigin.TURBO, phases, inputs, unmapped))
    make = load_make_text(tmp_path, text)
    assert make.project.name == project
    scripts = {p.script: p.name for p in make.lifecycle}
    skipped = {
        u.where.removeprefix("turbo.json: tasks.")
        for u in unmapped
        if "renamed" not in u.why and "NUL" not in u.why
    }
    assert set(scripts) | skipped == set(tasks)
    for task, phase in scripts.items():
        assert phase == task.replace(":", "-").lstrip("^")
    assert all(p.outputs == tuple(g for g in globs if "\0" not in g) for p in make.lifecycle)


def test_a_project_name_with_nul_falls_back_to_the_directory(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "a\\u0000b"}')
    assert gather(str(tmp_path)).name == tmp_path.name


script_names = st.lists(st.text(min_size=1, max_size=16), min_size=0, max_size=6)


@settings(max_examples=100, deadline=None)
@given(scripts=st.lists(script_names, min_size=1, max_size=5), linked=st.booleans())
def test_phases_from_any_scripts_always_load(
    tmp_path_factory: pytest.TempPathFactory, scripts: list[list[str]], linked: bool
) -> None:
    """Whatever the script names, the phases the heuristic picks load, each running its
    script, and every chosen script is one that half of the packages have."""
    phases, unmapped = script_phases(scripts, linked)
    text = render(Plan("p", (), PhaseOrigin.SCRIPTS, phases, (), unmapped))
    make = load_make_text(tmp_path_factory.mktemp("s"), text)
    assert [(p.name, p.script) for p in make.lifecycle] == [(p.name, p.script) for p in phases]
    for p in make.lifecycle:
        assert p.script is not None
        assert 2 * sum(p.script in s for s in scripts) >= len(scripts)


# -- the command ------------------------------------------------------------------------------

REPO = {
    "package.json": '{"name": "demo", "private": true, "workspaces": ["packages/*"]}',
    "packages/a/package.json": '{"name": "@d/a", "scripts": {"build": "true", "test": "true"}}',
    "packages/b/package.json": (
        '{"name": "@d/b", "dependencies": {"@d/a": "*"}, "scripts": {"build": "true"}}'
    ),
    "turbo.json": '{"tasks": {"build": {"dependsOn": ["^build"], "outputLogs": "full"}}}',
}


def test_init_writes_a_make_toml_and_says_what_it_found(tmp_path: Path) -> None:
    write_tree(tmp_path, REPO)
    r = ggen("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "workspace sources: npm\nworkspaces: 2\nphases (from turbo.json): build\n" in r.stdout
    assert "turbo.json: tasks.build.outputLogs" in r.stdout
    listed = ggen("list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "@d/a" in listed.stdout and "@d/b" in listed.stdout


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    write_tree(tmp_path, REPO)
    (tmp_path / "make.toml").write_text("# mine\n")
    r = ggen("init", cwd=tmp_path)
    assert r.returncode == 2
    assert "make.toml already exists here: use --force to replace it" in r.stderr
    assert "Traceback" not in r.stderr
    assert (tmp_path / "make.toml").read_text() == "# mine\n"
    r = ggen("init", "--force", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "make.toml").read_text().startswith("# Written by `ggen init`")


def test_init_never_overwrites_a_workspace_make_toml_without_force(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            **REPO,
            "packages/b/turbo.json": '{"extends": ["//"], "tasks": {"build": {"cache": false}}}',
            "packages/b/make.toml": "# mine\n",
        },
    )
    r = ggen("init", cwd=tmp_path)
    assert r.returncode == 2
    assert "packages/b/make.toml already exist: use --force" in r.stderr
    assert not (tmp_path / "make.toml").exists()
    r = ggen("init", "--force", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "wrote make.toml, packages/b/make.toml" in r.stdout
    assert "cache = false" in (tmp_path / "packages/b/make.toml").read_text()


def test_dry_run_prints_and_writes_nothing(tmp_path: Path) -> None:
    write_tree(tmp_path, REPO)
    r = ggen("-C", str(tmp_path), "init", "--dry-run", cwd=tmp_path.parent)
    assert r.returncode == 0, r.stderr
    assert "[lifecycle.build]" in r.stdout
    assert "nothing written" in r.stderr
    assert not (tmp_path / "make.toml").exists()


def test_without_turbo_json_phases_come_from_shared_scripts(tmp_path: Path) -> None:
    write_tree(tmp_path, {k: v for k, v in REPO.items() if k != "turbo.json"})
    r = ggen("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "make.toml").read_text()
    assert '[lifecycle.build]\nscript = "build"\ndepends_on = ["^build"]\n' in text
    assert '[lifecycle.test]\nscript = "test"\ndepends_on = ["build"]\n' in text


def test_single_package_without_workspaces(tmp_path: Path) -> None:
    write_tree(tmp_path, {"package.json": '{"scripts": {"build": "true"}}'})
    r = ggen("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "make.toml").read_text()
    assert f'name = "{tmp_path.name}"' in text
    assert "workspaces =" not in text
    assert ggen("run", "build", cwd=tmp_path).returncode == 0


def test_a_cargo_workspace_gets_its_workspaces_and_no_phases(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "Cargo.toml": '[workspace]\nmembers = ["crates/*"]\n',
            "crates/a/Cargo.toml": '[package]\nname = "a"\nversion = "0.1.0"\n',
            "crates/a/src/lib.rs": "",
        },
    )
    r = ggen("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "workspace sources: cargo\nworkspaces: 1\nphases: none (no turbo.json" in r.stdout
    listed = ggen("list", cwd=tmp_path)
    assert "a  crates/a  from Cargo.toml" in listed.stdout


def test_bad_turbo_json_is_a_clear_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {**REPO, "turbo.json": '{"tasks": {'})
    r = ggen("init", cwd=tmp_path)
    assert r.returncode == 2
    assert "ggen: error: turbo.json: not valid JSON" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "make.toml").exists()
