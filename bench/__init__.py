"""The benchmarking harness of ggen.

It generates synthetic monorepos (``bench.generate``), runs ggen and its peers (turbo, go-task,
doit, GNU make) through the same scenarios on identical trees (``bench.scenarios``), measures a
few micro figures (``bench.micro``) and writes the results as JSON and a markdown table
(``bench.report``). Run it from the repository root with ``python -m bench``.
"""

from __future__ import annotations
