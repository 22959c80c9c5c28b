"""YAML that remembers where everything came from.

Rule files are reviewed by people, so every error must point at a line. PyYAML's composed node tree carries
line marks; this module turns it into plain Python data plus a map from each path to its line, and reports
duplicate keys (which PyYAML would silently overwrite: a duplicated column rule must never be lost that way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deid.errors import Problem

PathKey = tuple[Any, ...]


@dataclass
class Source:
    """A parsed YAML document: its data, the line of every path, and problems found while reading it."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # Paths whose value was written as `null` or `~` (not left empty): in a rule file, `ssn: null` names
    # the null transformer, while `ssn:` with nothing after it is an unfinished rule.
    explicit_nulls: set[PathKey] = field(default_factory=set)

    def line(self, path: PathKey) -> int:
        """The line of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def problem(self, path: PathKey, message: str, fix: str = "") -> Problem:
        return Problem(self.file, self.line(path), message, fix)

    def unknown_keys(
        self, path: PathKey, data: dict, allowed: tuple[str, ...], where: str = ""
    ) -> list[Problem]:
        """A problem for each key of `data` not in `allowed`, with the closest allowed key suggested.

        Unknown keys are errors, never ignored: in a de-identification tool a misspelt key is a rule lost.
        """
        from deid.suggest import did_you_mean

        where = where or ".".join(str(p) for p in path) or "the top level"
        return [
            self.problem(
                (*path, key),
                f"unknown key '{key}' in {where}.{did_you_mean(str(key), allowed)}",
                f"allowed keys: {', '.join(allowed)}",
            )
            for key in data
            if key not in allowed
        ]


def load(path: Path | str, display: str | None = None) -> Source:
    path = Path(path)
    return parse(path.read_text(encoding="utf-8"), display or str(path))


def parse(text: str, file: str) -> Source:
    source = Source(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        reason = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark and context_mark.line + 1 != line:
            reason += f" ({context} that starts at line {context_mark.line + 1})"
        source.problems.append(Problem(file, line, f"not valid YAML: {reason}", "fix the YAML syntax"))
        return source
    if node is None:
        source.data = {}
        source.lines[()] = 1
        return source
    source.data = _convert(node, (), source)
    return source


def _convert(node: yaml.Node, path: PathKey, source: Source) -> Any:
    source.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            line = key_node.start_mark.line + 1
            if key in out:
                source.problems.append(
                    Problem(
                        source.file,
                        line,
                        f"'{key}' is defined twice (first at line {source.lines[(*path, key)]})",
                        "keep one definition and delete the other",
                    )
                )
                continue
            source.lines[(*path, key)] = line
            out[key] = _convert(value_node, (*path, key), source)
            source.lines[(*path, key)] = line
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), source) for i, item in enumerate(node.value)]
    value = _scalar(node)
    if value is None and node.value in ("null", "Null", "NULL", "~"):
        source.explicit_nulls.add(path)
    return value


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
