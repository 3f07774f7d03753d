"""Check the toolchain before a run: python3 is recent enough and config/shared.toml parses.

Run once per run at the project root (make.toml: [hooks] before_all = ["check"]).
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

CONFIG = Path("config/shared.toml")


def main() -> int:
    """Print what was checked; return 1 with the reason when something is missing."""
    if sys.version_info < (3, 11):
        found = ".".join(map(str, sys.version_info[:3]))
        print(f"check: python3 is {found}; the tools need 3.11 or newer (tomllib)", file=sys.stderr)
        return 1
    import tomllib

    try:
        config = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        print(f"check: cannot read {CONFIG}: {exc}", file=sys.stderr)
        return 1
    required = tuple(int(part) for part in config["python"]["requires"].split("."))
    if sys.version_info[: len(required)] < required:
        wanted, found = config["python"]["requires"], sys.version.split()[0]
        print(f"check: {CONFIG} requires python {wanted}, found {found}", file=sys.stderr)
        return 1
    print(f"check: python {sys.version.split()[0]}, zlib {zlib.ZLIB_VERSION}, {CONFIG} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
