"""The content filter (issue 8, item 5): toxicity, banned topics, and output-side checks.

:class:`ContentFilter` applies a :class:`~streams.text.content_policy.ContentPolicy` to inputs (prompts)
and outputs (completions) and returns :class:`~streams.text.findings.ContentVerdict` values:

- toxicity and profanity: alt-profanity-check's probability, highest over ~100-token chunks, after
  rewriting benign senses ("kill the process", clinical anatomy; see ``content_toxicity``); ``toxic``
  when it reaches ``policy.toxicity_threshold`` (default 0.8);
- banned topics: MiniLM cosine similarity between each chunk and each topic's examples (encoded once per
  filter), highest over chunks and examples, against the topic's threshold (default 0.42); a closer
  ``allowed_examples`` entry vetoes the chunk;
- outputs only: refusals (``content_refusal``), URLs to hosts off the allow list (``content_urls``),
  and PII/secrets of the prompt echoed in the output (``content_echo``; spans come from the caller).

Accuracy (dev half of ``bench/devsets/content.py``) and speed, measured by
``.venv/bin/python -m bench.bench_content`` (``bench/results/content.json``): toxicity precision 1.0,
recall 0.93, TPR 0.96 at FPR 1%, no hard negative flagged (it misses insults without profane words:
"useless clown"); topics (threshold 0.42) precision 0.77-1.0, recall 0.72-0.91 per topic, 11% of
near-topic benign texts flagged; refusals, unknown URLs, echoed PII 1.0/1.0 on templated outputs.
Speed on 200-word texts, batch 64, 2 threads: profanity alone about 1,000 texts/s; with topics the
encoder dominates at about 5-12 texts/s on this shared, loaded 2-core machine.

What can block: the first call loads alt-profanity-check (about 2 s) and, when the policy has topics,
the MiniLM encoder (about 1-3 s); after that :meth:`ContentFilter.check_batch` is CPU-bound (the
encoder dominates). Run it in the text-analysis consumer, never on the metrics path. The filter never
raises on any str; it raises ValueError for a bad ``role`` or a non-str text.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Final, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from streams.text.content_echo import echoed_pii
from streams.text.content_policy import (
    DEFAULT_POLICY,
    BannedTopic,
    ContentPolicy,
    load_content_policy,
)
from streams.text.content_refusal import is_refusal
from streams.text.content_toxicity import chunk_text, toxicity_scores
from streams.text.content_urls import unknown_url_count
from streams.text.embeddings import Encoder, load_encoder
from streams.text.findings import ContentVerdict, PiiSpan

__all__ = [
    "DEFAULT_POLICY",
    "ContentFilter",
    "ContentPolicy",
    "Role",
    "echoed_pii",
    "load_content_policy",
]

Role = Literal["input", "output"]
ROLES: Final = ("input", "output")
# Chunks per text sent to the encoder; a longer text is judged on its first this-many chunks (~6,400 tokens).
MAX_TOPIC_CHUNKS: Final = 64
Matrix = npt.NDArray[np.float32]
T = TypeVar("T")


def _clean(text: str) -> str:
    """``text`` as valid UTF-8 (lone surrogates become '?'), which the tokenizer requires."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__} {text!r:.80}")
    return text.encode("utf-8", "replace").decode("utf-8")


class _TopicMatrices:
    """Each topic's example vectors and allowed-example vectors, encoded once."""

    def __init__(self, topics: Sequence[BannedTopic], encoder: Encoder) -> None:
        self.topics = tuple(topics)
        self.examples = [encoder.encode(list(t.examples)) for t in self.topics]
        self.allowed = [encoder.encode(list(t.allowed_examples)) for t in self.topics]

    def scores(self, chunk_vectors: Matrix) -> list[tuple[float, float]]:
        """Per topic: best similarity of any chunk to an example, and of an unvetoed chunk (or -1)."""
        results = []
        for examples, allowed in zip(self.examples, self.allowed, strict=True):
            topic_sim = (chunk_vectors @ examples.T).max(axis=1)
            if allowed.shape[0]:
                allowed_sim = (chunk_vectors @ allowed.T).max(axis=1)
                kept = topic_sim[topic_sim >= allowed_sim]
            else:
                kept = topic_sim
            kept_best = float(kept.max()) if kept.size else -1.0
            results.append((float(topic_sim.max()), kept_best))
        return results


