"""File names as text that any JSON encoder takes, and back.

Python hands file names that are not valid UTF-8 (any byte string without "/" or NUL is a valid
name on Linux) as ``str`` holding lone surrogates (PEP 383), which UTF-8 encoders such as orjson
refuse. Where such a name must be written to JSON (the digest memo, key recipes in the state),
``portable`` turns it into the hex of its bytes after a marker that no other string begins
with, and ``unportable`` undoes it; every other string is kept as it is, so the common case
costs one check. ``shown`` is the form for messages: invalid bytes as ``\\xNN``.
"""

from __future__ import annotations

import os

MARK = "\x00bytes:"


def portable(text: str) -> str:
    """``text`` if UTF-8 can encode it (and it does not begin with ``MARK``), else ``MARK``
    followed by the hex of its file-system bytes."""
    if text.isascii() and not text.startswith(MARK):
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return MARK + os.fsencode(text).hex()
    return MARK + os.fsencode(text).hex() if text.startswith(MARK) else text


def unportable(text: str) -> str:
    """The inverse of ``portable``; raises ValueError on a marked string that is not hex."""
    if not text.startswith(MARK):
        return text
    return os.fsdecode(bytes.fromhex(text[len(MARK) :]))


def shown(text: str) -> str:
    """``text`` printable on any UTF-8 stream: bytes that are not UTF-8 as ``\\xNN``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    return text
