"""YAML with lines: every path knows its line, duplicates are reported, `null` differs from nothing."""

import time
from pathlib import Path

import pytest
import yaml

from deid import yamlcheck, yamlsrc


@pytest.fixture(autouse=True, params=["libyaml", "python"])
def loader(request, monkeypatch):
    """Every test once with each parser deid may use: libyaml when PyYAML's wheel bundles it, else Python."""
    if request.param == "python":
        monkeypatch.setattr(yamlcheck, "LOADER", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("this PyYAML has no libyaml")
    return request.param


TEXT = """\
database: shop
tables:
  users:
    columns:
      email: fake.email
      bio: null
      note:
      email: keep
"""


def test_paths_know_their_lines_and_duplicates_are_reported():
    source = yamlsrc.parse(TEXT, "shop.yaml")
    assert source.line(("tables", "users", "columns", "bio")) == 6
    assert source.line(("tables", "users", "columns", "missing", "deeper")) == 4  # nearest ancestor
    assert source.data["tables"]["users"]["columns"]["email"] == "fake.email"  # the first one stays
    [problem] = source.problems
    assert (problem.file, problem.line) == ("shop.yaml", 8)
    assert "'email' is defined twice (first at line 5)" in problem.message


def test_explicit_null_is_told_apart_from_an_empty_value():
    source = yamlsrc.parse(TEXT, "shop.yaml")
    assert ("tables", "users", "columns", "bio") in source.explicit_nulls
    assert ("tables", "users", "columns", "note") not in source.explicit_nulls


def test_syntax_error_names_the_line():
    source = yamlsrc.parse("a: 1\nb: [1, 2\nc: 3\n", "bad.yaml")
    [problem] = source.problems
    assert problem.file == "bad.yaml" and problem.line == 3
    assert problem.message.startswith("not valid YAML")


# Hostile input: every problem below is a Problem with file, line and fix, never an exception, in well
# under a second (the billion-laughs file would take minutes and gigabytes if its aliases were expanded).


def only_problem(source) -> yamlsrc.Problem:
    assert source.data is None, "no data is built from a file deid refuses"
    [problem] = source.problems
    return problem


def test_anchors_and_aliases_are_refused_before_any_data_is_built():
    laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    started = time.perf_counter()
    source = yamlsrc.parse(laughs, "laughs.yaml")
    assert time.perf_counter() - started < 1
    assert source.data is None
    first, second = source.problems[:2]
    assert (first.line, first.message) == (1, "anchor &a: YAML anchors and aliases are not allowed")
    assert (second.line, second.message) == (2, "anchor &b: YAML anchors and aliases are not allowed")
    assert "write each rule out" in first.fix
    assert any(p.message.startswith("alias *a:") and p.line == 2 for p in source.problems)
    assert len(source.problems) <= yamlcheck.MAX_REFUSALS + 1  # a long list is cut, and says so


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: !!float 1\n", 1, "explicit tag !!float is not allowed"),
        (
            "a:\n  b: !!python/object:os.system x\n",
            2,
            "explicit tag !!python/object:os.system is not allowed",
        ),
        ("a: !!map {b: 1}\n", 1, "explicit tag !!map is not allowed"),
        ("a: !keep x\n", 1, "explicit tag !keep is not allowed"),
        ("a: ! x\n", 1, "explicit tag ! is not allowed"),
        ("a:\n  <<: {b: 1}\n", 2, "merge keys (<<) are not allowed"),
        ("a:\n  ? [b, c]\n  : x\n", 2, "a key must be a name, not a list or a mapping"),
        ("{b: 1}: x\n", 1, "a key must be a name, not a list or a mapping"),
        ("a: " + "[" * 100 + "]" * 100 + "\n", 1, "nested more than 32 levels deep"),
        (
            "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 40)),
            33,
            "nested more than 32 levels deep",
        ),
        ("a: 2024-02-30\n", 1, "'2024-02-30' is not a valid date"),
        ("a: 0x_\n", 1, "'0x_' is not a valid number"),
        ("a: 0b_\n", 1, "'0b_' is not a valid number"),
        ("a: 1\n\x00b: 2\n", 2, "control character U+0000 is not allowed"),
        ("a: 1\nb: \x1b[31m\n", 2, "control character U+001B is not allowed"),
        ("a: 1\nb: '\u202etxt.exe'\n", 2, "invisible bidirectional control character U+202E"),
        ("a: 1\nb: '\ud800'\n", 2, "character U+D800 is not allowed in YAML"),
        ("a: 1\nb: \tc: d\n", 2, "found character '\\t' that cannot start any token"),
    ],
)
def test_hostile_yaml_is_a_problem_with_its_line(text, line, message):
    source = yamlsrc.parse(text, "x.yaml")
    assert [(p.file, p.line) for p in source.problems if message in p.message] == [("x.yaml", line)], (
        source.problems
    )
    assert all(p.fix for p in source.problems)


