"""Changed files since a revision and the base of --affected, on real git repositories."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitrepo import commit, git, init, write

from ggen.errors import UsageError
from ggen.gitfiles import affected_base, changed_files, commit_of

NO_CI: dict[str, str] = {}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel in ("a/one.txt", "a/two.txt", "b/three.txt", "c/gone.txt", "d/old.txt"):
        write(root, rel)
    write(root, ".gitignore", "*.log\n")
    return init(root)


def test_committed_staged_unstaged_untracked_deleted_and_renamed(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    assert changed_files(repo.as_posix(), "HEAD") == frozenset()
    write(repo, "a/one.txt", "committed\n")
    commit(repo, "change one")
    write(repo, "a/two.txt", "staged\n")
    git(repo, "add", "a/two.txt")
    write(repo, "b/three.txt", "unstaged\n")
    write(repo, "b/new.txt", "untracked\n")
    write(repo, "e/added.txt", "staged new file\n")
    git(repo, "add", "e/added.txt")
    (repo / "c/gone.txt").unlink()
    git(repo, "mv", "d/old.txt", "d/new.txt")
    write(repo, "b/debug.log", "ignored\n")
    assert changed_files(repo.as_posix(), base) == {
        "a/one.txt",
        "a/two.txt",
        "b/three.txt",
        "b/new.txt",
        "e/added.txt",
        "c/gone.txt",
        "d/old.txt",
        "d/new.txt",
    }
    # since HEAD: the commit is not a change any more
    assert "a/one.txt" not in changed_files(repo.as_posix(), "HEAD")


def test_a_range_is_what_the_branch_committed_since_it_forked(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "topic")
    write(repo, "a/one.txt", "on topic\n")
    commit(repo, "topic")
    git(repo, "checkout", "-q", "main")
    write(repo, "b/three.txt", "on main\n")
    commit(repo, "main")
    write(repo, "c/untracked.txt")  # the working tree is not part of a range
    assert changed_files(repo.as_posix(), "main...topic") == {"a/one.txt"}
    assert changed_files(repo.as_posix(), "topic...main") == {"b/three.txt"}
    assert changed_files(repo.as_posix(), "topic...") == {"b/three.txt"}  # B defaults to HEAD


def test_paths_are_relative_to_a_project_below_the_repository_root(repo: Path) -> None:
    write(repo, "a/one.txt", "changed\n")
    write(repo, "a/sub/untracked.txt")
    write(repo, "b/three.txt", "outside the project\n")
    assert changed_files((repo / "a").as_posix(), "HEAD") == {"one.txt", "sub/untracked.txt"}


def test_bad_revision_and_not_a_repository(repo: Path, tmp_path: Path) -> None:
    cases = [(b, b) for b in ("nope", "-h", "HEAD~5", "main..HEAD")]
    cases += [("nope...HEAD", "nope"), ("main...v2", "v2")]  # a range names its bad end
    for given, bad in cases:
        with pytest.raises(UsageError, match=f'unknown git revision "{bad}"') as err:
            changed_files(repo.as_posix(), given)
        assert err.value.exit_code == 2
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UsageError, match="is not inside a git work tree"):
        changed_files(plain.as_posix(), "HEAD")
    assert commit_of(repo.as_posix(), "main") == git(repo, "rev-parse", "main").strip()


def test_affected_base_is_the_merge_base_with_main(repo: Path) -> None:
    fork = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "on the branch")
    git(repo, "checkout", "-q", "main")
    commit(repo, "main moves on")
    git(repo, "checkout", "-q", "feature")
    base = affected_base(repo.as_posix(), NO_CI)
    assert base.commit == fork
    assert base.source == "merge base with main"


def test_affected_base_falls_back_to_master(tmp_path: Path) -> None:
    root = init(write(tmp_path / "r", "f").parent, branch="master")
    fork = git(root, "rev-parse", "HEAD").strip()
    git(root, "checkout", "-q", "-b", "topic")
    commit(root, "topic work")
    assert affected_base(root.as_posix(), NO_CI).commit == fork


def test_affected_base_from_github_base_ref_prefers_origin(repo: Path, tmp_path: Path) -> None:
    git(repo, "branch", "release")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", repo.as_posix(), clone.as_posix())
    fork = git(clone, "rev-parse", "HEAD").strip()
    git(clone, "checkout", "-q", "-b", "pr")
    commit(clone, "pull request")
    # no local "release" branch in the clone: origin/release is used
    base = affected_base(clone.as_posix(), {"GITHUB_BASE_REF": "release"})
    assert (base.commit, base.source) == (fork, "merge base with origin/release")
    # without a remote, the local branch of that name
    git(repo, "checkout", "-q", "-b", "pr")
    commit(repo, "local pull request")
    base = affected_base(repo.as_posix(), {"GITHUB_BASE_REF": "release"})
    assert (base.commit, base.source) == (fork, "merge base with release")
    with pytest.raises(UsageError, match='GITHUB_BASE_REF: neither "origin/nope" nor "nope"'):
        affected_base(repo.as_posix(), {"GITHUB_BASE_REF": "nope"})


def test_ggen_base_wins_and_is_used_as_is(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD").strip()
    second = commit(repo, "second")
    env = {"GGEN_BASE": "HEAD", "GITHUB_BASE_REF": "main"}
    assert affected_base(repo.as_posix(), env).commit == second
    assert affected_base(repo.as_posix(), {"GGEN_BASE": first}).source == f"GGEN_BASE={first}"
    with pytest.raises(UsageError, match='GGEN_BASE: unknown git revision "v9"'):
        affected_base(repo.as_posix(), {"GGEN_BASE": "v9"})


def test_no_base_branch_is_a_clear_error(tmp_path: Path) -> None:
    root = init(write(tmp_path / "r", "f").parent, branch="trunk")
    with pytest.raises(UsageError, match=r"no base branch .*set GGEN_BASE") as err:
        affected_base(root.as_posix(), NO_CI)
    assert err.value.exit_code == 2
