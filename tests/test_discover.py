"""Tests of ggen.make.discover: workspaces found in npm, yarn, pnpm, Cargo and uv manifests, and how
``[project] workspaces`` brings them into the ``Make`` snapshot (overrides, errors)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from monorepo import write_tree

from ggen.errors import ConfigError, CycleError
from ggen.make import MAKE_FILE, load_make
from ggen.make.discover import Found, Source, discover, sources_present


def pkg(name: str | None, **fields: object) -> str:
    """A package.json text."""
    doc: dict[str, object] = {} if name is None else {"name": name, "version": "1.0.0"}
    doc.update(fields)
    return json.dumps(doc, indent=2)


def graph(found: tuple[Found, ...]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (path, dependencies)."""
    return {f.name: (f.path, f.depends_on) for f in found}


def make_toml(root: Path, workspaces: str, extra: str = "") -> None:
    (root / MAKE_FILE).write_text(
        f'[project]\nname = "demo"\nworkspaces = {workspaces}\n{extra}\n'
        '[lifecycle.build]\ncommand = "true"\n'
    )


# -- pnpm, npm, yarn ----------------------------------------------------------------------------


def pnpm_tree(root: Path) -> Path:
    return write_tree(
        root,
        {
            "package.json": pkg("root", private=True, dependencies={"@acme/ui": "workspace:*"}),
            "pnpm-workspace.yaml": """
                packages:
                  - "packages/*"
                  - "apps/**"
                  - "!packages/legacy"
                  - "!**/fixtures/**"
            """,
            "packages/ui/package.json": pkg(
                "@acme/ui",
                dependencies={"@acme/utils": "workspace:*", "react": "^18"},
                peerDependencies={"@acme/theme": "workspace:^"},
            ),
            "packages/utils/package.json": pkg("@acme/utils"),
            "packages/theme/package.json": pkg(
                "@acme/theme", optionalDependencies={"@acme/utils": "1.0.0"}
            ),
            "packages/legacy/package.json": pkg("@acme/legacy"),
            # one level below packages/*: not matched by "packages/*"
            "packages/ui/examples/demo/package.json": pkg("ui-demo"),
            "packages/ui/node_modules/@acme/utils/package.json": pkg("@acme/utils"),
            "apps/web/package.json": pkg(
                "web", devDependencies={"@acme/ui": "workspace:~", "@acme/legacy": "*"}
            ),
            "apps/nested/admin/package.json": pkg("admin", dependencies={"web": "file:../../web"}),
            "apps/web/fixtures/app/package.json": pkg("fixture-app"),
            "apps/empty/README.md": "no manifest here",
        },
    )


def test_pnpm_globs_exclusions_scoped_names_and_every_dependency_field(tmp_path: Path) -> None:
    found = discover(str(pnpm_tree(tmp_path)), [Source.PNPM])
    assert graph(found) == {
        "admin": ("apps/nested/admin", ("web",)),
        "web": ("apps/web", ("@acme/ui",)),  # @acme/legacy is excluded: not a workspace
        "@acme/theme": ("packages/theme", ("@acme/utils",)),
        "@acme/ui": ("packages/ui", ("@acme/theme", "@acme/utils")),
        "@acme/utils": ("packages/utils", ()),
    }
    assert {f.source for f in found} == {"pnpm-workspace.yaml"}
    assert found[0].manifest == "apps/nested/admin/package.json"


def test_npm_array_and_yarn_packages_object(tmp_path: Path) -> None:
    files = {
        "libs/a/package.json": pkg("a", dependencies={"b": "^1.0.0"}),
        "libs/b/package.json": pkg("b", devDependencies={"c": "1"}),
        "tools/c/package.json": pkg("c"),
        "tools/c/sub/package.json": pkg("not-listed"),
    }
    npm = write_tree(
        tmp_path / "npm",
        {"package.json": pkg("root", workspaces=["libs/*", "./tools/c/"]), **files},
    )
    yarn = write_tree(
        tmp_path / "yarn",
        {
            "package.json": pkg("root", workspaces={"packages": ["libs/*", "tools/c"]}),
            "yarn.lock": "",
            **files,
        },
    )
    expected = {"a": ("libs/a", ("b",)), "b": ("libs/b", ("c",)), "c": ("tools/c", ())}
    assert graph(discover(str(npm), [Source.NPM])) == expected
    assert graph(discover(str(yarn), [Source.YARN])) == expected
    assert sources_present(str(npm)) == (Source.NPM,)
    assert sources_present(str(yarn)) == (Source.YARN,)
    # npm and yarn read the same file: asking for both finds each package once
    assert graph(discover(str(yarn), [Source.NPM, Source.YARN])) == expected


