"""The run settings that can come from three places, resolved in one function.

For each setting the command line wins, then the environment (``GGEN_*`` variables), then
make.toml, then a default. ``resolve_settings`` applies that order once; the CLI and the runner
read the frozen ``Settings`` it returns instead of each looking at ``os.environ``.

- cache directory: ``--cache-dir``, ``GGEN_CACHE_DIR``, ``[cache] dir`` (relative to the
  project root), else the user's cache directory;
- remote cache URL: ``--remote-cache``, ``GGEN_REMOTE_CACHE``, ``[cache] remote``;
- remote read-only: ``--remote-read-only`` or ``[cache] remote_read_only``;
- Dask scheduler: ``--scheduler``, ``GGEN_DASK_SCHEDULER``, ``[executor] scheduler``;
- signing key: ``GGEN_CACHE_SIGNING_KEY``; tracebacks on internal errors: ``GGEN_DEBUG``.

An empty remote URL at any level means "no remote cache" and stops the search. The remote
client's own variables (token, transfer deadline) are read where the client is made
(``ggen.cache.remote``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ggen.make import Make

ENV_CACHE_DIR = "GGEN_CACHE_DIR"
ENV_REMOTE_CACHE = "GGEN_REMOTE_CACHE"
ENV_DASK_SCHEDULER = "GGEN_DASK_SCHEDULER"
ENV_DEBUG = "GGEN_DEBUG"


@dataclass(frozen=True)
class CommandLine:
    """What the command line said; None where an option was not given."""

    cache_dir: str | None = None
    remote_cache: str | None = None
    remote_read_only: bool = False
    scheduler: str | None = None


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one ggen command."""

    cache_dir: Path  # the local store's directory
    remote_url: str | None  # None: no remote cache
    remote_read_only: bool
    dask_scheduler: str | None  # None: the executor's own default (a local cluster)
    signing_key: bytes | None  # UTF-8 bytes of the key; None if unset or empty
    debug: bool  # let an internal error's traceback through


def resolve_settings(
    make: Make | None,
    cli: CommandLine = CommandLine(),
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings from ``cli``, then ``environ`` (default ``os.environ``), then ``make``'s
    make.toml (None when there is none, as for ``ggen cache`` outside a project)."""
    env = os.environ if environ is None else environ
    config_dir = make.cache.dir if make is not None else None
    chosen_dir = cli.cache_dir or env.get(ENV_CACHE_DIR) or config_dir
    if chosen_dir:
        root = make.root if make is not None else "."
        cache_dir = Path(root, os.path.expanduser(chosen_dir))
    else:
        from ggen.cache.store import default_cache_dir

        cache_dir = default_cache_dir()
    config_url = make.cache.remote if make is not None else None
    remote = next(
        (u for u in (cli.remote_cache, env.get(ENV_REMOTE_CACHE), config_url) if u is not None),
        None,
    )
    from ggen.cache.signing import signing_key_from_env

    return Settings(
        cache_dir=cache_dir,
        remote_url=remote or None,
        remote_read_only=cli.remote_read_only or (make is not None and make.cache.remote_read_only),
        dask_scheduler=cli.scheduler
        or env.get(ENV_DASK_SCHEDULER)
        or (make.executor.scheduler if make is not None else None),
        signing_key=signing_key_from_env(env),
        debug=bool(env.get(ENV_DEBUG)),
    )
