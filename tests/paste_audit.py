"""Every paste block lint prints anywhere in the test suite is audited where it is printed: parsed back as
YAML, merged key by key into the rule file it was printed for, and the merged file checked against the same
schema. The merge must leave no column without a rule and add no problem the file did not already have
(a broken fixture keeps its own problems; the block must not bring new ones).

Installed for the whole session by tests/conftest.py; what fails is reported when the session ends.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from deid import yamlsrc
from deid.errors import RuleProblems
from deid.rules import coverage
from deid.rules.load import load_rules


@dataclass
class PasteAudit:
    audited: int = 0
    failures: list[str] = field(default_factory=list)
    _checked: tuple = ()  # (rules, schema) of the latest coverage.check: paste_block is called right after

    def install(self, monkeypatch) -> None:
        check, paste_block = coverage.check, coverage.paste_block

        def recording_check(rules, schema):
            self._checked = (rules, schema)
            return check(rules, schema)

        def audited_paste_block(missing, rules):
            block = paste_block(missing, rules)
            if self._checked and self._checked[0] is rules:
                self._audit(block, missing, rules, self._checked[1], check)
            return block

        monkeypatch.setattr(coverage, "check", recording_check)
        monkeypatch.setattr(coverage, "paste_block", audited_paste_block)

    def _audit(self, block: str, missing, rules, schema, check) -> None:
        path = Path(rules.file)
        if not path.is_file():
            return  # a version read from git, or a file the test already removed
        self.audited += 1
        with tempfile.TemporaryDirectory() as folder:
            original = _read(path)
            pasted = _read_text(block, Path(folder) / "block.yaml")
            if not isinstance(original, dict) or not isinstance(pasted, dict):
                return  # a file too broken to merge into: lint said so already
            try:
                _merge(original, pasted)
            except ValueError as exc:
                self.failures.append(f"{path}: {exc}\n{block}")
                return
            merged = Path(folder) / path.name
            merged.write_text(yaml.safe_dump(original, sort_keys=False, allow_unicode=True))
            if (path.parent / "policies").is_dir():
                (Path(folder) / "policies").symlink_to(path.parent / "policies")
            before = {p.message for p in check(rules, schema) if "have no rule" not in p.message}
            try:
                # the rules checked may be the file's without those waiting for migrations: so the merged
                set_aside = _keys(load_rules(path)) - _keys(rules)
                merged_rules = coverage.without(load_rules(merged), set_aside)
            except RuleProblems as exc:
                self.failures.append(f"{path}: the merged file does not load: {exc.problems}\n{block}")
                return
            after = {p.message for p in check(merged_rules, schema) if "have no rule" not in p.message}
            # the block was printed for these columns (diff prints one per change): each now has a rule
            still = {
                (t.qualified, c.name)
                for t, cols in coverage.missing_columns(merged_rules, schema)
                for c in cols
            }
            unruled = sorted(
                f"{t.qualified}.{c.name}"
                for t, cols in missing
                for c in cols
                if (t.qualified, c.name) in still
            )
        new = sorted(after - before) + [f"no rule yet for {key}" for key in unruled]
        if new:
            self.failures.append(f"{path}: the merged block brings {new}\n{block}")


def _keys(rules) -> set[str]:
    """Every table and column a rule file has a rule for, named as coverage.absent_from names them."""
    from deid import names

    return {t.name for t in rules.tables} | {
        names.column_key(t.name, c.name) for t in rules.tables for c in t.columns
    }


def _read(path: Path):
    return yamlsrc.load(path).data  # keys as written (`on:` is the column on), as deid reads rule files


def _read_text(text: str, path: Path):
    path.write_text(text)
    return _read(path)


def _merge(into: dict, block: dict) -> None:
    for key, value in block.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif key in into:
            raise ValueError(f"the block redefines {key!r}")
        else:
            into[key] = value
