"""The classifier without a database sample: joined-up names split into words, and names plus types judged
the way owners' hard cases need (keys are not addresses, catalogue names are not people's)."""

from __future__ import annotations

import pytest

from deid.classify import Evidence, classify
from deid.classify.words import split_words
from deid.schema import Column, ForeignKey, Kind, Table


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("emailaddress", ["email", "address"]),
        ("EmailAddress", ["email", "address"]),
        ("phonenumber", ["phone", "number"]),
        ("passwordhash", ["password", "hash"]),
        ("passwordsalt", ["password", "salt"]),
        ("addressline1", ["address", "line", "1"]),
        ("nationalidnumber", ["national", "id", "number"]),
        ("nationalIDNumber", ["national", "id", "number"]),
        ("loginid", ["login", "id"]),
        ("username", ["username"]),
        ("contact_name", ["contact", "name"]),
        ("picture", ["picture"]),
        ("dateofbirth", ["date", "of", "birth"]),
        ("user_id", ["user", "id"]),
        ("zzqx", ["zzqx"]),  # an unknown word stays whole, never cut into nonsense
    ],
)
def test_names_split_into_words(name, words):
    assert split_words(name) == words


def _text(name: str, **kw) -> Column:
    return Column(name=name, data_type="text", kind=Kind.TEXT, **kw)


def _int(name: str) -> Column:
    return Column(name=name, data_type="integer", kind=Kind.INTEGER)


PERSON = Table("public", "person", (_int("businessentityid"), _text("emailaddress"), _text("phonenumber")))
PATIENT = Table(
    "public",
    "patient",
    (_int("id"), _text("first"), _text("last"), _text("maiden"), _text("drivers"), _text("passport"),
     Column("dob", "date", Kind.DATE), _text("email")),
    primary_key=("id",),
)  # fmt: skip


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("emailaddress", "email"),
        ("phonenumber", "phone"),
        ("passwordhash", "password"),
        ("passwordsalt", "password"),
        ("addressline1", "postal_address"),
        ("nationalidnumber", "ssn"),
        ("loginid", "login"),
        ("username", "login"),
        ("contact_name", "name"),
        ("picture", "full_face_photo"),
    ],
)
def test_joined_up_names_are_found(column, expected):
    table = Table("public", "person", (_text(column), _text("emailaddress"), _text("phonenumber")))
    assert classify(_text(column), table).cls == expected


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("first", "first_name"),
        ("last", "last_name"),
        ("maiden", "name"),
        ("drivers", "certificate_license_number"),
        ("passport", "certificate_license_number"),
    ],
)
def test_short_words_in_a_table_of_people(column, expected):
    assert classify(PATIENT.column(column), PATIENT).cls == expected


def test_first_and_last_elsewhere_are_not_names():
    pages = Table("public", "pages", (_int("id"), _text("first"), _text("last")))
    assert classify(pages.column("first"), pages).cls is None


def test_integer_keys_named_like_identifiers_are_keys():
    table = Table(
        "public",
        "customer",
        (_int("id"), _int("address_id"), _int("user_id"), Column("device_uuid", "uuid", Kind.UUID)),
        primary_key=("id",),
        foreign_keys=(ForeignKey("fk", ("address_id",), "public.address", ("id",)),),
    )
    for name in ("id", "address_id", "user_id", "device_uuid"):
        assert classify(table.column(name), table).cls == "key", name


def test_an_integer_ssn_is_still_an_ssn():
    table = Table("public", "person", (_int("ssn"),))
    assert classify(table.column("ssn"), table).cls == "ssn"


def test_catalogue_names_are_not_people_unless_content_says_so():
    for table_name in ("category", "genre", "product", "course", "tag"):
        table = Table("public", table_name, (_int("id"), _text("name")), primary_key=("id",))
        assert classify(table.column("name"), table).cls is None, table_name
    table = Table("public", "product", (_int("id"), _text("name")))
    people = Evidence(sampled=100, hits={"person_full": 80})
    assert classify(table.column("name"), table, people).cls == "name"
    # elsewhere a bare `name` is a person's
    owners = Table("public", "owner", (_int("id"), _text("name")))
    assert classify(owners.column("name"), owners).cls == "name"


def test_content_finds_an_identifier_under_an_innocent_name():
    table = Table("public", "t", (_text("user_id"), _text("notes"), _text("ref")))
    assert classify(table.column("user_id"), table, Evidence(50, {"email": 50})).cls == "email"
    assert classify(table.column("notes"), table, Evidence(50, {"email": 2})).cls == "free_text"
    assert classify(table.column("ref"), table, Evidence(50, {"ssn": 49})).cls == "ssn"
    assert classify(table.column("ref"), table, Evidence(50, {"uuid": 50})).cls is None


def _policy():
    from deid.rules.load import SHIPPED_POLICIES, load_policy

    return load_policy("hipaa_limited_data_set", SHIPPED_POLICIES)


def test_proposals_fit_the_column_and_never_keep_an_identifier_without_a_reason():
    from deid.classify.propose import candidates

    policy = _policy()
    short = Column("passwordhash", "character varying(36)", Kind.TEXT, max_length=36)
    table = Table("public", "person", (short, _text("email"), Column("born", "date", Kind.DATE)))
    first = candidates(classify(short, table), short, table, policy)[0]
    assert first == {"transformer": "hash", "params": {"format": "hex", "length": 36}}  # not the class's 64
    partitioned = Column("email", "text", Kind.TEXT)
    (kept,) = candidates(classify(partitioned, table), partitioned, table, policy, partition_key=True)
    assert kept["transformer"] == "keep" and "partition key" in kept["reason"]
    generated = Column("full_name", "text", Kind.TEXT, generated=True)
    (kept,) = candidates(classify(generated, table), generated, table, policy)
    assert kept["transformer"] == "keep" and "generated" in kept["reason"]
    for rules in (candidates(classify(c, table), c, table, policy) for c in table.columns):
        assert "keep" not in rules  # a plain keep, without a reason


def test_document_keys_that_may_be_values_are_never_written_and_keys_are_no_phones():
    """Paths name JSON keys and XML tags only when they are plain words; a key's digits are no phone."""
    from deid.classify.content import document_paths, value_patterns

    none = frozenset()
    paths = document_paths(
        ['{"contact": {"phone": "(202) 555-0143"}, "by_mail": {"a.person@example.org": 1, "id4711x": 2}}',
         "<r><u20250114>x</u20250114><note>someone@example.org</note></r>"],
        none, none,
    )  # fmt: skip
    assert set(paths) == {"$.contact.phone", "$.by_mail[?]", "/r/?", "/r/note"}
    assert paths["$.contact.phone"]["phone"] == 1 and paths["/r/note"]["email"] == 1
    assert not {k for p in paths for k in ("example.org", "4711", "2025") if k in p}
    # the same hex-key rule as validation: a UUID's digit groups are no phone, a phone beside one is
    assert "phone" not in value_patterns("abcdef01-2345-4678-9abc-202555014300", none, none)
    assert "phone" in value_patterns("abcdef01-2345-4678-9abc-202555014300 (202) 555-0143", none, none)
