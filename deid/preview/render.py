"""The preview for a terminal: per row, column by column, `column | before | after | rule`.

Values are cut to a width (the end replaced by `…`) and control characters shown escaped, so one long or
multi-line value cannot push the others off the screen. NULL is shown as <NULL>, apart from any text.
"""

from __future__ import annotations

from deid.preview.build import Preview

WIDTH = 36
NULL = "<NULL>"
_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def cell(value: str | None, width: int = WIDTH) -> str:
    if value is None:
        return NULL
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in value.translate(_ESCAPES))
    return text if len(text) <= width else text[: width - 1] + "…"


def render(preview: Preview, width: int = WIDTH) -> str:
    """The whole preview as text (for standard output only)."""
    out = [
        f"deid preview of {preview.table} in {preview.database}: "
        f"{len(preview.rows)} row(s), {preview.order}.",
        "PRODUCTION VALUES BELOW: do not copy them anywhere. '=' kept and unchanged, '*' changed, "
        "'!' rewritten to the same value.",
    ]
    out += [f"note: {n}" for n in preview.notes]
    name_width = max([len(c) for c in preview.columns] + [len("column")])
    total = len(preview.rows)
    for number, row in enumerate(preview.rows, 1):
        out.append("")
        what = " (static test data: kept intact)" if row.static else ""
        if row.after is None:
            what = " (removed: the table is copied without rows)"
        out.append(f"row {number} of {total}{what}")
        out.append(f"    {'column':<{name_width}} | {'before':<{width}} | {'after':<{width}} | rule")
        for i, column in enumerate(preview.columns):
            before = row.before[i]
            after = None if row.after is None else row.after[i]
            mark = " " if row.after is None else _mark(before, after, preview.kept[i] or row.static)
            shown_after = "(no row)" if row.after is None else cell(after, width)
            out.append(
                f"  {mark} {column:<{name_width}} | {cell(before, width):<{width}} | "
                f"{shown_after:<{width}} | {preview.rules[i]}"
            )
    if not preview.rows:
        out.append("")
        out.append("(the table has no rows)")
    return "\n".join(out)


def _mark(before: str | None, after: str | None, kept: bool) -> str:
    if before != after:
        return "*"
    return "=" if kept else "!"
