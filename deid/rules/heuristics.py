"""Which columns look like they hold an identifier, judged by name and type.

Two uses: a column that looks like one but is kept as is needs a written `reason:`, and the ready-to-paste
YAML for unclassified columns suggests the class. The match is on whole name tokens (`ip_address` is an IP,
`course_name` is not a person's name), so false alarms stay rare; a false alarm costs one `reason:` line.
"""

from __future__ import annotations

import re

from deid.schema import Column, Kind

# Checked in order: the first rule whose tokens all appear in the column's name wins.
_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("email",), "email"),
    (("mail",), "email"),
    (("ssn",), "ssn"),
    (("social", "security"), "ssn"),
    (("fax",), "fax"),
    (("phone",), "phone"),
    (("mobile",), "phone"),
    (("telephone",), "phone"),
    (("cell",), "phone"),
    (("ip",), "ip_address"),
    (("ipaddr",), "ip_address"),
    (("first", "name"), "first_name"),
    (("firstname",), "first_name"),
    (("given", "name"), "first_name"),
    (("last", "name"), "last_name"),
    (("lastname",), "last_name"),
    (("surname",), "last_name"),
    (("family", "name"), "last_name"),
    (("middle", "name"), "name"),
    (("maiden", "name"), "name"),
    (("full", "name"), "name"),
    (("fullname",), "name"),
    (("display", "name"), "name"),
    (("name",), "name"),
    (("password",), "password"),
    (("passwd",), "password"),
    (("pwd",), "password"),
    (("token",), "secret"),
    (("secret",), "secret"),
    (("api", "key"), "secret"),
    (("apikey",), "secret"),
    (("private", "key"), "secret"),
    (("street",), "postal_address"),
    (("address",), "postal_address"),
    (("addr",), "postal_address"),
    (("mrn",), "medical_record_number"),
    (("medical", "record"), "medical_record_number"),
    (("beneficiary",), "health_plan_beneficiary_number"),
    (("health", "plan"), "health_plan_beneficiary_number"),
    (("license",), "certificate_license_number"),
    (("licence",), "certificate_license_number"),
    (("certificate",), "certificate_license_number"),
    (("diploma",), "certificate_license_number"),
    (("vin",), "vehicle_identifier"),
    (("plate",), "vehicle_identifier"),
    (("device",), "device_identifier"),
    (("imei",), "device_identifier"),
    (("serial",), "device_identifier"),
    (("url",), "url"),
    (("website",), "url"),
    (("homepage",), "url"),
    (("photo",), "full_face_photo"),
    (("avatar",), "full_face_photo"),
    (("face",), "full_face_photo"),
    (("fingerprint",), "biometric"),
    (("voiceprint",), "biometric"),
    (("biometric",), "biometric"),
    (("card",), "card_number"),
    (("pan",), "card_number"),
    (("iban",), "account_number"),
    (("account", "number"), "account_number"),
    (("tax", "id"), "tax_id"),
    (("ein",), "tax_id"),
    (("tin",), "tax_id"),
    (("salary",), "financial_amount"),
    (("income",), "financial_amount"),
)
# Names that identify a person without a HIPAA class of their own: they look sensitive, so keeping them needs
# a reason, but the suggestion is a transformer rather than a class.
_DATES_OF_BIRTH = (("dob",), ("birth",), ("birthdate",), ("birthday",))
_ONLY_PERSON_NAMES = {"first", "last", "full", "middle", "maiden", "display", "user", "given", "family"}


def tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [t for t in re.split(r"[^a-zA-Z0-9]+", spaced.lower()) if t]


def suggested_class(column: Column) -> str | None:
    """The policy class a column most likely belongs to, or None when nothing suggests one."""
    words = tokens(column.name)
    for needed, cls in _RULES:
        if all(w in words for w in needed):
            # "name" alone is a person's name only as the whole name or with a person word: not course_name
            if needed == ("name",) and len(words) > 1 and not _ONLY_PERSON_NAMES & set(words):
                continue
            return cls
    if column.kind is Kind.INET or column.element_kind is Kind.INET:
        return "ip_address"
    return None


def looks_like_identifier(column: Column) -> str | None:
    """A short description of why the column looks sensitive, or None."""
    cls = suggested_class(column)
    if cls:
        return cls.replace("_", " ")
    words = tokens(column.name)
    if any(all(w in words for w in needed) for needed in _DATES_OF_BIRTH):
        return "date of birth"
    return None
