"""Guardrail SLOs in ``llmwatch analyze``: the burn-rate evaluator, fed once per record, with restart state.

:class:`GuardrailSlos` wraps the worker's burn-rate engine (``streams.slo.burnrate``) for the guardrail SLOs
(``sli.type: guardrail``). It remembers the next offset of every texts-topic partition it has fed, and
ignores a record below it, so a record re-read after a crash or a rebalance is counted once
(``replayed_records``).

Restart: :meth:`GuardrailSlos.state_record` encodes the evaluator's buckets, watermark and firing alerts
(whose ``fired_at`` is the alert id) and those next offsets, in the worker's state format
(``streams.state``); the consumer publishes it to the compacted state topic, keyed by its consumer group
(:func:`state_key`), after an alert evaluation that follows a change, and restores the latest one before
it reads a record. An incident that spans a restart keeps its alert id and resolves once. Bound: the
calls of records committed after the last published state and before a crash are missing from the
restored windows (at most one alert interval of traffic); other records are re-read and counted once.

Scope: exact for one ``analyze`` instance per consumer group. With several, each evaluates the calls of
the partitions it owns and the saved state is the last writer's; run one instance per group for
guardrail alerts, or alert from Grafana (its rules read ClickHouse, which sees every call).
Nothing here blocks or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from streams.clock import Clock
from streams.ingest.validate import SourcePosition
from streams.slo.alerts import AlertEvent
from streams.slo.burnrate import BurnRateEvaluator
from streams.slo.config import SloFile
from streams.slo.windows import Row
from streams.state import decode_offsets, encode_state

__all__ = ["STATE_KEY_SUFFIX", "GuardrailSlos", "state_key"]

# The analyzer's key on the state topic is its group id plus this, so it never takes the worker's.
STATE_KEY_SUFFIX: Final = "/guardrail-slos"


def state_key(group_id: str) -> str:
    """The state-topic key of the analyze consumers in ``group_id``."""
    return f"{group_id}{STATE_KEY_SUFFIX}"


class GuardrailSlos:
    """The guardrail SLOs of one analyze process; not thread-safe (the consumer loop owns it)."""

    def __init__(self, slos: SloFile, *, clock: Clock) -> None:
        self._slos = slos
        self._clock = clock
        self.evaluator = BurnRateEvaluator(slos, clock=clock)
        self._next_offsets: dict[tuple[str, int], int] = {}
        self._changes = 0
        self._published_changes = 0
        self.replayed_records = 0

    def observe(self, position: SourcePosition, rows: Iterable[Row]) -> bool:
        """Feed one source record's calls; False (nothing fed) for a record already fed."""
        key = (position.topic, position.partition)
        if position.offset < self._next_offsets.get(key, 0):
            self.replayed_records += 1
            return False
        self.evaluator.observe_many(rows)
        self._next_offsets[key] = position.offset + 1
        self._changes += 1
        return True

    def evaluate(self, now_ms: int) -> list[AlertEvent]:
        """Alert transitions at ``now_ms`` (a transition is a change worth saving)."""
        events = self.evaluator.evaluate(now_ms)
        self._changes += len(events)
        return events

    def status_rows(self, now_ms: int) -> list[dict[str, Any]]:
        """Burn rate per SLO, rule and window at ``now_ms``."""
        return self.evaluator.status_rows(now_ms)

    def state_record(self, key: str, now_ms: int) -> bytes | None:
        """The restart state if it changed since the last call, else None."""
        if self._changes == self._published_changes:
            return None
        self._published_changes = self._changes
        body = {
            "offsets": [[t, p, n] for (t, p), n in sorted(self._next_offsets.items())],
            "evaluator": self.evaluator.dump(),
        }
        return encode_state(key, now_ms, body)

    def load_state(self, body: dict[str, Any]) -> list[str]:
        """Take over a restored state (all or nothing); returns the parts not restored.

        Raises ValueError naming a malformed part; this object is then unchanged."""
        offsets = decode_offsets(body.get("offsets"))
        evaluator = BurnRateEvaluator(self._slos, clock=self._clock)
        saved = body.get("evaluator")
        skipped = ["evaluator: none saved"] if saved is None else evaluator.load(saved)
        self.evaluator = evaluator
        self._next_offsets.update(offsets)
        return skipped