def test_brace_alternatives_and_literal_directories(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "package.json": pkg(
                "r", workspaces=["{apps,libs}/*", "tools/{gen,lint}", "!libs/{old,tmp}"]
            ),
            "apps/a/package.json": pkg("a"),
            "libs/b/package.json": pkg("b"),
            "libs/old/package.json": pkg("old"),
            "libs/tmp/package.json": pkg("tmp"),
            "tools/gen/package.json": pkg("gen"),
            "tools/lint/package.json": pkg("lint"),
            "tools/other/package.json": pkg("other"),
        },
    )
    found = discover(str(tmp_path), [Source.NPM])
    assert [f.path for f in found] == ["apps/a", "libs/b", "tools/gen", "tools/lint"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edges=st.dictionaries(
        st.integers(0, 5),
        st.lists(
            st.tuples(
                st.integers(0, 7),  # 6 and 7 are not workspaces
                st.sampled_from(
                    ["dependencies", "devDependencies", "peerDependencies", "optionalDependencies"]
                ),
                st.sampled_from(["workspace:*", "workspace:^", "^1.0.0", "*", "file:../x"]),
            ),
            max_size=6,
        ),
    )
)
def test_js_dependencies_are_exactly_the_workspaces_named(
    tmp_path_factory: pytest.TempPathFactory, edges: dict[int, list[tuple[int, str, str]]]
) -> None:
    root = tmp_path_factory.mktemp("js")
    files = {"package.json": pkg("root", workspaces=["pkgs/*"])}
    expected: dict[str, tuple[str, tuple[str, ...]]] = {}
    for i in range(6):
        fields: dict[str, dict[str, str]] = {}
        for dep, field, spec in edges.get(i, []):
            fields.setdefault(field, {})[f"@s/p{dep}"] = spec
        files[f"pkgs/p{i}/package.json"] = pkg(f"@s/p{i}", **fields)
        deps = {d for d, _f, _s in edges.get(i, []) if d < 6 and d != i}
        expected[f"@s/p{i}"] = (f"pkgs/p{i}", tuple(sorted(f"@s/p{d}" for d in deps)))
    write_tree(root, files)
    assert graph(discover(str(root), [Source.NPM])) == expected


# -- Cargo --------------------------------------------------------------------------------------


def cargo_tree(root: Path) -> Path:
    crate = '[package]\nname = "{}"\nversion = "0.1.0"\nedition = "2021"\n'
    return write_tree(
        root,
        {
            "Cargo.toml": """
                [workspace]
                members = ["crates/*", "tools/gen"]
                exclude = ["crates/experimental"]

                [workspace.dependencies]
                my-core = { path = "crates/core" }
                serde = "1"
            """,
            "crates/core/Cargo.toml": crate.format("my-core"),
            "crates/net/Cargo.toml": crate.format("my-net")
            + "[dependencies]\nmy-core = { workspace = true }\nserde = { workspace = true }\n"
            + "[target.'cfg(unix)'.dependencies]\nvendored = { path = \"../../third/vendored\" }\n",
            "crates/app/Cargo.toml": crate.format("my-app")
            + '[dependencies]\nnet = { package = "my-net", path = "../net" }\n'
            + '[build-dependencies]\ngen = { path = "../../tools/gen", version = "0.1" }\n'
            + '[dev-dependencies]\nmy-core = { path = "../core" }\n',
            "crates/experimental/Cargo.toml": crate.format("experimental"),
            "crates/core/target/debug/build/x/Cargo.toml": crate.format("in-target"),
            "tools/gen/Cargo.toml": crate.format("gen"),
            # not listed in members, but a path dependency inside the root: Cargo makes it one
            "third/vendored/Cargo.toml": crate.format("vendored"),
        },
    )


