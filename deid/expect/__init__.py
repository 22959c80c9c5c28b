"""Validation of the working copy with Great Expectations suites built from the rules, plus leak checks.

`validate_with_expectations` (gate.py) runs everything and returns a Report; `raise_on_failure` turns a
failed Report into a TerminalError. Results carry names and counts, never values.

The names below are imported on first use: the rule loader reads `deid.expect.waivable` (the list of
waivable checks), and linting a rule file must not pay for importing SQLAlchemy and Great Expectations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deid.expect.gate import validate_with_expectations
    from deid.expect.report import Outcome, Report, raise_on_failure
    from deid.expect.settings import Settings

__all__ = ["Outcome", "Report", "Settings", "raise_on_failure", "validate_with_expectations"]

_HOMES = {
    "validate_with_expectations": "deid.expect.gate",
    "Outcome": "deid.expect.report",
    "Report": "deid.expect.report",
    "raise_on_failure": "deid.expect.report",
    "Settings": "deid.expect.settings",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'deid.expect' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
