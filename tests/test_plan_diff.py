"""`deid plan --diff BASE HEAD`: a rule-file change per column, as Markdown, risky changes first."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deid.cli import main
from deid.review.plan_diff import compare, load_version, render

ROOT = Path(__file__).resolve().parent.parent
RULES = (ROOT / "rules" / "learners.yaml").read_text()


def _edit(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _pair(tmp_path: Path, *pairs: tuple[str, str]) -> tuple[Path, Path]:
    (tmp_path / "base").mkdir()
    (tmp_path / "head").mkdir()
    base, head = tmp_path / "base" / "learners.yaml", tmp_path / "head" / "learners.yaml"
    base.write_text(RULES)
    head.write_text(_edit(RULES, *pairs))
    return base, head


RISKY_EDIT = (
    (
        "      bio: null                       # free text",
        '      bio: {transformer: keep, reason: "reviewed"}  #',
    ),
    ("    keep_rows_where: is_test_account\n", "    keep_rows_where: is_test_account OR id = 1\n"),
    ("      action: keep\n", '      action: {transformer: keep, reason: "codes only"}\n'),
    ("  public.refunds:\n    columns:\n", "  public.refunds:\n    copy: schema_only\n    columns:\n"),
    ("      card_pan: {class: card_number}\n", "      card_pan: null\n"),
)


def test_changes_per_column_with_risky_ones_first(tmp_path):
    base, head = _pair(tmp_path, *RISKY_EDIT)
    rows = compare(load_version(str(base)), load_version(str(head)))
    seen = [(r.table, r.column, r.change, r.risky) for r in rows]
    assert seen[:2] == [
        ("public.instructors", "bio", "now kept as is", True),
        ("public.learners", "", "keep_rows_where changed", True),
    ]
    assert set(seen[2:]) == {
        ("public.audit_events", "action", "reason added", False),
        ("public.payments", "card_pan", "transformer changed", False),
        ("public.payments", "card_pan", "class removed", False),
        ("public.payments", "card_pan", "params removed", False),
        ("public.refunds", "", "copy changed", False),
    }
    text = render(rows, "base", "head")
    assert text.startswith("### deid plan diff: `head`")
    assert "**7 change(s) in 5 table(s)**, ⚠ 2 to review closely" in text
    assert '- ⚠ `public.instructors.bio`: now kept as is (null → keep — reason: "reviewed")' in text
    assert '| ⚠ `bio` | now kept as is | null | keep — reason: "reviewed" |' in text
    assert "| (table) | copy changed | full | schema_only |" in text


def test_a_table_copied_again_and_rows_kept_are_risky(tmp_path):
    base, head = _pair(
        tmp_path,
        ("  public.refunds:\n    columns:\n", "  public.refunds:\n    copy: schema_only\n    columns:\n"),
    )
    rows = compare(load_version(str(head)), load_version(str(base)))  # schema_only -> full
    assert [(r.change, r.risky) for r in rows] == [("copy changed", True)]


def test_no_change_says_so_even_when_the_text_moved(tmp_path):
    base, head = _pair(
        tmp_path,
        (
            "      id: keep\n      email: {class: email}\n",
            "      id: keep  # moved\n\n      email: {class: email}\n",
        ),
    )
    text = render(compare(load_version(str(base)), load_version(str(head))), "a", "b")
    assert "No change to what deid does with any table or column." in text


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_git_ref_reads_the_base_without_checking_it_out(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    (repo / "rules").mkdir(parents=True)
    (repo / "rules" / "learners.yaml").write_text(RULES)
    _git(repo, "init", "-q", "-b", "main")
    _git(
        repo,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.invalid",
        "commit",
        "-qm",
        "base",
        "--allow-empty",
    )
    _git(repo, "add", "rules")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "rules")
    (repo / "rules" / "learners.yaml").write_text(_edit(RULES, RISKY_EDIT[0]))
    monkeypatch.chdir(repo)
    assert main(["plan", "--diff", "git:HEAD:rules/learners.yaml", "rules/learners.yaml"]) == 0
    out = capsys.readouterr().out
    assert "from `git:HEAD:rules/learners.yaml`" in out
    assert "⚠ 1 to review closely" in out and "now kept as is" in out
    # a rule file the change adds: every table is new
    assert main(["plan", "--diff", "git:HEAD~1:rules/learners.yaml", "rules/learners.yaml"]) == 0
    out = capsys.readouterr().out
    assert "| (table) | table added |  | present |" in out
    assert "| `email` | new rule |  | class email (fake.email)" in out
    # a broken spec is wrong usage
    assert main(["plan", "--diff", "git:HEAD", "rules/learners.yaml"]) == 2
    assert "write git:REF:PATH" in capsys.readouterr().err
    assert main(["plan", "--diff", "git:nosuchref:rules/learners.yaml", "rules/learners.yaml"]) == 2
    assert main(["plan", "--diff", "rules/missing.yaml", "rules/learners.yaml"]) == 2


def test_plan_needs_a_database_or_diff(capsys):
    assert main(["plan"]) == 2
    assert "--diff BASE HEAD" in capsys.readouterr().err


def test_a_waiver_added_is_risky(tmp_path):
    kept = '      tags: {transformer: keep, reason: "labels the learners pick from a list"'
    base, head = _pair(tmp_path, ("      tags: keep\n", kept + ', waive: {phone: "course codes"}}\n'))
    rows = compare(load_version(str(base)), load_version(str(head)))
    changes = {(r.column, r.change): (r.after, r.risky) for r in rows}
    assert changes[("tags", "waivers phone: added")] == ("course codes", True)
