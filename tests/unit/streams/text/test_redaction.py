"""Redaction: personal data and secrets become typed placeholders; ordinary text is untouched."""

from __future__ import annotations

import base64
import json
from typing import Final

import pytest

from streams.text.redaction import CACHE_ENTRIES, CACHED_TEXT_CHARS, Redactor


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("write to jane.doe+x@mail.example.org now", "write to <EMAIL> now", "EMAIL"),
        ("card 4111 1111 1111 1111 ok", "card <CREDIT_CARD> ok", "CREDIT_CARD"),
        ("ssn 123-45-6789", "ssn <US_SSN>", "US_SSN"),
        ("from 192.168.10.24 today", "from <IP_ADDRESS> today", "IP_ADDRESS"),
        ("call +44 20 7946 0958", "call <PHONE>", "PHONE"),
        ("key sk-proj-abcdefghijklmnop1234 leaked", "key <SECRET> leaked", "SECRET"),
        ("AKIAABCDEFGHIJKLMNOP", "<SECRET>", "SECRET"),
        (
            "Authorization: Bearer abcdefghijklmnopqrstuvwxyz.123",
            "Authorization: <BEARER_TOKEN>",
            "BEARER_TOKEN",
        ),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN <IBAN>", "IBAN"),
    ],
)
def test_redacts(text: str, expected: str, kind: str) -> None:
    result = Redactor().redact(text)
    assert result.text == expected
    assert result.counts == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "The order 1234 shipped on 2026-01-05 in 3 boxes.",
        "card 4111 1111 1111 1112 fails Luhn",
        "version 1.2.3 of the model",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    result = Redactor().redact(text)
    assert result.text == text and result.total == 0


def test_unknown_kind_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="NAMES"):
        Redactor(frozenset({"NAMES"}))


def _b64url(doc: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


# Fake secrets of the right shapes (none is a real credential).
FAKE_JWT: Final = (
    f"{_b64url({'alg': 'HS256', 'typ': 'JWT'})}.{_b64url({'sub': 'fake-user'})}"
    ".fakeSignatureNotReal0123456789_-"
)
FAKE_STRIPE_LIVE: Final = "sk_live_" + "FAKE0123456789fakeFAKE0123456789fake"
FAKE_STRIPE_RESTRICTED: Final = "rk_live_" + "0123456789FAKEfake01234567"
FAKE_GITHUB_PAT: Final = "github_pat_" + "11FAKE0000000000000000" + "_" + "FAKE" * 14 + "abc"
FAKE_GITLAB: Final = "glpat-" + "FAKEfakeFAKEfake0123"
AWS_DOCS_EXAMPLE_SECRET: Final = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # from AWS's own docs
FAKE_PEM: Final = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(["MIIEFAKEKEYNOTREALFAKEKEYNOTREALFAKEKEYNOTREALFAKEKEYNOTREAL0000"] * 4)
    + "\n-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token {FAKE_JWT} expired", "token <SECRET> expired"),
        (f"stripe {FAKE_STRIPE_LIVE} ok", "stripe <SECRET> ok"),
        (f"restricted={FAKE_STRIPE_RESTRICTED}", "restricted=<SECRET>"),
        (f"pat {FAKE_GITHUB_PAT}.", "pat <SECRET>."),
        (f"gitlab {FAKE_GITLAB}", "gitlab <SECRET>"),
        (
            f"aws_secret_access_key = {AWS_DOCS_EXAMPLE_SECRET}",
            "aws_secret_access_key = <SECRET>",
        ),
        (f'AWS_SECRET_ACCESS_KEY="{AWS_DOCS_EXAMPLE_SECRET}"', 'AWS_SECRET_ACCESS_KEY="<SECRET>"'),
        (f"key:\n{FAKE_PEM}\nthanks", "key:\n<SECRET>\nthanks"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEFAKE\nFAKE", "<SECRET>"),
        (
            "connect postgres://admin:not-a-real-pw@db.example.internal:5432/app now",
            "connect postgres://<SECRET>@db.example.internal:5432/app now",
        ),
        ("https://u:pw-fake@host.example:8080/a@b", "https://<SECRET>@host.example:8080/a@b"),
    ],
    ids=[
        "jwt",
        "stripe_sk_live",
        "stripe_rk_live",
        "github_pat",
        "gitlab",
        "aws_secret_unquoted",
        "aws_secret_quoted_env",
        "pem_block",
        "pem_cut_short",
        "url_credentials",
        "url_credentials_port_and_at_in_path",
    ],
)
def test_redacts_secret_shapes(text: str, expected: str) -> None:
    result = Redactor().redact(text)
    assert result.text == expected
    assert result.counts == {"SECRET": 1}


@pytest.mark.parametrize(
    "text",
    [
        "see https://example.com:8080/docs?ref=a@b for details",
        "a JWT starts with eyJ and sk_live_ is Stripe's prefix",
        "the aws key rotation is due on Monday",
        "I'm glad the glass is half full",
    ],
)
def test_secret_shapes_leave_near_misses_alone(text: str) -> None:
    result = Redactor().redact(text)
    assert result.text == text and result.total == 0


def test_redact_mapping_redacts_every_value_and_secret_named_fields_whole() -> None:
    counts: dict[str, int] = {"EMAIL": 1}
    values = {"db_password": "hunter2-fake", "note": "mail jane.doe@example.com", "team": "search"}
    redacted = Redactor().redact_mapping(values, counts)
    assert redacted == {"db_password": "<SECRET>", "note": "mail <EMAIL>", "team": "search"}
    assert counts == {"EMAIL": 2, "SECRET": 1}


def test_secret_named_fields_belong_to_the_secret_kind() -> None:
    values = {"password": "hunter2-fake", "note": "jane.doe@example.com"}
    redacted = Redactor(frozenset({"EMAIL"})).redact_mapping(values)
    assert redacted == {"password": "hunter2-fake", "note": "<EMAIL>"}


def test_cached_answers_equal_fresh_ones_and_do_not_share_counts() -> None:
    redactor = Redactor()
    text = "mail bob@example.com or call +1 415 555 0100"
    first = redactor.redact(text)
    first.counts["EMAIL"] = 99  # a caller changing its result must not change the next answer
    again = redactor.redact(text)
    assert again == Redactor()._redact(text) and again.counts["EMAIL"] == 1
    long_text = "x" * (CACHED_TEXT_CHARS + 1) + " bob@example.com"
    assert redactor.redact(long_text).text.endswith("<EMAIL>")


def test_the_cache_is_bounded() -> None:
    redactor = Redactor()
    for i in range(CACHE_ENTRIES + 10):
        assert redactor.redact(f"user{i}@example.com").text == "<EMAIL>"
    assert len(redactor._cache) <= CACHE_ENTRIES