def test_cargo_members_exclude_path_and_workspace_dependencies(tmp_path: Path) -> None:
    found = discover(str(cargo_tree(tmp_path)), [Source.CARGO])
    assert graph(found) == {
        "my-app": ("crates/app", ("gen", "my-core", "my-net")),
        "my-core": ("crates/core", ()),
        "my-net": ("crates/net", ("my-core", "vendored")),
        "vendored": ("third/vendored", ()),
        "gen": ("tools/gen", ()),
    }
    assert {f.manifest for f in found} >= {"crates/app/Cargo.toml", "third/vendored/Cargo.toml"}
    assert sources_present(str(tmp_path)) == (Source.CARGO,)


def test_cargo_root_package_is_a_member(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "Cargo.toml": '[package]\nname = "cli"\nversion = "0.1.0"\n'
            '[dependencies]\nlib = { path = "lib" }\n[workspace]\nmembers = ["lib"]\n',
            "lib/Cargo.toml": '[package]\nname = "lib"\nversion = "0.1.0"\n',
        },
    )
    assert graph(discover(str(tmp_path), [Source.CARGO])) == {
        "cli": (".", ("lib",)),
        "lib": ("lib", ()),
    }


# -- uv -----------------------------------------------------------------------------------------


def uv_tree(root: Path) -> Path:
    return write_tree(
        root,
        {
            "pyproject.toml": """
                [project]
                name = "app"
                version = "0.1.0"
                dependencies = ["my-lib>=0.1", "requests"]

                [tool.uv.workspace]
                members = ["packages/*"]
                exclude = ["packages/scratch"]

                [tool.uv.sources]
                my_lib = { workspace = true }
                helpers = { workspace = true }
            """,
            "packages/my-lib/pyproject.toml": """
                [project]
                name = "My.Lib"
                version = "0.1.0"
                dependencies = ["helpers ; python_version >= '3.8'"]
            """,
            "packages/helpers/pyproject.toml": """
                [project]
                name = "helpers"
                version = "0.1.0"
                optional-dependencies = { extra = ["my-lib[x]"] }

                [dependency-groups]
                dev = ["tester", {include-group = "lint"}]
                lint = []

                [tool.uv.sources]
                my-lib = { path = "../my-lib" }
                tester = { workspace = true }
            """,
            "packages/tester/pyproject.toml": '[project]\nname = "tester"\nversion = "0"\n'
            'dependencies = ["app"]\n',
            "packages/scratch/pyproject.toml": '[project]\nname = "scratch"\n',
        },
    )


def test_uv_members_and_workspace_sources(tmp_path: Path) -> None:
    found = discover(str(uv_tree(tmp_path)), [Source.UV])
    assert graph(found) == {
        "app": (".", ("My.Lib",)),  # requests is no workspace; helpers is not a dependency
        "helpers": (
            "packages/helpers",
            ("tester",),
        ),  # my-lib's own source is a path, not the workspace
        "My.Lib": ("packages/my-lib", ("helpers",)),  # the root's [tool.uv.sources] applies
        "tester": ("packages/tester", ()),  # "app" has no workspace source
    }
    assert sources_present(str(tmp_path)) == (Source.UV,)


def test_auto_finds_every_source_of_the_root(tmp_path: Path) -> None:
    pnpm_tree(tmp_path / "js")
    write_tree(tmp_path, {"package.json": pkg("root", workspaces=["nowhere/*"])})
    (tmp_path / "pnpm-workspace.yaml").write_text("packages: ['js/packages/utils']\n")
    cargo_tree(tmp_path / "rs")
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = ["rs/crates/core"]\n')
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "py"\n')  # no uv workspace
    assert sources_present(str(tmp_path)) == (Source.PNPM, Source.CARGO)
    make_toml(tmp_path, '"auto"')
    make = load_make(tmp_path)
    assert [(w.name, w.path, w.source) for w in make.workspaces] == [
        ("@acme/utils", "js/packages/utils", "pnpm-workspace.yaml"),
        ("my-core", "rs/crates/core", "Cargo.toml"),
    ]
    assert make.config_files == (
        MAKE_FILE,
        "package.json",
        "pnpm-workspace.yaml",
        "Cargo.toml",
        "pyproject.toml",
        "js/packages/utils/package.json",
        "rs/crates/core/Cargo.toml",
    )


