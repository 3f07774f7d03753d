"""What git says changed: the files of a project that differ from a revision, and the base
revision of ``--affected``.

Every function runs ``git`` in the project root and answers with paths relative to that root
(which may be a subdirectory of the repository). Problems the user can fix (not a git work tree,
an unknown revision, no base branch) raise ``UsageError`` (exit 2) saying what to do.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from ggen.errors import UsageError

BASE_BRANCHES = ("main", "master", "origin/main", "origin/master")


@dataclass(frozen=True)
class Base:
    """The revision ``--affected`` compares with, and how it was chosen (for the first line)."""

    commit: str  # full hash
    source: str  # "GGEN_BASE=v1.2", "merge base with origin/main", ...


def _git(root: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise UsageError(
            f"cannot run git ({exc.strerror or exc}): selecting by changes needs git"
        ) from None


def _check_work_tree(root: str) -> None:
    done = _git(root, "rev-parse", "--is-inside-work-tree")
    if done.returncode != 0 or done.stdout.strip() != b"true":
        raise UsageError(
            f"{root} is not inside a git work tree: [REF] filters and --affected compare with "
            "git history (use names or ./dir filters instead)"
        )


def resolve(root: str, ref: str) -> str | None:
    """The commit ``ref`` names, or None when it names none."""
    if not ref or ref.startswith("-"):
        return None
    done = _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if done.returncode != 0:
        return None
    return os.fsdecode(done.stdout).strip() or None


def commit_of(root: str, ref: str) -> str:
    """The commit ``ref`` names; ``UsageError`` when there is none (or no git work tree)."""
    _check_work_tree(root)
    commit = resolve(root, ref)
    if commit is None:
        raise UsageError(
            f'unknown git revision "{ref}" (a branch, tag or commit: see `git log --oneline`)'
        )
    return commit


def changed_files(root: str, ref: str) -> frozenset[str]:
    """Files under ``root`` (relative to it, posix) that differ from revision ``ref``.

    Committed since ``ref``, staged, unstaged and untracked (not ignored) files, deleted ones
    included; a rename counts as both of its paths. A range ``A...B`` is what git's three-dot
    diff says: the files B changed since it forked from A, committed ones only.
    """
    if "..." in ref:
        start, _, end = ref.partition("...")
        diff = _diff(root, ref, f"{commit_of(root, start)}...{commit_of(root, end or 'HEAD')}")
        return frozenset(n for n in os.fsdecode(diff).split("\0") if n)
    diff = _diff(root, ref, commit_of(root, ref))
    others = _git(root, "ls-files", "--others", "--exclude-standard", "-z")
    if others.returncode != 0:
        raise UsageError(f"git ls-files failed: {os.fsdecode(others.stderr).strip()}")
    names = os.fsdecode(diff + b"\0" + others.stdout).split("\0")
    return frozenset(n for n in names if n)


def _diff(root: str, ref: str, spec: str) -> bytes:
    done = _git(root, "diff", "--name-only", "--no-renames", "--relative", "-z", spec, "--")
    if done.returncode != 0:
        raise UsageError(f"git diff {ref} failed: {os.fsdecode(done.stderr).strip()}")
    return done.stdout


def affected_base(root: str, env: Mapping[str, str]) -> Base:
    """The revision ``--affected`` compares with.

    ``GGEN_BASE`` when set (any revision, used as is); else the merge base of HEAD with the
    branch a CI pull request targets (``GITHUB_BASE_REF``: ``origin/NAME``, else the local
    branch NAME); else the merge base of HEAD with ``main`` or ``master`` (local, else origin's).
    """
    _check_work_tree(root)
    given = env.get("GGEN_BASE", "").strip()
    if given:
        commit = resolve(root, given)
        if commit is None:
            raise UsageError(f'GGEN_BASE: unknown git revision "{given}"')
        return Base(commit, f"GGEN_BASE={given}")
    target = env.get("GITHUB_BASE_REF", "").strip()
    candidates = (f"origin/{target}", target) if target else BASE_BRANCHES
    for name in candidates:
        if resolve(root, name) is not None:
            return Base(_merge_base(root, name), f"merge base with {name}")
    if target:
        raise UsageError(
            f'GITHUB_BASE_REF: neither "origin/{target}" nor "{target}" is a known branch '
            "(fetch it, e.g. `git fetch origin " + target + "`, or set GGEN_BASE)"
        )
    raise UsageError(
        "--affected: no base branch (none of " + ", ".join(BASE_BRANCHES) + " exists; "
        "set GGEN_BASE to the revision to compare with)"
    )


def _merge_base(root: str, ref: str) -> str:
    done = _git(root, "merge-base", ref, "HEAD")
    found = os.fsdecode(done.stdout).strip()
    if done.returncode != 0 or not found:
        raise UsageError(
            f"--affected: HEAD and {ref} have no common ancestor (set GGEN_BASE to the revision "
            "to compare with)"
        )
    return found
