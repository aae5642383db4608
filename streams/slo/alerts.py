"""Record formats of the ``alerts`` topic: SLO alert transitions and SLO status snapshots.

An alerts-topic record is either
- one :class:`AlertEvent` as a JSON object (``AlertEvent.to_json``), a rule starting or stopping to fire,
  written to ``llm_alerts``; or
- a status envelope (:func:`encode_status`): the burn rate of every SLO, rule and window at one
  evaluation time (rows of :data:`SLO_STATUS_FIELDS`), written to ``llm_slo_status``.
:func:`decode_alerts_record` tells them apart and returns rows per table, like ``streams.analytics.rollups``.

Idempotence: ``alert_id`` is ``"<slo>/<rule>/<fired_at>"``; a firing and its resolution share it and
differ by ``state``. ``llm_alerts`` is a ReplacingMergeTree keyed by (alert_id, state) and status rows
are keyed by (slo, rule, window, evaluated_at), so a re-sent record does not duplicate rows.

Times are epoch milliseconds (UTC). Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

import orjson

from streams.storage import ALERTS_TABLE, SLO_STATUS_TABLE

__all__ = [
    "ALERTS_TABLE",
    "ALERT_FIELDS",
    "SLO_STATUS_FIELDS",
    "SLO_STATUS_TABLE",
    "STATUS_ENVELOPE_MARKER",
    "AlertEvent",
    "AlertState",
    "alert_id_for",
    "decode_alert",
    "decode_alerts_record",
    "encode_status",
    "point_alert",
]

STATUS_ENVELOPE_MARKER: Final = "llmwatch_slo_status"
STATUS_ENVELOPE_VERSION: Final = 1

SLO_STATUS_FIELDS: Final[tuple[str, ...]] = (
    "evaluated_at",
    "slo",
    "rule",
    "window",
    "window_kind",  # "long" or "short"
    "window_ms",
    "sli_type",
    "severity",
    "objective",  # None for cost SLIs
    "usd_per_hour",  # None for ratio SLIs
    "factor",
    "burn_rate",
    "good",
    "total",
    "spent_usd",
    "unpriced",
    "firing",  # the rule's condition at evaluated_at (both windows above factor)
    "budget_remaining",  # None when nothing was counted in the period yet
    "budget_period",
    "budget_covered_ms",
    "late_events",
    "watermark",
)


class AlertState(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


def alert_id_for(slo: str, rule: str, fired_at: int) -> str:
    return f"{slo}/{rule}/{fired_at}"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A multi-window burn-rate rule of one SLO started (``firing``) or stopped (``resolved``) firing.

    Window measures: ``good``/``total`` for ratio SLIs; for cost SLIs ``good`` counts priced calls,
    ``spent_usd`` the USD spent and ``unpriced`` the calls without a price (counted as 0 USD).
    """

    alert_id: str
    slo: str
    rule: str
    severity: str
    state: str  # AlertState value
    fired_at: int
    resolved_at: int | None
    evaluated_at: int
    sli_type: str
    objective: float | None
    usd_per_hour: float | None
    factor: float
    long_window: str
    short_window: str
    burn_rate_long: float
    burn_rate_short: float
    good_long: int
    total_long: int
    good_short: int
    total_short: int
    spent_usd_long: float
    spent_usd_short: float
    unpriced_long: int
    unpriced_short: int
    selector: dict[str, str]
    description: str
    runbook: str

    def to_row(self) -> dict[str, Any]:
        """A dict with exactly the keys of :data:`ALERT_FIELDS`."""
        return asdict(self)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, value: bytes | None) -> AlertEvent:
        return decode_alert(value)


ALERT_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in fields(AlertEvent))


