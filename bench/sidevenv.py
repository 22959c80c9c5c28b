"""Side environments for benchmark rows that need a package deid does not depend on (DuckDB, pynonymizer).

Each lives in bench/.cache/<name>-venv (ignored by git), made with this Python's version, by uv where one
is found (this checkout's or the one .venv was made by, then PATH), else by `python -m venv` and pip. A
file in the venv records what was installed, so a second run reuses it as it is.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.servers import ROOT

CACHE = ROOT / "bench" / ".cache"
MARKER = "deid-bench-requirements.txt"


def _uv() -> str | None:
    for candidate in (
        ROOT / ".cache" / "uv" / "bin" / "uv",
        Path(sys.prefix).parent / ".cache" / "uv" / "bin" / "uv",  # the checkout whose .venv runs this
    ):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("uv")


def ensure(name: str, requirements: list[str], report=print) -> Path:
    """The python of bench/.cache/<name>-venv with `requirements` installed (from wheels only)."""
    venv = CACHE / f"{name}-venv"
    python = venv / "bin" / "python"
    wanted = "\n".join(requirements) + "\n"
    marker = venv / MARKER
    if python.is_file() and marker.is_file() and marker.read_text() == wanted:
        return python
    report(f"side environment {venv.relative_to(ROOT)}: installing {' '.join(requirements)}")
    shutil.rmtree(venv, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    uv = _uv()
    if uv:
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        install = [uv, "pip", "install", "--quiet", "--python", str(python), "--only-binary", ":all:"]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = [str(python), "-m", "pip", "install", "--quiet", "--only-binary", ":all:"]
    subprocess.run([*install, *requirements], check=True)
    marker.write_text(wanted)
    return python


def installed(python: Path, package: str) -> str | None:
    """The version of `package` in the side environment of `python`."""
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None
