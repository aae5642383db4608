from __future__ import annotations

import base64
import hashlib

import orjson
import pytest

from producers.wire import encode_batch
from sinks.routes import (
    WHOLE_RECORD,
    dead_letter_row,
    decode_call_rows,
    decode_dead_letter_rows,
    default_routes,
)
from sinks.schema import CALL_COLUMNS, CALLS_TABLE, DLQ_COLUMNS, DLQ_TABLE
from streams.analytics.rollups import (
    ROLLUP_1M_FIELDS,
    ROLLUP_TABLE,
    TENANT_COST_1M_FIELDS,
    TENANT_COST_TABLE,
    USER_COST_1H_FIELDS,
    USER_COST_TABLE,
    RecordRollups,
    encode_rollups,
)
from streams.drift.monitor import DRIFT_FIELDS
from streams.drift.records import DRIFT_TOPIC_FIELDS
from streams.evaluation.items import SCORE_FIELDS
from streams.periodic import (
    PIPELINE_METRIC_FIELDS,
    PIPELINE_METRICS_TABLE,
    TOP_USERS_FIELDS,
    TOP_USERS_TABLE,
)
from streams.prompts.records import (
    CANARY_METRIC_FIELDS,
    CANARY_VERDICT_FIELDS,
    PROMPT_FIELDS,
    PROMPT_LABEL_FIELDS,
)
from streams.slo.alerts import ALERT_FIELDS, ALERTS_TABLE, SLO_STATUS_FIELDS, SLO_STATUS_TABLE
from streams.storage import (
    CANARY_METRICS_TABLE,
    CANARY_VERDICTS_TABLE,
    DRIFT_TABLE,
    DRIFT_TOPICS_TABLE,
    GUARDRAIL_FINDINGS_TABLE,
    GUARDRAIL_ROLLUP_TABLE,
    PROMPT_LABELS_TABLE,
    PROMPTS_TABLE,
    SCORES_TABLE,
    TEXTS_TABLE,
)
from streams.text.records import FINDING_FIELDS, GUARDRAIL_ROLLUP_FIELDS, TEXT_FIELDS
from streams.topics import TopicLayout
from tests.unit.sinks.factories import call_rows, dead_letter


def test_default_routes_map_calls_dlq_and_rollup_topics() -> None:
    layout = TopicLayout(prefix="p")
    routes = default_routes(layout)
    assert {topic: r.tables for topic, r in routes.items()} == {
        "p.calls": {CALLS_TABLE: CALL_COLUMNS},
        "p.dlq": {DLQ_TABLE: DLQ_COLUMNS},
        "p.rollups": {
            ROLLUP_TABLE: ROLLUP_1M_FIELDS,
            USER_COST_TABLE: USER_COST_1H_FIELDS,
            TENANT_COST_TABLE: TENANT_COST_1M_FIELDS,
        },
        "p.alerts": {ALERTS_TABLE: ALERT_FIELDS, SLO_STATUS_TABLE: SLO_STATUS_FIELDS},
        "p.metrics": {
            PIPELINE_METRICS_TABLE: PIPELINE_METRIC_FIELDS,
            TOP_USERS_TABLE: TOP_USERS_FIELDS,
        },
        "p.guardrails": {
            GUARDRAIL_FINDINGS_TABLE: FINDING_FIELDS,
            GUARDRAIL_ROLLUP_TABLE: GUARDRAIL_ROLLUP_FIELDS,
            TEXTS_TABLE: TEXT_FIELDS,
        },
        "p.scores": {SCORES_TABLE: SCORE_FIELDS},
        "p.prompts": {PROMPTS_TABLE: PROMPT_FIELDS, PROMPT_LABELS_TABLE: PROMPT_LABEL_FIELDS},
        "p.canary": {
            CANARY_VERDICTS_TABLE: CANARY_VERDICT_FIELDS,
            CANARY_METRICS_TABLE: CANARY_METRIC_FIELDS,
        },
        "p.drift": {DRIFT_TABLE: DRIFT_FIELDS, DRIFT_TOPICS_TABLE: DRIFT_TOPIC_FIELDS},
    }


def test_rollup_record_splits_into_both_tables() -> None:
    route = default_routes(TopicLayout(prefix="p"))["p.rollups"]
    rollups = RecordRollups(rollup_1m=[], user_cost_1h=[{"user_id": "u"}])
    assert route.split(encode_rollups(rollups)) == {
        ROLLUP_TABLE: [],
        USER_COST_TABLE: [{"user_id": "u"}],
        TENANT_COST_TABLE: [],
    }
    with pytest.raises(ValueError, match="not a version-1 rollups record"):
        route.split(b'{"x": 1}')


def test_call_batch_decodes_to_its_rows() -> None:
    rows = call_rows(3)
    assert decode_call_rows(encode_batch(rows)) == rows


def test_a_bare_row_decodes_to_one_row() -> None:
    [row] = call_rows(1)
    assert decode_call_rows(orjson.dumps(row)) == [row]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty record value"),
        (b"", "empty record value"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"llmwatch_batch": 99, "events": []}', "unsupported batch envelope version 99"),
        (b'{"llmwatch_batch": 1, "events": [1]}', "row #0 must be a JSON object, got int"),
    ],
)
def test_undecodable_call_records_raise_naming_the_problem(
    value: bytes | None, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_call_rows(value)


def test_dead_letter_record_decodes_to_its_row() -> None:
    letter = dead_letter(12, payload=b"\x00raw\xff")
    assert decode_dead_letter_rows(letter.to_json()) == [letter.to_row()]


@pytest.mark.parametrize("value", [None, b"{}", b"not json", b'{"failed_at": "soon"}'])
def test_undecodable_dead_letter_records_raise(value: bytes | None) -> None:
    with pytest.raises(ValueError, match="dead-letter record"):
        decode_dead_letter_rows(value)


def test_dead_letter_row_keeps_the_whole_record() -> None:
    value = b"garbage \x00 bytes"
    row = dead_letter_row("cannot decode", "p.calls", 2, 41, value)
    assert set(row) == set(DLQ_COLUMNS)
    assert row["dead_letter_id"] == f"p.calls/2/41/{WHOLE_RECORD}"
    assert (row["payload"], row["payload_size"]) == (value, len(value))
    assert row["payload_sha256"] == hashlib.sha256(value).hexdigest()
    assert row["reason"] == "cannot decode"


def test_dead_letter_row_of_a_record_without_value_has_empty_payload() -> None:
    row = dead_letter_row("empty", "p.calls", 0, 0, None)
    assert (row["payload"], row["payload_size"]) == (b"", 0)
    assert base64.b64encode(row["payload"]) == b""
