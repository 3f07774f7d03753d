"""Tests of ggen.settings: command line, then environment, then make.toml, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from ggen.cache.store import default_cache_dir
from ggen.make import Make, load_make
from ggen.settings import CommandLine, resolve_settings

CONFIGURED = """\
[project]
name = "p"

[cache]
dir = "from-toml"
remote = "http://toml.example/cache"
remote_read_only = true

[executor]
scheduler = "tcp://toml:8786"
"""


@pytest.fixture
def configured(tmp_path: Path) -> Make:
    (tmp_path / "make.toml").write_text(CONFIGURED, encoding="utf-8")
    return load_make(tmp_path)


@pytest.fixture
def bare(tmp_path: Path) -> Make:
    (tmp_path / "make.toml").write_text('[project]\nname = "p"\n', encoding="utf-8")
    return load_make(tmp_path)


ENV = {
    "GGEN_CACHE_DIR": "from-env",
    "GGEN_REMOTE_CACHE": "http://env.example/cache",
    "GGEN_DASK_SCHEDULER": "tcp://env:8786",
}
CLI = CommandLine(
    cache_dir="from-cli", remote_cache="http://cli.example/cache", scheduler="tcp://cli:8786"
)


def test_the_command_line_wins(configured: Make) -> None:
    s = resolve_settings(configured, CLI, ENV)
    assert s.cache_dir == Path(configured.root, "from-cli")
    assert s.remote_url == "http://cli.example/cache"
    assert s.dask_scheduler == "tcp://cli:8786"


def test_then_the_environment(configured: Make) -> None:
    s = resolve_settings(configured, CommandLine(), ENV)
    assert s.cache_dir == Path(configured.root, "from-env")
    assert s.remote_url == "http://env.example/cache"
    assert s.dask_scheduler == "tcp://env:8786"


def test_then_make_toml(configured: Make) -> None:
    s = resolve_settings(configured, CommandLine(), {})
    assert s.cache_dir == Path(configured.root, "from-toml")
    assert s.remote_url == "http://toml.example/cache"
    assert s.remote_read_only is True
    assert s.dask_scheduler == "tcp://toml:8786"


def test_then_the_defaults(bare: Make) -> None:
    s = resolve_settings(bare, CommandLine(), {})
    assert s.cache_dir == default_cache_dir()
    assert s.remote_url is None
    assert s.remote_read_only is False
    assert s.dask_scheduler is None
    assert s.signing_key is None
    assert s.debug is False


def test_an_empty_remote_url_means_none_and_stops_the_search(configured: Make) -> None:
    assert resolve_settings(configured, CommandLine(remote_cache=""), ENV).remote_url is None
    assert resolve_settings(configured, CommandLine(), {"GGEN_REMOTE_CACHE": ""}).remote_url is None


def test_without_a_project_relative_dirs_are_from_here_and_home_is_expanded() -> None:
    assert resolve_settings(None, CommandLine(cache_dir="c"), {}).cache_dir == Path("c")
    home = resolve_settings(None, CommandLine(), {"GGEN_CACHE_DIR": "~/x"}).cache_dir
    assert home == Path.home() / "x"


def test_key_and_debug_come_from_the_environment_only() -> None:
    env = {"GGEN_CACHE_SIGNING_KEY": "sécret", "GGEN_DEBUG": "1"}
    s = resolve_settings(None, CommandLine(), env)
    assert s.signing_key == "sécret".encode()
    assert s.debug is True
    assert resolve_settings(None, CommandLine(), {"GGEN_CACHE_SIGNING_KEY": ""}).signing_key is None
