"""Column names as words: `emailaddress` -> email address, `nationalIdNumber` -> national id number.

Owners write names joined up (`phonenumber`), in camelCase, with digits (`addressline1`) and abbreviated
(`dob`). Separators and case changes split first; each remaining piece is then segmented over a small
vocabulary of words that names of identifiers are made of, by dynamic programming: the fewest words win, and
a piece no segmentation fully covers stays whole (an unknown word is never cut into nonsense).
"""

from __future__ import annotations

import re
from functools import cache


def _words(text: str) -> list[str]:
    return text.split()


# Words that identifiers' names are made of, and the everyday words around them that must split cleanly
# (`createdat`, `updatedon`). Two-letter words are listed only where they occur in names (id, ip, zip, ...).
VOCABULARY = frozenset(
    _words(
        """
    email mail e address addr line street city state zip postal post code postcode country
    phone telephone tel mobile cell fax number num no nr
    password passwd pwd pass hash salt secret token key api private public
    first last middle maiden given family sur surname full display nick nickname user username
    name names login logon id ids uid guid uuid account acct ident identifier
    national social security ssn sin tax tin ein
    birth date day dob birthday birthdate born death
    drivers driver license licence passport permit certificate diploma badge
    picture photo image avatar face portrait selfie
    ip ipaddr mac device imei serial vin plate vehicle
    url website homepage web site link
    card pan cvv iban bank routing swift
    medical record mrn health plan beneficiary member insurance patient employee staff customer
    contact home work business personal primary secondary alt other
    created updated deleted modified at on by time stamp timestamp
    category genre product course tag title label description desc type kind status
    price amount total count qty quantity cost fee salary income balance
    note notes comment comments remark remarks memo text body message bio ref reference
    of to from the is has and or in
    business entity row
    """
    )
)
_MAX_WORD = max(len(w) for w in VOCABULARY)


def split_words(name: str) -> list[str]:
    """The words of a column name, lower case: separators, camelCase, digits, then joined-up words."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    words: list[str] = []
    for piece in re.findall(r"[A-Za-z]+|[0-9]+", spaced):
        words.extend([piece] if piece.isdigit() else segment(piece.lower()))
    return words


@cache
def segment(piece: str) -> tuple[str, ...]:
    """`piece` as the fewest vocabulary words that spell it exactly; itself when none do."""
    if piece in VOCABULARY:
        return (piece,)
    # best[i]: the fewest words spelling piece[:i], or None
    best: list[tuple[str, ...] | None] = [()] + [None] * len(piece)
    for end in range(1, len(piece) + 1):
        for start in range(max(0, end - _MAX_WORD), end):
            before = best[start]
            word = piece[start:end]
            if before is None or word not in VOCABULARY:
                continue
            # single letters ("e" of e-mail) only where they start the name: "emailaddress", not "nam e"
            if len(word) == 1 and start != 0:
                continue
            candidate = (*before, word)
            if best[end] is None or len(candidate) < len(best[end]):
                best[end] = candidate
    return best[-1] or (piece,)
