"""PII and secrets detector (streams/text/pii.py): each type, near-misses, redaction, odd input, dev set."""

from __future__ import annotations

import itertools

import pytest

from bench.devsets.pii import near_miss_texts, pii_devset
from bench.devsets.pii_scoring import score_spans
from bench.devsets.pii_values import NEAR_MISS_KINDS
from streams.text.findings import PiiSpan, PiiType
from streams.text.pii import PiiDetector, resolve_overlaps


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector()


def _found(detector: PiiDetector, text: str) -> list[tuple[PiiType, str]]:
    return [(s.type, text[s.start : s.end]) for s in detector.detect(text)]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Hi, my name is Walter Stanley and I need help.", PiiType.PERSON, "Walter Stanley"),
        ("I spoke with Dagmar Huffmann yesterday.", PiiType.PERSON, "Dagmar Huffmann"),
        ("Thanks,\nGretchen Alvarez", PiiType.PERSON, "Gretchen Alvarez"),
        ("Write to jane.doe@example-corp.com today.", PiiType.EMAIL, "jane.doe@example-corp.com"),
        ("cc ops_team+alerts@mail.acme.io please", PiiType.EMAIL, "ops_team+alerts@mail.acme.io"),
        ("Call me at (415) 555-0132 after 5.", PiiType.PHONE, "(415) 555-0132"),
        ("My mobile is +44 20 7946 0958.", PiiType.PHONE, "+44 20 7946 0958"),
        ("The server 192.168.14.201 is down.", PiiType.IP_ADDRESS, "192.168.14.201"),
        (
            "Traffic from 2001:db8:85a3::8a2e:370:7334 again",
            PiiType.IP_ADDRESS,
            "2001:db8:85a3::8a2e:370:7334",
        ),
        (
            "Ship it to 742 Evergreen Terrace, Springfield, OR 97403.",
            PiiType.STREET_ADDRESS,
            "742 Evergreen Terrace, Springfield, OR 97403",
        ),
        (
            "I moved to Hauptstraße 12, 10115 Berlin last month.",
            PiiType.STREET_ADDRESS,
            "Hauptstraße 12, 10115 Berlin",
        ),
        ("Patient DOB: 03/14/1985, seen today.", PiiType.DATE_OF_BIRTH, "03/14/1985"),
        ("She was born on March 4, 1990 in Ohio.", PiiType.DATE_OF_BIRTH, "March 4, 1990"),
        ("Card 4111 1111 1111 1111 was declined.", PiiType.CREDIT_CARD, "4111 1111 1111 1111"),
        ("Amex 378282246310005 on file.", PiiType.CREDIT_CARD, "378282246310005"),
        ("IBAN DE89 3704 0044 0532 0130 00 please.", PiiType.IBAN, "DE89 3704 0044 0532 0130 00"),
        ("Pay GB82WEST12345698765432 by Friday.", PiiType.IBAN, "GB82WEST12345698765432"),
        ("My SSN is 219-09-9999 for the form.", PiiType.US_SSN, "219-09-9999"),
        (
            "key = sk-proj-Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF",
            PiiType.API_KEY,
            "sk-proj-Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF",
        ),
        ("AWS id AKIAZ7Q3RMXN4KD2PLTB in prod", PiiType.API_KEY, "AKIAZ7Q3RMXN4KD2PLTB"),
        (
            "token ghp_a8Kd93jfLq02mZx7Vb61NcRt5Yh4Wp3sE9uG",
            PiiType.API_KEY,
            "ghp_a8Kd93jfLq02mZx7Vb61NcRt5Yh4Wp3sE9uG",
        ),
        (
            "SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            PiiType.API_KEY,
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        ),
        (
            "url = postgres://admin:S3cretPw9x@db.internal:5432/app",
            PiiType.SECRET,
            "admin:S3cretPw9x",
        ),
        ('db_password = "Xk9pQ2mLw8!"', PiiType.SECRET, "Xk9pQ2mLw8!"),
        (
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            PiiType.SECRET,
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ),
    ],
)
def test_finds_each_type(detector: PiiDetector, text: str, kind: PiiType, value: str) -> None:
    assert (kind, value) in _found(detector, text)


def test_pem_block_is_one_secret(detector: PiiDetector) -> None:
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn\n-----END RSA PRIVATE KEY-----"
    text = f"here is my key:\n{block}\nwhy does ssh reject it?"
    assert _found(detector, text) == [(PiiType.SECRET, block)]


@pytest.mark.parametrize(
    "text",
    [
        "Order ORD-2024-118734 has not shipped.",
        "Request id 3f2b8c1e-9a4d-4e5f-8b6a-1c2d3e4f5a6b failed.",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "checksum 79b80ec258a8eea86f44327028321508e066c699eb3267db2393dd7045b3b950",
        "The account CH6856540838388725862 was rejected.",
        "We upgraded to version 3.0.9.4 yesterday.",
        "Chrome 120.0.6099.109 shows a blank page.",
        "Reference 4111 1111 1111 1112 on the invoice.",
        "The account DE88 3704 0044 0532 0130 00 was rejected.",
        "Replace <your-api-key> before running.",
        'api_key = "sk-xxxxxxxxxxxxxxxxxxxxxxxx"',
        "export OPENAI_API_KEY=sk-...",
        "AWS example AKIAIOSFODNN7EXAMPLE from the docs",
        'password = "<password>"',
        "The meeting is on March 4, 2024 in Paris.",
        "Tracking number 1Z999AA10123456784 shows nothing.",
        "The device MAC is 00:1A:2B:3C:4D:5E.",
    ],
)
def test_near_misses_not_flagged(detector: PiiDetector, text: str) -> None:
    assert _found(detector, text) == []


