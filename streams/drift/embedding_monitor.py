"""Embedding drift over event-time windows: text records in, ``llm_drift`` and ``llm_drift_topics`` rows out.

Texts (a call's prompt: direction ``input``; its output: ``output``) are grouped by their call's start
time into tumbling windows of ``window_ms``, per scope (service, span kind, direction). The windowing,
the watermark and the trailing-or-pinned reference are the shape monitor's (``streams.drift.monitor``):
a window closes once the watermark is ``grace_ms`` past its end and is compared with the merge of the
``reference_windows`` windows closed before it, or with the pinned baseline of its scope.

Two steps per poll, so the caller embeds in one batch: :meth:`EmbeddingDriftMonitor.offer` returns the
texts worth embedding: sampled for their service (``rates``, deterministic by event id) and entering
their window's bottom-k sample (``streams.drift.embedding``); :meth:`EmbeddingDriftMonitor.accept` adds
them with their vectors. Privacy: a sample keeps vectors and event ids; it keeps a text only for a call
captured with ``store``, redacted by the caller, and only to show as an example of novel traffic.

Determinism: a window's sample depends only on the event ids and texts in it, so a replay gives the same
rows (the tables collapse them); the permutation test's seed is derived from the scope.
Memory: ``capacity`` vectors per scope per open or reference window. Nothing here does I/O or reads a
clock.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from producers.texts import TextRecord
from streams.drift.embedding import (
    DEFAULT_CAPACITY,
    DEFAULT_PERMUTATIONS,
    DEFAULT_TOPICS,
    EffectFloors,
    EmbeddingResult,
    EmbeddingSample,
    SampledText,
    TopicModel,
    TopicShares,
    compare_samples,
    flag,
    priority,
    topic_rows,
)
from streams.drift.monitor import WindowConfig, WindowSpan, drift_row
from streams.drift.watermark import Watermark

__all__ = [
    "DIRECTIONS",
    "ENCODER_MAX_TOKENS",
    "EmbeddingDriftConfig",
    "EmbeddingDriftMonitor",
    "Pending",
    "Scope",
]

log = logging.getLogger(__name__)

Scope = tuple[str, str, str]  # service, span kind, direction
DIRECTIONS: Final = {"input": "input_text", "output": "output_text"}
# Word pieces the drift encoder reads per text: the topic of a prompt or answer shows in its first 64,
# and the int8 encoder reaches its >= 250 texts/s there (about 155 at 128; docs/performance.md).
ENCODER_MAX_TOKENS: Final = 64
# A text is sampled for its service when priority < rate * 2^64 (the same hash as the bottom-k order,
# so a lower rate keeps a subset).
_HASH_SPACE: Final = 2**64


@dataclass(frozen=True, slots=True)
class EmbeddingDriftConfig(WindowConfig):
    floors: EffectFloors = field(default_factory=EffectFloors)
    capacity: int = DEFAULT_CAPACITY
    topics: int = DEFAULT_TOPICS
    permutations: int = DEFAULT_PERMUTATIONS
    rate: float = 1.0  # share of each service's captured texts embedded
    rates: Mapping[str, float] = field(default_factory=dict)  # per service, overrides ``rate``
    directions: tuple[str, ...] = ("input", "output")
    max_text_chars: int = 2_000  # the encoder reads ~128 tokens; longer texts are cut first

    def __post_init__(self) -> None:
        WindowConfig.__post_init__(self)
        for name in ("capacity", "topics"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.min_samples > self.capacity:
            raise ValueError(
                f"min_samples ({self.min_samples}) cannot exceed the sample capacity ({self.capacity})"
            )
        for service, rate in {"(default)": self.rate, **self.rates}.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"embedding rate of {service!r} must be in [0, 1], got {rate!r}")
        unknown = set(self.directions) - set(DIRECTIONS)
        if unknown:
            raise ValueError(f"unknown directions {sorted(unknown)!r}; known: {sorted(DIRECTIONS)}")

    def rate_of(self, service: str) -> float:
        return self.rates.get(service, self.rate)


@dataclass(frozen=True, slots=True)
class Pending:
    """A text to embed: where it goes once :meth:`EmbeddingDriftMonitor.accept` gets its vector."""

    window: int
    scope: Scope
    priority: int
    event_id: str
    text: str
    stored: bool  # captured with ``store``: its redacted text may be kept as an example


Samples = dict[Scope, EmbeddingSample]


@dataclass(slots=True)
class EmbeddingDriftMonitor:
    config: EmbeddingDriftConfig = field(default_factory=EmbeddingDriftConfig)
    pinned: Samples | None = None
    pinned_span: tuple[int, int] = (0, 0)
    open: dict[int, Samples] = field(default_factory=dict)
    closed: deque[tuple[int, Samples]] = field(default_factory=deque)
    models: dict[Scope, TopicModel] = field(default_factory=dict)
    watermark: Watermark = field(default_factory=Watermark)
    late: int = 0

    def expect(self, source: int) -> None:
        self.watermark.expect(source)

    def idle(self, source: int) -> None:
        self.watermark.idle(source)

    def pin(self, baseline: Samples, span: tuple[int, int]) -> None:
        """Compare with ``baseline`` from now on; the topic models are refit on it."""
        self.pinned, self.pinned_span = baseline, span
        self.models.clear()

    def unpin(self) -> None:
        """Back to the trailing reference; the topic models are refit on it."""
        self.pinned, self.pinned_span = None, (0, 0)
        self.models.clear()

    def _window_of(self, start_ms: int) -> int | None:
        window = start_ms - start_ms % self.config.window_ms
        if window + self.config.window_ms + self.config.grace_ms <= self.watermark.newest_ms:
            return None
        return window

    def offer(self, record: TextRecord, source: int = 0) -> list[Pending]:
        """The texts of ``record`` to embed (none when unsampled or too late)."""
        start = int(record.start_time.timestamp() * 1000)
        window = self._window_of(start)
        if window is None:
            self.late += 1
            return []
        self.watermark.observe(source, start)
        rank = priority(record.event_id)
        if rank >= self.config.rate_of(record.service) * _HASH_SPACE:
            return []
        samples = self.open.setdefault(window, {})
        pending = []
        for direction in self.config.directions:
            text = getattr(record, DIRECTIONS[direction])
            if not text:
                continue
            scope = (record.service, str(record.span_kind), direction)
            sample = samples.setdefault(scope, EmbeddingSample(self.config.capacity))
            sample.offered += 1
            if sample.would_take(rank):
                pending.append(
                    Pending(
                        window,
                        scope,
                        rank,
                        record.event_id,
                        text[: self.config.max_text_chars],
                        record.capture == "store",
                    )
                )
        return pending

    def accept(
        self, pending: list[Pending], vectors: np.ndarray, examples: list[str | None] | None = None
    ) -> None:
        """Add each pending text with its vector (row i of ``vectors``) and, for ``store`` captures,
        its redacted text (``examples[i]``)."""
        if len(pending) != len(vectors):
            raise ValueError(f"{len(pending)} pending texts but {len(vectors)} vectors")
        for index, item in enumerate(pending):
            samples = self.open.get(item.window)
            if samples is None:
                continue  # the window closed while the batch was embedded
            example = examples[index] if examples is not None and item.stored else None
            samples[item.scope].add(
                SampledText(item.priority, item.event_id, vectors[index], example)
            )

    def close_due(self, evaluated_at_ms: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Close every window past its grace: its ``llm_drift`` rows and ``llm_drift_topics`` rows."""
        drift: list[dict[str, Any]] = []
        topics: list[dict[str, Any]] = []
        limit = self.watermark.newest_ms - self.config.window_ms - self.config.grace_ms
        for start in sorted(w for w in self.open if w <= limit):
            rows, shares = self._close(start, self.open.pop(start), evaluated_at_ms)
            drift += rows
            topics += shares
        return drift, topics

    def _reference(self) -> tuple[Samples, int, int, str] | None:
        if self.pinned is not None:
            return self.pinned, *self.pinned_span, "pinned"
        if len(self.closed) < self.config.reference_windows:
            return None
        merged: Samples = {}
        for _start, samples in self.closed:
            for scope, sample in samples.items():
                merged.setdefault(scope, EmbeddingSample(self.config.capacity)).merge(sample)
        first = self.closed[0][0]
        return merged, first, self.closed[-1][0] + self.config.window_ms, "trailing"

    def _model(self, scope: Scope, reference: EmbeddingSample) -> TopicModel | None:
        model = self.models.get(scope)
        if model is None:
            texts = reference.texts()
            topics = min(self.config.topics, len(texts) // 8)
            if topics < 2:
                return None
            model = self.models[scope] = TopicModel.fit(texts, topics)
            log.info("drift: topic model %s for %s (%d topics)", model.model_id, scope, topics)
        return model

    def _close(
        self, start: int, samples: Samples, evaluated_at_ms: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        reference = self._reference()
        results: list[EmbeddingResult] = []
        shares: list[TopicShares] = []
        kind = ""
        ref_start = ref_end = 0
        if reference is not None:
            ref_samples, ref_start, ref_end, kind = reference
            for scope in sorted(samples):
                ref_sample = ref_samples.get(scope)
                if ref_sample is None or len(ref_sample) < self.config.min_samples:
                    continue
                model = self._model(scope, ref_sample)
                if model is None:
                    continue
                found, share = compare_samples(
                    scope,
                    ref_sample,
                    samples[scope],
                    model,
                    min_samples=self.config.min_samples,
                    permutations=self.config.permutations,
                    seed=_seed(scope),
                )
                results += found
                if share is not None:
                    shares.append(share)
        self.closed.append((start, samples))
        while len(self.closed) > self.config.reference_windows:
            self.closed.popleft()
        end = start + self.config.window_ms
        span = WindowSpan(start, end, ref_start, ref_end, kind, evaluated_at_ms)
        flagged = flag(results, fdr=self.config.fdr, floors=self.config.floors)
        rows = [
            drift_row(span, (r.scope[0], "", r.scope[1], r.scope[2]), r, r.effect) for r in flagged
        ]
        topic_out = [
            {
                "window_start": start,
                "window_end": end,
                "reference_kind": kind,
                "service": share.scope[0],
                "span_kind": share.scope[1],
                "direction": share.scope[2],
                "model_id": share.model_id,
                "current_n": share.current_n,
                "evaluated_at": evaluated_at_ms,
                **row,
            }
            for share in shares
            for row in topic_rows(share)
        ]
        return rows, topic_out


def _seed(scope: Scope) -> int:
    key = "/".join(scope).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "big")
