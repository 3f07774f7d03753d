"""The environment a task gets, and the part of it that is keyed (ggen.task_env)."""

from __future__ import annotations

from pathlib import Path

import pytest
from monorepo import write_tree

from ggen.make import load_make
from ggen.task_env import UNSET, env_inputs_values, task_env


@pytest.fixture
def make_root(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path,
        {
            "make.toml": """
                [project]
                name = "p"

                [env]
                LEVEL = "root"
                ROOT_ONLY = "r"

                [workspace.app]
                path = "app"

                [lifecycle.build]
                command = "true"
                env = { LEVEL = "phase", GGEN_PHASE = "spoofed" }
                env_inputs = ["LEVEL", "CI", "HOME_DIR", "GGEN_PROJECT_ROOT"]
            """,
            "app/make.toml": """
                [env]
                LEVEL = "workspace"
                WS_ONLY = "w"
            """,
        },
    )


def test_levels_apply_in_order_and_ggen_variables_last(make_root: Path) -> None:
    make = load_make(make_root)
    env = task_env(make, "app", "build", {"LEVEL": "outside", "HOME_DIR": "/h"})
    got = dict(env.set)
    assert got["LEVEL"] == "phase"  # the phase's value, not the outside one
    assert (got["ROOT_ONLY"], got["WS_ONLY"], got["HOME_DIR"]) == ("r", "w", "/h")
    assert (got["GGEN_PHASE"], got["GGEN_WORKSPACE"]) == ("build", "app")
    assert got["GGEN_PROJECT_ROOT"] == make.root
    assert env.unset == ("CI",)
    keyed = dict(env.keyed)
    assert "GGEN_PROJECT_ROOT" not in keyed
    assert keyed["CI"] == UNSET and keyed["LEVEL"] == "phase" and keyed["HOME_DIR"] == "/h"
    assert keyed == {k: v for k, v in got.items() if k != "GGEN_PROJECT_ROOT"} | {"CI": UNSET}


def test_env_inputs_values_are_those_of_every_phase_that_are_set(make_root: Path) -> None:
    make = load_make(make_root)
    assert env_inputs_values(make, {"CI": "1", "OTHER": "x"}) == (("CI", "1"),)


def test_an_unknown_task_is_a_key_error(make_root: Path) -> None:
    with pytest.raises(KeyError):
        task_env(load_make(make_root), "nope", "build", {})