@pytest.mark.parametrize("kind", NEAR_MISS_KINDS)
def test_generated_near_misses_not_flagged(detector: PiiDetector, kind: str) -> None:
    texts = [t for k, t in near_miss_texts(seed=7, per_kind=15) if k == kind]
    flagged = {t: _found(detector, t) for t in texts}
    assert {t: f for t, f in flagged.items() if f} == {}


@pytest.mark.parametrize("card", ["4111111111111112", "5500 0000 0000 0005", "3782-822463-10006"])
def test_luhn_failing_card_not_flagged(detector: PiiDetector, card: str) -> None:
    assert not any(k == PiiType.CREDIT_CARD for k, _ in _found(detector, f"card {card} ok"))


@pytest.mark.parametrize(
    "iban", ["DE89370400440532013001", "GB83WEST12345698765432", "FR7630006000011234567890188"]
)
def test_bad_iban_not_flagged(detector: PiiDetector, iban: str) -> None:
    assert not any(k == PiiType.IBAN for k, _ in _found(detector, f"IBAN {iban} please"))


def test_redact_removes_every_raw_value(detector: PiiDetector) -> None:
    for item in pii_devset(40, seed=3):
        redacted = detector.redact(item.text)
        found = detector.detect(item.text)
        for span in found:
            assert item.text[span.start : span.end] not in redacted
            assert f"<{span.type.value}>" in redacted


def test_redact_with_given_spans_and_placeholder_names(detector: PiiDetector) -> None:
    text = "mail bob.smith@example.com or call (415) 555-0132"
    assert detector.redact(text) == "mail <EMAIL> or call <PHONE>"
    assert detector.redact(text, [PiiSpan(PiiType.EMAIL, 5, 26, 0.9)]) == (
        "mail <EMAIL> or call (415) 555-0132"
    )


def test_offsets_slice_the_gold_text(detector: PiiDetector) -> None:
    text = "Café ☕ déjà-vu 👩‍💻: write to zoë.o@example.org, IBAN DE89370400440532013000."
    found = _found(detector, text)
    assert (PiiType.EMAIL, "zoë.o@example.org") in found or (
        PiiType.EMAIL,
        "o@example.org",
    ) in found
    assert (PiiType.IBAN, "DE89370400440532013000") in found


def test_spans_sorted_and_not_overlapping(detector: PiiDetector) -> None:
    for item in pii_devset(60, seed=4):
        spans = detector.detect(item.text)
        assert all(a.end <= b.start for a, b in itertools.pairwise(spans))


def test_overlaps_resolved_by_score_then_length() -> None:
    spans = resolve_overlaps(
        [
            (PiiType.PHONE, 0, 10, 0.6),
            (PiiType.CREDIT_CARD, 0, 19, 0.95),
            (PiiType.PERSON, 20, 30, 0.8),
        ]
    )
    assert [(s.type, s.start, s.end) for s in spans] == [
        (PiiType.CREDIT_CARD, 0, 19),
        (PiiType.PERSON, 20, 30),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n\t  \r\n",
        "é" * 10 + "\u0301" * 50,
        "👩‍👩‍👧‍👦" * 200,
        "a.a.a." * 20_000,
        "eyJ" * 30_000,
        "1-" * 50_000,
        "Aa " * 100_000,
        ("Hi John Smith, card 4111 1111 1111 1111, " * 25_000)[:1_000_000],
        "\x00\ud800\uffff",
    ],
)
def test_odd_inputs_never_raise(detector: PiiDetector, text: str) -> None:
    spans = detector.detect(text)
    assert all(0 <= s.start < s.end <= len(text) for s in spans)
    detector.redact(text)


def test_batch_equals_single(detector: PiiDetector) -> None:
    texts = [item.text for item in pii_devset(20, seed=5)]
    assert detector.detect_batch(texts) == [detector.detect(t) for t in texts]


@pytest.mark.parametrize(
    "kwargs",
    [{"names": "bert"}, {"min_score": 1.5}, {"types": ["PERSON", "PASSPORT"]}],
)
def test_bad_configuration_raises_naming_the_value(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"bert|1\.5|PASSPORT"):
        PiiDetector(**kwargs)  # type: ignore[arg-type]


def test_types_filter(detector: PiiDetector) -> None:
    only_email = PiiDetector(types=[PiiType.EMAIL])
    text = "John Smith, john@example.com, 4111 1111 1111 1111"
    assert [s.type for s in only_email.detect(text)] == [PiiType.EMAIL]


# A little below the bench targets (patterned 0.95 recall, names/addresses 0.85, precision 0.90).
_PATTERNED_RECALL = 0.93
_NAME_ADDRESS_RECALL = 0.82
_PRECISION = 0.88


def test_dev_set_sample_reaches_thresholds(detector: PiiDetector) -> None:
    data = pii_devset(400, seed=99)
    scores = score_spans(data, detector.detect_batch([d.text for d in data]))
    for kind, score in scores.items():
        if kind == "ALL" or score.gold == 0:
            continue
        floor = _NAME_ADDRESS_RECALL if kind in ("PERSON", "STREET_ADDRESS") else _PATTERNED_RECALL
        assert score.recall >= floor, (kind, score.as_dict())
        assert score.precision >= _PRECISION, (kind, score.as_dict())
