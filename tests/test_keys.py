"""Task keys: the canonical encoding, explain, and properties over random trees (hypothesis)."""

from __future__ import annotations

import os
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
    assert len(k) == 32 and int(k, 16) >= 0
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
