"""Redaction: personal data and secrets become typed placeholders; ordinary text is untouched."""

from __future__ import annotations

import pytest

from streams.redaction import Redactor


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