def point_alert(
    *,
    alert_id: str,
    slo: str,
    rule: str,
    severity: str,
    at_ms: int,
    factor: float,
    reference_n: int,
    current_n: int,
    selector: dict[str, str],
    description: str,
    runbook: str,
) -> AlertEvent:
    """A firing alert that is not a burn-rate rule's (a failed prompt canary, a drifted scope): its
    windows' counts carry the reference's and the current sample's sizes, ``factor`` its effect."""
    return AlertEvent(
        alert_id=alert_id, slo=slo, rule=rule, severity=severity, state=AlertState.FIRING.value,
        fired_at=at_ms, resolved_at=None, evaluated_at=at_ms, sli_type=rule, objective=None,
        usd_per_hour=None, factor=factor, long_window="", short_window="", burn_rate_long=0.0,
        burn_rate_short=0.0, good_long=reference_n, total_long=reference_n, good_short=current_n,
        total_short=current_n, spent_usd_long=0.0, spent_usd_short=0.0, unpriced_long=0,
        unpriced_short=0, selector=selector, description=description, runbook=runbook,
    )  # fmt: skip


_INT_FIELDS: Final = frozenset(
    {"fired_at", "evaluated_at", "good_long", "total_long", "good_short", "total_short"}
    | {"unpriced_long", "unpriced_short"}
)
_FLOAT_FIELDS: Final = frozenset(
    {"factor", "burn_rate_long", "burn_rate_short", "spent_usd_long", "spent_usd_short"}
)
_OPTIONAL_FLOAT_FIELDS: Final = frozenset({"objective", "usd_per_hour"})


def _field_value(name: str, value: Any) -> Any:
    if name in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return value
    if name in _FLOAT_FIELDS or (name in _OPTIONAL_FLOAT_FIELDS and value is not None):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, got {value!r}")
        return float(value)
    if name == "resolved_at":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"resolved_at must be an integer or null, got {value!r}")
        return value
    if name == "selector":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValueError(f"selector must be an object of strings, got {value!r:.80}")
        return value
    if name in _OPTIONAL_FLOAT_FIELDS:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r:.80}")
    return value


def _json(value: bytes | None, what: str) -> Any:
    try:
        return orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{what} is not JSON ({exc}): {(value or b'')[:120]!r}") from exc


def _alert_from_doc(doc: Any) -> AlertEvent:
    if not isinstance(doc, dict):
        raise ValueError(f"alert record must be a JSON object, got {doc!r:.80}")
    missing = [name for name in ALERT_FIELDS if name not in doc]
    if missing:
        raise ValueError(f"alert record lacks field(s) {missing}")
    event = AlertEvent(**{name: _field_value(name, doc[name]) for name in ALERT_FIELDS})
    if event.state not in set(AlertState):
        raise ValueError(f"state must be 'firing' or 'resolved', got {event.state!r}")
    return event


def decode_alert(value: bytes | None) -> AlertEvent:
    """Parse one alert record; raises ValueError naming what is wrong."""
    return _alert_from_doc(_json(value, "alert record"))


def encode_status(rows: list[dict[str, Any]]) -> bytes:
    """One alerts-topic record holding status rows (keys: :data:`SLO_STATUS_FIELDS`)."""
    return orjson.dumps({STATUS_ENVELOPE_MARKER: STATUS_ENVELOPE_VERSION, SLO_STATUS_TABLE: rows})


def _status_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc.get(STATUS_ENVELOPE_MARKER) != STATUS_ENVELOPE_VERSION:
        raise ValueError(
            f"not a version-{STATUS_ENVELOPE_VERSION} status record "
            f"(marker {doc.get(STATUS_ENVELOPE_MARKER)!r})"
        )
    rows = doc.get(SLO_STATUS_TABLE)
    if not isinstance(rows, list):
        raise ValueError(f"status record needs a list under {SLO_STATUS_TABLE!r}, got {rows!r:.80}")
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not row.keys() >= set(SLO_STATUS_FIELDS):
            absent = sorted(set(SLO_STATUS_FIELDS) - set(row)) if isinstance(row, dict) else row
            raise ValueError(f"status row #{index} lacks field(s) {absent!r:.120}")
    return rows


def decode_alerts_record(value: bytes | None) -> dict[str, list[dict[str, Any]]]:
    """Rows per table of one alerts-topic record; raises ValueError naming what is wrong."""
    doc = _json(value, "alerts record")
    if isinstance(doc, dict) and STATUS_ENVELOPE_MARKER in doc:
        return {SLO_STATUS_TABLE: _status_rows(doc)}
    return {ALERTS_TABLE: [_alert_from_doc(doc).to_row()]}
