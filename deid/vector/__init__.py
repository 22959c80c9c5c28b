"""Vectorized building blocks of the transformers' vector forms: the keyed PRF over Arrow arrays (prf.py,
with its numba-compiled SHA-256 in sha256.py). No Python call per value anywhere in this package.

Values arrive and leave as canonical text (docs/canonical-text.md): every backend converts its engine's
text to that one form, so the same value keys the same way, and gives the same output, on every engine."""

from __future__ import annotations

import sys

import pyarrow as pa


class _WithheldPandas:
    """An import finder that refuses pandas, for the one call below."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is withheld from pyarrow's first look for it")
        return None


def _pyarrow_without_pandas() -> None:
    """pyarrow imports pandas (54 MB resident, about a sixth of the scrub's memory) the first time `pa.array`
    checks whether its argument is a pandas object, and remembers the answer. The vector forms never pass one,
    so its first look is answered "no pandas": the scrub runs without it. Anything that needs pandas later
    (Great Expectations in the validate step) imports it as usual; pyarrow's own conversions to pandas import
    it when called."""
    if "pandas" in sys.modules:
        return  # loaded already: nothing to save
    finder = _WithheldPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([None])
    finally:
        sys.meta_path.remove(finder)


_pyarrow_without_pandas()
