"""Dead letters always fit a record and a row, keep the original's size and sha256, and hold no raw PII.

Also: metadata values of valid events are redacted before they reach a row.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
import pytest

from producers.wire import MAX_RECORD_BYTES, encode_batch
from sinks.routes import dead_letter_row
from streams.ingest.deadletter import (
    PAYLOAD_CAP_BYTES,
    REASON_CAP_CHARS,
    REDACTION_LOOKAHEAD_CHARS,
    TRUNCATED_MARKER,
    store_payload,
)
from streams.ingest.records import DLQ_FIELDS, DeadLetter, decode_dead_letter
from streams.ingest.validate import SourcePosition, ingest_record
from streams.text.redaction import Redactor

SOURCE: Final = SourcePosition("llmwatch.events", 1, 7)
MIB: Final = 1024 * 1024
FAKE_EMAIL: Final = "jane.doe@example.com"
FAKE_KEY: Final = "sk-proj-FAKEfakeFAKEfake0123456789"
PII: Final = (FAKE_EMAIL, FAKE_KEY)


def _now() -> datetime:
    return datetime.now(UTC)


def _event(**fields: Any) -> dict[str, Any]:
    """A raw event stamped a minute ago (inside the accepted time range), with ``fields`` changed."""
    end = _now() - timedelta(minutes=1)
    event: dict[str, Any] = {
        "start_time": (end - timedelta(seconds=2)).isoformat(),
        "end_time": end.isoformat(),
        "service": "svc",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "input_tokens": 10,
        "output_tokens": 5,
    }
    event.update(fields)
    return event


def _ingest(value: bytes, redactor: Redactor | None = None) -> Any:
    return ingest_record(value, SOURCE, record_ms=int(_now().timestamp() * 1000), redactor=redactor)


def _letter(payload: bytes, reason: str = "bad") -> DeadLetter:
    return DeadLetter(
        failed_at=int(_now().timestamp() * 1000),
        reason=reason,
        source_topic="t.events",
        source_partition=0,
        source_offset=3,
        index_in_record=-1,
        payload=payload,
    )


def _assert_fits_and_identifies(dead: DeadLetter, raw: bytes) -> None:
    assert len(dead.payload) <= PAYLOAD_CAP_BYTES
    assert dead.payload.endswith(TRUNCATED_MARKER)
    assert dead.payload_size == len(raw)
    assert dead.payload_sha256 == hashlib.sha256(raw).hexdigest()
    record = dead.to_json()
    assert len(record) < MIB < MAX_RECORD_BYTES
    row = dead.to_row()
    assert tuple(row) == DLQ_FIELDS
    assert (row["payload_size"], row["payload_sha256"]) == (len(raw), dead.payload_sha256)
    assert decode_dead_letter(record).to_row() == row


def _holds_no_pii(data: bytes | str) -> bool:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return not any(secret in text for secret in PII)


def test_a_15_mib_invalid_event_dead_letters_capped_with_its_size_and_sha256() -> None:
    raw = orjson.dumps(_event(input_tokens="lots", input_text="x" * (15 * MIB)))
    result = _ingest(raw)
    assert result.rows == []
    (dead,) = result.dead_letters
    assert "input_tokens" in dead.reason
    _assert_fits_and_identifies(dead, raw)
    assert dead.payload.startswith(raw[:100])  # the head is kept (nothing to redact there)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe" + b"not json " * (2 * MIB),
        ("\u00e9" * (PAYLOAD_CAP_BYTES + 1)).encode(),  # cut on a character boundary
    ],
    ids=["undecodable_bytes", "two_byte_characters"],
)
def test_undecodable_or_non_json_payloads_are_capped_on_a_utf8_boundary(raw: bytes) -> None:
    dead = _letter(raw)
    _assert_fits_and_identifies(dead, raw)
    dead.payload.decode("utf-8")  # no character cut in half


def _pii_event(**fields: Any) -> dict[str, Any]:
    pii: dict[str, Any] = {
        "input_text": f"write to {FAKE_EMAIL} with key {FAKE_KEY}",
        "output_text": f"done, {FAKE_EMAIL}",
        "metadata": {"contact": FAKE_EMAIL, "note": {"nested": [f"key={FAKE_KEY}"]}, "n": 3},
        # the bad value is quoted by the reason: it must not carry the email either
        "temperature": FAKE_EMAIL,
    }
    return _event(**{**pii, **fields})


@pytest.mark.parametrize(
    "value",
    [orjson.dumps(_pii_event()), encode_batch([_event(), _pii_event(), _event()])],
    ids=["single_event_record", "event_in_a_batch"],
)
def test_dead_letter_of_an_invalid_event_holds_no_raw_pii(value: bytes) -> None:
    (dead,) = _ingest(value).dead_letters
    assert "temperature" in dead.reason
    assert _holds_no_pii(dead.reason), dead.reason
    assert _holds_no_pii(dead.payload), dead.payload
    record = orjson.loads(dead.to_json())
    assert _holds_no_pii(base64.b64decode(record["payload"])) and _holds_no_pii(record["reason"])
    row = dead.to_row()
    assert _holds_no_pii(row["payload"]) and _holds_no_pii(row["reason"])
    stored = orjson.loads(dead.payload if dead.index_in_record >= 0 else row["payload"])
    assert stored["metadata"]["contact"] == "<EMAIL>"
    assert stored["metadata"]["note"] == {"nested": ["key=<SECRET>"]}
    assert stored["metadata"]["n"] == 3
    assert "<EMAIL>" in stored["input_text"] and "<SECRET>" in stored["input_text"]
    assert dead.payload_size != len(dead.payload)  # re-serialized after redaction


def test_secret_named_fields_are_redacted_whole_in_dead_letters() -> None:
    raw = orjson.dumps({"api_key": "plain-looking-value", "db_password": 123456, "ok": 1})
    assert orjson.loads(_letter(raw).payload) == {
        "api_key": "<SECRET>",
        "db_password": "<SECRET>",
        "ok": 1,
    }


def test_the_sink_dead_letter_row_is_redacted_and_capped() -> None:
    value = b"\xff not a calls record from " + FAKE_EMAIL.encode() + b" " * (PAYLOAD_CAP_BYTES)
    row = dead_letter_row(f"cannot decode {FAKE_KEY}", "p.calls", 2, 41, value)
    assert _holds_no_pii(row["payload"]) and _holds_no_pii(row["reason"])
    assert len(row["payload"]) <= PAYLOAD_CAP_BYTES
    assert row["payload_size"] == len(value)
    assert row["payload_sha256"] == hashlib.sha256(value).hexdigest()


# Where a secret may be cut: at the stored payload's cap, and at the end of the text looked at, where
# redaction has shortened what comes before (each email becomes the shorter "<EMAIL>").
_CUT: Final = PAYLOAD_CAP_BYTES - len(TRUNCATED_MARKER)
_LOOKED_AT: Final = PAYLOAD_CAP_BYTES + REDACTION_LOOKAHEAD_CHARS


@pytest.mark.parametrize("before_cut", [6, 12, 20])
@pytest.mark.parametrize(
    ("filler", "cut"), [("x ", _CUT), (f"{FAKE_EMAIL} ", _LOOKED_AT)], ids=["cap", "lookahead"]
)
def test_a_secret_across_a_cut_leaves_no_prefix(filler: str, cut: int, before_cut: int) -> None:
    head = (filler * (cut // len(filler) + 1))[: cut - before_cut - 1] + " "
    raw = (head + FAKE_KEY + " tail" * 10_000).encode()
    stored = store_payload(raw).payload
    assert len(stored) <= PAYLOAD_CAP_BYTES
    assert FAKE_KEY[:before_cut] not in stored.decode("utf-8")
    assert FAKE_EMAIL not in stored.decode("utf-8")


def test_clean_payloads_that_fit_are_kept_byte_for_byte() -> None:
    raw = b'{ "service": "svc",  "input_tokens": "lots" }'
    assert _letter(raw).payload == raw


def test_a_stored_dead_letter_reads_back_unchanged() -> None:
    raw = orjson.dumps(_pii_event(input_tokens=-1, output_text="y" * (PAYLOAD_CAP_BYTES * 2)))
    dead = _letter(raw, reason=f"bad value {FAKE_EMAIL}")
    assert decode_dead_letter(dead.to_json()) == dead


def test_long_reasons_are_capped() -> None:
    dead = _letter(b"{}", reason="input_tokens: bad; " * 10_000)
    assert len(dead.reason) <= REASON_CAP_CHARS
    assert dead.reason.startswith("input_tokens: bad;")


def test_metadata_values_of_a_valid_event_are_redacted() -> None:
    metadata = {"contact": FAKE_EMAIL, "db_password": "hunter2-fake", "attempt": 2, "team": "a"}
    result = _ingest(orjson.dumps(_event(metadata=metadata)), redactor=Redactor())
    (row,) = result.rows
    assert row["metadata"] == {
        "contact": "<EMAIL>",
        "db_password": "<SECRET>",
        "attempt": "2",
        "team": "a",
    }
    assert result.redactions == {"EMAIL": 1, "SECRET": 1}
