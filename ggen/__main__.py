from __future__ import annotations

from ggen.cli import main

main()
