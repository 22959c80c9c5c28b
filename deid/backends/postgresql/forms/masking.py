"""The SQL forms of redact and generalize_zip."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deid.backends.postgresql.forms.sql import cast
from deid.backends.postgresql.quoting import quote_literal
from deid.transformers.base import Target
from deid.transformers.masking import BLANK, RESTRICTED_ZIP3

# ZIP5 or ZIP+4 (with or without the dash), surrounding blanks allowed; captures the ZIP3 unless restricted.
# Blanks are spelled out (BLANK): PostgreSQL's `\s` follows the database's locale (C.UTF-8 on glibc adds
# U+1680, U+2000-U+2006, U+2008-U+200A, U+2028, U+2029, U+205F and U+3000, other locales more or fewer).
_ZIP3 = f"^{BLANK}((?!{'|'.join(RESTRICTED_ZIP3)})[0-9]{{3}})[0-9]{{2}}(?:-?[0-9]{{4}})?{BLANK}$"


def _redact(target: Target, params: Mapping[str, Any]) -> str:
    v, start, end = target.value, params["keep_start"], params["keep_end"]
    mask = quote_literal(params["mask"])
    # a value no longer than what would be kept is masked whole: redact never reveals an entire value
    expression = (
        f"CASE WHEN length({v}) <= {start + end} THEN repeat({mask}, length({v})) "
        f"ELSE left({v}, {start}) || repeat({mask}, length({v}) - {start + end}) || right({v}, {end}) END"
    )
    return cast(expression, target.sql_type)


def _generalize_zip(target: Target, params: Mapping[str, Any]) -> str:
    v = target.value
    zip3 = f"coalesce(substring({v} from {quote_literal(_ZIP3)}), '000')"
    if params["pad"]:
        zip3 += " || '00'"
    return cast(f"CASE WHEN {v} IS NULL THEN NULL ELSE {zip3} END", target.sql_type)


FORMS = {"redact": _redact, "generalize_zip": _generalize_zip}
