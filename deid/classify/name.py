"""What a column's name and type suggest it holds: a class, how sure, and why.

Classes are the policy's (`email`, `ssn`, `name`, ...) plus a few that no policy class covers and that scan
and lint still treat as identifiers: `date_of_birth`, `login`, `zip`, `free_text` (text that may quote
identifiers) and `key` (a surrogate key: identifies a row, not a person; kept with a reason).
"""

from __future__ import annotations

from dataclasses import dataclass

from deid.classify.words import _words, split_words
from deid.schema import Column, Kind, Table

HIGH, MEDIUM, LOW = "high", "medium", "low"

# Checked in order; the first entry whose words all appear in the name wins (so `email address` is an
# email, not a postal address). Confidence is what the name alone is worth.
_RULES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("email",), "email", HIGH),
    (("e", "mail"), "email", HIGH),
    (("mail",), "email", MEDIUM),
    (("ssn",), "ssn", HIGH),
    (("social", "security"), "ssn", HIGH),
    (("national", "id"), "ssn", MEDIUM),
    (("fax",), "fax", HIGH),
    (("phone",), "phone", HIGH),
    (("telephone",), "phone", HIGH),
    (("tel",), "phone", MEDIUM),
    (("mobile",), "phone", MEDIUM),
    (("cell",), "phone", MEDIUM),
    (("ip",), "ip_address", HIGH),
    (("ipaddr",), "ip_address", HIGH),
    (("password",), "password", HIGH),
    (("passwd",), "password", HIGH),
    (("pwd",), "password", HIGH),
    (("pass", "hash"), "password", HIGH),
    (("token",), "secret", HIGH),
    (("secret",), "secret", HIGH),
    (("api", "key"), "secret", HIGH),
    (("private", "key"), "secret", HIGH),
    (("username",), "login", HIGH),
    (("user", "name"), "login", HIGH),
    (("login",), "login", HIGH),
    (("logon",), "login", HIGH),
    (("first", "name"), "first_name", HIGH),
    (("firstname",), "first_name", HIGH),
    (("given", "name"), "first_name", HIGH),
    (("last", "name"), "last_name", HIGH),
    (("lastname",), "last_name", HIGH),
    (("surname",), "last_name", HIGH),
    (("family", "name"), "last_name", HIGH),
    (("middle", "name"), "name", HIGH),
    (("maiden", "name"), "name", HIGH),
    (("full", "name"), "name", HIGH),
    (("display", "name"), "name", MEDIUM),
    (("nickname",), "name", MEDIUM),
    (("nick", "name"), "name", MEDIUM),
    (("contact", "name"), "name", HIGH),
    (("dob",), "date_of_birth", HIGH),
    (("birth",), "date_of_birth", HIGH),
    (("birthday",), "date_of_birth", HIGH),
    (("birthdate",), "date_of_birth", HIGH),
    (("born",), "date_of_birth", MEDIUM),
    (("zip",), "zip", HIGH),
    (("postcode",), "zip", HIGH),
    (("postal", "code"), "zip", HIGH),
    (("street",), "postal_address", HIGH),
    (("address",), "postal_address", HIGH),
    (("addr",), "postal_address", MEDIUM),
    (("mrn",), "medical_record_number", HIGH),
    (("medical", "record"), "medical_record_number", HIGH),
    (("beneficiary",), "health_plan_beneficiary_number", HIGH),
    (("health", "plan"), "health_plan_beneficiary_number", HIGH),
    (("license",), "certificate_license_number", HIGH),
    (("licence",), "certificate_license_number", HIGH),
    (("certificate",), "certificate_license_number", HIGH),
    (("diploma",), "certificate_license_number", HIGH),
    (("passport",), "certificate_license_number", HIGH),
    (("drivers",), "certificate_license_number", MEDIUM),
    (("driver",), "certificate_license_number", MEDIUM),
    (("permit",), "certificate_license_number", MEDIUM),
    (("vin",), "vehicle_identifier", HIGH),
    (("plate",), "vehicle_identifier", MEDIUM),
    (("device",), "device_identifier", HIGH),
    (("imei",), "device_identifier", HIGH),
    (("serial",), "device_identifier", MEDIUM),
    (("url",), "url", HIGH),
    (("website",), "url", HIGH),
    (("homepage",), "url", HIGH),
    (("photo",), "full_face_photo", HIGH),
    (("picture",), "full_face_photo", HIGH),
    (("avatar",), "full_face_photo", HIGH),
    (("portrait",), "full_face_photo", HIGH),
    (("selfie",), "full_face_photo", HIGH),
    (("face",), "full_face_photo", MEDIUM),
    (("fingerprint",), "biometric", HIGH),
    (("voiceprint",), "biometric", HIGH),
    (("biometric",), "biometric", HIGH),
    (("card",), "card_number", HIGH),
    (("pan",), "card_number", MEDIUM),
    (("iban",), "account_number", HIGH),
    (("account", "number"), "account_number", HIGH),
    (("acct", "number"), "account_number", HIGH),
    (("routing",), "account_number", MEDIUM),
    (("tax", "id"), "tax_id", HIGH),
    (("tax", "number"), "tax_id", HIGH),
    (("ein",), "tax_id", HIGH),
    (("tin",), "tax_id", MEDIUM),
    (("employee", "number"), "person_number", MEDIUM),
    (("member", "number"), "person_number", MEDIUM),
    (("patient", "number"), "person_number", MEDIUM),
    (("salary",), "financial_amount", HIGH),
    (("income",), "financial_amount", HIGH),
)
# Short words that are parts of a name only in a table that holds people (patient.first, patient.maiden).
_NAME_PARTS = {"first": "first_name", "given": "first_name", "last": "last_name", "family": "last_name",
               "maiden": "name", "middle": "name", "surname": "last_name"}  # fmt: skip
