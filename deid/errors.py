"""The two kinds of failure deid knows, and the errors users see.

*Terminal* errors (a bad rule, an unclassified column, a failed check) are fixed by a person, so retrying is
pointless; *transient* ones (a lost connection) may pass on retry. The CLI maps each kind to an exit code and
Airflow maps it to retry-or-not, so every error raised on purpose derives from one of the two.

Messages never carry row values from production, nor secrets: they name files, lines, tables and columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class DeidError(Exception):
    """Base of every error deid raises on purpose. `exit_code` is the CLI's exit status for it."""

    exit_code = 1
    transient = False


class TerminalError(DeidError):
    """Retrying will not help: a person must change a rule, a setting or the data."""


class UsageError(TerminalError):
    """The command line names something deid cannot use (a file that is not a schema snapshot)."""

    exit_code = 2


class TransientError(DeidError):
    """The environment failed (connection lost, server restarting): retrying may help."""

    exit_code = 4
    transient = True


class ConfigError(TerminalError):
    """deid.yaml or a setting it names is wrong or missing."""

    exit_code = 3


class BadConnectionSettings(ConfigError):
    """The driver refused a connection's own settings before dialling (an option it does not know): the
    setting must change, whatever database or server it names."""


class MissingSetting(ConfigError):
    """A connection or secret was not found; the message lists every place that was looked at."""

    def __init__(self, kind: str, name: str, looked_in: Iterable[str], hint: str = ""):
        places = "\n".join(f"  - {p}" for p in looked_in)
        text = f"{kind} '{name}' is not set. Looked in:\n{places}"
        if hint:
            text += f"\n{hint}"
        super().__init__(text)
        self.kind = kind
        self.name = name


@dataclass(frozen=True, order=True)
class Problem:
    """One finding about a rule file: where it is, what is wrong, and how to fix it."""

    file: str
    line: int
    message: str
    fix: str = ""
    # the rules and the schema disagree on what exists (a column without a rule, a rule for nothing): the
    # schema may have moved since the rules were written, which `deid diff` shows
    drift: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.message}"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


class RuleProblems(TerminalError):
    """A rule file (or several) failed to load or to match the schema. Carries every problem found."""

    def __init__(self, problems: Iterable[Problem], appendix: str = ""):
        self.problems = tuple(sorted(set(problems)))
        self.appendix = appendix
        count = len(self.problems)
        text = "\n".join(str(p) for p in self.problems)
        text += f"\n{count} problem{'s' if count != 1 else ''} found."
        if appendix:
            text += "\n\n" + appendix
        super().__init__(text)
