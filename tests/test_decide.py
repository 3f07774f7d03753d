"""``decide``: one task's key, verdict and reasons, given where the cache says its entry is."""

from __future__ import annotations

from pathlib import Path

from monorepo import write_tree

from ggen.cache.cache import Entry, Location
from ggen.cache.digest import DigestMemo
from ggen.cache.files import InputIndex
from ggen.cache.keys import Reason, task_recipe
from ggen.make import Make, load_make
from ggen.runner.decide import Decision, Policy, Verdict, decide
from ggen.runner.plan import build_plan

TREE = {
    "make.toml": """
        [project]
        name = "d"

        [workspace.core]
        path = "core"

        [workspace.app]
        path = "app"
        depends_on = ["core"]

        [lifecycle.build]
        command = "true"
        depends_on = ["^build"]
        inputs = ["src/**"]
        outputs = ["dist/**"]
    """,
    "core/src/a.txt": "a\n",
    "app/src/b.txt": "b\n",
}


def project(tmp_path: Path) -> Make:
    write_tree(tmp_path, TREE)
    return load_make(tmp_path)


def decide_all(make: Make, locate: dict[str, Location]) -> dict[str, Decision]:
    """Decide every task of ``build`` in plan order, as a run does."""
    index, memo = InputIndex(Path(make.root)), DigestMemo(None)
    keys: dict[str, str] = {}
    out: dict[str, Decision] = {}
    for task in build_plan(make, ("build",), ()).tasks:
        policy = Policy(caching=True)
        d = decide(make, task, keys, index, memo, policy, lambda k: _entry(locate, k))
        keys[task.id] = d.key
        out[task.id] = d
    return out


def _entry(locate: dict[str, Location], key: str) -> Entry | None:
    where = locate.get(key)
    return Entry(where) if where is not None else None


def test_the_key_is_the_recipe_key_with_upstream_keys(tmp_path: Path) -> None:
    make = project(tmp_path)
    got = decide_all(make, {})
    core = task_recipe(make, "core", "build", (), InputIndex(tmp_path), DigestMemo(None))
    assert got["core:build"].key == core.key() == got["core:build"].recipe.key()
    assert got["app:build"].recipe.upstream == (("core:build", core.key()),)


def test_verdict_follows_where_the_entry_is(tmp_path: Path) -> None:
    make = project(tmp_path)
    keys = {tid: d.key for tid, d in decide_all(make, {}).items()}
    where = {keys["core:build"]: Location.LOCAL, keys["app:build"]: Location.REMOTE}
    got = decide_all(make, where)
    assert got["core:build"].verdict is Verdict.FRESH_LOCALLY
    assert got["app:build"].verdict is Verdict.FRESH_REMOTELY
    assert got["app:build"].fresh and got["app:build"].entry == Entry(Location.REMOTE)
    missed = decide_all(make, {})
    assert missed["core:build"].verdict is Verdict.MUST_RUN
    assert [r.reason for r in missed["core:build"].reasons] == [Reason.NOT_IN_CACHE]


def test_force_and_cache_off_run_without_asking_the_cache(tmp_path: Path) -> None:
    make = project(tmp_path)
    asked: list[str] = []
    index, memo = InputIndex(tmp_path), DigestMemo(None)
    task = build_plan(make, ("build",), ("core",)).tasks[0]
    for policy, reason in (
        (Policy(caching=True, force=True), Reason.FORCED),
        (Policy(caching=False), Reason.CACHE_OFF),
    ):
        d = decide(make, task, {}, index, memo, policy, lambda k: asked.append(k) or None)
        assert d.verdict is Verdict.MUST_RUN
        assert [r.reason for r in d.reasons] == [reason]
    assert asked == []


def test_reasons_compare_with_the_previous_recipe(tmp_path: Path) -> None:
    make = project(tmp_path)
    index, memo = InputIndex(tmp_path), DigestMemo(None)
    task = build_plan(make, ("build",), ("core",)).tasks[0]
    before = decide(make, task, {}, index, memo, Policy(caching=True), lambda k: None).recipe
    (tmp_path / "core/src/a.txt").write_text("changed\n")
    d = decide(
        make, task, {}, InputIndex(tmp_path), DigestMemo(None), Policy(caching=True),
        lambda k: None, lambda: before,
    )  # fmt: skip
    assert d.verdict is Verdict.MUST_RUN
    assert [(r.reason, r.subject) for r in d.reasons] == [(Reason.INPUT_CHANGED, "src/a.txt")]
    never = decide(make, task, {}, index, memo, Policy(caching=True), lambda k: None, lambda: None)
    assert [r.reason for r in never.reasons] == [Reason.NEVER_RUN]