def test_keys_are_the_text_written():
    """YAML 1.1 reads `on`, `no`, `012`, `1_000`, `null` as true, false, 10, 1000, None: a rule for a column
    named so would silently name another column. Keys are names, so deid takes them as written."""
    source = yamlsrc.parse("on: a\nno: b\n012: c\n1_000: d\nnull: e\n'7': f\n1.50: g\n", "x.yaml")
    assert not source.problems
    assert source.data == {"on": "a", "no": "b", "012": "c", "1_000": "d", "null": "e", "7": "f", "1.50": "g"}
    assert source.line(("1_000",)) == 4


def test_a_utf8_file_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: caf\xc3\xa9\n")
    source = yamlsrc.load(path)
    assert (source.data, source.problems) == ({"a": "café"}, [])


@pytest.mark.parametrize(
    ("raw", "line", "message"),
    [
        ("a: 1\nb: café\n".encode("utf-16"), 0, "is saved as UTF-16"),
        ("a: 1\n".encode("utf-32"), 0, "is saved as UTF-32"),
        ("a: 1\nb: café\n".encode("utf-16-le"), 1, "a NUL byte at line 1: the file is UTF-16 or not text"),
        (b"a: 1\n# caf\xe9\n", 2, "not UTF-8: the byte at line 2, column 6 is not valid UTF-8"),
        (b"a: \xff\xfe\n", 1, "not UTF-8: the byte at line 1, column 4 is not valid UTF-8"),
    ],
)
def test_a_file_in_another_encoding_names_the_fix(tmp_path, raw, line, message):
    path = tmp_path / "enc.yaml"
    path.write_bytes(raw)
    problem = only_problem(yamlsrc.load(path))
    assert (problem.file, problem.line) == (str(path), line)
    assert message in problem.message
    assert "UTF-8" in problem.fix


def test_a_folder_is_not_read_as_a_file(tmp_path):
    problem = only_problem(yamlsrc.load(tmp_path))
    assert (problem.file, problem.line) == (str(tmp_path), 0)
    assert problem.message == f"cannot read {tmp_path}: it is a folder"


def test_an_unreadable_file_is_a_problem(tmp_path, monkeypatch):
    path = tmp_path / "locked.yaml"
    path.write_text("a: 1\n")
    deny_reading(monkeypatch, path)
    problem = only_problem(yamlsrc.load(path, "rules/locked.yaml"))
    assert (problem.file, problem.line) == ("rules/locked.yaml", 0)
    assert problem.message == "cannot read rules/locked.yaml: permission denied"
    assert "read access" in problem.fix


def test_an_oversized_file_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    monkeypatch.setattr(yamlsrc, "MAX_BYTES", 1000)
    path = tmp_path / "big.yaml"
    path.write_text("a: 1\n" * 300)
    problem = only_problem(yamlsrc.load(path))
    assert "is larger than 1000 bytes" in problem.message


def deny_reading(monkeypatch, path: Path) -> None:
    """As an unreadable file behaves for a user without read access (the tests may run as root)."""
    real_open = Path.open

    def fake_open(self, *args, **kwargs):
        if Path(self) == path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", fake_open)
