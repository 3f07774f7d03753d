"""What a restore may touch (ggen.cache.store.Store.restore), tested as classes of entries.

A restore writes and deletes only paths that the task's output globs match, whatever the entry
names; afterwards what the globs match is exactly the entry; any name the file system allows
comes back; an interrupt at any point leaves no staged file; an error writing the workspace is
a ``RestoreFailed`` naming the path, never another exception.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from monorepo import ggen, ggen_command, last_summary

from ggen.cache.files import is_output, is_staging_name, output_globs
from ggen.cache.store import (
    CorruptEntry,
    Manifest,
    OutputEntry,
    ProblemKind,
    RestoreFailed,
    Store,
    SymlinkEntry,
    UnsafeEntry,
)

KEY = "a" * 32
TESTS = Path(__file__).resolve().parent

Snapshot = dict[str, tuple[str, Any]]


def _snapshot(top: Path) -> Snapshot:
    """Every path below ``top`` (relative, as text): its kind and contents, mode or target."""
    found: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            st_ = os.lstat(path)
            if stat.S_ISLNK(st_.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st_.st_mode):
                found[rel] = ("dir", None)
            else:
                found[rel] = ("file", (Path(path).read_bytes(), stat.S_IMODE(st_.st_mode)))
    return found


def _store(root: Path) -> Store:
    return Store(root / "store", warn=lambda message: None)


# ---- item 7 and 3: only outputs are touched, and afterwards they are exactly the entry -----

BLOBS = [b"new contents\n", b"#!/bin/sh\necho hi\n", b""]
OUTPUT_SETS = [
    ("dist/**",),
    ("dist", "!dist/keep/**"),
    ("**/*.out",),
    ("dist/**", "lnk/**"),
    ("dlink/**",),
    ("out", "dist/sub"),
]
FIRST = ["dist", "dist", "dist", "x.out", "out", "src", "lnk", "dlink", "README.md", ".husky", ".."]
PARTS = [
    "dist",
    "src",
    "sub",
    "keep",
    "x",
    "a.out",
    "README.md",
    "Makefile",
    "pre-commit",
    "esc",
    "old.txt",
    "..",
    ".",
    "",
    ".git",
    ".ggen-restore-1",
]
SAFE_TARGETS = ["old.txt", "x", "a/b", "../sub"]
TARGETS = [*SAFE_TARGETS * 4, "../src", "../../outside", "/etc/passwd", "..", "sub/../.."]


def _workspace(root: Path) -> Path:
    """A workspace with sources, outputs and tricks around it, and a directory outside."""
    files = {
        "outside/secret.txt": "secret",
        "ws/src/main.c": "int main;",
        "ws/src/lib/util.c": "util",
        "ws/README.md": "readme",
        "ws/Makefile": "all:",
        "ws/.husky/pre-commit": "#!/bin/sh",
        "ws/.git/HEAD": "ref: main",
        "ws/dist/old.txt": "old",
        "ws/dist/keep/k.txt": "keep me",
        "ws/dist/sub/s.txt": "sub",
        "ws/dist/x/y.out": "y",
        "ws/x.out": "x",
        "ws/out": "a file named out",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    ws = root / "ws"
    os.symlink("../outside", ws / "lnk")
    os.symlink("src", ws / "dlink")
    os.symlink("../../outside", ws / "dist/esc")
    (ws / "dist/empty").mkdir()
    return ws


# per output set: the roots of paths it matches, to draw mostly entries that may be restored
GOOD = {
    ("dist/**",): ["dist/", "dist/sub/", "dist/x/"],
    ("dist", "!dist/keep/**"): ["dist", "dist/", "dist/keep"],
    ("**/*.out",): ["z.out", "dist/z.out", "dist/x/", "src/z.out", "x.out/z.out"],
    ("dist/**", "lnk/**"): ["dist/", "lnk/"],
    ("dlink/**",): ["dlink/"],
    ("out", "dist/sub"): ["out", "out/", "dist/sub", "dist/sub/"],
}
RESTS = ["sub", "keep", "x", "y.out", "old.txt", "esc", "n", "x/y.out"]


@st.composite
def _path(draw: st.DrawFn, outputs: tuple[str, ...]) -> str:
    """Mostly paths the globs match, sometimes any trick."""
    if draw(st.integers(0, 7)) == 0:
        lead = draw(st.sampled_from(["", "", "/"]))
        parts = [draw(st.sampled_from(FIRST)), *draw(st.lists(st.sampled_from(PARTS), max_size=3))]
        return lead + "/".join(parts)
    root = draw(st.sampled_from(GOOD[outputs]))
    if not root.endswith("/"):
        return root
    rest = draw(st.sampled_from(RESTS))
    return root + (rest if not outputs[0].endswith(".out") else rest + ".out")


@st.composite
def _case(draw: st.DrawFn) -> tuple[tuple[str, ...], list[tuple[str, str, Any]]]:
    """Output globs and the entries of a manifest: (kind, path, blob index or target)."""
    outputs = draw(st.sampled_from(OUTPUT_SETS))
    entries = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("file"), _path(outputs), st.integers(0, len(BLOBS) - 1)),
                st.tuples(st.just("link"), _path(outputs), st.sampled_from(TARGETS)),
                st.tuples(st.just("dir"), _path(outputs), st.just(0)),
            ),
            max_size=4,
            unique_by=lambda e: e[1],
        )
    )
    return outputs, entries


def _manifest(store: Store, entries: list[tuple[str, str, Any]]) -> Manifest:
    digests = [store.put_blob_bytes(b) for b in BLOBS]
    return Manifest(
        key=KEY,
        workspace="web",
        phase="build",
        outputs=tuple(
            OutputEntry(p, digests[i], len(BLOBS[i]), 0o755 if i == 1 else 0o644)
            for kind, p, i in entries
            if kind == "file"
        ),
        symlinks=tuple(SymlinkEntry(p, t) for kind, p, t in entries if kind == "link"),
        exit_code=0,
        log_digest=store.put_blob_bytes(b"log"),
        duration_ms=1,
        created_ms=1,
        dirs=tuple(p for kind, p, _ in entries if kind == "dir"),
    )


def _owned(rel: str, outputs: tuple[str, ...]) -> bool:
    """Whether a path (relative to the temporary root) belongs to the task's outputs."""
    return rel.startswith("ws/") and is_output(rel[3:], output_globs(outputs))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_case())
