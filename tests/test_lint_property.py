"""Property: whatever a rule file, a policy or deid.yaml holds, `deid lint` ends cleanly and within seconds.

Hypothesis spoils real files (rules/learners.yaml, tests/fixtures/rules/good.yaml and the broken fixtures,
rules/policies/hipaa_limited_data_set.yaml, deid.yaml; strategies in tests/hostile.py) at the byte level,
the YAML level and in row conditions, and runs `deid lint` in process against the matching schema snapshot.
Every example must exit 0, 1, 2 or 3 (never 70, a bug in deid), print no traceback, and take at most
SECONDS.

Examples per test, by profile (DEID_HYPOTHESIS_PROFILE, else `ci` when CI is set, else `dev`):

    dev        100: a quick look while working
    ci         500: about 20 s for the three tests together
    thorough  5000: after changing deid/yamlsrc.py, deid/yamlcheck.py, deid/rules/ or deid/config.py:
               DEID_HYPOTHESIS_PROFILE=thorough .venv/bin/python -m pytest tests/test_lint_property.py

A failure prints the smallest spoiled file Hypothesis found and the traceback of `deid --debug lint`.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from deid.cli import main
from tests.hostile import rules_with_condition, spoiled_bytes, spoiled_yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "rules"
SHOP = FIXTURES / "shop.schema.json"
LEARNERS = (ROOT / "rules" / "learners.yaml", ROOT / "rules" / "learners.schema.json")
GOOD = (FIXTURES / "good.yaml", SHOP)
RULES = [LEARNERS, GOOD] + [(p, SHOP) for p in sorted((FIXTURES / "broken").glob("*.yaml"))]
POLICY = ROOT / "rules" / "policies" / "hipaa_limited_data_set.yaml"
CONFIG = ROOT / "deid.yaml"
SECONDS = 5.0
CLEAN_EXITS = {0, 1, 2, 3}

_common = {
    "deadline": None,  # timed below, after the first call's imports, with a bound fit for a busy machine
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}
settings.register_profile("dev", max_examples=100, **_common)
settings.register_profile("ci", max_examples=500, database=None, print_blob=True, **_common)
settings.register_profile("thorough", max_examples=5000, **_common)
PROFILE = settings.get_profile(
    os.environ.get("DEID_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture(scope="module", autouse=True)
def warm():
    """The first lint imports sqlglot and the transformers: not part of any example's time."""
    assert lint_files({"shop.yaml": GOOD[0].read_bytes()}, SHOP)[0] == 0


def lint_files(files: dict[str, bytes], schema: Path, *, debug: bool = False) -> tuple[int, str, float]:
    """`deid lint` of the one rule file among `files` (written to a folder of their own, with deid.yaml
    and policies/ when given, the shipped ones otherwise): exit code, everything printed, seconds."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, raw in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(raw)
        config = root / "deid.yaml" if "deid.yaml" in files else CONFIG
        [rules] = [root / name for name in files if name not in ("deid.yaml",) and "/" not in name]
        argv = ["--config", str(config), "lint", str(rules), "--schema", str(schema)]
        printed = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            if not debug:
                code = main(argv)
            else:
                try:
                    code = main(["--debug", *argv])
                except Exception:  # the traceback, for the failure's report
                    code, printed = 70, io.StringIO(traceback.format_exc())
        return code, printed.getvalue(), time.perf_counter() - started


def check(files: dict[str, bytes], schema: Path) -> None:
    code, printed, seconds = lint_files(files, schema)
    event(f"exit {code}")  # --hypothesis-show-statistics: not every example may be refused early
    if code not in CLEAN_EXITS or "Traceback" in printed:
        _, trace, _ = lint_files(files, schema, debug=True)
        pytest.fail(f"deid lint exited {code}:\n{printed}\nwith --debug:\n{trace}")
    assert seconds < SECONDS, f"deid lint took {seconds:.1f} s"


def rule_file_name(path: Path) -> str:
    return "learners.yaml" if path.stem == "learners" else "shop.yaml"


@PROFILE
@given(seed=st.sampled_from(RULES), data=st.data())
def test_lint_survives_spoiled_bytes(seed, data):
    """Rule files, the policy and deid.yaml, each spoiled byte by byte."""
    path, schema = seed
    files = {rule_file_name(path): path.read_bytes()}
    target = data.draw(st.sampled_from(["rules", "rules", "policy", "config"]), label="target")
    if target == "rules":
        files[rule_file_name(path)] = data.draw(spoiled_bytes(path), label="rules")
    elif target == "policy":
        files["policies/hipaa_limited_data_set.yaml"] = data.draw(spoiled_bytes(POLICY))
    else:
        files["deid.yaml"] = data.draw(spoiled_bytes(CONFIG), label="deid.yaml")
    check(files, schema)


@PROFILE
@given(seed=st.sampled_from(RULES), data=st.data())
def test_lint_survives_spoiled_yaml(seed, data):
    """Rule files, the policy and deid.yaml with values, keys and YAML features spoiled."""
    path, schema = seed
    files = {rule_file_name(path): path.read_bytes()}
    target = data.draw(st.sampled_from(["rules", "rules", "policy", "config"]), label="target")
    if target == "rules":
        files[rule_file_name(path)] = data.draw(spoiled_yaml(path), label="rules")
    elif target == "policy":
        files["policies/hipaa_limited_data_set.yaml"] = data.draw(spoiled_yaml(POLICY))
    else:
        files["deid.yaml"] = data.draw(spoiled_yaml(CONFIG), label="deid.yaml")
    check(files, schema)


@PROFILE
@given(seed=st.sampled_from([LEARNERS, GOOD]), data=st.data())
def test_lint_survives_any_row_condition(seed, data):
    path, schema = seed
    files = {rule_file_name(path): data.draw(rules_with_condition(path), label="rules")}
    check(files, schema)


def test_the_strategies_reach_deid_s_checks():
    """The properties mean something only if spoiled files get past the first refusal: Hypothesis finds,
    quickly, spoiled YAML with an alias, bytes that are not UTF-8, and conditions deid accepts and renders."""
    from hypothesis import find

    quick = settings(database=None, max_examples=500, deadline=None, phases=[Phase.generate])  # no shrinking
    alias = find(spoiled_yaml(GOOD[0]), lambda b: b"*" in b and b"&" in b, settings=quick)
    assert any("YAML anchors and aliases are not allowed" in p.message for p in parsed(alias).problems)
    latin = find(spoiled_bytes(GOOD[0]), lambda b: b"\xe9" in b, settings=quick)
    assert any("UTF-8" in p.fix for p in parsed(latin).problems)
    # find stops at the first hit; the bound only matters on an unlucky draw (LIKE tokens made hits rarer)
    accepted = find(
        rules_with_condition(GOOD[0]),
        lambda b: b" AND " in b and lint_files({"shop.yaml": b}, SHOP)[0] == 0,
        settings=settings(quick, max_examples=3000),
    )
    assert lint_files({"shop.yaml": accepted}, SHOP)[0] == 0


def parsed(raw: bytes):
    from deid import yamlsrc

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.yaml"
        path.write_bytes(raw)
        return yamlsrc.load(path)
