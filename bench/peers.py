"""Install the peers into one folder: turbo (npm), go-task and doit (a virtual environment).

GNU make (and strace, for the "no-op reads no file" figure) come from the system's package
manager: when they are missing and we are root on a Debian-like system, they are installed with
apt-get. The folder's layout is what ``bench.tools`` looks for::

    DIR/node/node_modules/@turbo/linux-64/bin/turbo
    DIR/venv/bin/task
    DIR/venv/bin/doit
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

NPM_PACKAGES = ("turbo",)
PIP_PACKAGES = ("doit", "go-task-bin")
SYSTEM_PACKAGES = ("make", "strace")


def install_peers(dest: Path) -> list[str]:
    """Install the peers into ``dest`` (created); returns what was done, for the log.

    Raises ``subprocess.CalledProcessError`` when an installer fails.
    """
    dest.mkdir(parents=True, exist_ok=True)
    done: list[str] = []
    npm = shutil.which("npm")
    if npm is None:
        done.append("npm not found: turbo not installed")
    else:
        node = dest / "node"
        node.mkdir(exist_ok=True)
        if not (node / "package.json").exists():
            (node / "package.json").write_text('{"name": "bench-peers", "private": true}\n')
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(node), *NPM_PACKAGES],
            check=True,
        )
        done.append(f"npm install {' '.join(NPM_PACKAGES)} -> {node}")
    venv = dest / "venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PIP_PACKAGES], check=True
    )
    done.append(f"pip install {' '.join(PIP_PACKAGES)} -> {venv}")
    system = [pkg for pkg in SYSTEM_PACKAGES if shutil.which(pkg) is None]
    if system and shutil.which("apt-get") is not None and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *system], check=True, env=env)
        done.append(f"apt-get install {' '.join(system)}")
    elif system:
        done.append(f"not on PATH, install with the system package manager: {' '.join(system)}")
    return done
