"""Great Expectations, imported without the two libraries that only an expectation deid never uses needs.

Importing GX imports every expectation it ships. One of them, expect_column_kl_divergence_to_be_less_than,
imports scipy.stats and altair at module level and uses them only inside its methods. Those two cost 90 MiB
of the validating process's memory and a third of GX's import time (9 s on the 2-core CI machine). So they are
imported lazily while GX is imported, with the standard library's LazyLoader: the modules exist, and each one
runs in full on first attribute access. Nothing is stubbed. Any code that does use them gets the real
modules, merely later (tests/test_gx_import.py calls the expectation's scipy and altair through GX).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import sys
import threading
from types import ModuleType

DEFERRED = frozenset({"scipy.stats", "altair"})
_lock = threading.Lock()


class _LazyFinder(importlib.abc.MetaPathFinder):
    """Finds the modules in `names` as the other finders would, with a loader that defers running them."""

    def __init__(self, names: frozenset[str]):
        self.names = names

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.names:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def great_expectations() -> ModuleType:
    """The `great_expectations` package, imported once per process with DEFERRED loaded lazily."""
    with _lock:  # the finder must not outlive this import, nor see another thread's
        if "great_expectations" not in sys.modules:
            finder = _LazyFinder(DEFERRED)
            sys.meta_path.insert(0, finder)
            try:
                import great_expectations  # noqa: F401
            finally:
                sys.meta_path.remove(finder)
    return sys.modules["great_expectations"]


def in_background() -> threading.Thread:
    """Start importing GX on a daemon thread (`great_expectations()` then waits for it, or imports it itself
    if it failed). A run starts it once the scrub has transformed its last rows: about 4 s of one core spent
    while the process waits on the server's index builds, instead of at the start of validate."""

    def quietly() -> None:
        with contextlib.suppress(Exception):  # validate imports it again and reports what fails
            great_expectations()

    thread = threading.Thread(target=quietly, name="deid-import-gx", daemon=True)
    thread.start()
    return thread
