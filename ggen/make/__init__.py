"""make.toml -> an immutable, picklable snapshot of the project (``Make``), with validation.

The configuration package. ``ggen.make`` is its face: the model (``ggen.make.model``, frozen
dataclasses) re-exported, and the entry points ``load_make``, ``find_make_file`` and
``parse_size``. Behind them, imported on first use so that importing the model stays cheap:

- ``ggen.make.loader``: the schema, workspace files, cross-references, cycles;
- ``ggen.make.values``: typed access to TOML tables, names, environments, sizes;
- ``ggen.make.toml_lines``: reading a TOML file, and the line of a key for messages;
- ``ggen.make.discover``: workspaces found in the manifests of other tools;
- ``ggen.make.scripts``: the scripts of package.json files.

The loader turns every problem with a file into a ``ConfigError`` naming the file, the key
path and the fix. No module of the package imports ``ggen.make`` itself, so the package has
no import cycle (tests/test_layering.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from ggen.make.model import (
    MAKE_FILE,
    MAX_GRACE_S,
    MAX_JOBS,
    MAX_RETRIES,
    MAX_TIMEOUT_S,
    ROOT_WORKSPACE,
    CacheConfig,
    ConfigWarning,
    Env,
    ExecutorConfig,
    ExecutorKind,
    Hooks,
    Make,
    PackageScripts,
    Phase,
    Project,
    Workspace,
    env_dict,
)

__all__ = [
    "MAKE_FILE",
    "MAX_GRACE_S",
    "MAX_JOBS",
    "MAX_RETRIES",
    "MAX_TIMEOUT_S",
    "ROOT_WORKSPACE",
    "CacheConfig",
    "ConfigWarning",
    "Env",
    "ExecutorConfig",
    "ExecutorKind",
    "Hooks",
    "Make",
    "PackageScripts",
    "Phase",
    "Project",
    "Workspace",
    "env_dict",
    "find_make_file",
    "load_make",
    "parse_size",
]


# ------------------------------------------------------------------------------- entry points
# The implementations import tomli, difflib and the like: they are loaded on first use only.


def find_make_file(root: str | os.PathLike[str]) -> Path:
    """The root make.toml of the project that the directory ``root`` lies in.

    The nearest make.toml with a ``[project]`` table in ``root`` or above it (a workspace's own
    make.toml has none), so ggen works from any directory of a project. Raises ``ConfigError``
    when ``root`` is not a directory or no make.toml is found.
    """
    from ggen.make.loader import find_make_file as find

    return find(root)


def load_make(start: str | os.PathLike[str]) -> Make:
    """Read, validate and snapshot the project that the directory ``start`` lies in.

    Reads the root make.toml and the make.toml of every workspace that has one, checks every key,
    type, path and cross-reference, and returns the immutable ``Make``. Any problem raises a
    ``ConfigError`` (``CycleError`` for a workspace dependency cycle) naming file, key and fix.
    """
    from ggen.make.loader import load_make as load

    return load(start)


def parse_size(value: object, what: str = "size") -> int:
    """Bytes from an integer or a size such as ``"500MB"``, ``"5GB"``, ``"1.5GiB"``.

    KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers of 1024 (units are case-insensitive).
    Shared by ``[cache] max_size`` and the command line; ``what`` names the option in the
    ``UsageError`` raised for anything that is not a positive size.
    """
    from ggen.make.values import parse_size as parse

    return parse(value, what)
