"""Validation of the working copy with Great Expectations suites built from the rules, plus leak checks.

`validate_with_expectations` (gate.py) runs everything and returns a Report; `raise_on_failure` turns a
failed Report into a TerminalError. Results carry names and counts, never values.
"""

from deid.expect.gate import validate_with_expectations
from deid.expect.report import Outcome, Report, raise_on_failure
from deid.expect.settings import Settings

__all__ = ["Outcome", "Report", "Settings", "raise_on_failure", "validate_with_expectations"]
