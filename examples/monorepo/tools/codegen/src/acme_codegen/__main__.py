"""Command line: ``python3 -m acme_codegen SCHEMA_DIR OUT_DIR``.

Writes one module per SCHEMA_DIR/*.json into OUT_DIR, after emptying OUT_DIR so that a
removed schema leaves no stale module behind. Without SCHEMA_DIR there is nothing to do.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from acme_codegen import SchemaError, generate


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 -m acme_codegen SCHEMA_DIR OUT_DIR", file=sys.stderr)
        return 2
    schema_dir, out_dir = Path(argv[0]), Path(argv[1])
    shutil.rmtree(out_dir, ignore_errors=True)
    schemas = sorted(schema_dir.glob("*.json"))
    if not schemas:
        print(f"codegen: no {schema_dir}/*.json here, nothing to generate")
        return 0
    modules: dict[str, str] = {}
    for path in schemas:
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
            source = generate(schema, path.as_posix())
        except json.JSONDecodeError as exc:
            print(f"codegen: {path}: invalid JSON: {exc}", file=sys.stderr)
            return 1
        except SchemaError as exc:
            print(f"codegen: {exc}", file=sys.stderr)
            return 1
        if schema["module"] in modules:
            first = modules[schema["module"]]
            print(f"codegen: {path} and {first} both define {schema['module']}", file=sys.stderr)
            return 1
        modules[schema["module"]] = path.as_posix()
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{schema['module']}.py"
        target.write_text(source, encoding="utf-8")
        counts = f"{len(schema.get('enums', {}))} enums, {len(schema.get('records', {}))} records"
        print(f"codegen: {path} -> {target} ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
