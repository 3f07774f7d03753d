"""The exceptions users see, each carrying the exit code the CLI maps it to.

Exit codes (SPEC section 4): 0 success, 1 a task failed, 2 bad usage or configuration,
3 internal or infrastructure error, 130 interrupted.
"""

from __future__ import annotations

import os

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class GgenError(Exception):
    """Base of every error ggen reports to a user without a traceback."""

    exit_code = EXIT_INTERNAL


class ConfigError(GgenError):
    """A make.toml that cannot be used: syntax, unknown key, wrong type, bad reference.

    ``file`` is the path of the file, ``key`` the dotted key path (``lifecycle.build.commands[2]``),
    ``line``/``column`` are set for TOML syntax errors, ``hint`` says what would fix it.
    """

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.key = key
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file or "make.toml"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: "
        if self.key:
            text += f"{self.key}: "
        text += self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        # keyword-only arguments do not survive the default pickling of exceptions
        return (
            _rebuild_config_error,
            (self.message, self.file, self.key, self.line, self.column, self.hint),
        )


def _rebuild_config_error(
    message: str,
    file: str | None,
    key: str | None,
    line: int | None,
    column: int | None,
    hint: str | None,
) -> ConfigError:
    return ConfigError(message, file=file, key=key, line=line, column=column, hint=hint)


class UsageError(GgenError):
    """Bad command-line usage: unknown phase or workspace, conflicting flags."""

    exit_code = EXIT_USAGE


class CycleError(ConfigError):
    """The task graph has a cycle; the message prints it (``build -> test -> build``)."""


class InternalError(GgenError):
    """A failure of ggen's own machinery or of the infrastructure it relies on."""

    exit_code = EXIT_INTERNAL


class LockBusyError(GgenError):
    """Another ggen process holds the project's lock and ``--no-wait`` was given."""

    exit_code = EXIT_USAGE


class WriteError(GgenError, OSError):
    """A file ggen must write cannot be written (a read-only ``.ggen``, a full disk): an
    infrastructure error, exit 3, whose message names the file (``cannot write PATH: reason``),
    which the OSError of a full disk does not. Still an OSError, for code that expects one."""

    exit_code = EXIT_INTERNAL

    def __init__(self, path: str | os.PathLike[str], reason: OSError | str) -> None:
        errno = reason.errno if isinstance(reason, OSError) else None
        text = (reason.strerror or str(reason)) if isinstance(reason, OSError) else reason
        OSError.__init__(self, errno, text, os.fspath(path))

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"

    def __reduce__(self) -> tuple[object, ...]:
        # rebuilt from (path, reason) when it crosses to the scheduling process
        return (WriteError, (self.filename, OSError(self.errno, self.strerror)))
