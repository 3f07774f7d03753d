"""Task keys: a canonical, length-prefixed encoding of everything a task's result depends on,
digested with xxh3-128; and ``explain``, which says why two recipes give different keys.

A ``Recipe`` is the key's pre-image kept as data, so that ``ggen explain`` can compare the last
recorded one with today's field by field. Absolute paths never enter it: a second checkout at
another path, or another machine, gets the same keys.

The environment in a recipe is the keyed part of the environment the task's commands get,
computed by the same function that makes that environment for running them
(``ggen.task_env``). After a task ran, ``changed_inputs`` lists its input files again and
compares them with the recipe's, so that outputs made while an input was being edited are
never stored under a key that names the input's earlier contents.
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import xxhash

from ggen.cache.fsnames import portable, shown, unportable
from ggen.task_env import UNSET as UNSET
from ggen.task_env import task_env

if TYPE_CHECKING:
    from ggen.cache.digest import DigestMemo
    from ggen.cache.files import InputIndex
    from ggen.make import Make

KEY_FORMAT = 2  # 2: the environment the task gets (GGEN_WORKSPACE, GGEN_PHASE included)

_LEN = struct.Struct(">Q")
_EXECUTABLE = _LEN.pack(1) + b"x"
_NOT_EXECUTABLE = _LEN.pack(1) + b"-"


@dataclass(frozen=True)
class InputFile:
    """One input file as it enters a key."""

    path: str  # workspace-relative posix path, or "//path" from the project root
    digest: str
    executable: bool


@dataclass(frozen=True)
class Recipe:
    """Everything a task key is computed from."""

    phase: str
    workspace_path: str
    commands: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # sorted; ``TaskEnv.keyed`` (UNSET: not set)
    outputs: tuple[str, ...]
    inputs: tuple[InputFile, ...]  # sorted by path
    upstream: tuple[tuple[str, str], ...]  # sorted (task id, key)
    format: int = KEY_FORMAT

    def encode(self) -> bytes:
        """The canonical byte encoding: every field and item length-prefixed, so no two
        different recipes share an encoding."""
        out: list[bytes] = []
        add = out.append
        pack = _LEN.pack

        def put(value: str) -> None:
            data = value.encode("utf-8", "surrogateescape")
            add(pack(len(data)))
            add(data)

        def put_list(items: Sequence[str]) -> None:
            add(pack(len(items)))
            for item in items:
                put(item)

        put(f"ggen-key-v{self.format}")
        put(self.phase)
        put(self.workspace_path)
        put_list(self.commands)
        put_list([x for pair in self.env for x in pair])
        put_list(self.outputs)
        add(pack(len(self.inputs)))
        fsencode = os.fsencode  # a file name is keyed by its bytes, whatever they are
        for f in self.inputs:  # the hot loop, written out
            path = fsencode(f.path)
            digest = f.digest.encode("utf-8", "surrogateescape")
            add(pack(len(path)))
            add(path)
            add(pack(len(digest)))
            add(digest)
            add(_EXECUTABLE if f.executable else _NOT_EXECUTABLE)
        put_list([x for pair in self.upstream for x in pair])
        return b"".join(out)

    def key(self) -> str:
        """The task key: xxh3-128 of the encoding, 32 hex characters."""
        return xxhash.xxh3_128_hexdigest(self.encode())

    def to_json(self) -> dict[str, Any]:
        """The recipe as JSON data; names that are not UTF-8 (file names, values of outside
        variables) in ``fsnames.portable`` form."""
        return {
            "format": self.format,
            "phase": self.phase,
            "workspace_path": portable(self.workspace_path),
            "commands": list(self.commands),
            "env": [[portable(k), portable(v)] for k, v in self.env],
            "outputs": list(self.outputs),
            "inputs": [[portable(f.path), f.digest, f.executable] for f in self.inputs],
            "upstream": [list(p) for p in self.upstream],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Recipe:
        """The inverse of ``to_json``; raises ValueError on anything malformed."""
        try:
            return Recipe(
                format=int(data["format"]),
                phase=str(data["phase"]),
                workspace_path=unportable(str(data["workspace_path"])),
                commands=tuple(str(c) for c in data["commands"]),
                env=tuple((unportable(str(k)), unportable(str(v))) for k, v in data["env"]),
                outputs=tuple(str(o) for o in data["outputs"]),
                inputs=tuple(
                    InputFile(unportable(str(p)), str(d), bool(x)) for p, d, x in data["inputs"]
                ),
                upstream=tuple((str(t), str(k)) for t, k in data["upstream"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed key recipe: {exc}") from exc


def task_recipe(
    make: Make,
    workspace: str,
    phase: str,
    upstream: Iterable[tuple[str, str]],
    index: InputIndex,
    memo: DigestMemo,
    environ: Mapping[str, str] = os.environ,
) -> Recipe:
    """The recipe of task (workspace, phase) given its upstream (task id, key) pairs: the
    files are listed through ``index`` and hashed through ``memo`` as they are now, and the
    environment is the one the task gets when started from ``environ``."""
    from ggen.scripts import recipe_commands

    ws = make.workspace(workspace)
    spec = make.phase_for(workspace, phase)
    if ws is None or spec is None:
        raise KeyError(f"{workspace}:{phase}")
    return Recipe(
        phase=phase,
        workspace_path=ws.path,
        commands=recipe_commands(make, ws, spec),
        env=task_env(make, workspace, phase, environ).keyed,
        outputs=spec.outputs,
        inputs=task_input_files(make, workspace, phase, index, memo),
        upstream=tuple(sorted(upstream)),
    )


def task_input_files(
    make: Make, workspace: str, phase: str, index: InputIndex, memo: DigestMemo
) -> tuple[InputFile, ...]:
    """The input files of task (workspace, phase) as they are now, sorted by key path."""
    ws = make.workspace(workspace)
    spec = make.phase_for(workspace, phase)
    if ws is None or spec is None:
        raise KeyError(f"{workspace}:{phase}")
    files = dict(index.task_inputs(ws.path, spec.inputs, spec.outputs))
    if make.project.inputs:
        files.update(index.task_inputs(".", [f"//{p}" for p in make.project.inputs], ()))
    inputs = []
    for key_path, path in sorted(files.items()):
        d = memo.digest(path)
        inputs.append(InputFile(key_path, d.digest, d.executable))
    return tuple(inputs)


def changed_inputs(
    recipe: Recipe,
    make: Make,
    workspace: str,
    index: InputIndex,
    memo: DigestMemo,
) -> list[Difference]:
    """How the task's input files differ now from those its key was made from: contents or
    executable bit changed, files added or removed (empty when none did).

    Called once a task has succeeded: the stat memo answers for every file left untouched, so
    this costs a listing and a stat per input. ``index`` must have been told
    (``mark_changed``) that the task's workspace may have changed.
    """
    try:
        now = task_input_files(make, workspace, recipe.phase, index, memo)
    except OSError as exc:  # removed (or made unreadable) between the listing and the hash
        return [Difference(Reason.INPUT_REMOVED, os.fsdecode(exc.filename or ""))]
    return _input_differences(recipe.inputs, now)


class Reason(enum.Enum):
    """Why a task would run."""

    NEVER_RUN = "never run"
    FORMAT = "key format changed"
    PHASE = "phase renamed"
    WORKSPACE_MOVED = "workspace moved"
    COMMANDS = "commands changed"
    ENV = "environment changed"
    OUTPUTS = "outputs changed"
    INPUT_ADDED = "input added"
    INPUT_REMOVED = "input removed"
    INPUT_CHANGED = "input changed"
    MODE_CHANGED = "executable bit changed"
    UPSTREAM = "upstream task changed"
    NOT_IN_CACHE = "same key, but no entry in the cache"
    CACHE_OFF = "caching is off for this task"
    FORCED = "--force: the cache is not read"
    NO_SCRIPT = "nothing to do: package.json has no such script"
    NO_COMMAND = "nothing to do: the phase has no command"


@dataclass(frozen=True)
class Difference:
    """One reason, with what it concerns (a path, a variable, a task id)."""

    reason: Reason
    subject: str = ""
    detail: str = ""

    def __str__(self) -> str:
        text = self.reason.value
        if self.subject:
            text += f": {shown(self.subject)}"
        if self.detail:
            text += f" ({self.detail})"
        return text


def explain(old: Recipe | None, new: Recipe) -> list[Difference]:
    """The differences between the last recorded recipe and today's; empty when equal."""
    if old is None:
        return [Difference(Reason.NEVER_RUN)]
    diffs: list[Difference] = []
    if old.format != new.format:
        diffs.append(Difference(Reason.FORMAT, detail=f"{old.format} -> {new.format}"))
    if old.phase != new.phase:
        diffs.append(Difference(Reason.PHASE, old.phase, new.phase))
    if old.workspace_path != new.workspace_path:
        diffs.append(Difference(Reason.WORKSPACE_MOVED, old.workspace_path, new.workspace_path))
    if old.commands != new.commands:
        for i in range(max(len(old.commands), len(new.commands))):
            a = old.commands[i] if i < len(old.commands) else "(none)"
            b = new.commands[i] if i < len(new.commands) else "(none)"
            if a != b:
                diffs.append(Difference(Reason.COMMANDS, f"commands[{i}]", f"{a!r} -> {b!r}"))
    old_env, new_env = dict(old.env), dict(new.env)
    for name in sorted(old_env.keys() | new_env.keys()):
        a, b = old_env.get(name, UNSET), new_env.get(name, UNSET)
        if a != b:
            diffs.append(Difference(Reason.ENV, name, f"{_show(a)} -> {_show(b)}"))
    if old.outputs != new.outputs:
        diffs.append(
            Difference(Reason.OUTPUTS, detail=f"{list(old.outputs)} -> {list(new.outputs)}")
        )
    diffs.extend(_input_differences(old.inputs, new.inputs))
    old_up, new_up = dict(old.upstream), dict(new.upstream)
    for tid in sorted(old_up.keys() | new_up.keys()):
        if old_up.get(tid) != new_up.get(tid):
            diffs.append(Difference(Reason.UPSTREAM, tid))
    return diffs


def _input_differences(old: Sequence[InputFile], new: Sequence[InputFile]) -> list[Difference]:
    if old == new:
        return []
    diffs: list[Difference] = []
    old_in = {f.path: f for f in old}
    new_in = {f.path: f for f in new}
    for path in sorted(old_in.keys() | new_in.keys()):
        was, now = old_in.get(path), new_in.get(path)
        if was is None:
            diffs.append(Difference(Reason.INPUT_ADDED, path))
        elif now is None:
            diffs.append(Difference(Reason.INPUT_REMOVED, path))
        elif was.digest != now.digest:
            diffs.append(Difference(Reason.INPUT_CHANGED, path))
        elif was.executable != now.executable:
            diffs.append(Difference(Reason.MODE_CHANGED, path))
    return diffs


def _show(value: str) -> str:
    return "unset" if value == UNSET else repr(value)
