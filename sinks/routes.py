"""Which topic goes to which table: the sink's route table, and the decoders of each record format.

A :class:`Route` maps one topic to a table, a decode function (record bytes -> row dicts) and the
columns to insert. Adding a table to the sink (rollups, alerts) is one more route.

Decoder contract: return the rows of one record, or raise (``ValueError`` naming what is wrong) if the
record cannot be read; the sink then stores the record whole in ``llm_dlq`` with the reason
(:func:`dead_letter_row`), so nothing is lost. Decoders run on the sink's thread and must not block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import pyarrow as pa

from producers.wire import now_ms
from sinks.schema import CALL_COLUMNS, CALLS_TABLE, DLQ_COLUMNS, DLQ_TABLE
from streams.analytics.rollups import (
    ROLLUP_1M_FIELDS,
    ROLLUP_TABLE,
    TENANT_COST_1M_FIELDS,
    TENANT_COST_TABLE,
    USER_COST_1H_FIELDS,
    USER_COST_TABLE,
    decode_rollups,
)
from streams.drift.monitor import DRIFT_FIELDS
from streams.drift.records import DRIFT_TOPIC_FIELDS, decode_drift
from streams.evaluation.items import SCORE_FIELDS, decode_scores
from streams.ingest.call_batches import decode_call_rows, decode_call_table, is_arrow_record
from streams.ingest.records import DeadLetter, decode_dead_letter
from streams.periodic import (
    PIPELINE_METRIC_FIELDS,
    PIPELINE_METRICS_TABLE,
    TOP_USERS_FIELDS,
    TOP_USERS_TABLE,
    decode_snapshot,
)
from streams.prompts.records import (
    CANARY_METRIC_FIELDS,
    CANARY_VERDICT_FIELDS,
    PROMPT_FIELDS,
    PROMPT_LABEL_FIELDS,
    decode_canary,
    decode_registry,
)
from streams.slo.alerts import (
    ALERT_FIELDS,
    ALERTS_TABLE,
    SLO_STATUS_FIELDS,
    SLO_STATUS_TABLE,
    decode_alerts_record,
)
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
from streams.text.records import (
    FINDING_FIELDS,
    GUARDRAIL_ROLLUP_FIELDS,
    TEXT_FIELDS,
    decode_guardrails,
)
from streams.topics import TopicLayout

__all__ = [
    "WHOLE_RECORD",
    "Decoder",
    "Route",
    "Rows",
    "TablesRoute",
    "dead_letter_row",
    "decode_call_rows",
    "decode_calls_for_insert",
    "decode_dead_letter_rows",
    "default_routes",
]

# index_in_record of a dead letter that stands for the whole record.
WHOLE_RECORD: Final = -1

Row = dict[str, Any]
# A record's rows for one table: dicts, or an Arrow table (the worker's columnar calls records).
Rows: TypeAlias = list[Row] | pa.Table
Decoder = Callable[[bytes | None], Rows]


@dataclass(frozen=True, slots=True)
class Route:
    """Records of one topic become rows of ``table`` (``columns`` are inserted, in this order)."""

    table: str
    decode: Decoder
    columns: tuple[str, ...]

    @property
    def tables(self) -> dict[str, tuple[str, ...]]:
        return {self.table: self.columns}

    def split(self, value: bytes | None) -> dict[str, Rows]:
        return {self.table: self.decode(value)}


@dataclass(frozen=True, slots=True)
class TablesRoute:
    """Records of one topic carry rows for several tables (e.g. the worker's per-record rollups)."""

    decode_snapshot: Callable[[bytes | None], dict[str, list[Row]]]
    columns: Mapping[str, tuple[str, ...]]

    @property
    def tables(self) -> dict[str, tuple[str, ...]]:
        return dict(self.columns)

    @property
    def table(self) -> str:
        return "+".join(self.columns)

    def split(self, value: bytes | None) -> dict[str, Rows]:
        decoded = self.decode_snapshot(value)
        unknown = set(decoded) - set(self.columns)
        if unknown:
            raise ValueError(f"record has rows for unrouted tables {sorted(unknown)!r}")
        return decoded


def decode_calls_for_insert(value: bytes | None) -> list[Row] | pa.Table:
    """A ``calls`` record's rows: an Arrow table for the worker's columnar records (inserted by
    ClickHouse's Arrow insert, no Python row per call), dict rows for a JSON batch or bare row."""
    if is_arrow_record(value):
        return decode_call_table(value)
    # Missing fields are not checked here (it would cost ~20% of the sink's CPU): the column
    # conversion raises a KeyError naming them, and the sink dead-letters the record then.
    return decode_call_rows(value)


def decode_dead_letter_rows(value: bytes | None) -> list[Row]:
    """The one ``llm_dlq`` row of a ``dlq`` record."""
    if value is None:
        raise ValueError("empty dead-letter record (no value)")
    return [decode_dead_letter(value).to_row()]


def dead_letter_row(
    reason: str, topic: str, partition: int, offset: int, value: bytes | None
) -> Row:
    """The ``llm_dlq`` row for a whole record the sink could not decode or insert.

    Stored like every dead letter (``streams.ingest.deadletter``): payload and reason redacted, the
    payload capped at 256 KiB, ``payload_size`` and ``payload_sha256`` those of the record's bytes.
    """
    return DeadLetter(
        failed_at=now_ms(),
        reason=reason,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        index_in_record=WHOLE_RECORD,
        payload=value or b"",
    ).to_row()


def default_routes(layout: TopicLayout) -> Mapping[str, Route | TablesRoute]:
    """The sink's routes: normalized calls, dead letters, the worker's rollups, alerts and metrics,
    the text-analysis consumer's guardrail rows, the evaluation path's scores, the prompt registry's
    versions and label moves, the canary analysis's verdicts, and the drift monitor's results."""
    return {
        layout.calls: Route(CALLS_TABLE, decode_calls_for_insert, CALL_COLUMNS),
        layout.dlq: Route(DLQ_TABLE, decode_dead_letter_rows, DLQ_COLUMNS),
        layout.rollups: TablesRoute(
            decode_rollups,
            {
                ROLLUP_TABLE: ROLLUP_1M_FIELDS,
                USER_COST_TABLE: USER_COST_1H_FIELDS,
                TENANT_COST_TABLE: TENANT_COST_1M_FIELDS,
            },
        ),
        layout.alerts: TablesRoute(
            decode_alerts_record, {ALERTS_TABLE: ALERT_FIELDS, SLO_STATUS_TABLE: SLO_STATUS_FIELDS}
        ),
        layout.metrics: TablesRoute(
            decode_snapshot,
            {PIPELINE_METRICS_TABLE: PIPELINE_METRIC_FIELDS, TOP_USERS_TABLE: TOP_USERS_FIELDS},
        ),
        layout.guardrails: TablesRoute(
            decode_guardrails,
            {
                GUARDRAIL_FINDINGS_TABLE: FINDING_FIELDS,
                GUARDRAIL_ROLLUP_TABLE: GUARDRAIL_ROLLUP_FIELDS,
                TEXTS_TABLE: TEXT_FIELDS,
            },
        ),
        layout.scores: Route(SCORES_TABLE, decode_scores, SCORE_FIELDS),
        layout.prompts: TablesRoute(
            decode_registry,
            {PROMPTS_TABLE: PROMPT_FIELDS, PROMPT_LABELS_TABLE: PROMPT_LABEL_FIELDS},
        ),
        layout.canary: TablesRoute(
            decode_canary,
            {
                CANARY_VERDICTS_TABLE: CANARY_VERDICT_FIELDS,
                CANARY_METRICS_TABLE: CANARY_METRIC_FIELDS,
            },
        ),
        layout.drift: TablesRoute(
            decode_drift, {DRIFT_TABLE: DRIFT_FIELDS, DRIFT_TOPICS_TABLE: DRIFT_TOPIC_FIELDS}
        ),
    }
