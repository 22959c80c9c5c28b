"""The rows of the demo "production" database, a realistic, deterministic online learning platform, made
without any database: `tables(learners, seed)` yields each table's rows in load order, and an engine's demo
loader (deid.backends.<engine>.demo) writes them.

The same arguments give the same rows: every value comes from one `random.Random(seed)` and one seeded Faker,
consumed in a fixed order, and times count from the fixed `NOW`, never from the clock. Faker only builds
small pools (names, streets, ...) that the Random instance combines: one Faker call per value is far too slow
for 100,000 learners. As in real production data, identifiers also hide in JSON documents, lists and free
text. Values are plain Python: str, int, bool, Decimal, date, datetime (UTC), bytes, None, and a dict (a JSON
document) or a list of str (an array where the engine has arrays, else JSON), which each loader spells for its
engine.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import NamedTuple

from faker import Faker

# "Today" for the generated data: fixed, so that reseeding next year gives the same database.
NOW = int(datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp())
LAUNCH = int(datetime(2017, 1, 2, tzinfo=UTC).timestamp())
DAY = 86_400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

INSTRUCTORS, COURSES, PARTNER_STAFF, CATEGORIES = 50, 200, 30, 12
DEFAULT_SEED = 20261128

LEARNER_COLUMNS = (
    "id", "email", "first_name", "last_name", "date_of_birth", "phone", "street_address", "city", "state",
    "zip", "ssn", "password_hash", "last_login_ip", "signup_at", "is_test_account", "profile", "tags",
    "accessibility_notes", "updated_at",
)  # fmt: skip

# Static test data: labelled fake, identical whatever the seed; integration tests rely on these values.
TEST_CARD_PAN = "4242424242424242"
TEST_ACCOUNTS = tuple(
    {
        "id": n,
        "email": f"qa+{n}@test.learners.example",
        "first_name": "Test",
        "last_name": f"Learner{n}",
        "date_of_birth": date(1990, 1, n),
        "phone": f"(202) 555-010{n}",
        "street_address": f"{n} Test Way",
        "city": "Testville",
        "state": "CA",
        "zip": "94105",
        # 987-65-4320 to 987-65-4329 are reserved by the SSA for advertising: never a person's number.
        "ssn": f"987-65-432{n}",
        "password_hash": "$2b$12$" + "qa" * 26 + "Q",
        "last_login_ip": f"192.0.2.{n}",
        "signup_at": datetime(2016, 12, 15, n, tzinfo=UTC),
        "is_test_account": True,
        "profile": {"contact": {"email": f"qa+{n}@test.learners.example"}, "preferences": {"language": "en"}},
        "tags": ["qa", "static-test-data"],
        "accessibility_notes": None,
        "updated_at": datetime(2016, 12, 15, n, tzinfo=UTC),
    }
    for n in range(1, 6)
)
TEST_COURSES = {n: (n, n + 1) for n in range(1, 6)}  # test account id -> the (paid) courses it is enrolled in
TEST_ACCOMMODATION = 3  # the test account that has an accommodation record

# fmt: off
# HIPAA Safe Harbor: ZIP3 areas of 20,000 people or fewer (must become 000); a few learners live there.
RESTRICTED_ZIP3 = {
    "036": "NH", "059": "MT", "063": "CT", "102": "NY", "203": "DC", "556": "MN", "692": "NE", "790": "TX",
    "821": "WY", "823": "WY", "830": "WY", "831": "WY", "878": "NM", "879": "NM", "884": "NM", "890": "NV",
    "893": "NV",
}
# Rough population in 100,000s, so that learners cluster where people live.
STATE_WEIGHTS = {
    "AL": 50, "AK": 7, "AZ": 72, "AR": 30, "CA": 390, "CO": 58, "CT": 36, "DE": 10, "DC": 7, "FL": 222,
    "GA": 109, "HI": 14, "ID": 19, "IL": 126, "IN": 68, "IA": 32, "KS": 29, "KY": 45, "LA": 46, "ME": 14,
    "MD": 62, "MA": 70, "MI": 100, "MN": 57, "MS": 29, "MO": 62, "MT": 11, "NE": 20, "NV": 32, "NH": 14,
    "NJ": 93, "NM": 21, "NY": 196, "NC": 107, "ND": 8, "OH": 118, "OK": 40, "OR": 42, "PA": 130, "RI": 11,
    "SC": 53, "SD": 9, "TN": 70, "TX": 300, "UT": 34, "VT": 6, "VA": 87, "WA": 78, "WV": 18, "WI": 59,
    "WY": 6,
}
MAIL_PROVIDERS = {
    "gmail.com": 40, "yahoo.com": 12, "outlook.com": 8, "hotmail.com": 6, "icloud.com": 6, "aol.com": 3,
    "comcast.net": 2, "protonmail.com": 1, "msn.com": 1, "att.net": 1, "*company": 15, "*edu": 5,
}
TOPICS = (
    "Python", "Data Science", "Machine Learning", "SQL", "Excel", "Project Management", "UX Design",
    "Nursing", "Public Health", "Accounting", "Digital Marketing", "Cybersecurity", "Cloud Computing",
    "Statistics", "Spanish", "Creative Writing", "Psychology", "Java", "Web Development", "Leadership",
    "Graphic Design", "Personal Finance", "Supply Chain", "Medical Terminology", "Biology", "Calculus",
)
TITLE_FORMS = (
    "Introduction to {}", "{} for Beginners", "Advanced {}", "{} Fundamentals", "Applied {}",
    "{} in Practice", "Mastering {}", "{}: A Complete Guide", "Professional Certificate in {}",
)
PRICES = tuple(Decimal(p) for p in (
    "19.99", "29.00", "39.00", "49.00", "79.00", "99.00", "149.00", "199.00", "299.00", "399.00",
))
UNIVERSITY_FORMS = (
    "University of {s}", "{l} University", "{c} Community College", "{s} State University", "{l} College",
)
DEGREES = (
    "B.S. Computer Science", "B.A. Psychology", "B.S. Nursing", "MBA", "B.A. English", "M.S. Data Science",
    "Associate of Arts", "B.S. Biology", "M.Ed.", "B.B.A. Finance", "Ph.D. Chemistry", "M.P.H.",
    "B.S. Mechanical Engineering", "A.A.S. Paralegal Studies",
)
TAGS = (
    "career-switcher", "veteran", "employer-sponsored", "k12-teacher", "first-gen", "returning-learner",
    "financial-aid", "scholarship", "mobile-only", "beta-tester", "enterprise", "alumni",
)
CONDITIONS = (
    "ADHD", "Dyslexia", "Low vision", "Bilateral hearing loss", "Generalized anxiety disorder",
    "Type 1 diabetes; needs breaks during timed exams", "Epilepsy", "Chronic migraine",
    "Multiple sclerosis", "Post-concussion syndrome", "Autism spectrum disorder", "PTSD",
    "Rheumatoid arthritis; limited typing", "Crohn's disease",
)
NOTES = (
    "Uses a screen reader (JAWS); please provide transcripts.", "Needs 1.5x time on quizzes.",
    "Prefers audio versions of readings.", "Relies on captions for every video.",
    "High-contrast mode and large fonts, please.", "Cannot use a proctoring webcam for long sessions.",
)
# Free text that repeats the learner's own contact details: leaks that a scrub has to catch.
NOTE_LEAKS = (
    "Please email me at {email} before live sessions.", "If the proctor needs me, call {phone}.",
    "My doctor's letter was sent from {email}.",
)
REFUND_REASONS = (
    "Duplicate charge", "Course not as described", "Accidental purchase", "Financial hardship",
    "Enrolled in the wrong course", "Requested by learner via {email}", "Chargeback dispute",
)
LANGUAGES = ("en", "en", "en", "en", "es", "es", "zh", "fr", "vi", "ko")
TIMEZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Phoenix",
    "America/Anchorage", "Pacific/Honolulu",
)
ACTIONS = {
    "login": 50, "login_failed": 10, "password_reset": 10, "profile_update": 15, "email_change": 5,
    "data_export": 5, "mfa_enabled": 5,
}
AREA_CODES = tuple(a for a in range(201, 990) if a % 100 != 11 and a // 10 % 10 != 9)
PUBLIC_OCTETS = tuple(o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 192, 198, 203))
BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# fmt: on


def luhn_digit(body: str) -> str:
    """The check digit that makes `body` + digit pass the Luhn test."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str(-total % 10)


