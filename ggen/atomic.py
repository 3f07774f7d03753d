"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

Every file ggen writes that another process (or the next run) reads goes through here: state
files, run summaries, the digest memo, replayed logs, reports and traces. The data goes to a
temp file in the same directory, which is then renamed over the target; ``os.replace`` within
one directory is atomic, so even a ``kill -9`` halfway leaves a whole file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ggen.errors import WriteError


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically, creating missing parent directories."""
    write_chunks_atomic(path, (data,), mode)


def write_chunks_atomic(path: Path, chunks: Iterable[bytes], mode: int = 0o644) -> None:
    """Write the ``chunks`` one after the other to ``path`` atomically, holding one at a time
    (a replayed log of any size); an exception from ``chunks`` leaves the old file.

    A failure to write (read-only directory, full disk) raises ``WriteError`` naming ``path``.
    """
    path = Path(path)
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    failed: BaseException | None = None  # raised by ``chunks``: passed on as it is
    try:
        # _writing is outermost: closing the file flushes it, and may fail too
        with _writing(path), os.fdopen(fd, "wb") as f:
            os.fchmod(fd, mode)  # mkstemp creates 0600
            source = iter(chunks)
            while True:
                try:
                    chunk = next(source)
                except StopIteration:
                    break
                except BaseException as exc:
                    failed = exc
                    break
                f.write(chunk)
        if failed is not None:
            raise failed
        with _writing(path):
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn an OSError of writing ``path`` into a ``WriteError`` that names it."""
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(path, exc) from exc


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode())
