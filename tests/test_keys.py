"""Task keys: the canonical encoding, explain, and properties over random trees (hypothesis)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ggen.cache.digest import DigestMemo
from ggen.cache.files import InputIndex
from ggen.cache.keys import InputFile, Reason, Recipe, explain, task_recipe
from ggen.make import load_make


def recipe(**changes: object) -> Recipe:
    base: dict[str, object] = dict(
        phase="build",
        workspace_path="libs/a",
        commands=("make",),
        env=(("A", "1"),),
        outputs=("dist/**",),
        inputs=(InputFile("src/a.c", "0" * 32, False),),
        upstream=(("core:build", "1" * 32),),
    )
    base.update(changes)
    return Recipe(**base)  # type: ignore[arg-type]


def test_length_prefixing_keeps_boundaries_apart() -> None:
    assert recipe(commands=("ab", "c")).key() != recipe(commands=("a", "bc")).key()
    assert recipe(env=(("A", "1B"),)).key() != recipe(env=(("A1", "B"),)).key()
    assert recipe(commands=("",)).key() != recipe(commands=()).key()


def test_key_is_32_hex_and_stable() -> None:
    k = recipe().key()
    assert re.fullmatch(r"[0-9a-f]{32}", k), k
    assert recipe().key() == k
    assert Recipe.from_json(recipe().to_json()) == recipe()


def test_explain_names_each_difference() -> None:
    old = recipe()
    new = recipe(
        commands=("make all",),
        env=(("A", "2"),),
        inputs=(InputFile("src/a.c", "f" * 32, False), InputFile("src/b.c", "0" * 32, False)),
        upstream=(("core:build", "2" * 32),),
    )
    reasons = {(d.reason, d.subject) for d in explain(old, new)}
    assert (Reason.COMMANDS, "commands[0]") in reasons
    assert (Reason.ENV, "A") in reasons
    assert (Reason.INPUT_CHANGED, "src/a.c") in reasons
    assert (Reason.INPUT_ADDED, "src/b.c") in reasons
    assert (Reason.UPSTREAM, "core:build") in reasons
    assert explain(old, old) == []
    assert [d.reason for d in explain(None, old)] == [Reason.NEVER_RUN]


# -- properties over real trees -----------------------------------------------------------------
MAKE = """
[project]
name = "p"

[env]
{env}

[workspace.app]
path = "app"

