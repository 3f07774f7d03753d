"""The scripts of package.json files: ``ggen.make.scripts``, under its former name."""

from __future__ import annotations

from ggen.make.scripts import (
    BIN_DIR,
    PACKAGE_FILE,
    ScriptCommand,
    bin_dirs,
    command_env,
    has_nothing_to_do,
    read_packages,
    recipe_commands,
    script_commands,
    wanted_scripts,
)

__all__ = [
    "BIN_DIR",
    "PACKAGE_FILE",
    "ScriptCommand",
    "bin_dirs",
    "command_env",
    "has_nothing_to_do",
    "read_packages",
    "recipe_commands",
    "script_commands",
    "wanted_scripts",
]
