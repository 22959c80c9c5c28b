"""The demo's embedded PostgreSQL: a port that stays the same from one start to the next (a free one,
remembered, only when another program holds it), and, as root, useradd found where Debian and others put it
or its absence said in one line with exit 3."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid

import pytest

from deid.backends.postgresql.demo import embedded
from deid.errors import ConfigError
from tests.conftest import ROOT


@pytest.fixture
def datadir():
    """A data folder of its own, under .cache (the server's own user must reach it); stopped and removed."""
    path = ROOT / ".cache" / f"test-port-{uuid.uuid4().hex[:8]}"
    yield path
    if (path / "postmaster.pid").exists():
        embedded.start(path).stop()
    shutil.rmtree(path, ignore_errors=True)


def _listening() -> socket.socket:
    """Another program holding a port of 127.0.0.1."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


def test_the_server_keeps_its_port_and_takes_a_free_one_only_when_another_holds_it(datadir):
    holder = _listening()
    preferred = holder.getsockname()[1]
    try:
        first = embedded.start(datadir, prefer=preferred)
        assert first.port != preferred  # taken: a free one
        assert (datadir / embedded.PORT_FILE).read_text() == f"{first.port}\n"
        first.stop()
    finally:
        holder.close()
    assert embedded.start(datadir, prefer=preferred).port == first.port  # remembered, though free again
    assert embedded.start(datadir, prefer=preferred).port == first.port  # running: found, not restarted
    embedded.start(datadir).stop()
    (datadir / embedded.PORT_FILE).unlink()
    again = embedded.start(datadir, prefer=preferred)
    assert again.port == preferred  # the preferred port when it is free
    assert (datadir / embedded.PORT_FILE).read_text() == f"{preferred}\n"


def test_useradd_is_found_in_the_sbin_folders_when_path_lacks_them(tmp_path):
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    tool = sbin / "useradd"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert embedded.find_useradd(path="/usr/bin:/bin", sbin=(str(sbin),)) == str(tool)
    if os.path.exists("/usr/sbin/useradd"):  # this machine's own: Debian's place
        assert embedded.find_useradd(path="/usr/bin:/bin") == "/usr/sbin/useradd"
    with pytest.raises(ConfigError) as caught:
        embedded.find_useradd(path=str(tmp_path / "empty"), sbin=(str(tmp_path / "none"),))
    assert "useradd, which would create it, is neither on PATH nor in" in str(caught.value)
    assert "apt-get install passwd" in str(caught.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root starts the server as another user")
@pytest.mark.parametrize("entry", ["demo", "airflow"])
def test_as_root_without_useradd_the_demo_says_what_is_missing_and_exits_3(tmp_path, entry):
    """The demo and ./dev airflow themselves, as root, for a server user that does not exist and no useradd
    anywhere."""
    module = {"demo": "deid.demo.__main__", "airflow": "deid.demo.local_airflow"}[entry]
    script = (
        "import sys\n"
        "from deid.backends.postgresql.demo import embedded\n"
        f"embedded.SERVER_USER = 'deid_no_user_{uuid.uuid4().hex[:8]}'\n"
        "embedded.SBIN = ()\n"
        f"from {module} import main\n"
        f"sys.exit(main(['--data', {str(tmp_path / 'data')!r}]))\n"
    )
    env = {**os.environ, "PATH": str(tmp_path / "bin")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.startswith(f"{entry}: the embedded PostgreSQL does not run as root, so deid runs it")
    assert "Install it (Debian/Ubuntu: apt-get install passwd" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "data").exists()
