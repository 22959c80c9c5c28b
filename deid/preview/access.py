"""Who may run `deid preview`: deid.yaml's `preview:` section, and the checks made before any row is read.

    preview:                      # top level: every database; a database's own `preview:` replaces it
      allowed: [alice, "group:dba"]   # OS user names, or OS groups as group:NAME; default: nobody

A preview shows production values on the terminal. So it is refused unless the person running it is named
(by OS user, or by one of their OS groups: the `group:` prefix keeps a group from passing for a user of the
same name), and refused when standard output is not a terminal (a pipe or a CI log would keep the values)
unless they say so with --yes-show-production-values, and always under CI (`CI` set), whose logs are kept
and widely read. The user is the process's real uid as the system knows it, not $USER or $LOGNAME, which
anyone can set.

This is a guard against mistakes and against people who should not see production, configured where data
owners review changes; it is not a boundary against someone who already holds production's credentials.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from deid.errors import ConfigError, UsageError
from deid.yamlmodel import EXPECTS, STRICT

GROUP = "group:"


def _entry(value: str) -> str:
    if value == GROUP:
        raise ValueError("group: without a group's name")
    return value


class PreviewAccess(BaseModel):
    """A `preview:` section of deid.yaml (top level, or a database's own, which replaces it)."""

    model_config = STRICT

    allowed: Annotated[
        tuple[Annotated[str, Field(min_length=1), AfterValidator(_entry)], ...], Field(strict=False)
    ] = Field(
        (),
        description='OS user names, or OS groups as group:NAME, e.g. allowed: [alice, "group:dba"]; '
        "default: nobody",
        json_schema_extra={EXPECTS: "a list of user names or group:NAME"},
    )

    def admits(self, user: str, groups: Iterable[str]) -> bool:
        names = {user} | {GROUP + g for g in groups}
        return any(entry in names for entry in self.allowed)


def current_user() -> tuple[str, tuple[str, ...]]:
    """The OS user of this process (by real uid) and the names of its groups."""
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (some containers): it can only match by number
        user = str(uid)
    groups = []
    for gid in {os.getgid(), *os.getgroups()}:
        try:
            groups.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            groups.append(str(gid))
    return user, tuple(sorted(groups))


def check_allowed(access: PreviewAccess, database: str, config_file: str) -> None:
    """ConfigError (exit 3: the fix is a line of deid.yaml) unless this OS user may preview `database`."""
    user, groups = current_user()
    if access.admits(user, groups):
        return
    raise ConfigError(
        f"preview refused: a preview shows production values, and user '{user}' is not allowed to see "
        f"those of {database}. To allow it, add '{user}' (or group:NAME of one of your groups) to "
        f"preview.allowed in {config_file}, at the top level or under databases.{database}; "
        "the default is nobody"
    )


def check_terminal(stdout_is_terminal: bool, confirmed: bool, environ=os.environ) -> None:
    """UsageError (exit 2) when the values could land somewhere that keeps them."""
    if environ.get("CI"):
        raise UsageError(
            "preview refused under CI (CI is set): a preview shows production values, and CI logs are kept"
        )
    if not stdout_is_terminal and not confirmed:
        raise UsageError(
            "preview refused: standard output is not a terminal, and a preview shows production values. "
            "Run it in a terminal, or add --yes-show-production-values if the output goes somewhere safe"
        )
