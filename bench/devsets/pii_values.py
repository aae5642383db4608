"""Value generators for the PII development set (``bench.devsets.pii``): one function per kind of value.

Names, street addresses, phones, emails, cities and companies come from mimesis (several locales); every
other value is made here from a seeded :class:`random.Random`: card numbers with a valid Luhn digit for
Visa/Mastercard/Amex/Discover prefixes, IBANs with valid mod-97 check digits for nine countries, SSNs in
the issued ranges, IPv4/IPv6, provider API keys in their published shapes, JWTs, PEM blocks, URL
credentials and password assignments; and the near-misses (values that look like PII but are not): order
numbers, UUIDs, hashes, version strings, Luhn-failing card numbers, IBANs with bad check digits and
placeholder keys. Nothing here is copied from another data set.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from typing import Final

__all__ = [
    "NEAR_MISS_KINDS",
    "bad_iban",
    "card_number",
    "date_text",
    "iban",
    "ipv4",
    "ipv6",
    "luhn_failing_number",
    "near_miss",
    "provider_key",
    "secret_value",
    "ssn",
]

_ALNUM: Final = string.ascii_letters + string.digits
_URLSAFE: Final = _ALNUM + "-_"
_UPPER_DIGITS: Final = string.ascii_uppercase + string.digits
_MONTH_NAMES: Final = (
    "January February March April May June July August September October November December"
)
_MONTHS: Final = tuple(_MONTH_NAMES.split())


def _chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _digits(rng: random.Random, n: int) -> str:
    return _chars(rng, string.digits, n)


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled: these sit at odd positions once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


_CARD_PREFIXES: Final = (("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15))
_CARD_PREFIXES_MORE: Final = (("6011", 16), ("4", 13), ("35", 16))


def _group_card(number: str, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.35:
        return number
    sep = " " if style < 0.8 else "-"
    groups = (4, 6, 5) if len(number) == 15 else (4,) * ((len(number) + 3) // 4)
    parts, i = [], 0
    for g in groups:
        parts.append(number[i : i + g])
        i += g
    return sep.join(p for p in parts if p)


def card_number(rng: random.Random) -> str:
    prefix, length = rng.choice(_CARD_PREFIXES + _CARD_PREFIXES_MORE)
    body = prefix + _digits(rng, length - len(prefix) - 1)
    return _group_card(body + _luhn_digit(body), rng)


def luhn_failing_number(rng: random.Random) -> str:
    body = "4" + _digits(rng, 14)
    wrong = (int(_luhn_digit(body)) + rng.randint(1, 9)) % 10
    return _group_card(body + str(wrong), rng)


# Country -> BBAN layout: 'n' digits, 'a' upper-case letters, 'c' upper-case letters or digits.
_IBAN_LAYOUTS: Final = {
    "DE": "n" * 18,
    "GB": "aaaa" + "n" * 14,
    "FR": "n" * 10 + "c" * 11 + "nn",
    "ES": "n" * 20,
    "IT": "a" + "n" * 10 + "c" * 12,
    "NL": "aaaa" + "n" * 10,
    "CH": "n" * 5 + "c" * 12,
    "BE": "n" * 12,
    "PL": "n" * 24,
}


def _iban_check(country: str, bban: str) -> int:
    rearranged = bban + country + "00"
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return 98 - int(numeric) % 97


def _format_iban(compact: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _bban(rng: random.Random, layout: str) -> str:
    pick = {"n": string.digits, "a": string.ascii_uppercase, "c": _UPPER_DIGITS}
    return "".join(rng.choice(pick[k]) if k != "c" else rng.choice(string.digits) for k in layout)


def iban(rng: random.Random) -> str:
    country = rng.choice(sorted(_IBAN_LAYOUTS))
    bban = _bban(rng, _IBAN_LAYOUTS[country])
    return _format_iban(f"{country}{_iban_check(country, bban):02d}{bban}", rng)


def bad_iban(rng: random.Random) -> str:
    country = rng.choice(sorted(_IBAN_LAYOUTS))
    bban = _bban(rng, _IBAN_LAYOUTS[country])
    wrong = (_iban_check(country, bban) + rng.randint(1, 90)) % 97 + 2
    if wrong == _iban_check(country, bban):
        wrong = wrong % 96 + 2
    return _format_iban(f"{country}{wrong:02d}{bban}", rng)


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    value = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    return value if rng.random() < 0.85 else value.replace("-", " ")


def ipv4(rng: random.Random) -> str:
    first = rng.choice([10, 172, 192, 34, 52, 81, 203, rng.randint(11, 223)])
    return ".".join(str(x) for x in (first, *(rng.randint(0, 255) for _ in range(3))))


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    style = rng.random()
    if style < 0.4:
        return ":".join(groups)
    if style < 0.8:
        return "2001:db8:" + ":".join(groups[:2]) + "::" + groups[7]
    return "fe80::" + ":".join(groups[4:])


def date_text(rng: random.Random, year_range: tuple[int, int]) -> str:
    y, m, d = rng.randint(*year_range), rng.randint(1, 12), rng.randint(1, 28)
    forms = (
        f"{m:02d}/{d:02d}/{y}",
        f"{y}-{m:02d}-{d:02d}",
        f"{_MONTHS[m - 1]} {d}, {y}",
        f"{d} {_MONTHS[m - 1]} {y}",
        f"{d:02d}.{m:02d}.{y}",
        f"{_MONTHS[m - 1][:3]} {d}, {y}",
        f"{m}/{d}/{y % 100:02d}",
    )
    return rng.choice(forms)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(rng: random.Random) -> str:
    header = _b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    claims = {"sub": _digits(rng, 8), "iat": rng.randint(1_600_000_000, 1_750_000_000)}
    if rng.random() < 0.5:
        claims["role"] = rng.choice(["admin", "user", "service"])
    body = _b64url(json.dumps(claims).encode())
    return f"{header}.{body}.{_b64url(rng.randbytes(32))}"


def _pem(rng: random.Random) -> str:
    kind = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    lines = [base64.b64encode(rng.randbytes(48)).decode() for _ in range(rng.randint(3, 8))]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----"


def _password(rng: random.Random) -> str:
    core = _chars(rng, _ALNUM, rng.randint(8, 16))
    return core + rng.choice(["!", "#", "$", "%", "", "9", "@1"])


_PROVIDER_KEYS: Final[tuple[Callable[[random.Random], str], ...]] = (
    lambda r: "sk-proj-" + _chars(r, _URLSAFE, r.choice([48, 64, 120])),
    lambda r: "sk-" + _chars(r, _ALNUM, 48),
    lambda r: "sk-ant-api03-" + _chars(r, _URLSAFE, 93) + "AA",
    lambda r: "AKIA" + _chars(r, string.ascii_uppercase + "234567", 16),
    lambda r: "ghp_" + _chars(r, _ALNUM, 36),
    lambda r: "github_pat_11" + _chars(r, _UPPER_DIGITS, 20) + "_" + _chars(r, _ALNUM, 59),
    lambda r: f"xoxb-{_digits(r, 12)}-{_digits(r, 13)}-{_chars(r, _ALNUM, 24)}",
    lambda r: "AIza" + _chars(r, _URLSAFE, 35),
    lambda r: r.choice(["sk_live_", "rk_live_"]) + _chars(r, _ALNUM, r.choice([24, 99])),
    lambda r: "glpat-" + _chars(r, _URLSAFE, 20),
    lambda r: f"SG.{_chars(r, _URLSAFE, 22)}.{_chars(r, _URLSAFE, 43)}",
    lambda r: "hf_" + _chars(r, _ALNUM, 34),
)


def provider_key(rng: random.Random) -> str:
    return rng.choice(_PROVIDER_KEYS)(rng)


def secret_value(rng: random.Random, kind: str) -> str:
    """``jwt``, ``pem``, ``password`` or ``aws_secret`` (40 base64 characters)."""
    if kind == "jwt":
        return _jwt(rng)
    if kind == "pem":
        return _pem(rng)
    if kind == "aws_secret":
        return _chars(rng, _ALNUM + "+/", 40)
    return _password(rng)


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


_NEAR_MISSES: Final[dict[str, Callable[[random.Random], str]]] = {
    "order_number": lambda r: r.choice(
        [f"ORD-{r.randint(2019, 2025)}-{_digits(r, 6)}", f"#{_digits(r, 7)}", f"PO{_digits(r, 8)}"]
    ),
    "uuid": _uuid,
    "hash": lambda r: f"{r.getrandbits(r.choice([160, 256, 128])):040x}",
    "short_sha": lambda r: f"{r.getrandbits(28):07x}",
    "version": lambda r: r.choice(
        [
            f"v{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 40)}",
            f"{r.randint(1, 12)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}",
            f"10.0.{r.randint(17000, 22999)}.{r.randint(100, 4000)}",
            f"{r.randint(100, 130)}.0.{r.randint(5000, 6999)}.{r.randint(10, 200)}",
        ]
    ),
    "luhn_failing_card": luhn_failing_number,
    "bad_iban": bad_iban,
    "placeholder_key": lambda r: r.choice(
        [
            "<your-api-key>",
            "sk-" + "x" * r.randint(8, 48),
            "sk-proj-" + "X" * 40,
            "YOUR_API_KEY",
            "sk-...",
            "AKIAXXXXXXXXXXXXXXXX",
            "ghp_" + "x" * 36,
            "sk_live_" + "0" * 24,
            "<OPENAI_API_KEY>",
            "${OPENAI_API_KEY}",
            "sk-your-key-here",
        ]
    ),
    "tracking_number": lambda r: f"1Z{_chars(r, _UPPER_DIGITS, 6)}{_digits(r, 10)}",
    "timestamp": lambda r: (
        f"{r.randint(2020, 2025)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T"
        f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z"
    ),
    "mac_address": lambda r: ":".join(f"{r.randint(0, 255):02X}" for _ in range(6)),
    "ticket_id": lambda r: f"{r.choice(['JIRA', 'OPS', 'SUP', 'INC'])}-{r.randint(100, 99999)}",
}
NEAR_MISS_KINDS: Final[tuple[str, ...]] = tuple(_NEAR_MISSES)


def near_miss(rng: random.Random, kind: str) -> str:
    if kind not in _NEAR_MISSES:
        raise ValueError(f"unknown near-miss kind, got {kind!r}; known: {NEAR_MISS_KINDS}")
    return _NEAR_MISSES[kind](rng)
