"""Patterned PII for :mod:`streams.text.pii`: email, phone, IP, card, IBAN, SSN and date-of-birth spans.

Candidates come from regexes written here (each linear in the text's length); they are then checked by
Presidio's validators where it has one (``CreditCardRecognizer.validate_result``: Luhn;
``IbanRecognizer.validate_result``: mod-97 and the country's layout; ``UsSsnRecognizer.invalidate_result``:
never-issued SSNs), by ``ipaddress`` for IPs and by ``phonenumbers`` (possible length for the region) for
phones. Presidio's own ``analyze`` is not used: it costs more than this whole module per text.

Rules that keep near-misses out: a card number needs a known issuer prefix and a valid Luhn digit, and
must not sit inside a longer run of digit groups; an IPv4 address must not follow a version cue
("version", "v", "Chrome 120.", ...); a number that looks like a phone but is part of a longer digit run,
a date or a dotted version is skipped; 9 bare digits are an SSN only after an SSN cue; a date is a
DATE_OF_BIRTH only right after a birth cue (DOB, born on, date of birth...).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Final

import phonenumbers
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    IbanRecognizer,
    UsSsnRecognizer,
)

from streams.text.findings import PiiType

__all__ = ["Candidate", "pattern_candidates"]

# (type, start, end, score)
Candidate = tuple[PiiType, int, int, float]

_CARD_CHECK: Final = CreditCardRecognizer()
_IBAN_CHECK: Final = IbanRecognizer()
_SSN_CHECK: Final = UsSsnRecognizer()

# Patterns start with a character class and check the character before it with a 2-wide lookbehind:
# a leading lookbehind would stop the regex engine from skipping ahead to possible first characters.
_EMAIL: Final = re.compile(
    r"[^\W_](?<![\w.%+\-][^\W_])[\w.%+\-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)
# Issuer prefixes (Visa, Mastercard, Amex, Discover/UnionPay, JCB, Diners), 13-19 digits, one separator kind.
_CARD: Final = re.compile(
    r"[2-6](?<![\w\-.][2-6])(?<!\d [2-6])"
    r"(?:\d{3}([ \-]?)\d{4}\1\d{4}\1\d{1,7}|\d{3}([ \-]?)\d{6}\2\d{5})(?![\w\-]|[ ]\d)"
)
_CARD_ISSUER: Final = re.compile(r"4|5[1-5]|2[2-7]|3[47]|6|35|3[068]")
_IBAN: Final = re.compile(
    r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?"
)
_SSN: Final = re.compile(r"(\d(?<![\w\-.]\d)\d{2})([\- ])(\d{2})\2(\d{4})(?![\d\-]|\.\d)")
_SSN_BARE: Final = re.compile(r"\d(?<![\w\-.]\d)\d{8}(?![\w\-])")
_SSN_CUE: Final = re.compile(r"(?i)\b(?:ssn|social security|social|ss#|ss no)\b")
_IPV4: Final = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?:/\d{1,2})?(?![\w]|\.\d)"
)
_IPV4_HINT: Final = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_PHONE_HINT: Final = re.compile(r"\d[\d \-.()]{5,}\d")
_BIRTH_HINTS: Final = ("dob", "d.o.b", "birth", "born", "geboren", "née", "né le", "nacimiento")
_VERSION_CUE: Final = re.compile(
    r"(?i)\b(?:v|version|release|build|chrome|firefox|python|node|ubuntu|windows|ver\.?)\s*$"
)
_IPV6: Final = re.compile(
    r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?(?![\w:])"
)
_PHONE: Final = re.compile(
    r"(?<![\w+#/.\-])(?<!\d[ \-])"
    r"(?:\+\d{7,15}"
    r"|\+\d{1,3}(?:[ .\-]?\(\d{1,5}\))?(?:[ .\-]\d{1,10}){1,5}"
    r"|\+\d{1,3}[ .\-]?\(\d{1,5}\)[ .\-]?\d{2,5}(?:[ .\-]\d{2,5}){0,3}"
    r"|\(\d{2,5}\)[ .\-]?\d{3,4}[ .\-]?\d{3,5}"
    r"|\d{2,5}[ \-]\d{3,4}[ \-]\d{3,5}"
    r"|\d{3}\.\d{3}\.\d{3,4}"
    r"|0\d{2,4}[ \-]\d{5,8}"
    r"|\d{9,11})"
    r"(?![\w\-]|[ .]\d)"
)
_PHONE_REGIONS: Final = ("US", "GB", "DE", "FR", "ES", "IT", "NL")
_PHONE_CUE: Final = re.compile(
    r"(?i)\b(?:phone|tel|call|mobile|cell|number|reach|whatsapp|text|fax)"
)

_MONTH: Final = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DATE: Final = re.compile(
    r"(?i)(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}})"
    r"(?![\d/])"
)
_BIRTH_CUE: Final = re.compile(
    r"(?i)\b(?:d\.?o\.?b\.?|date\s+of\s+birth|birth\s*date|birthday|born(?:\s+on)?|geboren(?:\s+am)?"
    r"|n[ée]e?\s+le|fecha\s+de\s+nacimiento)(?![\w])"
)
_DOB_MAX_GAP: Final = 24  # characters between a birth cue and its date


def _emails(text: str) -> Iterator[Candidate]:
    for m in _EMAIL.finditer(text):
        yield PiiType.EMAIL, m.start(), m.end(), 0.95


def _cards(text: str) -> Iterator[Candidate]:
    for m in _CARD.finditer(text):
        if _CARD_ISSUER.match(m.group()) and _CARD_CHECK.validate_result(m.group()):
            yield PiiType.CREDIT_CARD, m.start(), m.end(), 0.95


def _ibans(text: str) -> Iterator[Candidate]:
    for m in _IBAN.finditer(text):
        value = m.group()
        # The optional groups may have taken the next word: drop trailing groups until valid.
        while len(value) >= 15:
            if _IBAN_CHECK.validate_result(value):
                yield PiiType.IBAN, m.start(), m.start() + len(value), 0.95
                break
            cut = value.rfind(" ")
            value = value[:cut] if cut > 0 else value[:-1]


def _ssn_valid(digits: str) -> bool:
    return not (digits[0] == "9" or _SSN_CHECK.invalidate_result(digits))


def _ssns(text: str) -> Iterator[Candidate]:
    for m in _SSN.finditer(text):
        if _ssn_valid(m.group(1) + m.group(3) + m.group(4)):
            yield PiiType.US_SSN, m.start(), m.end(), 0.85
    for m in _SSN_BARE.finditer(text):
        if _SSN_CUE.search(text, max(0, m.start() - 30), m.start()) and _ssn_valid(m.group()):
            yield PiiType.US_SSN, m.start(), m.end(), 0.7


def _ips(text: str) -> Iterator[Candidate]:
    for m in _IPV4.finditer(text) if _IPV4_HINT.search(text) else ():
        if not _VERSION_CUE.search(text, max(0, m.start() - 12), m.start()):
            yield PiiType.IP_ADDRESS, m.start(), m.end(), 0.9
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            value = m.group().split("%", 1)[0]
            if sum(c.isalnum() for c in value) < 4:
                continue
            try:
                ipaddress.IPv6Address(value)
            except ValueError:
                continue
            yield PiiType.IP_ADDRESS, m.start(), m.end(), 0.9


def _phone_possible(value: str) -> bool:
    digits = sum(c.isdigit() for c in value)
    if not 7 <= digits <= 15:
        return False
    for region in ("US",) if value.startswith("+") else _PHONE_REGIONS:
        try:
            if phonenumbers.is_possible_number(phonenumbers.parse(value, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _phones(text: str) -> Iterator[Candidate]:
    if not _PHONE_HINT.search(text):
        return
    for m in _PHONE.finditer(text):
        value = m.group()
        bare = value.isdigit()
        if bare and not _PHONE_CUE.search(text, max(0, m.start() - 30), m.start()):
            continue
        if _phone_possible(value):
            yield PiiType.PHONE, m.start(), m.end(), 0.6 if bare else 0.8


def _dates_of_birth(text: str) -> Iterator[Candidate]:
    lowered = text.lower()
    if not any(hint in lowered for hint in _BIRTH_HINTS):
        return
    for cue in _BIRTH_CUE.finditer(text):
        date = _DATE.search(text, cue.end(), cue.end() + _DOB_MAX_GAP + 30)
        if date and date.start() - cue.end() <= _DOB_MAX_GAP:
            yield PiiType.DATE_OF_BIRTH, date.start(), date.end(), 0.9


# Each finder with the cheap test that says it may find something: (needs, finder).
_FINDERS: Final[tuple[tuple[Callable[[str], bool], Callable[[str], Iterator[Candidate]]], ...]] = (
    (lambda t: "@" in t, _emails),
    (lambda t: True, _cards),
    (lambda t: True, _ibans),
    (lambda t: True, _ssns),
    (lambda t: "." in t or ":" in t, _ips),
    (lambda t: True, _phones),
    (lambda t: True, _dates_of_birth),
)


def pattern_candidates(text: str) -> list[Candidate]:
    """Every validated patterned span in ``text`` (may overlap; the caller resolves overlaps)."""
    has_digit = any(c.isdigit() for c in text)
    out: list[Candidate] = []
    for needs, finder in _FINDERS:
        if (has_digit or finder is _emails) and needs(text):
            out.extend(finder(text))
    return out
