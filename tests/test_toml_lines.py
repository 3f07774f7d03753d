"""The line of a key path in a TOML document, for the messages of make.toml errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from monorepo import write_tree

from ggen.errors import ConfigError
from ggen.make.loader import load_make
from ggen.make.toml_lines import key_line, key_path

DOC = '''[project]
name = "shop"

[workspace."@acme/ui"]
path = "packages/ui"
depends_on = ["nope"]

[lifecycle.build]
command = """
timeout = 5
"""
timeout = "soon"
env.NODE_ENV = "production"

[[hooks.before_all]]
command = "true"

[lifecycle.test]
commands = ["a", "b"]
'''


@pytest.mark.parametrize(
    ("key", "line"),
    [
        ("project.name", 2),
        ('workspace."@acme/ui".depends_on', 6),
        ('workspace."@acme/ui".pth', 4),  # not written: the header of its table
        ("lifecycle.build.timeout", 12),  # not the look-alike inside the multi-line string
        ("lifecycle.build.env.NODE_ENV", 13),  # a dotted key
        ("lifecycle.build.env", 13),
        ("lifecycle.test.commands[1]", 19),
        ("hooks.before_all", 15),
        ("lifecycle.lint", None),
        ("cache.dir", None),
    ],
)
def test_key_line(key: str, line: int | None) -> None:
    assert key_line(DOC, key) == line


def test_key_path_reads_quoted_and_indexed_components() -> None:
    assert key_path('workspace."@acme/ui".env.A') == ["workspace", "@acme/ui", "env", "A"]
    assert key_path("lifecycle.build.commands[2]") == ["lifecycle", "build", "commands"]
    assert key_path("workspace.'a.b'.path") == ["workspace", "a.b", "path"]


def error_of(root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_make(root)
    return info.value


def test_errors_about_keys_name_their_line(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "make.toml": '[project]\nname = "x"\n\n[workspace.web]\npath = "web"\n\n'
            '[lifecycle.build]\ncommand = "true"\ntimout = 5\n',
            "web/.keep": "",
        },
    )
    err = error_of(root)
    assert (err.key, err.line) == ("lifecycle.build.timout", 9)
    assert str(err).startswith(f"{root / 'make.toml'}:9: lifecycle.build.timout: unknown key")


def test_a_workspace_files_error_names_its_line_in_that_file(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "make.toml": '[project]\nname = "x"\n\n[workspace.web]\npath = "web"\n',
            "web/make.toml": '# web\n\n[lifecycle.build]\ncommand = "true"\noutputs = 3\n',
        },
    )
    err = error_of(root)
    assert err.file is not None and err.file.endswith("web/make.toml")
    assert (err.key, err.line) == ("lifecycle.build.outputs", 5)