def test_a_restore_touches_only_outputs_and_leaves_exactly_the_entry(
    case: tuple[tuple[str, ...], list[tuple[str, str, Any]]],
) -> None:
    outputs, entries = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws = _workspace(root)
        store = _store(root / "cache")
        manifest = _manifest(store, entries)
        before = _snapshot(root)
        named_outside = any(not _owned(f"ws/{p}", outputs) for _, p, _ in entries)
        try:
            store.restore(manifest, ws, outputs=outputs)
        except UnsafeEntry as exc:
            event("refused: " + " ".join(w for w in str(exc).split() if "'" not in w))
            assert _snapshot(root) == before  # refused before anything was written
            return
        event(f"restored {len(entries)} entries")
        assert not named_outside, "an entry naming a path that is not an output was restored"
        after = _snapshot(root)
        # nothing that is not an output was created, changed or deleted; directories may be
        # created only on the way to what the entry lists
        needed = {"ws/" + "/".join(p.split("/")[:i]) for _, p, _ in entries for i in range(1, 10)}
        for rel in sorted(set(before) | set(after)):
            if _owned(rel, outputs):
                continue
            if rel not in before and after[rel][0] == "dir":
                assert rel in needed, f"created directory {rel}"
                continue
            assert before.get(rel) == after.get(rel), f"touched {rel}: {outputs} {entries}"
        # what the globs match is exactly the entry
        on_disk = {r[3:]: v for r, v in after.items() if _owned(r, outputs)}
        listed = {o.path for o in manifest.outputs} | {s.path for s in manifest.symlinks}
        assert {r for r, v in on_disk.items() if v[0] != "dir"} == listed
        for o in manifest.outputs:
            kind, (data, mode) = on_disk[o.path]
            assert kind == "file" and data in BLOBS and len(data) == o.size and mode == o.mode
        for s in manifest.symlinks:
            assert on_disk[s.path] == ("link", s.target)
        for d in manifest.dirs:
            assert on_disk[d] == ("dir", None)
        empty = {r for r, v in on_disk.items() if v[0] == "dir" and not os.listdir(ws / r)}
        assert empty <= set(manifest.dirs)
        assert not [r for r, v in after.items() if is_staging_name(r) and v[0] != "dir"]