class ContentFilter:
    """Applies one content policy; thread-safe; models load lazily on first use."""

    def __init__(
        self, policy: ContentPolicy = DEFAULT_POLICY, encoder: Encoder | None = None
    ) -> None:
        if not isinstance(policy, ContentPolicy):
            raise ValueError(f"policy must be a ContentPolicy, got {policy!r:.80}")
        self.policy = policy
        self._encoder = encoder
        self._topics: _TopicMatrices | None = None
        self._lock = threading.Lock()

    def _topic_matrices(self) -> _TopicMatrices:
        with self._lock:
            if self._topics is None:
                encoder = self._encoder or load_encoder()
                self._encoder = encoder
                self._topics = _TopicMatrices(self.policy.topics, encoder)
            return self._topics

    def topic_similarities(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Per text, each topic's best unvetoed similarity (-1 when every close chunk was vetoed)."""
        if not self.policy.topics or not texts:
            return [{} for _ in texts]
        matrices = self._topic_matrices()
        assert self._encoder is not None
        chunked = [
            chunk_text(_clean(t), self.policy.chunk_tokens)[:MAX_TOPIC_CHUNKS] for t in texts
        ]
        vectors = self._encoder.encode([c for chunks in chunked for c in chunks])
        results: list[dict[str, float]] = []
        position = 0
        for chunks in chunked:
            rows = vectors[position : position + len(chunks)]
            position += len(chunks)
            scores = matrices.scores(rows)
            results.append(
                {t.name: kept for t, (_, kept) in zip(matrices.topics, scores, strict=True)}
            )
        return results

    def toxicity(self, texts: Sequence[str]) -> list[float]:
        """alt-profanity-check probability per text (highest chunk, benign senses rewritten)."""
        chunk_tokens = self.policy.chunk_tokens
        return toxicity_scores([chunk_text(_clean(t), chunk_tokens) for t in texts])

    def check(
        self,
        text: str,
        *,
        role: Role = "input",
        prompt: str | None = None,
        input_spans: Sequence[PiiSpan] = (),
        output_spans: Sequence[PiiSpan] = (),
    ) -> ContentVerdict:
        """The verdict for one text; output-side fields only for ``role="output"``."""
        return self.check_batch(
            [text],
            role=role,
            prompts=[prompt],
            input_spans=[input_spans],
            output_spans=[output_spans],
        )[0]

    def check_batch(
        self,
        texts: Sequence[str],
        *,
        role: Role = "input",
        prompts: Sequence[str | None] | None = None,
        input_spans: Sequence[Sequence[PiiSpan]] | None = None,
        output_spans: Sequence[Sequence[PiiSpan]] | None = None,
    ) -> list[ContentVerdict]:
        """Verdicts for many texts of one role, with one profanity call and one encoder call.

        ``prompts``, ``input_spans`` and ``output_spans`` (outputs only) are parallel to ``texts``."""
        if role not in ROLES:
            raise ValueError(f"role must be 'input' or 'output', got {role!r}")
        texts = [_clean(t) for t in texts]
        count = len(texts)
        prompts = _parallel(prompts, count, "prompts", None)
        in_spans = _parallel(input_spans, count, "input_spans", ())
        out_spans = _parallel(output_spans, count, "output_spans", ())
        threshold = self.policy.toxicity_threshold
        toxicity = self.toxicity(texts)
        topics = self.topic_similarities(texts)
        verdicts = []
        for i, text in enumerate(texts):
            banned = tuple(
                t.name for t in self.policy.topics if topics[i].get(t.name, -1.0) >= t.threshold
            )
            verdict = ContentVerdict(
                toxicity=min(1.0, max(0.0, toxicity[i])),
                toxic=toxicity[i] >= threshold,
                banned_topics=banned,
            )
            if role == "output":
                verdict = self._output_side(verdict, text, prompts[i], in_spans[i], out_spans[i])
            verdicts.append(verdict)
        return verdicts

    def _output_side(
        self,
        verdict: ContentVerdict,
        text: str,
        prompt: str | None,
        in_spans: Sequence[PiiSpan],
        out_spans: Sequence[PiiSpan],
    ) -> ContentVerdict:
        return ContentVerdict(
            toxicity=verdict.toxicity,
            toxic=verdict.toxic,
            banned_topics=verdict.banned_topics,
            refusal=self.policy.check_refusals and is_refusal(text),
            unknown_urls=unknown_url_count(text, self.policy.allowed_domains),
            echoed_pii=echoed_pii(_clean(prompt or ""), in_spans, text, out_spans),
        )


def _parallel(values: Sequence[T] | None, count: int, name: str, default: T) -> list[T]:
    """``values`` as a list of ``count`` items (``default`` each when None); ValueError if lengths differ."""
    if values is None:
        return [default] * count
    if len(values) != count:
        raise ValueError(f"{name} must have one entry per text ({count}), got {len(values)!r}")
    return list(values)