def _cumulative(weights: Iterable[int]) -> list[int]:
    out, total = [], 0
    for w in weights:
        total += w
        out.append(total)
    return out


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _day(seconds: int) -> date:
    return date.fromordinal(EPOCH_ORDINAL + seconds // DAY)


class Gen:
    """The random source, the Faker pools, and the small value makers built on them."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        fake = Faker("en_US")
        fake.seed_instance(seed)
        self.first_names = [fake.first_name() for _ in range(2000)]
        self.last_names = [fake.last_name() for _ in range(2000)]
        self.streets = [fake.street_name() for _ in range(3000)]
        self.cities = [fake.city() for _ in range(1500)]
        self.states = list(STATE_WEIGHTS)
        self.state_cum = _cumulative(STATE_WEIGHTS.values())
        self.zips = {s: [fake.zipcode_in_state(s) for _ in range(60)] for s in self.states}
        self.companies = [fake.domain_name() for _ in range(300)]
        self.universities = [
            fake.random_element(UNIVERSITY_FORMS).format(s=fake.state(), l=fake.last_name(), c=fake.city())
            for _ in range(300)
        ]
        self.user_agents = [fake.user_agent() for _ in range(200)]
        self.jobs = [fake.job() for _ in range(INSTRUCTORS)]
        self.urls = [fake.url() for _ in range(INSTRUCTORS)]
        self.providers = list(MAIL_PROVIDERS)
        self.provider_cum = _cumulative(MAIL_PROVIDERS.values())
        self.emails: set[str] = {a["email"] for a in TEST_ACCOUNTS}  # only for uniqueness, never iterated
        self.ssns: set[str] = {a["ssn"] for a in TEST_ACCOUNTS}

    def name(self) -> tuple[str, str]:
        return self.rnd.choice(self.first_names), self.rnd.choice(self.last_names)

    def email(self, first: str, last: str, domain: str | None = None) -> str:
        r = self.rnd
        f, la = _slug(first), _slug(last)
        if domain is None:
            domain = r.choices(self.providers, cum_weights=self.provider_cum)[0]
            if domain == "*company":
                domain = r.choice(self.companies)
            elif domain == "*edu":
                domain = _slug(r.choice(self.universities))[:16] + ".edu"
        form = r.randrange(7)
        local = (f"{f}.{la}", f"{f}{la}", f"{f[0]}{la}", f"{f}_{la}", f"{la}.{f}",
                 f"{f}{r.randint(1, 99)}", f"{f}.{la}{r.randint(60, 2009)}")[form]  # fmt: skip
        address = f"{local}@{domain}"
        while address in self.emails:
            address = f"{local}{r.randint(1, 9999)}@{domain}"
        self.emails.add(address)
        return address

    def phone(self) -> str:
        r = self.rnd
        area, exch, line = r.choice(AREA_CODES), r.randint(200, 999), r.randint(0, 9999)
        form = r.random()
        if form < 0.4:
            return f"({area}) {exch}-{line:04d}"
        if form < 0.7:
            return f"{area}-{exch}-{line:04d}"
        if form < 0.85:
            return f"+1-{area}-{exch}-{line:04d}"
        if form < 0.97:
            return f"{area}.{exch}.{line:04d}"
        return f"+1 ({area}) {exch}-{line:04d} x{r.randint(100, 9999)}"

    def address(self) -> tuple[str, str, str, str]:
        """(street, city, state, zip): ZIP+4 sometimes, and now and then a restricted ZIP3 area."""
        r = self.rnd
        street = f"{r.randint(1, 19999)} {r.choice(self.streets)}"
        if r.random() < 0.25:
            street += r.choice((" Apt. ", " Suite ", " Unit ", " #")) + str(r.randint(1, 999))
        if r.random() < 0.02:
            zip3 = r.choice(list(RESTRICTED_ZIP3))
            state, zip5 = RESTRICTED_ZIP3[zip3], f"{zip3}{r.randint(0, 99):02d}"
        else:
            state = r.choices(self.states, cum_weights=self.state_cum)[0]
            zip5 = r.choice(self.zips[state])
        zip_ = f"{zip5}-{r.randint(1, 9999):04d}" if r.random() < 0.2 else zip5
        return street, r.choice(self.cities), state, zip_

    def ssn(self) -> str:
        """A distinct, well-formed SSN that the SSA could issue (area not 000, 666 or 9xx)."""
        r = self.rnd
        while True:
            area = r.randint(1, 899)
            value = f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"
            if area != 666 and value not in self.ssns:
                self.ssns.add(value)
                return value

    def ip(self) -> str:
        r = self.rnd
        if r.random() < 0.1:
            groups = ":".join(f"{r.getrandbits(16):x}" for _ in range(3))
            return f"2600:{groups}::{r.getrandbits(16):x}"
        return f"{r.choice(PUBLIC_OCTETS)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def device_id(self) -> str:
        r = self.rnd
        if r.random() < 0.5:  # iOS advertising identifier
            h = f"{r.getrandbits(128):032X}"
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        return f"{r.getrandbits(64):016x}"  # Android ID

    def card_pan(self) -> str:
        """A Luhn-valid number with a real brand prefix: Visa, Mastercard, Amex (15 digits) or Discover."""
        r = self.rnd
        brand = r.random()
        if brand < 0.55:
            prefix, length = "4", 16
        elif brand < 0.83:
            prefix, length = str(r.randint(51, 55)), 16
        elif brand < 0.93:
            prefix, length = r.choice(("34", "37")), 15
        else:
            prefix, length = "6011", 16
        body = prefix + "".join(r.choices("0123456789", k=length - 1 - len(prefix)))
        return body + luhn_digit(body)

    def password_hash(self) -> str:
        return "$2b$12$" + "".join(self.rnd.choices(BCRYPT_ALPHABET, k=53))

    def between(self, start: int, end: int, skew: float = 1.0) -> int:
        """A time in [start, end]; skew < 1 favours the end, > 1 the start."""
        return start + int((end - start) * self.rnd.random() ** skew)


class Learner(NamedTuple):
    """What later tables need to know about a learner."""

    id: int
    email: str
    phone: str | None
    zip5: str
    ip: str | None
    signup: int
    born: int
    accommodation: bool
    test: bool


class Enrollment(NamedTuple):
    at: int
    learner: Learner
    course_id: int
    status: str
    refunded: bool


# Tables, in load order. Each function yields rows in its table's column order (see COLUMNS).


def partner_staff(g: Gen) -> Iterator[tuple]:
    r = g.rnd
    partners = [(name, _slug(name)[:14] + ".edu") for name in r.sample(g.universities, 5)]
    for i in range(1, PARTNER_STAFF + 1):
        partner, domain = partners[i % len(partners)]
        first, last = g.name()
        license_ = None
        if r.random() < 0.4:  # clinicians
            kind = r.choice(("MD", "RN", "NP", "PA", "OT"))
            license_ = f"{r.choice(g.states)}-{kind}{r.randint(100000, 999999)}"
        badge = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + r.randbytes(48)  # a JPEG header, then noise
        contact = (g.email(first, last, domain), g.phone(), f"E{r.randint(100000, 999999)}")
        yield (i, partner, f"{first} {last}", *contact, license_, badge, f"pst_{r.getrandbits(160):040x}")


def instructors(g: Gen) -> Iterator[tuple]:
    r = g.rnd
    for i in range(1, INSTRUCTORS + 1):
        first, last = g.name()
        email = g.email(first, last)
        # Sole proprietors are paid against their SSN, companies against an EIN.
        tax_id = g.ssn() if r.random() < 0.6 else f"{r.randint(10, 99)}-{r.randint(1000000, 9999999)}"
        website = g.urls[i - 1] if r.random() < 0.7 else None
        hired = _day(g.between(LAUNCH - 200 * DAY, NOW - 30 * DAY))
        bio = f"{first} {last} has {r.randint(3, 30)} years of experience as a {g.jobs[i - 1].lower()}."
        if r.random() < 0.3:
            bio += f" Questions about the course? Write to {email}."
        account = str(r.randint(10**9, 10**12 - 1))
        yield (i, email, f"{first} {last}", bio, website, account, tax_id, hired)


def courses(g: Gen) -> list[tuple]:
    """Courses 1-6 are published and paid: the static test accounts enroll there."""
    r = g.rnd
    rows = []
    for i in range(1, COURSES + 1):
        title = r.choice(TITLE_FORMS).format(r.choice(TOPICS))
        price = r.choice(PRICES) if i <= 6 or r.random() >= 0.15 else Decimal("0.00")
        level = r.choices(("beginner", "intermediate", "advanced"), (5, 3, 2))[0]
        rows.append((i, title, r.randint(1, INSTRUCTORS), price, level, i <= 6 or r.random() < 0.9))
    return rows


def learner_rows(g: Gen, n: int, people: list[Learner]) -> Iterator[tuple]:
    """Learner rows, ids in signup order; appends each learner to `people` for the later tables."""
    for a in TEST_ACCOUNTS:
        signup = int(a["signup_at"].timestamp())
        accommodation = a["id"] == TEST_ACCOMMODATION
        people.append(Learner(a["id"], a["email"], a["phone"], a["zip"], a["last_login_ip"], signup, 1990,
                              accommodation, True))  # fmt: skip
        yield tuple(a[c] for c in LEARNER_COLUMNS)
    r = g.rnd
    signups = sorted(g.between(LAUNCH, NOW - DAY, skew=0.6) for _ in range(n - len(TEST_ACCOUNTS)))
    for i, signup in enumerate(signups, start=len(TEST_ACCOUNTS) + 1):
        first, last = g.name()
        email = g.email(first, last)
        phone = g.phone() if r.random() < 0.92 else None
        street, city, state, zip_ = g.address()
        ip = g.ip() if r.random() < 0.95 else None
        accommodation = r.random() < 0.05
        dob = _day(signup - r.randint(16 * 365, 75 * 365) * DAY)
        people.append(Learner(i, email, phone, zip_[:5], ip, signup, dob.year, accommodation, False))
        notes = None
        if accommodation or r.random() < 0.08:
            notes = r.choice(NOTES)
            if r.random() < 0.3:
                notes += " " + r.choice(NOTE_LEAKS).format(email=email, phone=phone or "me on Slack")
        contact = {"email": email, "phone": phone}
        if r.random() < 0.1:
            contact["secondary_email"] = g.email(first, last, "gmail.com")
        prefs = {
            "language": r.choice(LANGUAGES),
            "timezone": r.choice(TIMEZONES),
            "newsletter": r.random() < 0.4,
        }
        tags = r.sample(TAGS, r.choices((0, 1, 2, 3), (50, 30, 15, 5))[0])
        ssn = g.ssn() if r.random() < 0.7 else None
        yield (i, email, first, last, dob, phone, street, city, state, zip_, ssn, g.password_hash(), ip,
               _ts(signup), False, {"contact": contact, "preferences": prefs}, tags, notes,
               _ts(g.between(signup, NOW)))  # fmt: skip


def degrees(g: Gen, people: list[Learner]) -> Iterator[tuple]:
    r = g.rnd
    next_id = 1
    for p in people:
        if p.test:
            continue
        for _ in range(r.choices((0, 1, 2), (45, 40, 15))[0]):
            diploma = f"{r.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{r.randint(10**7, 10**8 - 1)}"
            year = min(2026, p.born + r.randint(20, 40))
            diploma = diploma if r.random() < 0.8 else None
            yield (next_id, p.id, r.choice(DEGREES), r.choice(g.universities), year, diploma)
            next_id += 1


def enrollments(g: Gen, people: list[Learner], course_rows: list[tuple]) -> list[Enrollment]:
    """All enrollments in time order (ids follow that order, as in production); popular courses get more."""
    r = g.rnd
    published = [c[0] for c in course_rows if c[5]]
    popularity = _cumulative(1_000_000 // (rank + 5) for rank in range(len(published)))
    paid = {c[0] for c in course_rows if c[3] > 0}
    out = []
    for p in people:
        if p.test:
            at = int(datetime(2026, 1, p.id, 9, tzinfo=UTC).timestamp())
            out.extend(
                Enrollment(at + k * 3600, p, c, "active", False) for k, c in enumerate(TEST_COURSES[p.id])
            )
            continue
        chosen: list[int] = []
        for _ in range(r.choices(range(9), (5, 15, 20, 22, 17, 10, 6, 3, 2))[0]):
            course = r.choices(published, cum_weights=popularity)[0]
            if course not in chosen:
                chosen.append(course)
        for course in chosen:
            at = g.between(p.signup, NOW, skew=2.0)
            refunded = course in paid and r.random() < 0.03
            if refunded:
                status = "refunded"
            elif NOW - at < 180 * DAY:
                status = r.choices(("active", "completed", "dropped"), (75, 15, 10))[0]
            else:
                status = r.choices(("active", "completed", "dropped"), (15, 55, 30))[0]
            out.append(Enrollment(at, p, course, status, refunded))
    out.sort(key=lambda e: (e.at, e.learner.id, e.course_id))
    return out


def enrollment_rows(enrolled: list[Enrollment]) -> Iterator[tuple]:
    for i, e in enumerate(enrolled, start=1):
        yield (i, e.learner.id, e.course_id, _ts(e.at), e.status)


def payments(
    g: Gen, enrolled: list[Enrollment], catalog: list[tuple], refunds: list[tuple]
) -> Iterator[tuple]:
    """One payment per paid enrollment, invoice_number left to its DEFAULT; appends refunds to `refunds`."""
    r = g.rnd
    price = {c[0]: c[3] for c in catalog}
    cards: dict[int, list[str]] = {}
    payment_id = 0
    for enrollment_id, e in enumerate(enrolled, start=1):
        amount = price[e.course_id]
        if amount == 0:
            continue
        payment_id += 1
        p = e.learner
        if p.test:
            pan, currency = TEST_CARD_PAN, "USD"
        else:
            if p.id not in cards:
                cards[p.id] = [g.card_pan() for _ in range(r.choices((1, 2), (80, 20))[0])]
            pan = r.choice(cards[p.id])
            currency = r.choices(("USD", "CAD", "GBP", "EUR"), (94, 3, 2, 1))[0]
            if r.random() < 0.2:  # coupon
                amount = (amount * r.randint(50, 90) / 100).quantize(Decimal("0.01"))
        paid_at = e.at + r.randint(5, 600)
        billing_zip = p.zip5 if p.test or r.random() < 0.9 else r.choice(g.zips[r.choice(g.states)])
        if e.refunded:
            refund = (amount / 2).quantize(Decimal("0.01")) if r.random() < 0.15 else amount
            reason = r.choice(REFUND_REASONS).format(email=p.email)
            refunds.append((payment_id, refund, reason, _ts(min(NOW, paid_at + r.randint(1, 30) * DAY))))
        yield (payment_id, enrollment_id, p.id, amount, currency, pan[-4:], pan, billing_zip, _ts(paid_at))


def refund_rows(refunds: list[tuple]) -> Iterator[tuple]:
    """The refunds the payments made, numbered: read after the payments."""
    for i, refund in enumerate(refunds, start=1):
        yield (i, *refund)


def course_progress(g: Gen, enrolled: list[Enrollment]) -> Iterator[tuple]:
    """Snapshots on distinct days within a year of enrolling; completed courses end at 100%."""
    r = g.rnd
    snapshots = {"active": (1, 4), "completed": (2, 5), "dropped": (1, 2), "refunded": (0, 1)}
    devices: dict[int, list[str]] = {}
    for e in enrolled:
        p = e.learner
        start = e.at // DAY
        span = min(start + 365, NOW // DAY) - start + 1
        days = sorted(r.sample(range(span), min(span, r.randint(*snapshots[e.status]))))
        percents = sorted(r.randint(1, 9999) for _ in days)
        if e.status == "completed" and percents:
            percents[-1] = 10000
        if p.id not in devices:
            devices[p.id] = [g.device_id() for _ in range(r.randint(1, 3))]
        for day, pct in zip(days, percents, strict=True):
            ip = p.ip if p.ip and r.random() < 0.7 else g.ip()
            recorded_on, device = _day((start + day) * DAY), r.choice(devices[p.id])
            yield (p.id, e.course_id, recorded_on, Decimal(pct) / 100, device, ip)


def accommodations(g: Gen, people: list[Learner]) -> Iterator[tuple]:
    r = g.rnd
    for p in people:
        if not p.accommodation:
            continue
        if p.test:
            yield (p.id, "Static test condition", f"MRN-TEST-{p.id}", f"TEST{p.id:09d}", 1, date(2017, 1, 2))
            continue
        mrn, plan = (
            f"MRN-{r.randint(10**7, 10**8 - 1)}",
            f"{r.choice('ABCHJKMUW')}{r.randint(10**8, 10**9 - 1)}",
        )
        approved = _day(g.between(p.signup, min(NOW, p.signup + 60 * DAY)))
        yield (p.id, r.choice(CONDITIONS), mrn, plan, r.randint(1, PARTNER_STAFF), approved)


def audit_events(g: Gen, people: list[Learner]) -> list[tuple]:
    """About one event per learner, in time order; some details repeat the learner's email."""
    r = g.rnd
    actions, cum = list(ACTIONS), _cumulative(ACTIONS.values())
    rows = []
    for p in people:
        for _ in range(r.choices((0, 1, 2, 3), (30, 45, 20, 5))[0]):
            action = r.choices(actions, cum_weights=cum)[0]
            details = {"learner_id": p.id, "user_agent": r.choice(g.user_agents),
                       "session_id": f"{r.getrandbits(96):024x}"}  # fmt: skip
            if action == "email_change":
                details["old_email"] = p.email
            elif action == "login_failed":
                details["attempted_email"] = p.email
            actor = p.email if action != "data_export" or r.random() < 0.5 else "support@learners.example"
            rows.append((g.between(p.signup, NOW), actor, action, details, p.ip or g.ip()))
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    return [(_ts(at), actor, action, d, ip) for at, actor, action, d, ip in rows]


def categories() -> list[tuple]:
    return [(i, topic) for i, topic in enumerate(TOPICS[:CATEGORIES], start=1)]


def _uuid_text(r: random.Random) -> str:
    """A version-4 UUID as text. Validation's PII patterns (deid.expect.pii) read a run of ten digits in a
    UUID as a phone number, so the demo's keys have no run of seven digits (dashes aside)."""
    while True:
        h = f"{r.getrandbits(128):032x}"
        h = h[:12] + "4" + h[13:16] + "89ab"[int(h[16], 16) % 4] + h[17:]
        if not re.search("[0-9]{7}", h):
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def legacy_contacts(g: Gen, people: list[Learner]) -> Iterator[tuple]:
    """One contact per fifth learner (the static test accounts aside), under the old CRM's column names."""
    r = g.rnd
    for p in people[len(TEST_ACCOUNTS) :: 5]:
        first, last = g.name()
        phone = g.phone()
        extra = {"callback": {"phone": phone, "best_time": r.choice(("morning", "evening"))},
                 "source": r.choice(("web", "phone", "fair"))}  # fmt: skip
        notes = g.email(first, last) if r.random() < 0.9 else None
        yield (_uuid_text(r), p.email, p.email if r.random() < 0.8 else None, phone, g.password_hash(), notes,
               g.ssn(), extra, r.randint(1, CATEGORIES), r.randint(0, 400),
               Decimal(r.randint(0, 50000)) / 100, r.choice(("beginner", "intermediate", "advanced")),
               _ts(g.between(LAUNCH - 700 * DAY, LAUNCH)))  # fmt: skip


# fmt: off
# Each table's columns, in the order its rows give them; keyed "schema.table" as the production schema names
# the table (an engine without schemas puts every table in its one namespace: its loader says where).
COLUMNS: dict[str, tuple[str, ...]] = {
    "partners.partner_staff": ("id", "partner_name", "full_name", "work_email", "work_phone",
                               "employee_number", "medical_license_number", "badge_photo", "api_token"),
    "public.instructors": ("id", "email", "name", "bio", "website", "payout_account_number", "tax_id",
                           "hired_on"),
    "public.courses": ("id", "title", "instructor_id", "price", "level", "published"),
    "public.learners": LEARNER_COLUMNS,
    "public.degrees": ("id", "learner_id", "degree", "institution", "graduation_year", "diploma_number"),
    "public.enrollments": ("id", "learner_id", "course_id", "enrolled_at", "status"),
    "public.payments": ("id", "enrollment_id", "learner_id", "amount", "currency", "card_last4", "card_pan",
                        "billing_zip", "paid_at"),
    "public.refunds": ("id", "payment_id", "amount", "reason", "refunded_at"),
    "public.course_progress": ("learner_id", "course_id", "recorded_on", "percent_complete", "last_device_id",
                               "client_ip"),
    "public.accommodations": ("learner_id", "condition", "medical_record_number",
                              "health_plan_beneficiary_number", "approved_by_staff_id", "approved_on"),
    "public.audit_events": ("occurred_at", "actor_email", "action", "details", "ip"),
    "public.categories": ("id", "name"),
    "public.legacy_contacts": ("contact_uuid", "user_id", "emailaddress", "phonenumber", "passwordhash",
                               "notes", "ref", "extra", "category_id", "visits", "credit", "tier",
                               "imported_at"),
}
# fmt: on
# The rows supply ids (foreign keys need them); a loader then moves each id counter above them.
ID_TABLES = [t for t, cols in COLUMNS.items() if cols[0] == "id"]


class TableRows(NamedTuple):
    """One table's rows, to be read to the end before the next table is asked for."""

    table: str  # a key of COLUMNS
    columns: tuple[str, ...]
    rows: Iterator[tuple]


def tables(learners: int = 2000, seed: int = DEFAULT_SEED) -> Iterator[TableRows]:
    """Every table's rows, parents first. Later tables are made from what earlier ones drew, so each table's
    rows must be read to the end before the next is asked for (a RuntimeError says so otherwise): the order
    of the draws is what makes a seed give the same rows on every engine.

    `learners` counts all learners, the five static test accounts included (ValueError, at once, for fewer).
    """
    if learners < len(TEST_ACCOUNTS):
        raise ValueError(f"learners must be at least {len(TEST_ACCOUNTS)} (the static test accounts)")
    return _tables(learners, seed)


def _tables(learners: int, seed: int) -> Iterator[TableRows]:
    g = Gen(seed)
    people: list[Learner] = []
    enrolled: list[Enrollment] = []
    refunds: list[tuple] = []
    catalog = courses(g)  # drawn first: enrollments and payments read it
    made = {  # generators run only when read, so each table draws in its turn
        "partners.partner_staff": partner_staff(g),
        "public.instructors": instructors(g),
        "public.courses": iter(catalog),
        "public.learners": learner_rows(g, learners, people),
        "public.degrees": degrees(g, people),
        "public.enrollments": _enroll(g, people, catalog, enrolled),
        "public.payments": payments(g, enrolled, catalog, refunds),
        "public.refunds": refund_rows(refunds),
        "public.course_progress": course_progress(g, enrolled),
        "public.accommodations": accommodations(g, people),
        "public.audit_events": _later(audit_events, g, people),
        "public.categories": iter(categories()),
        "public.legacy_contacts": legacy_contacts(g, people),
    }
    assert list(made) == list(COLUMNS)
    for table, rows in made.items():
        yield TableRows(table, COLUMNS[table], rows)
        if next(rows, None) is not None:
            raise RuntimeError(f"{table}'s rows were not all read before the next table was asked for")


def _enroll(g: Gen, people: list[Learner], catalog: list[tuple], enrolled: list[Enrollment]):
    """The enrollments' rows, drawn when the table is read (after the learners and their degrees)."""
    enrolled.extend(enrollments(g, people, catalog))
    yield from enrollment_rows(enrolled)


def _later(make, *args) -> Iterator[tuple]:
    """The rows of a function that draws everything at once, drawn when the table is read."""
    yield from make(*args)
