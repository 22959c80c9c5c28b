"""YAML with lines: every path knows its line, duplicates are reported, `null` differs from nothing."""

from deid import yamlsrc

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