# ---- end to end: the real ggen on a temporary monorepo -------------------------------------

TWO = {
    "make.toml": """
        [project]
        name = "two"

        [workspace.a]
        path = "a"

        [workspace.b]
        path = "b"

        [lifecycle.build]
        commands = [
            "echo $GGEN_WORKSPACE >> ../ran.log",
            "rm -rf dist && mkdir dist && cp src/* dist/",
        ]
        inputs = ["src/**"]
        outputs = ["dist/**"]

        [lifecycle.package]
        commands = [
            "echo $GGEN_WORKSPACE:package >> ../ran.log",
            "mkdir -p pkg && ls dist > pkg/list.txt",
        ]
        depends_on = ["build"]
        inputs = ["dist/**"]
        outputs = ["pkg/**"]
    """,
    "README.md": "readme\n",
    "Makefile": "all:\n",
    ".husky/pre-commit": "#!/bin/sh\n",
    "a/src/x.txt": "x\n",
    "a/README.md": "a's readme\n",
    "a/Makefile": "a's makefile\n",
    "a/.husky/pre-commit": "#!/bin/sh\n",
    "b/src/b.txt": "b\n",
}


@pytest.fixture
def two(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    for rel, text in TWO.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(textwrap.dedent(text).lstrip("\n"))
    return repo


def _ggen(repo: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return ggen(*args, cwd=repo, env={"GGEN_CACHE_DIR": str(repo.parent / "cache")}, **kwargs)


def _ran(repo: Path) -> list[str]:
    log = repo / "ran.log"
    lines = sorted(log.read_text().split()) if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def _manifest_of(repo: Path, workspace: str, phase: str = "build") -> Path:
    """The manifest file of a workspace's task in the test cache."""
    for path in (repo.parent / "cache" / "manifests").rglob("*.json"):
        data = orjson.loads(path.read_bytes())
        if (data["workspace"], data["phase"]) == (workspace, phase):
            return path
    raise AssertionError(f"no manifest for {workspace}:{phase}")


def _add_entry(manifest: Path, path: str, like: str = "dist/x.txt") -> None:
    """Add a file entry named ``path`` to a manifest, with the blob of the entry ``like``."""
    data = orjson.loads(manifest.read_bytes())
    model = next(o for o in data["outputs"] if o["path"] == like)
    data["outputs"].append({**model, "path": path})
    manifest.write_bytes(orjson.dumps(data))


def _tree(top: Path) -> Snapshot:
    """The snapshot of a repository, less ggen's own files."""
    return {r: v for r, v in _snapshot(top).items() if ".ggen" not in r.split("/")}


@pytest.mark.parametrize(
    "bad", ["src", "README.md/x", "Makefile", ".husky/pre-commit", "src/x.txt", "../README.md"]
)
def test_an_entry_naming_a_path_that_is_not_an_output_is_refused_and_the_task_runs(
    two: Path, bad: str
) -> None:
    assert _ggen(two, "run", "build", "-w", "a").returncode == 0
    _ran(two)
    _add_entry(_manifest_of(two, "a"), bad)
    before = _tree(two)
    (two / "a/dist/x.txt").unlink()
    r = _ggen(two, "run", "build", "-w", "a")
    assert r.returncode == 0, r.stderr
    assert "warning: " in r.stderr and repr(bad) in r.stderr  # a warning naming the path
    assert _ran(two) == ["a"]  # it ran
    assert _tree(two) == {k: v for k, v in before.items() if k != "ran.log"}
    # the refused entry was replaced by the task's own
    assert _ggen(two, "run", "build", "-w", "a").returncode == 0
    assert _ran(two) == []


def test_after_a_restore_the_outputs_are_exactly_the_entry(two: Path) -> None:
    """Rename x.txt to y.txt and back: dist/ holds x.txt alone, and so does what the
    downstream task made of it."""
    assert _ggen(two, "run", "package", "-w", "a").returncode == 0
    assert (two / "a/pkg/list.txt").read_text() == "x.txt\n"
    (two / "a/src/x.txt").rename(two / "a/src/y.txt")
    assert _ggen(two, "run", "package", "-w", "a").returncode == 0
    assert (two / "a/pkg/list.txt").read_text() == "y.txt\n"
    (two / "a/src/y.txt").rename(two / "a/src/x.txt")
    _ran(two)
    r = _ggen(two, "run", "package", "-w", "a")
    assert r.returncode == 0, r.stderr
    assert _ran(two) == []  # both cached
    assert sorted(os.listdir(two / "a/dist")) == ["x.txt"]
    assert (two / "a/pkg/list.txt").read_text() == "x.txt\n"


# ---- item 6: any name the file system allows is stored and restored ------------------------

_names = st.binary(min_size=1, max_size=255).filter(
    lambda n: (
        b"/" not in n
        and b"\0" not in n
        and n not in (b".", b"..")
        and n.lower() not in (b".git", b".ggen")
        and not n.startswith((b".ggen-restore-", b".ggen-link-"))
    )
)


@settings(max_examples=150, deadline=None)
@given(
    files=st.lists(_names, min_size=1, max_size=4, unique=True),
    empty=st.lists(_names, max_size=2, unique=True),
)
def test_any_file_name_is_stored_and_restored(files: list[bytes], empty: list[bytes]) -> None:
    empty = [n for n in empty if n not in files]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = _store(root)
        src = os.fsencode(root / "src/dist")
        os.makedirs(src)
        for i, name in enumerate(files):
            with open(os.path.join(src, name), "wb") as f:
                f.write(b"%d" % i)
        for name in empty:
            os.mkdir(os.path.join(src, b"e" + name[:254]))
        manifest = store.save(
            KEY,
            workspace="w",
            phase="build",
            ws_dir=root / "src",
            outputs=["dist/**"],
            log=b"",
            exit_code=0,
            duration_ms=1,
        )
        assert manifest is not None
        assert Manifest.from_bytes(manifest.to_bytes()) == manifest
        assert store.lookup(KEY) == manifest
        assert store.restore(manifest, root / "dst", outputs=["dist/**"]).written
        dst = os.fsencode(root / "dst/dist")
        assert sorted(os.listdir(dst)) == sorted(os.listdir(src))
        for i, name in enumerate(files):
            with open(os.path.join(dst, name), "rb") as f:
                assert f.read() == b"%d" % i
        assert all(os.listdir(os.path.join(dst, b"e" + n[:254])) == [] for n in empty)


BYTE_NAMES = {
    "make.toml": """
        [project]
        name = "names"

        [workspace.a]
        path = "a"

        [lifecycle.build]
        command = "echo ran >> ../ran.log && sh make-dist.sh"
        inputs = ["make-dist.sh"]
        outputs = ["dist/**"]
    """,
    "a/make-dist.sh": r"""
        mkdir -p dist/logs dist/sub
        printf 'newline\n' > "$(printf 'dist/a\nb.txt')"
        printf 'latin-1\n' > "$(printf 'dist/caf\351.txt')"
        printf 'plain\n' > dist/sub/plain.txt
    """,
}


def test_odd_names_and_empty_directories_come_back_from_the_cache(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for rel, text in BYTE_NAMES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(textwrap.dedent(text).lstrip("\n"))
    first = _ggen(repo, "run", "build")
    assert first.returncode == 0, first.stderr
    dist = os.fsencode(repo / "a/dist")
    made = sorted(os.listdir(dist))
    assert made == sorted([b"a\nb.txt", b"caf\xe9.txt", b"logs", b"sub"])
    shutil.rmtree(dist)
    _ran(repo)
    again = _ggen(repo, "run", "build")
    assert again.returncode == 0, again.stderr
    assert _ran(repo) == []  # a hit
    assert sorted(os.listdir(dist)) == made
    assert Path(os.fsdecode(dist + b"/a\nb.txt")).read_text() == "newline\n"
    assert Path(os.fsdecode(dist + b"/caf\xe9.txt")).read_text() == "latin-1\n"
    assert os.listdir(dist + b"/logs") == []
    third = _ggen(repo, "run", "build")  # the outputs on disk now match: compared, not written
    assert third.returncode == 0, third.stderr
    assert _ran(repo) == []
    assert "warning" not in first.stderr + again.stderr + third.stderr


# ---- item 8: blobs are regular files, never followed ---------------------------------------


def _saved(root: Path, data: bytes = b"secret contents\n") -> tuple[Store, Manifest, Path]:
    store = _store(root)
    ws = root / "ws"
    (ws / "dist").mkdir(parents=True)
    (ws / "dist/app.txt").write_bytes(data)
    manifest = store.save(
        KEY,
        workspace="w",
        phase="build",
        ws_dir=ws,
        outputs=["dist/**"],
        log=b"log",
        exit_code=0,
        duration_ms=1,
    )
    assert manifest is not None
    return store, manifest, ws


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_a_blob_that_is_not_a_regular_file_is_never_read(tmp_path: Path, kind: str) -> None:
    store, manifest, ws = _saved(tmp_path)
    blob = store.blob_path(manifest.outputs[0].digest)
    # a file elsewhere with exactly the blob's contents: following the link would "work"
    elsewhere = tmp_path / "private.txt"
    elsewhere.write_bytes(b"secret contents\n")
    blob.unlink()
    if kind == "symlink":
        os.symlink(elsewhere, blob)
    elif kind == "fifo":
        os.mkfifo(blob)
    else:
        blob.mkdir()
    shutil.rmtree(ws / "dist")
    assert not store.has_blob(manifest.outputs[0].digest)
    with pytest.raises(CorruptEntry, match=r"symlink|not a regular file"):
        store.restore(manifest, ws, outputs=["dist/**"])
    assert not (ws / "dist").exists()
    assert elsewhere.read_bytes() == b"secret contents\n"


def test_verify_reports_and_repair_removes_what_is_not_a_regular_file(tmp_path: Path) -> None:
    store, manifest, _ = _saved(tmp_path)
    target = tmp_path / "target.txt"
    target.write_bytes(b"not the store's")
    blob = store.blob_path(manifest.outputs[0].digest)
    blob.unlink()
    os.symlink(target, blob)
    fifo = store.blob_path("f" * 32)
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    linked_group = store.root / "blobs" / "ee"
    os.symlink(tmp_path, linked_group)
    odd_manifest = store.manifest_path("d" * 32)
    odd_manifest.parent.mkdir(parents=True, exist_ok=True)
    odd_manifest.mkdir()
    report = store.verify()
    odd = {p.path: p.detail for p in report.problems if p.kind is ProblemKind.NOT_A_FILE}
    assert odd == {
        str(blob): f"a symlink to {target}",
        str(fifo): "a fifo",
        str(linked_group): f"a symlink to {tmp_path}",
        str(odd_manifest): "a directory",
    }
    assert ProblemKind.MISSING_BLOB in {p.kind for p in report.problems}
    repaired = store.verify(repair=True)
    assert repaired.removed == 5  # the four, and the manifest that needed the blob
    assert not any(os.path.lexists(p) for p in (blob, fifo, linked_group, odd_manifest))
    assert target.read_bytes() == b"not the store's" and tmp_path.is_dir()
    assert store.verify().ok


# ---- items 10 and 15: an error while restoring fails that task at most ---------------------


def test_a_name_too_long_for_the_file_system_is_a_damaged_entry(tmp_path: Path) -> None:
    store, manifest, ws = _saved(tmp_path)
    long_name = "dist/" + "n" * 300
    too_long = dataclasses.replace(manifest.outputs[0], path=long_name)
    bad = dataclasses.replace(manifest, outputs=(*manifest.outputs, too_long))
    store.put_manifest_bytes(KEY, bad.to_bytes())
    (ws / "dist/app.txt").write_bytes(b"local edit")
    before = _snapshot(tmp_path / "ws")
    with pytest.raises(RestoreFailed) as caught:
        store.restore(bad, ws, outputs=["dist/**"])
    assert caught.value.damaged and caught.value.path == str(ws / long_name)
    assert str(caught.value) == f"cannot write {ws / long_name}: File name too long"
    assert store.lookup(KEY) is None  # discarded
    assert _snapshot(tmp_path / "ws") == before


def test_a_name_too_long_in_an_entry_runs_the_task_and_replaces_the_entry(two: Path) -> None:
    assert _ggen(two, "run", "build", "-w", "a").returncode == 0
    _ran(two)
    long_name = "dist/" + "n" * 300
    _add_entry(_manifest_of(two, "a"), long_name)
    (two / "a/dist/x.txt").unlink()
    r = _ggen(two, "run", "build", "-w", "a")
    assert r.returncode == 0, r.stderr
    assert f"a:build: cannot write {two / 'a' / long_name}: File name too long" in r.stderr
    assert "removed; running it" in r.stderr
    assert _ran(two) == ["a"]
    again = _ggen(two, "run", "build", "-w", "a")
    assert again.returncode == 0 and again.stderr == ""
    assert _ran(two) == []


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make a directory unwritable, even for root (immutable attribute); fail if impossible."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.fail("chattr +i failed: this test needs root on a filesystem with immutable files")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_an_unwritable_workspace_fails_the_restore_with_the_path_and_keeps_the_entry(
    tmp_path: Path,
) -> None:
    store, manifest, ws = _saved(tmp_path)
    (ws / "dist/app.txt").write_bytes(b"local edit")
    with _read_only(ws / "dist"):
        with pytest.raises(RestoreFailed) as caught:
            store.restore(manifest, ws, outputs=["dist/**"])
        assert not caught.value.damaged
        assert caught.value.path == str(ws / "dist/app.txt")
        assert caught.value.reason in ("Permission denied", "Operation not permitted")
        assert os.listdir(ws / "dist") == ["app.txt"]
    assert store.lookup(KEY) == manifest


def test_a_workspace_that_cannot_be_restored_fails_only_its_task(two: Path) -> None:
    assert _ggen(two, "run", "build").returncode == 0
    (two / "a/dist/x.txt").write_text("local edit\n")
    with _read_only(two / "a/dist"):
        r = _ggen(two, "run", "build", "-k")
    assert r.returncode == 1, r.stderr
    assert "internal error" not in r.stderr + r.stdout
    assert f"a:build: cannot write {two / 'a/dist/x.txt'}: " in r.stderr
    assert "running it" in r.stderr
    tasks = {t["id"]: t["status"] for t in last_summary(two)["tasks"]}
    assert tasks == {"a:build": "failed", "b:build": "cached"}


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_a_full_disk_while_restoring_fails_only_that_task(two: Path) -> None:
    (two / "a/src/big.bin").write_bytes(os.urandom(3 << 20))
    assert _ggen(two, "run", "build").returncode == 0
    shutil.rmtree(two / "a/dist")
    _ran(two)
    r = subprocess.run(
        [*ggen_command(), "run", "build", "-k"],
        cwd=two,
        env={**os.environ, "GGEN_CACHE_DIR": str(two.parent / "cache")},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size,
    )
    assert r.returncode == 1, r.stderr
    assert "internal error" not in r.stderr + r.stdout
    assert f"a:build: cannot write {two / 'a/dist/big.bin'}: File too large" in r.stderr
    tasks = {t["id"]: t["status"] for t in last_summary(two)["tasks"]}
    assert tasks == {"a:build": "failed", "b:build": "cached"}
    assert not [p for p in (two / "a").rglob(".ggen-restore-*")]


# ---- item 11: staged files never outlive a restore, and are never stored -------------------


def _interrupting(at: int) -> tuple[Any, list[int]]:
    """A trace function raising KeyboardInterrupt at the ``at``-th bytecode executed (any
    frame), which is where a signal handler's exception can surface; and the count so far."""
    count = [0]

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "opcode":
            count[0] += 1
            if count[0] == at:
                raise KeyboardInterrupt
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        frame.f_trace_opcodes = True
        return local

    return tracer, count


def _restore_scene(root: Path) -> tuple[Store, Manifest, Path]:
    """An entry, and a workspace where restoring it stages, replaces, removes, chmods, links
    and makes directories."""
    store = _store(root)
    made = root / "made"
    (made / "dist/sub").mkdir(parents=True)
    (made / "dist/a.txt").write_bytes(b"a" * 100_000)
    (made / "dist/sub/b.txt").write_bytes(b"b")
    (made / "dist/run.sh").write_bytes(b"#!/bin/sh\n")
    (made / "dist/run.sh").chmod(0o755)
    (made / "dist/logs").mkdir()
    os.symlink("a.txt", made / "dist/latest")
    manifest = store.save(
        KEY,
        workspace="w",
        phase="build",
        ws_dir=made,
        outputs=["dist/**"],
        log=b"",
        exit_code=0,
        duration_ms=1,
    )
    assert manifest is not None
    old = root / "old"
    (old / "dist/stale/deep").mkdir(parents=True)
    (old / "dist/stale/deep/x.txt").write_bytes(b"stale")
    (old / "dist/a.txt").write_bytes(b"old a")
    (old / "dist/run.sh").write_bytes(b"#!/bin/sh\n")
    (old / "dist/sub").write_bytes(b"a file where a directory goes")
    return store, manifest, old


# an interrupt between opening something and the ``with`` that closes it leaks it to the
# garbage collector, which says so: not what this test is about
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_an_interrupt_anywhere_in_a_restore_leaves_no_staged_file(tmp_path: Path) -> None:
    store, manifest, old = _restore_scene(tmp_path)
    ws = tmp_path / "ws"
    before = _snapshot(old)
    shutil.copytree(old, ws, symlinks=True)
    tracer, count = _interrupting(0)
    sys.settrace(tracer)
    try:
        store.restore(manifest, ws, outputs=["dist/**"])
    finally:
        sys.settrace(None)
    final = _snapshot(ws)
    total = count[0]
    assert total > 1000
    interrupted = 0
    for at in range(1, total, max(1, total // 300)):
        shutil.rmtree(ws)
        shutil.copytree(old, ws, symlinks=True)
        tracer, count = _interrupting(at)
        sys.settrace(tracer)
        try:
            store.restore(manifest, ws, outputs=["dist/**"])
        except KeyboardInterrupt:
            interrupted += 1
        finally:
            sys.settrace(None)
        after = _snapshot(ws)
        assert not [r for r in after if is_staging_name(r)], f"staged file left (at {at})"
        for rel in set(after) | set(before):
            if after.get(rel, ("dir", None))[0] != "dir":
                assert after.get(rel) in (before.get(rel), final.get(rel)), rel
    assert interrupted > 200


def test_a_staged_file_left_by_a_crash_is_never_stored_and_is_removed_by_a_restore(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    ws = tmp_path / "ws"
    (ws / "dist").mkdir(parents=True)
    (ws / "dist/app.txt").write_bytes(b"app")
    (ws / "dist/.ggen-restore-k2j4x9ab").write_bytes(b"half a blob")
    os.symlink("app.txt", ws / "dist/.ggen-link-1234-5678")
    manifest = store.save(
        KEY,
        workspace="w",
        phase="build",
        ws_dir=ws,
        outputs=["dist/**"],
        log=b"",
        exit_code=0,
        duration_ms=1,
    )
    assert manifest is not None
    assert [o.path for o in manifest.outputs] == ["dist/app.txt"] and manifest.symlinks == ()
    result = store.restore(manifest, ws, outputs=["dist/**"])
    assert (result.written, result.unchanged, result.removed) == (0, 1, 2)
    assert os.listdir(ws / "dist") == ["app.txt"]
    # nor may an entry name one
    forged = dataclasses.replace(manifest, dirs=("dist/.ggen-restore-x",))
    with pytest.raises(UnsafeEntry, match="not one of the task's outputs"):
        store.restore(forged, ws, outputs=["dist/**"])


def test_sigterm_in_the_middle_of_a_restore_leaves_no_staged_file(two: Path) -> None:
    for i in range(40):
        (two / f"a/src/part{i}.bin").write_bytes(os.urandom(4 << 20))
    assert _ggen(two, "run", "build", "-w", "a").returncode == 0
    shutil.rmtree(two / "a/dist")
    env = {**os.environ, "GGEN_CACHE_DIR": str(two.parent / "cache")}
    proc = subprocess.Popen(
        [*ggen_command(), "run", "build", "-w", "a"],
        cwd=two,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any((two / "a").rglob(".ggen-restore-*")) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    dist = two / "a/dist"
    assert not dist.exists() or len(os.listdir(dist)) < 40  # it was stopped half way
    assert not list((two / "a").rglob(".ggen-restore-*"))
