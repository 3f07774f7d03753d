"""Package scripts as commands: ``script = "build"`` runs a workspace's package.json script the
way ``npm run build`` does, without starting npm, pnpm or yarn for every task.

What npm does, and ggen with it:
- the script runs with ``sh -c`` in the workspace directory, with no arguments;
- ``node_modules/.bin`` of the workspace and of every directory above it up to the project root
  come first on ``PATH``, nearest first (so ``tsc`` is the package's own TypeScript);
- the variables ``npm_package_name``, ``npm_package_version`` (when package.json has them),
  ``npm_lifecycle_event`` (the script's name), ``npm_lifecycle_script`` (its text) and
  ``npm_package_json`` (the file's path) are set;
- ``preX`` and ``postX`` run before and after ``X`` when package.json has them, as separate
  commands of the task (``npm run X`` runs them; a failing ``preX`` stops the task);
- a workspace whose package.json has no ``X`` (or that has no package.json) has nothing to do:
  the task ends as ``no-script``, which its dependents take as success (as turbo does).

package.json is read when the project is loaded (``read_packages``): the snapshot carries the
scripts, so the task key (which holds every command's text, its name and the package's name
and version: ``recipe_commands``) and the worker that runs them see the same text.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from ggen.errors import ConfigError
from ggen.make.model import Env, Make, PackageScripts, Phase, Workspace

PACKAGE_FILE = "package.json"
BIN_DIR = os.path.join("node_modules", ".bin")


@dataclass(frozen=True)
class ScriptCommand:
    """One command of a script task: ``prebuild``, ``build`` or ``postbuild``."""

    event: str  # the script's name, npm's npm_lifecycle_event
    text: str  # what ``sh -c`` runs


def wanted_scripts(names: Iterable[str]) -> frozenset[str]:
    """The package.json scripts that phases naming ``names`` may run: each, and its pre/post."""
    return frozenset(f"{p}{n}" for n in names for p in ("", "pre", "post"))


def read_packages(
    root: str, shown_root: str, paths: Iterable[str], wanted: Collection[str]
) -> tuple[PackageScripts, ...]:
    """The package.json of each workspace directory in ``paths`` that has one (relative to
    ``root``), keeping the ``wanted`` scripts only. A file that is not a JSON object, or whose
    ``scripts`` are not strings, is a ``ConfigError`` (shown under ``shown_root``)."""
    import orjson

    found = []
    for rel in dict.fromkeys(paths):
        file = os.path.join(root, rel, PACKAGE_FILE)
        shown = os.path.normpath(os.path.join(shown_root, rel, PACKAGE_FILE))
        try:
            with open(file, "rb") as fh:
                raw = fh.read()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise ConfigError(
                f"cannot read: {exc.strerror or exc}", file=shown, hint="check its permissions"
            ) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(
                f"not valid JSON: {exc}", file=shown, hint="fix the file (npm cannot read it)"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("expected a JSON object", file=shown, hint="fix the file")
        scripts = data.get("scripts") or {}
        if not isinstance(scripts, dict):
            raise ConfigError(
                "expected an object of script names to commands",
                file=shown,
                key="scripts",
                hint='write "scripts": {"build": "..."}',
            )
        kept = []
        for name in sorted(wanted & scripts.keys()):
            text = scripts[name]
            if not isinstance(text, str):
                raise ConfigError(
                    "expected a string", file=shown, key=f"scripts.{name}", hint="write the command"
                )
            kept.append((name, text))
        name_, version = data.get("name"), data.get("version")
        found.append(
            PackageScripts(
                path=rel,
                name=name_ if isinstance(name_, str) else None,
                version=version if isinstance(version, str) else None,
                scripts=tuple(kept),
            )
        )
    return tuple(found)


def script_commands(make: Make, ws: Workspace, phase: Phase) -> tuple[ScriptCommand, ...]:
    """The commands a ``script`` phase runs in ``ws``: pre, main, post; empty when the
    workspace has no such script (nothing to do). A phase without ``script``: none."""
    if phase.script is None:
        return ()
    package = make.package(ws.path)
    scripts = dict(package.scripts) if package is not None else {}
    if phase.script not in scripts:
        return ()
    events = (f"pre{phase.script}", phase.script, f"post{phase.script}")
    return tuple(ScriptCommand(e, scripts[e]) for e in events if e in scripts)


def has_nothing_to_do(make: Make, ws: Workspace, phase: Phase) -> bool:
    """Whether ``phase`` names a package script that ``ws`` does not have."""
    return phase.script is not None and not script_commands(make, ws, phase)


def recipe_commands(make: Make, ws: Workspace, phase: Phase) -> tuple[str, ...]:
    """The commands as they enter the task key: the phase's own, or for a script phase each
    script's name and text with the package's name and version (all the task sees of
    package.json besides its path); empty when there is no such script."""
    if phase.script is None:
        return phase.commands
    package = make.package(ws.path) or PackageScripts(ws.path)
    label = f"{_or_dash(package.name)}@{_or_dash(package.version)}"
    return tuple(
        f"[script {c.event} of {label}] {c.text}" for c in script_commands(make, ws, phase)
    )


def _or_dash(value: str | None) -> str:
    return "-" if value is None else value


def command_env(make: Make, ws: Workspace, command: ScriptCommand) -> Env:
    """The npm variables of one script command (set over the task's environment)."""
    package = make.package(ws.path)
    env = {
        "npm_lifecycle_event": command.event,
        "npm_lifecycle_script": command.text,
        "npm_package_json": os.path.join(make.root, ws.path, PACKAGE_FILE),
    }
    if package is not None and package.name is not None:
        env["npm_package_name"] = package.name
    if package is not None and package.version is not None:
        env["npm_package_version"] = package.version
    return tuple(sorted(env.items()))


def bin_dirs(make: Make, ws: Workspace) -> tuple[str, ...]:
    """``node_modules/.bin`` of the workspace and of each directory above it up to the project
    root, nearest first: what npm puts in front of PATH."""
    parts = [] if ws.path == "." else ws.path.split("/")
    dirs = []
    for depth in range(len(parts), -1, -1):
        dirs.append(os.path.join(make.root, *parts[:depth], BIN_DIR))
    return tuple(dirs)