# -- make.toml ----------------------------------------------------------------------------------


def test_tables_override_where_they_set_and_add_workspaces(tmp_path: Path) -> None:
    pnpm_tree(tmp_path)
    write_tree(
        tmp_path,
        {
            "tools/make.toml": '[lifecycle.build]\ncommand = "make"\n',
            "packages/ui/make.toml": '[lifecycle.build]\ncommand = "ui-build"\n',
        },
    )
    make_toml(
        tmp_path,
        '["pnpm"]',
        """
[workspace."@acme/ui"]
depends_on = ["@acme/utils"]       # drops the peer dependency on @acme/theme
description = "the components"

[workspace.web]
path = "apps/web"                  # same as found: only the source changes

[workspace.tools]
path = "tools"
depends_on = ["@acme/utils"]
""",
    )
    make = load_make(tmp_path)
    rows = {w.name: (w.path, w.depends_on, w.source) for w in make.workspaces}
    assert list(rows)[-1] == "tools"  # discovered ones first, then the other tables
    assert rows["@acme/ui"] == ("packages/ui", ("@acme/utils",), "pnpm-workspace.yaml + make.toml")
    assert rows["web"] == ("apps/web", ("@acme/ui",), "pnpm-workspace.yaml + make.toml")
    assert rows["@acme/theme"] == ("packages/theme", ("@acme/utils",), "pnpm-workspace.yaml")
    assert rows["tools"] == ("tools", ("@acme/utils",), MAKE_FILE)
    assert make.workspace("@acme/ui").description == "the components"  # type: ignore[union-attr]
    assert "tools/make.toml" in make.config_files
    # a found package's own make.toml counts as for a declared workspace
    assert make.phase_for("@acme/ui", "build").commands == ("ui-build",)  # type: ignore[union-attr]
    assert "packages/ui/make.toml" in make.config_files
    assert "packages/ui/package.json" in make.config_files


def test_editing_a_manifest_changes_the_next_load(tmp_path: Path) -> None:
    pnpm_tree(tmp_path)
    make_toml(tmp_path, '"auto"')
    assert load_make(tmp_path).workspace("@acme/utils").depends_on == ()  # type: ignore[union-attr]
    assert load_make(tmp_path).workspace("web").depends_on == ("@acme/ui",)  # type: ignore[union-attr]
    (tmp_path / "apps/web/package.json").write_text(
        pkg("web", dependencies={"@acme/utils": "workspace:*"})
    )
    assert load_make(tmp_path).workspace("web").depends_on == ("@acme/utils",)  # type: ignore[union-attr]


def test_a_table_on_a_found_directory_under_another_name_is_refused(tmp_path: Path) -> None:
    pnpm_tree(tmp_path)
    make_toml(tmp_path, '["pnpm"]', '[workspace.ui]\npath = "packages/ui"\n')
    with pytest.raises(ConfigError) as err:
        load_make(tmp_path)
    assert 'same directory as workspace "@acme/ui"' in str(err.value)


def test_a_dependency_cycle_between_packages_is_reported(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "package.json": pkg("root", workspaces=["p/*"]),
            "p/a/package.json": pkg("a", dependencies={"b": "*"}),
            "p/b/package.json": pkg("b", devDependencies={"a": "*"}),
        },
    )
    make_toml(tmp_path, '["npm"]')
    with pytest.raises(CycleError) as err:
        load_make(tmp_path)
    assert "workspace cycle: a -> b -> a" in str(err.value)
    # a table breaks it: the override replaces what the manifest says
    make_toml(tmp_path, '["npm"]', "[workspace.b]\ndepends_on = []\n")
    assert load_make(tmp_path).workspace("a").depends_on == ("b",)  # type: ignore[union-attr]


# -- errors -------------------------------------------------------------------------------------


def load_error(root: Path, workspaces: str = '"auto"') -> str:
    make_toml(root, workspaces)
    with pytest.raises(ConfigError) as err:
        load_make(root)
    assert err.value.exit_code == 2
    return str(err.value)


