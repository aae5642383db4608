"""The ``monitor`` topic: what each worker instance hands to the one instance that runs the monitor.

SLO budgets and the top-K users must see every partition's traffic, or N workers would each judge a
1/N share (a cost budget split N ways never fires). So every worker publishes, for each source record,
one *monitor record* to the single-partition ``monitor`` topic, as one of that record's outputs (acked
with them, so at-least-once like the calls). Kafka gives that one partition to exactly one member of
the worker group, and that member feeds the records to its ``streams.monitor.StreamMonitor``: burn
rates, budgets, top-K and lifecycle alerts over all instances, exactly once per source record (the
monitor skips a source position it has counted, see ``StreamMonitor.observe``).

A record holds the source record's position, the columns of its valid rows that the monitor reads
(:data:`MONITOR_FIELDS`, a few of the 52 call columns), and the calls of models whose lifecycle is
flagged (deprecated, retiring...). JSON (orjson) columns: ~60 bytes a row.

Errors: :func:`decode_monitor_record` raises ``ValueError`` naming what is wrong; the monitor agent
counts and skips such a record. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from streams.ingest.validate import SourcePosition
from streams.slo.config import SELECTOR_COLUMNS

__all__ = [
    "MONITOR_FIELDS",
    "MONITOR_KEY",
    "MonitorRecord",
    "decode_monitor_record",
    "encode_monitor_record",
]

MONITOR_VERSION: Final = 1
MONITOR_KEY: Final = b"monitor"
# What StreamMonitor, the burn-rate evaluator (selectors, SLIs) and the top-K read of a row.
MONITOR_FIELDS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(
        (
            "start_time",
            "end_time",
            "status",
            "duration_ms",
            "time_to_first_token_ms",
            "cost_usd",
            "tenant_id",
            "user_id",
            *SELECTOR_COLUMNS.values(),
            "request_model",
            "response_model",
        )
    )
)
FlaggedCalls = dict[tuple[str, str, str], int]  # (provider, model, lifecycle status) -> calls


@dataclass(frozen=True, slots=True)
class MonitorRecord:
    source: SourcePosition
    rows: list[dict[str, Any]]
    flagged: FlaggedCalls


def encode_monitor_record(
    rows: Sequence[Mapping[str, Any]], source: SourcePosition, flagged: FlaggedCalls
) -> bytes:
    columns = {name: [row[name] for row in rows] for name in MONITOR_FIELDS}
    return orjson.dumps(
        {
            "v": MONITOR_VERSION,
            "source": [source.topic, source.partition, source.offset],
            "columns": columns,
            "flagged": [[*key, calls] for key, calls in sorted(flagged.items())],
        }
    )


def decode_monitor_record(value: bytes | None) -> MonitorRecord:
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"monitor record is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("v") != MONITOR_VERSION:
        raise ValueError(f"not a version-{MONITOR_VERSION} monitor record: {value!r:.80}")
    source = doc.get("source")
    if not (
        isinstance(source, list)
        and len(source) == 3
        and isinstance(source[0], str)
        and all(isinstance(v, int) and v >= 0 for v in source[1:])
    ):
        raise ValueError(
            f"monitor record source must be [topic, partition, offset], got {source!r}"
        )
    columns = doc.get("columns")
    if not isinstance(columns, dict) or set(columns) != set(MONITOR_FIELDS):
        got = sorted(columns) if isinstance(columns, dict) else columns
        raise ValueError(
            f"monitor record needs the columns {list(MONITOR_FIELDS)}, got {got!r:.200}"
        )
    lengths = {len(values) if isinstance(values, list) else -1 for values in columns.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise ValueError(f"monitor record columns must be lists of one length, got {lengths}")
    names = list(columns)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    flagged: FlaggedCalls = {}
    for item in doc.get("flagged", []):
        if not (
            isinstance(item, list)
            and len(item) == 4
            and all(isinstance(v, str) for v in item[:3])
            and isinstance(item[3], int)
        ):
            raise ValueError(
                f"flagged entry must be [provider, model, status, calls], got {item!r}"
            )
        flagged[(item[0], item[1], item[2])] = item[3]
    return MonitorRecord(SourcePosition(source[0], source[1], source[2]), rows, flagged)
