"""Keys of tables and columns: one spelling per object, read back exactly, never ambiguous."""

from __future__ import annotations

import pytest

from deid import names
from deid.backends import backend_for

ODD = [
    "public",
    "dot.schema",
    "schema.t",
    'say "hi"',
    " padded ",
    "Ünïcode ñame",
    "MixedCase",
    "a%b",
    "x:y",
    "",
]


@pytest.mark.parametrize("schema", ODD)
@pytest.mark.parametrize("table", ODD)
def test_every_pair_of_names_has_one_key_that_reads_back(schema, table):
    key = names.key(schema, table)
    assert names.table_names(key) == (schema, table)
    assert names.table_key(key) == key  # canonical: reading it gives it back
    assert names.column_names(names.column_key(key, "e.mail")) == (schema, table, "e.mail")


def test_the_two_tables_of_the_trial_get_two_keys():
    first, second = names.key("dot.schema", "t"), names.key("dot", "schema.t")
    assert (first, second) == ('"dot.schema".t', 'dot."schema.t"') and first != second


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("learners", "public.learners"),
        ("public.learners", "public.learners"),
        ('"public"."learners"', "public.learners"),
        ("Public.Learners", "Public.Learners"),  # exact: no case folding
        ('"a""b".c', '"a""b".c'),
    ],
)
def test_rule_keys_are_read_exactly(written, expected):
    assert names.table_key(written) == expected


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("dot.schema.t", "is ambiguous"),
        ('"unclosed.t', "a quote is not closed"),
        ("a..b", "must be written in double quotes"),
        ("a.", "ends with '.'"),
        (" a.b", "must be written in double quotes"),
        ('"a"b.c', "must be followed by '.'"),
    ],
)
def test_keys_that_name_no_single_table_are_errors(written, message):
    with pytest.raises(names.BadName, match=message):
        names.table_key(written)


def test_sql_quoting_follows_the_names_not_the_key():
    quote_table = backend_for("postgresql").quote_table
    assert quote_table('"dot.schema".t') == '"dot.schema"."t"'
    assert quote_table('a."say ""hi"""') == '"a"."say ""hi"""'
