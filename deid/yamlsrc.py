"""YAML that remembers where everything came from: the one place deid reads YAML (rules, policies, deid.yaml).

Rule files are reviewed by people, so every error must point at a line. PyYAML's composed node tree carries
line marks; this module turns it into plain Python data plus a map from each path to its line, and reports
duplicate keys (which PyYAML would silently overwrite: a duplicated column rule must never be lost that way).
Before any of that, yamlcheck refuses what deid does not read (other encodings, anchors and aliases, tags,
deep nesting); whatever is wrong with a file is a Problem with its line, never an exception.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deid import yamlcheck
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
    digest: str = ""  # sha256 of the file's bytes, when it was read from a file (load)

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


MAX_BYTES = 4 * 1024 * 1024  # about 60,000 column rules, read in seconds; a larger file is not read at all


def load(path: Path | str, display: str | None = None) -> Source:
    """Read and parse a file. Whatever is wrong with it (unreadable, too big, not UTF-8, not deid's plain
    YAML) comes back as a problem of the Source, never as an exception."""
    file = display or str(path)
    try:
        with Path(path).open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        return _failed(file, Problem(file, 0, f"cannot read {file}: {_why(exc)}", _read_fix(exc)))
    if len(raw) > MAX_BYTES:
        return _failed(
            file,
            Problem(
                file,
                0,
                f"{file} is larger than {MAX_BYTES} bytes, the most deid reads",
                "check that it is the right file: a rule file of 60,000 columns takes 4 MB",
            ),
        )
    text, problems = yamlcheck.decode(raw, file)
    if text is None:
        return _failed(file, *problems)
    source = parse(text, file)
    source.digest = hashlib.sha256(raw).hexdigest()
    return source


def parse(text: str, file: str) -> Source:
    source = Source(file=file, data=None)
    try:
        refused = yamlcheck.refusals(text, file)
        node = None if refused else yaml.compose(text, Loader=yamlcheck.LOADER)
    except (yaml.YAMLError, UnicodeError) as exc:
        return _failed(file, _not_yaml(exc, text, file))
    if refused:
        return _failed(file, *refused)
    if node is None:
        source.data = {}
        source.lines[()] = 1
        return source
    source.data = _Builder(source).convert(node, ())
    return source


def _failed(file: str, *problems: Problem) -> Source:
    return Source(file=file, data=None, problems=list(problems))


def _not_yaml(exc: Exception, text: str, file: str) -> Problem:
    """The problem of text the parser refused, in the words of PyYAML's Python parser when it finds it too
    (it reads up to the first error only)."""
    if yamlcheck.WORDING_LOADER is not yamlcheck.LOADER:
        try:
            for _ in yaml.parse(text, Loader=yamlcheck.WORDING_LOADER):
                pass
        except yaml.YAMLError as worded:
            exc = worded
    if isinstance(exc, yaml.reader.ReaderError):
        return yamlcheck.reader_problem(exc, text, file)
    if not isinstance(exc, yaml.YAMLError):  # a lone surrogate, which only Python callers can pass
        return Problem(file, 1, "not valid text: it holds a lone UTF-16 surrogate", yamlcheck.SAVE_AS_UTF8)
    return _syntax_problem(exc, file)


def _syntax_problem(exc: yaml.YAMLError, file: str) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark else 1
    reason = getattr(exc, "problem", None) or str(exc)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark and context_mark.line + 1 != line:
        reason += f" ({context} that starts at line {context_mark.line + 1})"
    return Problem(file, line, f"not valid YAML: {reason}", "fix the YAML syntax")


def _why(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError):
        return "it is a folder"
    return (exc.strerror or type(exc).__name__).lower()


def _read_fix(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "check the path"
    if isinstance(exc, IsADirectoryError):
        return "name the YAML file, not its folder"
    if isinstance(exc, PermissionError):
        return "give the user that runs deid read access to it"
    return "check that the file exists and can be read"


_MERGE = "tag:yaml.org,2002:merge"
_KINDS = {"tag:yaml.org,2002:timestamp": "date", "tag:yaml.org,2002:int": "number"}


class _Builder:
    """Plain data from a composed node tree whose events passed yamlcheck: no aliases, no tags, bounded
    depth. One constructor per document builds the scalars (YAML 1.1's ints, floats, bools, nulls, dates)."""

    def __init__(self, source: Source):
        self.source = source
        self.constructor = yaml.constructor.SafeConstructor()

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        source = self.source
        source.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.key(key_node)
                if key is None:
                    continue
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
                out[key] = self.convert(value_node, (*path, key))
                source.lines[(*path, key)] = line
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self.scalar(node)
        if value is None and node.value in ("null", "Null", "NULL", "~"):
            source.explicit_nulls.add(path)
        return value

    def key(self, node: yaml.Node) -> str | None:
        """A key is a name, taken as written: YAML 1.1 would read `on`, `no`, `012` or `1_000` as true,
        false, 10 and 1000, and a rule for a column named so would silently name another one."""
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.ScalarNode):
            self.source.problems.append(
                Problem(
                    self.source.file,
                    line,
                    "a key must be a name, not a list or a mapping",
                    "write the key as plain text, e.g. email: fake.email",
                )
            )
            return None
        if node.tag == _MERGE:
            self.source.problems.append(
                Problem(self.source.file, line, "merge keys (<<) are not allowed", yamlcheck.NOT_REFERENCES)
            )
            return None
        return node.value

    def scalar(self, node: yaml.Node) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, OverflowError, yaml.YAMLError):
            # the resolver's patterns accept a few texts its constructor cannot build (2024-02-30, 0x_)
            kind = _KINDS.get(node.tag, "number")
            self.source.problems.append(
                Problem(
                    self.source.file,
                    node.start_mark.line + 1,
                    f"'{node.value[:40]}' is not a valid {kind}",
                    f"correct it, or quote it to write text: '{node.value[:40]}'",
                )
            )
            return None