@pytest.mark.parametrize(
    ("workspaces", "expected"),
    [
        (
            '["pnmp"]',
            'project.workspaces[0]: unknown workspace source "pnmp", did you mean "pnpm"?',
        ),
        ('"atuo"', 'project.workspaces: unknown workspace source "atuo", did you mean "auto"?'),
        ('["bazel"]', 'unknown workspace source "bazel" (write "auto" or a list of: "npm",'),
        ("[1]", "project.workspaces[0]: expected a string, got integer"),
        ("true", "project.workspaces: expected a list, got boolean"),
    ],
)
def test_bad_sources(tmp_path: Path, workspaces: str, expected: str) -> None:
    message = load_error(tmp_path, workspaces)
    assert f"{MAKE_FILE}:3: " in message and expected in message


@pytest.mark.parametrize(
    ("files", "workspaces", "expected"),
    [
        (
            {"package.json": '{"name": "root",\n "workspaces": ["p/*"],,}'},
            '"auto"',
            "package.json:2:",
        ),
        (
            {"package.json": pkg("r", workspaces=["p/*"]), "p/a/package.json": "[1]"},
            '"auto"',
            "p/a/package.json: expected a JSON object",
        ),
        (
            {"package.json": pkg("r", workspaces=["p/*"]), "p/a/package.json": pkg(None)},
            '"auto"',
            "p/a/package.json: name: missing package name",
        ),
        (
            {
                "package.json": pkg("r", workspaces=["p/*"]),
                "p/a/package.json": pkg("same"),
                "p/b/package.json": pkg("same"),
            },
            '"auto"',
            'two packages named "same": p/a/package.json and p/b/package.json',
        ),
        (
            {"package.json": pkg("r", workspaces="p/*")},
            '["npm"]',
            "package.json: workspaces: expected an array of strings",
        ),
        (
            {"package.json": pkg("r")},
            '["yarn"]',
            "package.json: workspaces: no workspaces declared",
        ),
        ({}, '["pnpm"]', "pnpm-workspace.yaml: not found"),
        ({"pnpm-workspace.yaml": "packages:\n  - [a\n"}, '"auto"', "pnpm-workspace.yaml:3:"),
        ({"pnpm-workspace.yaml": "catalog: {}\n"}, '"auto"', "packages: no packages declared"),
        ({"Cargo.toml": "[workspace\n"}, '"auto"', "Cargo.toml:1:"),
        ({"Cargo.toml": "[package]\nname = 'x'\n"}, '["cargo"]', "no [workspace] table"),
        (
            {"Cargo.toml": "[workspace]\nmembers = ['c/*']\n", "c/a/Cargo.toml": "[lib]\n"},
            '"auto"',
            "c/a/Cargo.toml: package.name: missing package name",
        ),
        (
            {
                "pyproject.toml": "[tool.uv.workspace]\nmembers = ['m']\n",
                "m/pyproject.toml": "[project]\nname = ''\n",
            },
            '"auto"',
            "m/pyproject.toml: project.name: the package name must be a non-empty string",
        ),
        ({"pyproject.toml": "[project]\nname = 'x'\n"}, '["uv"]', "no [tool.uv.workspace] table"),
        (
            {
                "package.json": pkg("r", workspaces=["p/*"]),
                "p/a/package.json": pkg("a"),
                "Cargo.toml": "[workspace]\nmembers = ['p/*']\n",
                "p/a/Cargo.toml": "[package]\nname = 'a-rs'\n",
            },
            '"auto"',
            "p/a/Cargo.toml: found by both package.json and Cargo.toml",
        ),
    ],
)
def test_manifest_errors_name_the_file(
    tmp_path: Path, files: dict[str, str], workspaces: str, expected: str
) -> None:
    write_tree(tmp_path, files)
    message = load_error(tmp_path, workspaces)
    file, _, rest = expected.partition(": ")  # messages about a key also give its line
    assert re.search(re.escape(file) + (r"(?::\d+)*: " + re.escape(rest) if rest else ""), message)


def test_errors_name_the_manifest_below_the_directory_given(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "repo",
        {"package.json": pkg("r", workspaces=["p/*"]), "p/a/package.json": "{"},
    )
    make_toml(root, '"auto"')
    with pytest.raises(ConfigError) as err:
        load_make(root)
    assert err.value.file == os.path.join(str(root), "p", "a", "package.json")
    assert err.value.line == 1
