"""Load the compiled kernels ahead of the scrub, on a thread of their own.

numba's first call in a process costs one to three seconds even when every kernel is cached on disk (its
compiler and LLVM are set up then). A run starts this while its snapshot waits on the database, so the
scrub finds the kernels ready; a kernel's own first call then costs milliseconds.
"""

from __future__ import annotations

import contextlib
import threading


def load() -> None:
    """Load the kernels (and pyarrow's lazy imports) now, in this thread."""
    import pyarrow as pa

    from deid.vector import digest64, prf

    key = prf.Key.for_salt("warm-up: not a salt")
    prf.hexes(key, "warm", pa.array(["a", None]))
    digest64.digests(pa.array(["a"]), 1)


def in_background() -> threading.Thread:
    """Start loading the kernels on a daemon thread (it never outlives the process, nor fails the run)."""

    def quietly() -> None:
        with contextlib.suppress(Exception):  # the scrub loads them again and reports what fails
            load()

    thread = threading.Thread(target=quietly, name="deid-warm-kernels", daemon=True)
    thread.start()
    return thread
