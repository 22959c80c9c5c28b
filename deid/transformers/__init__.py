"""The transformer registry: every transformer deid knows, by name, each a definition and its vector form
(base.py says what they are). An engine's SQL forms live with its backend, keyed by these names.

The list is explicit (no registration by import side effect): a transformer exists when it is in a module's
TRANSFORMERS tuple and that tuple is listed here.
"""

from __future__ import annotations

from deid.errors import TerminalError
from deid.suggest import did_you_mean
from deid.transformers import basic, dates, fake, hashing, masking, numeric, structured
from deid.transformers.base import Transformer

TRANSFORMERS: tuple[Transformer, ...] = (
    *basic.TRANSFORMERS,
    *masking.TRANSFORMERS,
    *hashing.TRANSFORMERS,
    *fake.TRANSFORMERS,
    *dates.TRANSFORMERS,
    *numeric.TRANSFORMERS,
    *structured.TRANSFORMERS,
)
_BY_NAME = {t.name: t for t in TRANSFORMERS}
assert len(_BY_NAME) == len(TRANSFORMERS), "two transformers share a name"


class UnknownTransformer(TerminalError):
    """A rule names a transformer that does not exist."""

    def __init__(self, name: str):
        super().__init__(f"Unknown transformer '{name}'.{did_you_mean(name, _BY_NAME)}")
        self.name = name


def get(name: str) -> Transformer:
    """The transformer called `name`; UnknownTransformer (with a suggestion) when there is none."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise UnknownTransformer(str(name)) from None


def all_transformers() -> tuple[Transformer, ...]:
    """Every transformer, sorted by name."""
    return tuple(sorted(TRANSFORMERS, key=lambda t: t.name))
