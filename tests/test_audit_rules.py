"""Judging a task's file events: what is undeclared, what is left out, which glob covers it."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from ggen.cache.files import Globs, check_pattern
from ggen.runner.audit_rules import (
    Finding,
    LeftOut,
    ProjectView,
    TaskFiles,
    classify,
    escape_glob,
    input_glob,
    left_out,
    output_glob,
    suggestions,
)
from ggen.runner.audit_trace import Access, FileEvent

R, W = Access.READ, Access.WRITE
ROOT = "/repo"
WORKSPACES = (
    (".", ""),
    ("web", "packages/web"),
    ("shared", "packages/shared"),
    ("nested", "packages/web/plugins/x"),
)
PROJECT = ProjectView(
    ROOT,
    WORKSPACES,
    LeftOut(("/usr", "/tmp", "/repo/.venv"), "/home/u"),
    outputs=(
        ("shared:build", "packages/shared", ("dist/**",)),
        ("core:build", "packages/core", ("lib/**",)),
        ("web:build", "packages/web", ("dist/**",)),
    ),
)
WEB = TaskFiles(
    workspace_path="packages/web",
    inputs=frozenset({"packages/web/src/main.ts", "packages/web/package.json"}),
    outputs=("dist/**",),
    upstream_outputs=(("packages/core", ("lib/**",)),),
)


def ev(path: str, access: Access = R, ok: bool = True, directory: bool = False) -> FileEvent:
    return FileEvent(path if path.startswith("/") else f"{ROOT}/{path}", access, 1, ok, directory)


def judge(
    *events: FileEvent,
    task: TaskFiles = WEB,
    ignored: Callable[[str], bool] = lambda rel: False,
    is_dir: Callable[[str], bool] = lambda path: False,
) -> list[tuple[str, Access, str | None]]:
    found = classify(events, task, PROJECT, ignored=ignored, is_dir=is_dir)
    return [(f.path, f.access, f.glob) for f in found]


def test_declared_inputs_own_and_upstream_outputs_are_fine() -> None:
    assert (
        judge(
            ev("packages/web/src/main.ts"),
            ev("packages/web/package.json"),
            ev("packages/web/dist/old.js"),
            ev("packages/web/dist/new.js", W),
            ev("packages/core/lib/index.js"),
        )
        == []
    )


def test_an_undeclared_root_config_and_a_sibling_source_are_reported_with_their_globs() -> None:
    assert judge(
        ev("tsconfig.base.json"),
        ev("packages/shared/src/deep/util.ts"),
        ev("packages/shared/package.json"),
        ev("config/app/settings.toml"),
    ) == [
        ("config/app/settings.toml", R, "//config/app/settings.toml"),
        ("packages/shared/package.json", R, "//packages/shared/package.json"),
        ("packages/shared/src/deep/util.ts", R, "//packages/shared/src/**"),
        ("tsconfig.base.json", R, "//tsconfig.base.json"),
    ]


def test_undeclared_files_of_the_task_own_workspace_get_relative_globs() -> None:
    assert judge(
        ev("packages/web/tsconfig.json"),
        ev("packages/web/scripts/gen/a.sh"),
        ev("packages/web/plugins/x/src/p.ts"),  # a workspace nested in this one
    ) == [
        ("packages/web/plugins/x/src/p.ts", R, "plugins/x/src/**"),
        ("packages/web/scripts/gen/a.sh", R, "scripts/**"),
        ("packages/web/tsconfig.json", R, "tsconfig.json"),
    ]


def test_a_task_at_the_root_gets_globs_relative_to_the_root() -> None:
    root_task = TaskFiles("", frozenset(), ())
    assert judge(ev("tsconfig.base.json"), ev("packages/shared/src/a.ts"), task=root_task) == [
        ("packages/shared/src/a.ts", R, "packages/shared/src/**"),
        ("tsconfig.base.json", R, "tsconfig.base.json"),
    ]


def test_writes_outside_outputs_are_reported_with_an_outputs_glob_when_one_can_name_them() -> None:
    assert judge(
        ev("packages/web/coverage/lcov/x.info", W),
        ev("packages/web/.eslintcache", W),
        ev("packages/shared/dist/leak.js", W),
        ev("/home/u/Documents/out.txt", W),
    ) == [
        ("packages/shared/dist/leak.js", W, None),
        ("packages/web/.eslintcache", W, ".eslintcache"),
        ("packages/web/coverage/lcov/x.info", W, "coverage/**"),
        ("/home/u/Documents/out.txt", W, None),
    ]
    outside = classify([ev("/home/u/Documents/out.txt", W)], WEB, PROJECT)
    assert outside == (Finding("/home/u/Documents/out.txt", W, None, None, outside=True),)


def test_an_outputs_glob_never_takes_in_the_task_inputs() -> None:
    task = TaskFiles(
        "packages/web", frozenset({"packages/web/src/pkg/mod.py", "packages/web/src/a.py"}), ()
    )
    assert judge(
        ev("packages/web/src/pkg/__pycache__/mod.cpython-311.pyc", W),
        ev("packages/web/src/new.txt", W),
        ev("packages/web/coverage/lcov/x.info", W),
        task=task,
    ) == [
        ("packages/web/coverage/lcov/x.info", W, "coverage/**"),
        ("packages/web/src/new.txt", W, "src/new.txt"),
        ("packages/web/src/pkg/__pycache__/mod.cpython-311.pyc", W, "src/pkg/__pycache__/**"),
    ]


def test_what_is_left_out() -> None:
    assert (
        judge(
            ev("tsconfig.base.json", ok=False),  # a probe that found nothing
            ev("packages/shared/src", directory=True),
            ev("packages/shared/dir-opened-plainly"),
            ev("packages/web/.git/HEAD"),
            ev(".ggen/state.json", W),
            ev("node_modules/x/index.js"),  # git ignores it
            ev(".venv/lib/site.py"),  # the interpreter's prefix, inside the project
            ev("/usr/lib/libc.so.6"),
            ev("/home/u/.npmrc"),
            ev("/opt/other/readme"),  # a read outside the project: the toolchain
            ev("/tmp/scratch", W),
            ev("/home/u/.cache/tool/x", W),
            ev("/usr/share/x", W),
            is_dir=lambda p: p.endswith("dir-opened-plainly"),
            ignored=lambda rel: rel.startswith("node_modules/"),
        )
        == []
    )


def test_another_task_output_read_without_depending_on_it_names_that_task() -> None:
    found = classify(
        [ev("packages/shared/dist/index.js"), ev("packages/core/lib/ok.js")],
        WEB,
        PROJECT,
        ignored=lambda rel: "/dist/" in rel,  # git ignores build outputs: still reported
    )
    assert found == (
        Finding("packages/shared/dist/index.js", R, None, "shared", made_by="shared:build"),
    )


def test_a_file_the_task_wrote_before_reading_it_is_not_an_input() -> None:
    assert judge(
        ev("packages/web/dist/tmp.js", W),
        ev("packages/web/dist/tmp.js"),
        ev("packages/web/out.txt", W),
        ev("packages/web/out.txt"),
        ev("packages/web/late.txt"),
        ev("packages/web/late.txt", W),
    ) == [
        ("packages/web/late.txt", R, "late.txt"),
        ("packages/web/late.txt", W, "late.txt"),
        ("packages/web/out.txt", W, "out.txt"),
    ]


def test_a_project_inside_a_left_out_directory_is_still_judged() -> None:
    in_tmp = ProjectView("/tmp/p", (("a", "a"),), LeftOut(("/tmp",), None))
    task = TaskFiles("a", frozenset(), ())
    found = classify([ev("/tmp/p/root.json"), ev("/tmp/q/other.json", W)], task, in_tmp)
    assert [(f.path, f.glob) for f in found] == [("root.json", "//root.json")]


def test_paths_through_the_resolved_root_count_as_inside() -> None:
    view = ProjectView("/link/repo", WORKSPACES, LeftOut((), None), real_root="/real/repo")
    found = classify([ev("/real/repo/tsconfig.base.json")], WEB, view)
    assert [(f.path, f.glob) for f in found] == [("tsconfig.base.json", "//tsconfig.base.json")]


def test_each_file_is_reported_once_and_suggestions_are_distinct() -> None:
    found = classify(
        [
            ev("packages/shared/src/a.ts"),
            ev("packages/shared/src/a.ts"),
            ev("packages/shared/src/b.ts"),
        ],
        WEB,
        PROJECT,
    )
    assert [f.path for f in found] == ["packages/shared/src/a.ts", "packages/shared/src/b.ts"]
    assert suggestions(found) == (["//packages/shared/src/**"], [])
    assert {f.workspace for f in found} == {"shared"}


def test_glob_characters_in_names_are_escaped() -> None:
    assert escape_glob("a[1]*?.txt") == "a\\[1\\]\\*\\?.txt"
    assert escape_glob("!important") == "\\!important"
    assert input_glob("[x]/f", "packages/web", None) == "//\\[x\\]/f"
    assert output_glob("packages/web/*weird*/x", "packages/web") == "\\*weird\\*/**"


def test_left_out_is_made_of_the_system_the_interpreter_path_and_home_dotfiles() -> None:
    lo = left_out({"PATH": "/opt/node/bin:relative/bin:/usr/local/bin", "HOME": "/home/u"})
    assert lo.covers("/opt/node/bin/node")
    assert lo.covers("/usr/local/bin/tsc")
    assert lo.covers("/proc/self/status")
    assert lo.covers("/home/u/.cache/pip/x")
    assert lo.covers("/home/u/.gitconfig")
    assert not lo.covers("/home/u/project/src/a.ts")
    assert not lo.covers("/opt/node/binaries")
    assert not lo.covers("/usrx/file")


_NAME = st.text(alphabet=st.sampled_from("ab-_.*?[]\\!é "), min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
_PATH = st.lists(_NAME, min_size=1, max_size=4).map("/".join)


@given(
    st.sampled_from(["", "packages/web", "packages/shared", "packages/web/plugins/x"]),
    st.sampled_from(["", "packages/web/", "packages/shared/", "packages/web/plugins/x/", "tools/"]),
    _PATH,
)
def test_the_suggested_input_glob_is_valid_and_selects_the_file(
    task_ws: str, where: str, tail: str
) -> None:
    rel = where + tail
    owner = PROJECT.owner(rel)
    pattern = input_glob(rel, task_ws, owner)
    assert check_pattern(pattern) is None, pattern
    if pattern.startswith("//"):
        assert Globs([pattern[2:]]).match(rel), pattern
    else:
        assert task_ws == "" or rel.startswith(task_ws + "/"), pattern
        assert Globs([pattern]).match(rel[len(task_ws) + 1 :] if task_ws else rel), pattern


def _nested(a: str, b: str) -> bool:
    return a.startswith(b + "/")


@given(st.sampled_from(["", "packages/web"]), _PATH, st.lists(_PATH, max_size=4))
def test_the_suggested_output_glob_is_valid_selects_the_file_and_no_input(
    task_ws: str, tail: str, inputs: list[str]
) -> None:
    rel = f"{task_ws}/{tail}" if task_ws else tail
    # what a filesystem can hold next to the file: no input is it, under it or above it
    inputs = [i for i in inputs if i != tail and not _nested(i, tail) and not _nested(tail, i)]
    root_inputs = {f"{task_ws}/{i}" if task_ws else i for i in inputs}
    pattern = output_glob(rel, task_ws, root_inputs)
    assert pattern is not None
    assert check_pattern(pattern, allow_root=False) is None, pattern
    assert Globs([pattern]).match(tail), pattern
    assert not any(Globs([pattern]).match(i) for i in inputs), pattern