[lifecycle.build]
command = "{command}"
outputs = ["dist/**"]
env_inputs = ["MODE"]
"""

names = st.text(alphabet="abcdefgh", min_size=1, max_size=6)
trees = st.dictionaries(
    st.lists(names, min_size=1, max_size=3).map(lambda parts: "/".join(parts) + ".txt"),
    st.binary(max_size=64),
    min_size=1,
    max_size=8,
).filter(lambda t: not any(a != b and b.startswith(a[:-4] + "/") for a in t for b in t))


def make_tree(
    root: Path, files: dict[str, bytes], *, env: str = 'X = "1"\nY = "2"', command: str = "build"
) -> None:
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "make.toml").write_text(MAKE.format(env=env, command=command))
    for rel, data in files.items():
        path = root / "app" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def key_of(root: Path, environ: dict[str, str] | None = None) -> str:
    make = load_make(root)
    r = task_recipe(
        make,
        "app",
        "build",
        (),
        InputIndex(root),
        DigestMemo(None),
        environ if environ is not None else {"MODE": "a"},
    )
    return r.key()


EDITS = ["content", "rename", "new", "delete", "exec", "env", "command", "env_input"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=trees, edit=st.sampled_from(EDITS), pick=st.integers(min_value=0))
def test_every_single_edit_changes_the_key(files: dict[str, bytes], edit: str, pick: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root, files)
        before = key_of(root)
        target = sorted(files)[pick % len(files)]
        path = root / "app" / target
        environ = {"MODE": "a"}
        if edit == "content":
            path.write_bytes(files[target] + b"!")
        elif edit == "rename":
            path.rename(path.with_name(path.name + ".renamed"))
        elif edit == "new":
            (root / "app" / "zz-new-file.txt").write_bytes(b"")
        elif edit == "delete":
            path.unlink()
        elif edit == "exec":
            os.chmod(path, 0o755)
        elif edit == "env":
            make_tree(root, {}, env='X = "1"\nY = "3"')
        elif edit == "command":
            make_tree(root, {}, command="build --release")
        elif edit == "env_input":
            environ = {"MODE": "b"}
        assert key_of(root, environ) != before, edit


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=trees)
def test_relocation_touch_and_reordering_keep_the_key(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "one"
        make_tree(root, files)
        before = key_of(root)
        # another checkout at another path
        other = Path(tmp) / "elsewhere" / "two"
        shutil.copytree(root, other)
        assert key_of(other) == before
        # touch without change
        for rel in files:
            os.utime(root / "app" / rel, ns=(1_000_000_000, 1_000_000_000))
        assert key_of(root) == before
        # the same tables with their keys in another order
        make_tree(root, {}, env='Y = "2"\nX = "1"')
        assert key_of(root) == before
        # outside variables not listed in env_inputs do not matter
        assert key_of(root, {"MODE": "a", "UNRELATED": "x"}) == before


# -- the key is made from the environment the task gets ----------------------------------------
VARS = ("A", "B", "C")
values = st.sampled_from(["1", "2"])
tables = st.dictionaries(st.sampled_from(VARS), values, max_size=3)


@st.composite
def env_setups(draw: st.DrawFn) -> tuple[tuple[dict[str, str], ...], list[str], set[str]]:
    """The names each level declares (root [env], workspace [env], phase env, outside), and
    env_inputs: a shape two setups share; values are drawn per setup by ``assign``."""
    shape = tuple(draw(tables) for _ in range(4))
    env_inputs = draw(st.lists(st.sampled_from(VARS), unique=True, max_size=3))
    return shape, env_inputs, set(VARS)


def _toml_table(values: dict[str, str]) -> str:
    return "\n".join(f'{k} = "{v}"' for k, v in sorted(values.items()))


def write_env_tree(
    root: Path, name: str, levels: tuple[dict[str, str], ...], env_inputs: list[str]
) -> None:
    root_env, ws_env, phase_env, _ = levels
    (root / "app").mkdir(parents=True, exist_ok=True)
    inline = ", ".join(f'{k} = "{v}"' for k, v in sorted(phase_env.items()))
    (root / "make.toml").write_text(
        f'[project]\nname = "p"\n\n[env]\n{_toml_table(root_env)}\n\n'
        f'[workspace.{name}]\npath = "app"\n\n'
        f'[lifecycle.build]\ncommand = "build"\nworkspaces = ["{name}"]\ninputs = ["src.txt"]\n'
        f"env = {{ {inline} }}\nenv_inputs = {list(env_inputs)!r}\n".replace("'", '"')
    )
    (root / "app" / "make.toml").write_text(f"[env]\n{_toml_table(ws_env)}\n")
    (root / "app" / "src.txt").write_text("same\n")


def key_and_task_env(
    root: Path, name: str, levels: tuple[dict[str, str], ...], env_inputs: list[str]
) -> tuple[str, dict[str, str]]:
    """The task's key and the environment its commands get (as ``execute`` builds it), for
    the names ggen sets or the phase declares, with ``levels[3]`` as the outside values."""
    from unittest import mock

    from ggen.runner.execute import ExecOptions, task_spec

    write_env_tree(root, name, levels, env_inputs)
    make = load_make(root)
    outside = levels[3]
    with mock.patch.dict(os.environ, outside):
        for var in VARS:
            if var not in outside:
                os.environ.pop(var, None)
        key = task_recipe(make, name, "build", (), InputIndex(root), DigestMemo(None)).key()
        spec = task_spec(make, name, "build", ExecOptions(logs_dir="/l", control_dir="/c"))
        got = {**os.environ, **dict(spec.env)}
    declared = set(VARS) | {"GGEN_PHASE", "GGEN_WORKSPACE"}
    return key, {k: v for k, v in got.items() if k in declared}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=env_setups(),
    names=st.tuples(st.sampled_from(["app", "web"]), st.sampled_from(["app", "web"])),
    data=st.data(),
)
def test_keys_differ_exactly_when_the_task_environments_differ(
    shape: tuple[tuple[dict[str, str], ...], list[str], set[str]],
    names: tuple[str, str],
    data: st.DataObject,
) -> None:
    """Two setups that declare the same names (root [env], workspace [env], phase env,
    env_inputs) with values of their own, and outside values of their own: the keys are equal
    exactly when the environments the task gets are equal on every variable ggen sets or
    env_inputs names. The workspace may be renamed at the same path (GGEN_WORKSPACE)."""
    levels, env_inputs, _ = shape

    def assign() -> tuple[dict[str, str], ...]:
        return tuple({k: data.draw(values) for k in level} for level in levels)

    with tempfile.TemporaryDirectory() as tmp:
        one = key_and_task_env(Path(tmp) / "one", names[0], assign(), env_inputs)
        two = key_and_task_env(Path(tmp) / "two", names[1], assign(), env_inputs)
    relevant = set(env_inputs) | {k for level in levels[:3] for k in level}
    relevant |= {"GGEN_PHASE", "GGEN_WORKSPACE"}
    seen_one = {k: one[1].get(k) for k in relevant}
    seen_two = {k: two[1].get(k) for k in relevant}
    assert (one[0] == two[0]) == (seen_one == seen_two), (seen_one, seen_two)


def test_a_phase_value_listed_in_env_inputs_is_keyed_as_the_task_sees_it(tmp_path: Path) -> None:
    levels = ({}, {}, {"A": "1"}, {"A": "outside"})
    key, env = key_and_task_env(tmp_path / "one", "app", levels, ["A"])
    assert env["A"] == "1"
    edited, _ = key_and_task_env(
        tmp_path / "two", "app", ({}, {}, {"A": "2"}, {"A": "outside"}), ["A"]
    )
    assert edited != key
    unseen, _ = key_and_task_env(tmp_path / "three", "app", ({}, {}, {"A": "1"}, {"A": "x"}), ["A"])
    assert unseen == key


def test_renaming_a_workspace_at_the_same_path_changes_the_key(tmp_path: Path) -> None:
    one, env = key_and_task_env(tmp_path / "one", "app", ({}, {}, {}, {}), [])
    two, _ = key_and_task_env(tmp_path / "two", "web", ({}, {}, {}, {}), [])
    assert env["GGEN_WORKSPACE"] == "app" and one != two


def test_the_project_root_never_enters_a_key(tmp_path: Path) -> None:
    """GGEN_PROJECT_ROOT is absolute: not keyed, even when listed in env_inputs."""
    one, _ = key_and_task_env(tmp_path / "one", "app", ({}, {}, {}, {}), ["GGEN_PROJECT_ROOT"])
    two, _ = key_and_task_env(
        tmp_path / "x" / "two", "app", ({}, {}, {}, {}), ["GGEN_PROJECT_ROOT"]
    )
    assert one == two


def test_changed_inputs_names_every_change_since_the_key(tmp_path: Path) -> None:
    from ggen.cache.keys import changed_inputs

    make_tree(tmp_path, {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"})
    make = load_make(tmp_path)
    index, memo = InputIndex(tmp_path), DigestMemo(None)
    recipe = task_recipe(make, "app", "build", (), index, memo, {})
    assert changed_inputs(recipe, make, "app", index, memo) == []
    app = tmp_path / "app"
    (app / "a.txt").write_bytes(b"A")
    (app / "b.txt").unlink()
    os.chmod(app / "c.txt", 0o755)
    (app / "d.txt").write_bytes(b"d")
    index.mark_changed("app")
    found = {(d.reason, d.subject) for d in changed_inputs(recipe, make, "app", index, memo)}
    assert found == {
        (Reason.INPUT_CHANGED, "a.txt"),
        (Reason.INPUT_REMOVED, "b.txt"),
        (Reason.MODE_CHANGED, "c.txt"),
        (Reason.INPUT_ADDED, "d.txt"),
    }
