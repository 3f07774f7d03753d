"""Build the workspace in the current directory: stage, byte-compile, bundle, describe.

Reads   pyproject.toml, src/, gen/ (written by the codegen phase), config/shared.toml, and
        the dist/manifest.json of every workspace dependency ([tool.acme.sources]).
Writes  build/lib/        the staged package tree, byte-compiled (hash-based .pyc)
        build/pythonpath  the PYTHONPATH the test phase uses: sources + dependencies' bundles
        dist/<name>-<version>.zip, dist/manifest.json, and dist/site/ when
        [tool.acme.build] site names a render function.
Equal inputs give byte-identical outputs: sorted entries, zip times from SOURCE_DATE_EPOCH,
hash-based .pyc, paths relative to the project root only.
"""

from __future__ import annotations

import hashlib
import json
import os
import py_compile
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import tomllib

SOURCE_DIRS = ("src", "gen")


class BuildError(Exception):
    """A problem the user can fix; printed without a traceback."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def project_root() -> Path:
    """The monorepo root, as ggen passes it to every command."""
    root = os.environ.get("GGEN_PROJECT_ROOT")
    if not root:
        raise BuildError("GGEN_PROJECT_ROOT is not set: run this through `ggen run build`")
    return Path(root).resolve()


def zip_time() -> tuple[int, int, int, int, int, int]:
    """The time stamped on every zip entry: SOURCE_DATE_EPOCH, never the clock."""
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    stamp = time.gmtime(max(epoch, 315532800))  # zip cannot hold dates before 1980
    return (stamp.tm_year, stamp.tm_mon, stamp.tm_mday, stamp.tm_hour, stamp.tm_min, stamp.tm_sec)


def stage(lib: Path) -> list[str]:
    """Copy src/ and gen/ into build/lib; return the staged files, sorted, posix-relative."""
    staged: dict[str, Path] = {}
    for top in SOURCE_DIRS:
        for path in sorted(Path(top).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(top).as_posix()
            if rel in staged:
                raise BuildError(f"{path} and {staged[rel]} would both be bundled as {rel}")
            staged[rel] = path
    if not any(rel.endswith(".py") for rel in staged):
        raise BuildError("no Python module under src/ or gen/")
    for rel, path in staged.items():
        target = lib / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return sorted(staged)


def byte_compile(lib: Path, files: list[str]) -> None:
    """Compile every module (a syntax check) into hash-based, path-independent .pyc files."""
    for rel in files:
        if not rel.endswith(".py"):
            continue
        try:
            py_compile.compile(
                str(lib / rel),
                dfile=rel,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )
        except py_compile.PyCompileError as exc:
            raise BuildError(f"cannot compile {rel}: {exc.msg.strip()}") from None


def dependencies(meta: dict, here: Path, root: Path) -> list[dict]:
    """The manifests of the workspace dependencies, in the order pyproject.toml lists them."""
    sources = meta.get("tool", {}).get("acme", {}).get("sources", {})
    manifests = []
    for name in meta["project"].get("dependencies", []):
        if name not in sources:
            raise BuildError(f"dependency {name!r} has no path in [tool.acme.sources]")
        manifest = (here / sources[name]).resolve() / "dist" / "manifest.json"
        shown = manifest.relative_to(root).as_posix()
        if not manifest.is_file():
            raise BuildError(
                f"{name} is not built: {shown} is missing"
                ' (make.toml builds dependencies first with depends_on = ["^build"])'
            )
        data = json.loads(manifest.read_text(encoding="utf-8"))
        if data["name"] != name:
            raise BuildError(f"{shown} describes {data['name']!r}, not {name!r}")
        manifests.append(data)
    return manifests


def metadata(project: dict, license_name: str) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}"]
    if "description" in project:
        lines.append(f"Summary: {project['description']}")
    lines.append(f"License: {license_name}")
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    return ("\n".join(lines) + "\n").encode()


def bundle(path: Path, lib: Path, files: list[str], extra: dict[str, bytes], level: int) -> None:
    """Write a zip whose bytes depend only on the files' names and contents."""
    stamp = zip_time()
    entries = {rel: (lib / rel).read_bytes() for rel in files} | extra
    with zipfile.ZipFile(path, "w") as archive:
        for rel in sorted(entries):
            info = zipfile.ZipInfo(rel, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[rel], compresslevel=level)


def render_site(target: str, pythonpath: list[Path], out: Path) -> int:
    """Call ``module:function(out_dir)`` from the bundles, so the site is made from them."""
    module, _, function = target.partition(":")
    code = f"import sys, {module} as m; m.{function}(sys.argv[1])"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath))
    subprocess.run([sys.executable, "-c", code, str(out)], env=env, check=True)
    return sum(1 for p in out.rglob("*") if p.is_file())


def build() -> str:
    """Build the current workspace; return the one-line summary to print."""
    root = project_root()
    here = Path.cwd().resolve()
    config = tomllib.loads((root / "config/shared.toml").read_text(encoding="utf-8"))["build"]
    meta = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    name, version = project["name"], project["version"]
    deps = dependencies(meta, here, root)

    for out in ("build", "dist"):
        shutil.rmtree(out, ignore_errors=True)
    lib = Path("build/lib")
    lib.mkdir(parents=True)
    Path("dist").mkdir()
    files = stage(lib)
    byte_compile(lib, files)

    stem = f"{name.replace('-', '_')}-{version}"
    archive = Path("dist") / f"{stem}.zip"
    extra = {f"{stem}.dist-info/METADATA": metadata(project, config["license"])}
    bundle(archive, lib, files, extra, config["compresslevel"])
    digest = sha256(archive.read_bytes())

    # Root-relative bundle paths: ours first, then every dependency's (transitively), once each.
    closure: list[str] = []
    for dep in deps:
        closure += [p for p in dep["pythonpath"] if p not in closure]
    own = (here / archive).relative_to(root).as_posix()
    manifest = {
        "name": name,
        "version": version,
        "path": here.relative_to(root).as_posix(),
        "bundle": archive.name,
        "sha256": digest,
        "files": {rel: sha256((lib / rel).read_bytes()) for rel in files},
        "requires": {d["name"]: {"version": d["version"], "sha256": d["sha256"]} for d in deps},
        "pythonpath": [own, *closure],
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    Path("dist/manifest.json").write_text(text, encoding="utf-8")

    test_path = [*SOURCE_DIRS, *(os.path.relpath(root / p, here) for p in closure)]
    Path("build/pythonpath").write_text(os.pathsep.join(test_path) + "\n", encoding="utf-8")

    summary = f"built {name} {version}: {len(files)} files, {archive} ({archive.stat().st_size} B"
    summary += f", sha256 {digest[:12]})"
    site = meta.get("tool", {}).get("acme", {}).get("build", {}).get("site")
    if site:
        pages = render_site(site, [root / p for p in manifest["pythonpath"]], Path("dist/site"))
        summary += f", {pages} pages in dist/site"
    return summary


def main() -> int:
    try:
        print(build())
    except BuildError as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"build: rendering the site failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
