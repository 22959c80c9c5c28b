"""The README's quick-start block as a newcomer runs it: a fresh clone of the committed HEAD, an environment
holding nothing but PATH=/usr/local/bin:/usr/bin:/bin (no venv, no DEID_ variable), each line of the block in
turn in the clone's folder; every one must succeed and print what it is there to show.

Besides PATH the environment carries HOME and UV_CACHE_DIR, so that `./dev` installs from the packages this
machine already downloaded instead of fetching about 1 GB again, and, when this machine sets them, the
variables that let its tools reach the package index (a proxy and its certificates). The demo's embedded
server wants port 54329, which a developer's demo may hold; the test holds it itself when it is free, so
the fresh clone's server always takes another one, and the CLI must find that one through deid.env.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from deid.backends.postgresql.demo import DEMO_PORT, EMBEDDED_FOLDER, embedded
from deid.demo.local_airflow import DEMO_SALT
from tests.conftest import ROOT

BLOCK = re.compile(r"<!-- quick-start -->\n```sh\n(?P<lines>.*?)```\n<!-- /quick-start -->", re.S)
PATH = "/usr/local/bin:/usr/bin:/bin"
# this machine's way out to the package index, when it has one (none is a setting of deid's)
NETWORK = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY",
           "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")  # fmt: skip
TODAY = dt.datetime.now(dt.UTC).date().isoformat()
# What each line of the block must print (stdout and stderr together), by the command without its comment.
# A line of the block missing here fails the test: a new line in the README needs its check.
EXPECTED = {
    "./dev demo": [r"published learners_staging", r"deid\.env holds the demo's connections and salt"],
    ".venv/bin/deid status learners": [rf"^published  learners_staging .* date {TODAY} "],
    ".venv/bin/deid plan learners --no-sql": [r"public\.learners", r"email"],
    ".venv/bin/deid run learners --date 2026-01-01": [r"kept"],
    ".venv/bin/deid history learners": [rf"(?m)^{TODAY} +published learners_staging", r"(?m)^2026-01-01 "],
    ".venv/bin/deid rollback learners": [r"learners_staging is now the copy of 2026-01-01"],
}


def quickstart(readme: str) -> list[str]:
    """The commands of the README's quick-start block, without their comments."""
    found = BLOCK.search(readme)
    assert found, "README.md has no block between <!-- quick-start --> and <!-- /quick-start -->"
    lines = [line.split("#", 1)[0].strip() for line in found["lines"].splitlines()]
    return [line for line in lines if line]


def test_the_readme_has_a_quick_start_block_whose_every_line_is_checked():
    commands = quickstart((ROOT / "README.md").read_text())
    assert commands[0] == "./dev demo" and set(commands) == set(EXPECTED)


def _clean_environment(home: Path) -> dict[str, str]:
    cache = os.environ.get("UV_CACHE_DIR") or str(Path(os.environ.get("HOME", home)) / ".cache" / "uv")
    return {
        "PATH": PATH,
        "HOME": os.environ.get("HOME", str(home)),
        "UV_CACHE_DIR": cache,
        **{name: os.environ[name] for name in NETWORK if name in os.environ},
    }


def _hold(port: int) -> socket.socket | None:
    """Listen on 127.0.0.1:port, if it is free, so that nothing else can."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", port))
    except OSError:
        holder.close()
        return None  # another program holds it already: as good
    holder.listen()
    return holder


@pytest.mark.slow
def test_every_line_of_the_quick_start_succeeds_on_a_fresh_clone_with_only_path_set(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    # Under .cache, not pytest's tmp_path: as root the clone's server runs as its own user, which must reach
    # its data folder, and every pytest session on the machine resets pytest's temporary root to mode 0700.
    clone = Path(tempfile.mkdtemp(prefix="test-quickstart-", dir=ROOT / ".cache")) / "deid"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    env = _clean_environment(tmp_path)
    holder = _hold(DEMO_PORT)
    try:
        outputs = {}
        for command in quickstart((clone / "README.md").read_text()):
            result = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=clone,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=900,
            )
            shown = result.stdout + result.stderr
            assert result.returncode == 0, f"$ {command}\n{shown[-4000:]}"
            for pattern in EXPECTED[command]:
                assert re.search(pattern, shown, re.M), f"$ {command}: no {pattern!r} in\n{shown[-4000:]}"
            assert DEMO_SALT not in shown, f"$ {command} printed the salt"
            outputs[command] = shown

        # the server took another port than the held one, and deid.env (the owner's only) says which
        settings = clone / "deid.env"
        port = int((clone / ".cache" / EMBEDDED_FOLDER / embedded.PORT_FILE).read_text())
        assert port != DEMO_PORT and f"@127.0.0.1:{port}/" in settings.read_text()
        assert settings.stat().st_mode & 0o777 == 0o600
        assert f"127.0.0.1:{port}" in outputs["./dev demo"]
        status = subprocess.run(
            [".venv/bin/deid", "status", "learners"], cwd=clone, env=env, capture_output=True, text=True
        )
        assert status.returncode == 0 and "date 2026-01-01" in status.stdout.splitlines()[0], status
    finally:
        if holder:
            holder.close()
        data = clone / ".cache" / EMBEDDED_FOLDER
        if (data / "postmaster.pid").exists():
            embedded.start(data).stop()
        shutil.rmtree(clone.parent, ignore_errors=True)  # its .venv is about 1 GB
