"""`deid preview`: the checks first (who, where the output goes), then the rows, printed to stdout only."""

from __future__ import annotations

import sys

from deid.config import Config
from deid.preview.access import check_allowed, check_terminal


def preview(config: Config, args, stdout=None) -> int:
    stdout = stdout or sys.stdout
    # Who may, before any connection is opened: a refused person's command reads nothing.
    check_allowed(config.preview_access(args.database), args.database, config.file)
    check_terminal(_is_terminal(stdout), args.yes_show_production_values)
    from deid.preview.build import compute
    from deid.preview.render import render

    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    result = compute(config, args.database, args.table, args.rows, columns, config.settings())
    print(render(result), file=stdout)
    return 0


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
