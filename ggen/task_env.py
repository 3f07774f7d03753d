"""The environment a task's commands get, computed in one place for running them and for
keying them, so that the key can never describe an environment other than the one the task saw.

A task's commands get the inherited environment, with set over it, in this order: the root
``[env]``, the workspace make.toml's ``[env]`` (both merged into ``Workspace.env`` by the
loader), the phase's ``env``, and the variables ggen itself hands every command
(``GGEN_PHASE``, ``GGEN_WORKSPACE``, ``GGEN_PROJECT_ROOT``). The key takes every variable ggen
sets (``GGEN_PROJECT_ROOT`` excepted: it is an absolute path, and absolute paths never enter a
key) and the phase's ``env_inputs`` with the values the task sees, so a variable that is both
set by the phase and listed in ``env_inputs`` is keyed by the phase's value.

The key is computed in the scheduling process, while the commands may run elsewhere (a Dask
worker, with an environment of its own). So the values of ``env_inputs`` variables are taken
from the scheduling process (``env_inputs_values``) and pinned: set over the inherited
environment when present there, removed from it when absent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ggen.make import Env, Make

UNSET = "\x00unset"
"""The keyed value of an ``env_inputs`` variable the task does not get (no real value holds a
NUL character, so it equals no value a variable can have)."""

PHASE_VAR = "GGEN_PHASE"
WORKSPACE_VAR = "GGEN_WORKSPACE"
ROOT_VAR = "GGEN_PROJECT_ROOT"
UNKEYED = frozenset({ROOT_VAR})
"""Variables a task gets that never enter a key: absolute paths."""


@dataclass(frozen=True)
class TaskEnv:
    """One task's environment: what ggen sets over the inherited one, and what is keyed."""

    set: Env  # sorted (name, value): set over the inherited environment when running
    unset: tuple[str, ...]  # sorted: removed from the inherited environment when running
    keyed: Env  # sorted (name, value): the part of the environment that enters the key


def task_env(
    make: Make, workspace: str, phase: str, inherited: Mapping[str, str] = os.environ
) -> TaskEnv:
    """The environment of task (workspace, phase) whose ``env_inputs`` take their values from
    ``inherited`` (the scheduling process's environment).

    Raises KeyError when the snapshot has no such task.
    """
    ws = make.workspace(workspace)
    spec = make.phase_for(workspace, phase)
    if ws is None or spec is None:
        raise KeyError(f"{workspace}:{phase}")
    env = dict(ws.env)
    env.update(spec.env)
    env[PHASE_VAR] = phase
    env[WORKSPACE_VAR] = workspace
    env[ROOT_VAR] = make.root
    keyed = {name: value for name, value in env.items() if name not in UNKEYED}
    unset: list[str] = []
    for name in spec.env_inputs:
        if name in UNKEYED or name in keyed:
            continue
        value = inherited.get(name)
        if value is None:
            unset.append(name)
            keyed[name] = UNSET
        else:
            env[name] = keyed[name] = value
    return TaskEnv(
        set=tuple(sorted(env.items())),
        unset=tuple(sorted(unset)),
        keyed=tuple(sorted(keyed.items())),
    )


def env_inputs_values(make: Make, environ: Mapping[str, str] = os.environ) -> Env:
    """The values in ``environ`` of every variable some phase lists in ``env_inputs``: what a
    worker elsewhere needs to give tasks the environment their keys were made from."""
    phases = [*make.lifecycle, *(p for ws in make.workspaces for p in ws.phases)]
    names = {name for phase in phases for name in phase.env_inputs}
    return tuple(sorted((n, environ[n]) for n in names if n in environ))
