"""deid.env: connections and secrets for the CLI, in a file beside deid.yaml, read where the environment
lacks them.

`./dev demo` writes one beside the deid.yaml it runs with, so that `deid status learners` and the other
commands find the demo's server and salt with nothing exported. Elsewhere it is optional: a deployment
that sets DEID_CONN_<NAME> / DEID_SECRET_<NAME> in the environment needs none, and the environment wins
over the file. $DEID_ENV_FILE names another file, or none when empty (the test suite sets it empty, so that
a developer's demo never answers for a setting a test left unset).

The format is the environment's: `DEID_CONN_<NAME>=value` and `DEID_SECRET_<NAME>=value` lines, `#`
comments and blank lines; a value is everything after the first `=`, taken literally (no quotes, no `$`).
The file may hold a salt, so it must be readable by its owner only (mode 0600), as ssh requires of its keys.
Errors name the file and line, never a value.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from deid.errors import ConfigError

NAME = "deid.env"
PREFIXES = ("DEID_CONN_", "DEID_SECRET_")
LINE = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)")


def beside(root: Path) -> Path | None:
    """The env file for a deid.yaml in the folder `root`: $DEID_ENV_FILE if set (None when empty), else
    deid.env in that folder."""
    chosen = os.environ.get("DEID_ENV_FILE")
    if chosen is not None:
        return Path(chosen) if chosen else None
    return root / NAME


def read(path: Path) -> dict[str, str]:
    """The file's settings; {} when it does not exist."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} may hold secrets and others can read it (mode {stat.S_IMODE(mode):04o}): "
            f"chmod 600 {path}"
        )
    settings = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        found = LINE.fullmatch(line)
        if not found:
            raise ConfigError(f"{path}:{number}: not a NAME=value line: write DEID_CONN_<NAME>=URL")
        key = found["key"]
        if not key.startswith(PREFIXES):
            raise ConfigError(
                f"{path}:{number}: {key} is neither a connection (DEID_CONN_<NAME>) nor a secret "
                "(DEID_SECRET_<NAME>): rename it or remove the line"
            )
        settings[key] = found["value"]
    return settings


def write(path: Path, settings: dict[str, str], comment: str) -> None:
    """Write `settings` to `path`, readable by its owner only from the first byte (the salt may be there)."""
    text = "".join(f"# {line}\n" for line in comment.splitlines())
    text += "".join(f"{key}={value}\n" for key, value in settings.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file of wider mode keeps its mode through O_TRUNC
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
