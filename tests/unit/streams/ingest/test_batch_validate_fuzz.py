"""The batch path decides random mutations of valid events (alone and in mixed batches) exactly as
the per-event reference does: a hypothesis fuzz, derandomized, times relative to the wall clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.events import MAX_METADATA_ENTRIES, LlmCallEvent
from producers.wire import encode_batch
from streams.ingest.validate import (
    DEFAULT_TIME_BOUNDS,
)
from streams.storage import CALLS_TTL_DAYS
from streams.text.redaction import Redactor
from tests.unit.streams.ingest.batch_checks import (
    _assert_events_agree,
    _assert_paths_agree,
    _at,
    _now_ms,
)

_PLUS_0530: Final = timezone(timedelta(hours=5, minutes=30))
_LABEL: Final = st.text(alphabet="abcdefghij-_.0123456789", min_size=1, max_size=12)
# The wire (orjson) carries 64-bit integers.
_INT: Final = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_JUNK: Final = st.one_of(
    st.none(),
    st.booleans(),
    _INT,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(_INT, max_size=2),
    st.dictionaries(st.text(max_size=3), _INT, max_size=2),
)
_FIELDS: Final = [
    *LlmCallEvent.model_fields,
    # wire aliases the contract also accepts
    "gen_ai.system",
    "prompt_tokens",
    "gen_ai.usage.output_tokens",
    "model",
    "http.response.status_code",
    "error.type",
]


@st.composite
def _valid_event(draw: st.DrawFn, record_ms: int) -> dict[str, Any]:
    now = _at(record_ms)
    start = now - timedelta(milliseconds=draw(st.integers(0, 3_600_000)))
    duration = timedelta(milliseconds=draw(st.integers(0, 20_000)))
    fmt = draw(st.sampled_from(["iso", "z", "naive", "offset", "epoch"]))
    stamp: Callable[[datetime], str | float] = {
        "iso": lambda t: t.isoformat(),
        "z": lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "naive": lambda t: t.replace(tzinfo=None).isoformat(),
        "offset": lambda t: t.astimezone(_PLUS_0530).isoformat(),
        "epoch": lambda t: t.timestamp(),
    }[fmt]
    input_tokens = draw(st.integers(0, 5_000))
    output_tokens = draw(st.integers(0, 5_000))
    event: dict[str, Any] = {
        "start_time": stamp(start),
        "end_time": stamp(start + duration),
        "service": draw(_LABEL),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": draw(st.integers(0, input_tokens)),
        "reasoning_output_tokens": draw(st.integers(0, output_tokens)),
    }
    optional = {
        "event_id": _LABEL,
        "trace_id": _LABEL,
        "span_id": _LABEL,
        "parent_span_id": _LABEL,
        "span_kind": st.sampled_from(["llm", "tool", "retrieval", "agent", "chain", "embedding"]),
        "operation_name": st.sampled_from(["chat", "embeddings", "execute_tool"]),
        "provider_name": st.sampled_from(["openai", "anthropic", "aws.bedrock"]),
        "request_model": _LABEL,
        "user_id": _LABEL,
        "temperature": st.floats(0.0, 2.0),
        "top_p": st.floats(0.0, 1.0),
        "max_tokens": st.integers(0, 10_000),
        "seed": st.integers(-(2**31), 2**31),
        "stream": st.booleans(),
        "finish_reasons": st.lists(st.sampled_from(["stop", "length"]), max_size=3),
        "time_to_first_token_ms": st.floats(0.0, duration.total_seconds() * 1000.0),
        "status": st.sampled_from(["ok", "error"]),
        "error_type": _LABEL,
        "http_status": st.integers(100, 599),
        "ratelimit_remaining_tokens": st.integers(0, 10**6),
        "reported_cost_usd": st.floats(0.0, 10.0),
        "text_capture": st.sampled_from(["off", "analyze", "store"]),
        "input_text": st.text(max_size=20),
        "metadata": st.dictionaries(
            _LABEL,
            st.one_of(st.none(), st.booleans(), _INT, st.floats(), st.text(max_size=10)),
            max_size=4,
        ),
        "gen_ai.system": st.sampled_from(["openai", "vertex_ai"]),
        "prompt_tokens": st.integers(5_000, 6_000),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), max_size=8, unique=True)):
        event[name] = draw(optional[name])
    return event


@st.composite
def _mutated(draw: st.DrawFn, record_ms: int) -> Any:
    """A valid event, or one broken in one or two ways, or not an object at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(_JUNK)
    event = draw(_valid_event(record_ms))
    now = _at(record_ms)
    for _ in range(draw(st.integers(0, 2))):
        how = draw(st.sampled_from(["drop", "junk", "number", "time", "huge", "extra", "bad"]))
        name = draw(st.sampled_from(_FIELDS))
        if how == "drop":
            event.pop(draw(st.sampled_from(sorted(event))), None)
        elif how == "junk":
            event[name] = draw(_JUNK)
        elif how == "number":
            event[name] = draw(
                st.sampled_from([-1, -0.5, 10.5, 99, 600, 999, 10**8 + 1, 2**63, 1e308])
            )
        elif how == "time":
            field = draw(st.sampled_from(["start_time", "end_time"]))
            moment = now + timedelta(
                milliseconds=draw(
                    st.sampled_from(
                        [
                            -CALLS_TTL_DAYS * 86_400_000 - 1,
                            -CALLS_TTL_DAYS * 86_400_000 + 1,
                            DEFAULT_TIME_BOUNDS.max_future_ms + 1,
                            DEFAULT_TIME_BOUNDS.max_future_ms - 1,
                            400 * 86_400_000,
                            -7_200_000,
                        ]
                    )
                )
            )
            event[field] = draw(
                st.sampled_from(
                    [
                        moment.isoformat(),
                        moment.replace(tzinfo=None).isoformat(),
                        "yesterday",
                        "0001-01-01T00:30:00+01:00",
                        "9999-12-31T23:59:59-01:00",
                        "",
                    ]
                )
            )
        elif how == "huge":
            size = draw(st.sampled_from([257, 4_097]))
            event[name] = draw(st.sampled_from(["x", "1", "Ab"])) * (size // 2 + 1)
        elif how == "extra":
            event[draw(st.text(min_size=1, max_size=10))] = draw(_JUNK)
        else:
            event.update(
                draw(
                    st.sampled_from(
                        [
                            {"provider_name": "Open AI"},
                            {"operation_name": "chat\n"},
                            {"span_kind": "LLM"},
                            {"status": "failed"},
                            {"cache_creation_input_tokens": 10**6},
                            {"reasoning_output_tokens": 10**6},
                            {"time_to_first_token_ms": 10**9},
                            {"metadata": {f"k{i}": i for i in range(MAX_METADATA_ENTRIES + 1)}},
                            {"metadata": {"n": "9" * 5_000}},
                            {"metadata": {"n": [1, 2]}},
                            {"finish_reasons": ["stop"] * 17},
                        ]
                    )
                )
            )
    return event


_FUZZ: Final = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_FUZZ
@given(data=st.data())
def test_fuzzed_batches_are_decided_event_by_event_as_alone(data: st.DataObject) -> None:
    record_ms = _now_ms()
    raws = data.draw(st.lists(_mutated(record_ms), max_size=8), label="events")
    _assert_events_agree(raws, record_ms)
    _assert_paths_agree(encode_batch(raws, sent_at_ms=record_ms), record_ms, Redactor())


@_FUZZ
@given(data=st.data())
def test_fuzzed_single_events_are_decided_as_alone(data: st.DataObject) -> None:
    record_ms = _now_ms()
    raw = data.draw(_mutated(record_ms), label="event")
    if not isinstance(raw, dict):
        return  # a bare non-object record is the wire's decision, not validation's
    _assert_events_agree([raw], record_ms, whole_record=True)
    _assert_paths_agree(orjson.dumps(raw), record_ms)
