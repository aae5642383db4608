"""Development set for the PII and secrets detector: LLM-prompt-like texts with gold spans.

``pii_devset(n, seed)`` returns ``n`` :class:`LabelledText` (support tickets, emails, CRM notes, code and
config snippets, chat messages; ~50-300 words), each with the gold ``(type, start, end)`` of every piece
of personal data or secret in it (types are ``streams.text.findings.PiiType`` values as strings).

How it is made (deterministic for a seed; needs only mimesis and the standard library):
- Sentence templates written for this set hold placeholders such as ``{PERSON}`` or ``{CARD}``; each is
  filled with a fresh value and its offsets recorded. Filler sentences (also written here, no PII) pad a
  text to its drawn length; about a third of the texts hold no PII at all.
- Names (full names, first names after a greeting), street addresses (with city/state/postcode in some),
  phone numbers, emails, cities and company names come from mimesis in the locales en (most), en-gb, de,
  fr, es, it and nl. The detector's name gazetteer is *not* built from mimesis (US census lists), so
  names here are a fair test of it.
- Every other value comes from ``bench.devsets.pii_values``: Luhn-valid card numbers, mod-97-valid IBANs
  (nine countries), SSNs in issued ranges, IPv4/IPv6, provider keys (``sk-proj-``, ``sk-ant-``,
  ``AKIA``, ``ghp_``, ``github_pat_``, ``xoxb-``, ``AIza``, ``sk_live_``, ``glpat-``, ``SG.``, ``hf_``:
  type ``API_KEY``), and ``SECRET``s: JWTs, PEM private-key blocks, ``user:password`` in URLs, AWS secret
  access keys and passwords assigned in config.
- DATE_OF_BIRTH is a date after a birth cue ("DOB", "born on", "date of birth"); dates in other contexts
  appear too, unlabelled.
- Near-misses (order numbers, UUIDs, hashes, version strings, Luhn-failing 16-digit numbers, bad-checksum
  IBANs, placeholder keys such as ``<your-api-key>`` or ``sk-xxxxxxxx``, tracking numbers, timestamps,
  MAC addresses, ticket ids) are mixed into texts with no gold span; :func:`near_miss_texts` gives
  short texts holding one near-miss each.

Gold span conventions: a URL credential is the ``user:password`` part; a password assignment is the
value only; a PEM block is the whole block from ``-----BEGIN`` to ``-----END ...-----``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mimesis import Address, Finance, Locale, Person

from bench.devsets import pii_values as values
from bench.devsets.pii_templates import (
    CHAT_OPENERS,
    CLOSINGS,
    FILLER,
    NEAR_MISS_SENTENCES,
    PII_SENTENCES,
)

__all__ = ["LabelledText", "near_miss_texts", "pii_devset"]

_LOCALES: Final = (Locale.EN,) * 5 + (
    Locale.EN_GB,
    Locale.DE,
    Locale.FR,
    Locale.ES,
    Locale.IT,
    Locale.NL,
)
_PLACEHOLDER: Final = re.compile(r"\{([A-Z0-9_]+)\}")
_NO_PII_SHARE: Final = 0.3


@dataclass(frozen=True, slots=True)
class LabelledText:
    """A text and its gold PII spans ``(type, start, end)``, sorted by start."""

    text: str
    spans: tuple[tuple[str, int, int], ...]


class _Sources:
    """The mimesis providers for every locale used, seeded once per devset."""

    def __init__(self, seed: int) -> None:
        self.person = {
            loc: Person(loc, seed=seed + i) for i, loc in enumerate(dict.fromkeys(_LOCALES))
        }
        self.address = {
            loc: Address(loc, seed=seed + i) for i, loc in enumerate(dict.fromkeys(_LOCALES))
        }
        self.finance = Finance(Locale.EN, seed=seed)


def _street_address(src: _Sources, rng: random.Random, loc: Locale) -> str:
    addr = src.address[loc]
    street = addr.address()
    if rng.random() < 0.3:
        street += rng.choice([", Apt ", ", Suite ", " #", ", Unit "]) + str(rng.randint(2, 999))
    if loc == Locale.EN and rng.random() < 0.6:
        return f"{street}, {addr.city()}, {addr.state(abbr=True)} {addr.zip_code()}"
    if rng.random() < 0.5:
        return f"{street}, {addr.postal_code()} {addr.city()}"
    return street


def _email(src: _Sources, rng: random.Random, loc: Locale) -> str:
    if rng.random() < 0.5:
        return src.person[loc].email()
    first = src.person[Locale.EN].first_name().lower()
    last = src.person[Locale.EN].last_name().lower().replace(" ", "")
    domain = rng.choice(["acme.io", "gmail.com", "northwind.co.uk", "example-corp.com", "web.de"])
    return f"{first}{rng.choice(['.', '_', ''])}{last}@{domain}"


def _phone(src: _Sources, rng: random.Random, loc: Locale) -> str:
    if rng.random() < 0.5:
        return src.person[loc].telephone()
    a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice(
        [f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"+1 {a} {b} {c:04d}", f"{a}.{b}.{c:04d}"]
    )


def _url_credentials(rng: random.Random, src: _Sources) -> tuple[str, str, str]:
    user = rng.choice(["admin", "deploy", "svc_etl", src.person[Locale.EN].first_name().lower()])
    password = "".join(c for c in values.secret_value(rng, "password") if c.isalnum() or c in "!$")
    scheme, host = rng.choice(
        [
            ("postgres", "db.internal:5432/app"),
            ("https", "git.example-corp.com/repo.git"),
            ("mongodb", "cluster0.mongo.net:27017/prod"),
            ("redis", "cache-1:6379/0"),
            ("amqp", "mq.internal:5672"),
        ]
    )
    return f"{scheme}://", f"{user}:{password}", f"@{host}"


_Filler = Callable[[_Sources, random.Random, Locale], "str | tuple[str, str, str]"]

# Placeholder -> (gold type or None, value maker). A maker may return (before, value, after): only
# ``value`` is the gold span.
_MAKERS: Final[dict[str, tuple[str | None, _Filler]]] = {
    "PERSON": ("PERSON", lambda s, r, loc: s.person[loc].full_name()),
    "FIRST": ("PERSON", lambda s, r, loc: s.person[loc].first_name()),
    "EMAIL": ("EMAIL", _email),
    "PHONE": ("PHONE", _phone),
    "IPV4": ("IP_ADDRESS", lambda s, r, loc: values.ipv4(r)),
    "IPV6": ("IP_ADDRESS", lambda s, r, loc: values.ipv6(r)),
    "ADDRESS": ("STREET_ADDRESS", _street_address),
    "DOB": ("DATE_OF_BIRTH", lambda s, r, loc: values.date_text(r, (1940, 2006))),
    "CARD": ("CREDIT_CARD", lambda s, r, loc: values.card_number(r)),
    "IBAN": ("IBAN", lambda s, r, loc: values.iban(r)),
    "SSN": ("US_SSN", lambda s, r, loc: values.ssn(r)),
    "KEY": ("API_KEY", lambda s, r, loc: values.provider_key(r)),
    "JWT": ("SECRET", lambda s, r, loc: values.secret_value(r, "jwt")),
    "PEM": ("SECRET", lambda s, r, loc: values.secret_value(r, "pem")),
    "PASSWORD": ("SECRET", lambda s, r, loc: values.secret_value(r, "password")),
    "AWS_SECRET": ("SECRET", lambda s, r, loc: values.secret_value(r, "aws_secret")),
    "URL_CREDS": ("SECRET", lambda s, r, loc: _url_credentials(r, s)),
    # Not PII: context that a detector must not flag.
    "DATE": (None, lambda s, r, loc: values.date_text(r, (2019, 2025))),
    "CITY": (None, lambda s, r, loc: s.address[loc].city()),
    "COMPANY": (None, lambda s, r, loc: s.finance.company()),
    "NUM": (None, lambda s, r, loc: str(r.randint(2, 5000))),
    **{
        f"NEAR_{kind.upper()}": (None, (lambda k: lambda s, r, loc: values.near_miss(r, k))(kind))
        for kind in values.NEAR_MISS_KINDS
    },
}


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[tuple[str, int, int]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def fill(self, template: str, src: _Sources, rng: random.Random, loc: Locale) -> None:
        pos = 0
        for match in _PLACEHOLDER.finditer(template):
            self.add(template[pos : match.start()])
            gold, make = _MAKERS[match.group(1)]
            made = make(src, rng, loc)
            before, value, after = made if isinstance(made, tuple) else ("", made, "")
            self.add(before)
            if gold is not None:
                self.spans.append((gold, self.length, self.length + len(value)))
            self.add(value)
            self.add(after)
            pos = match.end()
        self.add(template[pos:])

    def words(self) -> int:
        return sum(len(p.split()) for p in self.parts)


def _one_text(src: _Sources, rng: random.Random, target_words: int) -> LabelledText:
    genre = rng.choice(sorted(FILLER))
    loc = rng.choice(_LOCALES)
    b = _Builder()
    b.fill(rng.choice(CHAT_OPENERS[genre]), src, rng, loc)
    with_pii = rng.random() >= _NO_PII_SHARE
    pii_sentences = rng.sample(PII_SENTENCES[genre], k=min(len(PII_SENTENCES[genre]), 4))
    n_pii = rng.randint(1, len(pii_sentences)) if with_pii else 0
    chunks = [("pii", t) for t in pii_sentences[:n_pii]]
    chunks += [("near", rng.choice(NEAR_MISS_SENTENCES)) for _ in range(rng.randint(0, 2))]
    rng.shuffle(chunks)
    for _, template in chunks:
        b.add(" ")
        b.fill(template, src, rng, loc)
        if rng.random() < 0.6:
            b.add(" " + rng.choice(FILLER[genre]))
    filler = list(FILLER[genre])
    while b.words() < target_words:
        if not filler:
            filler = list(FILLER[genre])
        b.add(" " + filler.pop(rng.randrange(len(filler))))
    if with_pii or rng.random() < 0.5:
        b.fill(rng.choice(CLOSINGS[genre]), src, rng, loc)
    return LabelledText("".join(b.parts), tuple(sorted(b.spans, key=lambda s: s[1])))


def pii_devset(
    n: int, seed: int, *, min_words: int = 50, max_words: int = 300
) -> list[LabelledText]:
    """``n`` labelled texts, the same for the same arguments."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words!r}, {max_words!r}")
    rng = random.Random(seed)
    src = _Sources(seed)
    return [_one_text(src, rng, rng.randint(min_words, max_words)) for _ in range(n)]


def near_miss_texts(seed: int, per_kind: int = 20) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs: a short sentence holding one near-miss value, ``per_kind`` of each kind."""
    rng = random.Random(seed)
    src = _Sources(seed)
    out: list[tuple[str, str]] = []
    for kind in values.NEAR_MISS_KINDS:
        for _ in range(per_kind):
            b = _Builder()
            template = rng.choice([t for t in NEAR_MISS_SENTENCES if f"NEAR_{kind.upper()}" in t])
            b.fill(template, src, rng, Locale.EN)
            out.append((kind, "".join(b.parts)))
    return out
