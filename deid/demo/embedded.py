"""The embedded server the tests start moved to the default engine's demo package
(deid.backends.<engine>.demo.embedded). This name forwards to it until the last test that imports it from
here (tests/test_cow_clone.py) imports it from there; then delete this file."""

from __future__ import annotations

import importlib

from deid.backends import DEFAULT_ENGINE

_moved = importlib.import_module(f"deid.backends.{DEFAULT_ENGINE}.demo.embedded")


def __getattr__(name: str):
    return getattr(_moved, name)
