"""Rule-file YAML as deid writes it (scan's drafts, lint's paste blocks): keys and values that read back as
exactly what was meant, whatever the name (`on`, `yes`, `a:b`, `#x`, leading blanks)."""

from __future__ import annotations

import re
from typing import Any

import yaml


def scalar(text: str) -> str:
    """A string as a YAML key or value that reads back as exactly that string."""
    dumped = yaml.safe_dump([text], default_flow_style=True, width=10**6, allow_unicode=True).strip()
    return dumped[1:-1]


def flow(rule: Any) -> str:
    """A column rule on one line: `keep`, or a flow mapping."""
    if rule == "keep":
        return "keep"
    return yaml.safe_dump(
        rule, default_flow_style=True, width=10**6, sort_keys=False, allow_unicode=True
    ).strip()


def comment(text: str) -> str:
    """One line of printable text, whatever a name or document key holds."""
    return re.sub(r"[^\x20-\x7e]", "?", text)
