"""The per-record analytics the worker runs after validation: cost, model lifecycle, rollups.

:class:`RecordAnalytics` bundles the long-lived, cached parts (price tables, lifecycle catalog) so the
Faust agent makes three cheap calls per record. Guarantees: nothing here raises into the agent for any
valid event (a pricing failure is logged and leaves the cost NULL, counted as unpriced), and nothing
blocks or does I/O after construction (which reads the price-override and lifecycle files).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from producers.events import LlmCallEvent
from streams.analytics.cost import CostCalculator, load_price_overrides
from streams.analytics.lifecycle import DeprecationCatalog, DeprecationStatus
from streams.analytics.rollups import RecordRollups, rollup_record
from streams.ingest.validate import NO_COST, CostFields, SourcePosition

__all__ = ["DEFAULT_DEPRECATION_WARN_DAYS", "AnalyticsConfig", "RecordAnalytics"]

log = logging.getLogger(__name__)

DEFAULT_DEPRECATION_WARN_DAYS: Final = 30
FLAGGED_LIFECYCLES: Final = frozenset(
    {
        DeprecationStatus.DEPRECATION_SOON,
        DeprecationStatus.DEPRECATED,
        DeprecationStatus.RETIRING_SOON,
        DeprecationStatus.RETIRED,
    }
)


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    price_overrides: Path | None = None
    lifecycle_file: Path | None = None
    deprecation_warn_days: int = DEFAULT_DEPRECATION_WARN_DAYS


class RecordAnalytics:
    """Cost, lifecycle and rollups for the events of one raw record."""

    def __init__(self, config: AnalyticsConfig = AnalyticsConfig()) -> None:
        if config.deprecation_warn_days < 0:
            raise ValueError(
                f"deprecation_warn_days must be >= 0, got {config.deprecation_warn_days!r}"
            )
        overrides = load_price_overrides(config.price_overrides) if config.price_overrides else None
        self.calculator = CostCalculator(overrides)
        self.catalog = DeprecationCatalog.load(config.lifecycle_file)
        self.warn_days = config.deprecation_warn_days
        # (provider, model, status) -> calls seen, for the deprecation watch and its alerts.
        self.flagged_models: dict[tuple[str, str, str], int] = {}

    def cost_fields(self, event: LlmCallEvent) -> CostFields:
        try:
            result = self.calculator.price(
                event.provider_name,
                event.response_model or event.request_model,
                event.input_tokens,
                event.output_tokens,
                event.cache_read_input_tokens,
                event.cache_creation_input_tokens,
                event.reasoning_output_tokens,
                reported_cost_usd=event.reported_cost_usd,
                at=event.start_time,
            )
        except ValueError as exc:
            log.warning("could not price event %s: %s", event.event_id, exc)
            return NO_COST
        return CostFields(
            cost_usd=result.cost_usd,
            calculated_cost_usd=result.calculated_cost_usd,
            cost_source=str(result.cost_source),
        )

    def lifecycle(self, provider: str, model: str, start_ms: int, calls: int = 1) -> str:
        """The model's lifecycle status on the UTC day of ``start_ms``; counts ``calls`` if flagged."""
        if calls < 0:
            raise ValueError(f"calls must be >= 0, got {calls!r}")
        day = datetime.fromtimestamp(start_ms / 1000, tz=UTC).date()
        status = self.catalog.status(provider or None, model, day, self.warn_days)
        if status in FLAGGED_LIFECYCLES:
            key = (provider, model, str(status))
            self.flagged_models[key] = self.flagged_models.get(key, 0) + calls
        return str(status)

    def rollups(self, rows: Sequence[dict[str, Any]], source: SourcePosition) -> RecordRollups:
        return rollup_record(rows, source, lifecycle=self.lifecycle)

    def unknown_models(self) -> dict[tuple[str, str], int]:
        return self.calculator.unknown_models()
