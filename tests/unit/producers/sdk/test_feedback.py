"""watch.feedback(...): validation naming the bad value, never raising, privacy of comments, targets."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from producers.feedback import (
    FeedbackRecord,
    build_feedback,
    is_feedback_record,
)
from producers.sdk import Publisher
from tests.unit.producers.sdk.conftest import wait_until

MakePublisher = Callable[..., Publisher]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _build(target: str = TRACE, value: object = True, **extra: object) -> FeedbackRecord:
    options: dict[str, object] = {
        "comment": None,
        "user_id": "u1",
        "service": "svc",
        "environment": "test",
        "now_ms": 1,
        "keep_comment": True,
    }
    options.update(extra)
    return build_feedback(target, "thumbs", value, **options)  # type: ignore[arg-type]


def test_a_trace_id_and_a_response_id_are_told_apart() -> None:
    by_trace = _build(TRACE)
    assert (by_trace.trace_id, by_trace.response_id) == (TRACE, None)
    by_response = _build("chatcmpl-abc123")
    assert (by_response.trace_id, by_response.response_id) == (None, "chatcmpl-abc123")
    assert by_response.target == "chatcmpl-abc123"


@pytest.mark.parametrize(
    ("value", "score", "label", "negative"),
    [
        (True, 1.0, "positive", False),
        (False, 0.0, "negative", True),
        (4, 4.0, "", False),
        (0, 0.0, "", True),
        (-1.5, -1.5, "", True),
        ("thumbs_down", None, "thumbs_down", True),
        ("great", None, "great", False),
    ],
)
def test_values_become_a_score_or_a_label(
    value: object, score: float | None, label: str, negative: bool
) -> None:
    record = _build(value=value)
    assert (record.score_value, record.label, record.negative) == (score, label, negative)


@pytest.mark.parametrize(
    ("target", "value", "expected"),
    [
        ("", True, "target"),
        (TRACE, None, "NoneType None"),
        (TRACE, [1], "list [1]"),
        (TRACE, math.nan, "finite, got nan"),
        (TRACE, "", "neither a score nor a label"),
    ],
)
def test_bad_arguments_raise_naming_the_value(target: str, value: object, expected: str) -> None:
    with pytest.raises(ValueError, match="feedback") as info:
        _build(target, value)
    assert expected in str(info.value)


def test_comment_is_dropped_unless_text_may_leave_the_app() -> None:
    assert _build(comment="rude answer", keep_comment=False).comment is None
    assert _build(comment="rude answer", keep_comment=True).comment == "rude answer"


def test_the_wire_form_round_trips_and_is_recognised() -> None:
    record = _build(value=3, comment="ok")
    decoded = FeedbackRecord.model_validate_json(record.to_json())
    assert decoded == record
    assert is_feedback_record({"feedback": 1, "name": "x"})
    assert not is_feedback_record({"text_record": 1, "event_id": "e"})


def test_publisher_feedback_never_raises_and_counts_bad_calls(
    make_publisher: MakePublisher, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = make_publisher()
    assert publisher.feedback(TRACE, "thumbs", True) is True
    assert publisher.feedback(TRACE, "thumbs", object()) is False  # type: ignore[arg-type]
    assert publisher.feedback("", "thumbs", True) is False
    assert publisher.feedback(TRACE, "", 1) is False
    stats = publisher.stats
    assert stats.dropped_invalid == 3
    assert stats.emitted == 0  # feedback is not an event: the event counters do not move
    assert "feedback dropped" in caplog.text


def test_feedback_is_settled_as_a_text_record(make_publisher: MakePublisher) -> None:
    publisher = make_publisher()
    assert publisher.feedback(TRACE, "thumbs", False)
    assert publisher.close(timeout=0.3) is False  # nothing listens at the bootstrap address
    assert wait_until(lambda: publisher.stats.texts_failed == 1)
    assert (publisher.stats.held_events, publisher.stats.held_bytes) == (0, 0)
