"""Deploy the workspace in the current directory, as a dry run: verify the bundle, print the plan.

Reads dist/manifest.json (written by the build phase) and checks the bundle against its
digest. DEPLOY_TARGET names the environment (default: staging). Nothing is uploaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path


def main() -> int:
    manifest_path = Path("dist/manifest.json")
    if not manifest_path.is_file():
        print("deploy: dist/manifest.json is missing: run the build phase first", file=sys.stderr)
        return 1
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    bundle = manifest_path.parent / manifest["bundle"]
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    if digest != manifest["sha256"]:
        print(f"deploy: {bundle} does not match dist/manifest.json", file=sys.stderr)
        return 1
    target = os.environ.get("DEPLOY_TARGET", "staging")
    print(f"deploy (dry run): {manifest['name']} {manifest['version']} to {target}")
    for entry in manifest["pythonpath"]:
        print(f"  would upload {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