# Tables whose `name` is a thing's name, not a person's: only content (dictionary hits) says otherwise.
CATALOGUE_WORDS = frozenset(
    _words(
        """category categories genre genres product products course courses tag tags brand brands department
    departments region regions country countries language languages currency currencies type types status
    statuses role roles plan plans skill skills subject subjects topic topics store stores shop shops
    warehouse warehouses location locations vendor vendors supplier suppliers company companies partner
    partners team teams group groups organization organizations org school schools university
    universities institution institutions catalog catalogue item items feature features flag flags
    permission permissions setting settings city cities state states event events"""
    )
)
# Classes that an integer column may really hold (an SSN stored as a number); any other class named on an
# integer key (`address_id`, `user_id`) describes what the key points at, not what it holds.
_NUMERIC_CLASSES = frozenset(
    {"ssn", "tax_id", "account_number", "phone", "fax", "medical_record_number", "card_number",
     "health_plan_beneficiary_number", "certificate_license_number", "financial_amount"}
)  # fmt: skip
_KEY_WORDS = frozenset({"id", "ids", "uid", "uuid", "guid", "key", "pk", "fk"})
# Tables whose rows are people, whatever their columns: `first` and `last` there are name parts.
PEOPLE_WORDS = frozenset(
    _words(
        """patient patients person persons people user users customer customers member members employee
    employees staff student students learner learners contact contacts client clients applicant applicants
    guardian guardians subscriber subscribers beneficiary beneficiaries"""
    )
)
_PERSON_CLASSES = frozenset(
    {"email", "phone", "ssn", "first_name", "last_name", "name", "date_of_birth", "postal_address"}
)


@dataclass(frozen=True)
class Finding:
    """One piece of evidence: the class it points at, how strong, and a short, value-free reason."""

    cls: str
    confidence: str
    reason: str


def is_key(column: Column, table: Table) -> bool:
    """A surrogate key: an integer or uuid column that is (part of) a primary or foreign key, or is named
    like one (`*_id`). Such a column identifies a row, and its rule must match the key it references."""
    if column.kind not in (Kind.INTEGER, Kind.UUID):
        return False
    in_fk = any(column.name in fk.columns for fk in table.foreign_keys)
    words = split_words(column.name)
    return column.name in table.primary_key or in_fk or bool(words and words[-1] in _KEY_WORDS)


def is_catalogue(table: Table) -> bool:
    return bool(set(split_words(table.name)) & CATALOGUE_WORDS)


def by_name(column: Column, table: Table) -> Finding | None:
    """The class the name (and type) suggests, or None."""
    words = split_words(column.name)
    found = _rule(words)
    if is_key(column, table) and (found is None or found.cls not in _NUMERIC_CLASSES):
        return Finding("key", HIGH, "name and type: integer or uuid key")
    if found is None and Kind.INET in (column.kind, column.element_kind):
        return Finding("ip_address", HIGH, f"type {column.data_type}")
    if found is None and words == ["name"]:
        if is_catalogue(table):
            return None  # category.name, product.name: a thing's name
        return Finding("name", MEDIUM, "name: name")
    if found is None and len(words) == 1 and words[0] in _NAME_PARTS and person_like(table, column):
        return Finding(_NAME_PARTS[words[0]], MEDIUM, f"name: {words[0]} in a table of people")
    if found is None and "name" in words and person_like(table, column) and not is_catalogue(table):
        return Finding("name", LOW, "name: a name in a table of people")
    if found and found.cls == "date_of_birth" and column.kind not in (Kind.DATE, Kind.TIMESTAMP, Kind.TEXT):
        return None
    return found


def _rule(words: list[str]) -> Finding | None:
    for needed, cls, confidence in _RULES:
        if all(w in words for w in needed):
            return Finding(cls, confidence, "name: " + " ".join(words))
    return None


def person_like(table: Table, column: Column | None = None) -> bool:
    """A table of people: named so (patients, users), or with at least two other columns whose names say
    they hold a person's details."""
    if set(split_words(table.name)) & PEOPLE_WORDS:
        return True
    hits = sum(
        1
        for c in table.columns
        if c is not column and (f := _rule(split_words(c.name))) is not None and f.cls in _PERSON_CLASSES
    )
    return hits >= 2
