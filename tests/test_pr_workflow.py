"""The pull-request workflow shipped for users' rule repositories: it validates as a GitHub workflow, and its
steps, run as written (deid and gh are commands on PATH; gh's stand-in keeps the comment body), lint the
committed snapshots, write the plan diff of the change and fail on lint errors."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "docs" / "examples" / "github" / "deid-rules.yml"
CHECK = Path(sys.executable).parent / "check-jsonschema"


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("vendor.github-workflows", WORKFLOW),
        ("vendor.gitlab-ci", ROOT / "docs" / "examples" / "gitlab" / "deid-rules.gitlab-ci.yml"),
    ],
)
def test_examples_validate_against_their_ci_schema(schema, path):
    done = subprocess.run([str(CHECK), "--builtin-schema", schema, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_asks_for_no_secret_and_only_the_permissions_it_needs():
    flow = yaml.safe_load(WORKFLOW.read_text())
    assert flow["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "secrets." not in WORKFLOW.read_text()
    assert flow[True]["pull_request"]["paths"] == ["rules/**", "deid.yaml"]  # YAML 1.1 reads `on` as True


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "o", "GIT_AUTHOR_EMAIL": "o@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "o", "GIT_COMMITTER_EMAIL": "o@example.invalid"}
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    )
    return done.stdout.strip()


def _tool(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run_workflow(repo: Path, base_sha: str, tmp_path: Path) -> list[tuple[str, int, str]]:
    """Every step with `run:` but the install, as GitHub runs it (bash -e), with its env's expressions set."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    # deid from this checkout; gh records the command line and the comment body instead of posting it
    _tool(bin_dir, "deid", f'#!/bin/sh\nexec "{sys.executable}" -m deid.cli "$@"\n')
    _tool(bin_dir, "gh", f'#!/bin/sh\necho "$@" > "{tmp_path}/gh-args"\ncp "$5" "{tmp_path}/comment.md"\n')
    outputs = tmp_path / "github-output"
    outputs.write_text("")
    expressions = {
        "github.event.pull_request.base.sha": base_sha,
        "github.token": "not-a-token",
        "github.event.pull_request.number": "7",
    }
    results = []
    for step in yaml.safe_load(WORKFLOW.read_text())["jobs"]["review"]["steps"]:
        if "run" not in step or step["name"] == "Install deid":
            continue
        assert "${{" not in step["run"], "expressions belong in env:, so a step's script is plain shell"
        step_outputs = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_OUTPUT": str(outputs),
        }
        env["PYTHONPATH"] = str(ROOT)
        env.pop("DEID_CONFIG", None)
        for key, value in step.get("env", {}).items():
            expr = re.fullmatch(r"\$\{\{ (.+) \}\}", value).group(1)
            env[key] = step_outputs["exit"] if expr == "steps.lint.outputs.exit" else expressions[expr]
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
        )
        results.append((step["name"], done.returncode, done.stdout + done.stderr))
    return results


@pytest.fixture
def repo(tmp_path):
    """A users' repository: deid.yaml, the demo rules and their snapshot, the migrations; one commit."""
    repo = tmp_path / "repo"
    (repo / "rules").mkdir(parents=True)
    shutil.copy(ROOT / "deid.yaml", repo / "deid.yaml")
    for name in ("learners.yaml", "learners.schema.json"):
        shutil.copy(ROOT / "rules" / name, repo / "rules" / name)
    shutil.copytree(ROOT / "migrations", repo / "migrations")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "rules")
    return repo


def _change(repo: Path, old: str, new: str) -> str:
    path = repo / "rules" / "learners.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    _git(repo, "commit", "-qam", "owner's change")
    return _git(repo, "rev-parse", "HEAD~1")


def test_a_good_change_is_linted_diffed_and_commented(repo, tmp_path):
    base = _change(repo, "      bio: null ", '      bio: {transformer: keep, reason: "moderated"} ')
    results = _run_workflow(repo, base, tmp_path)
    codes = {name: code for name, code, _ in results}
    assert codes == {
        "Lint rule files against the committed schema snapshots": 0,
        "Plan diff of every changed rule file": 0,
        "Post the review comment": 0,
        "Fail on lint errors": 0,
    }, results
    assert "rules/learners.yaml: ok (" in results[0][2]
    comment = (tmp_path / "comment.md").read_text()
    assert comment.startswith("✅ `deid lint` passes.")
    assert "### deid plan diff: `rules/learners.yaml`" in comment
    assert f"from `git:{base}:rules/learners.yaml`" in comment
    assert '- ⚠ `public.instructors.bio`: now kept as is (null → keep — reason: "moderated")' in comment
    assert (tmp_path / "gh-args").read_text().split() == [
        "pr",
        "comment",
        "7",
        "--body-file",
        "deid-review.md",
    ]


def test_an_identifier_kept_without_reason_fails_the_check_and_says_why(repo, tmp_path):
    base = _change(repo, "      website: {class: url}\n", "      website: keep\n")
    results = _run_workflow(repo, base, tmp_path)
    codes = {name: code for name, code, _ in results}
    assert (
        codes["Lint rule files against the committed schema snapshots"] == 0
    )  # it records, the last step fails
    assert codes["Fail on lint errors"] == 1
    assert "deid lint failed (exit 1)" in results[-1][2]
    comment = (tmp_path / "comment.md").read_text()
    assert comment.startswith("❌ `deid lint` fails:")
    assert "public.instructors.website looks like an identifier" in comment
    assert "- ⚠ `public.instructors.website`: now kept as is (class url" in comment
