"""Embedding drift of prompts and outputs: a bottom-k sample per window, a topic model, and three tests.

**Sample.** A window keeps, per scope (service, span kind, direction), a *bottom-k sample*
(:class:`EmbeddingSample`): the ``capacity`` texts with the smallest 64-bit hash of their event id. The
hash is independent of the text, so the sample is a uniform random sample of the window's texts; it
does not depend on the order texts arrive in (a replay gives the same sample), two windows' samples
merge into the sample of their union, and a text is embedded only if it would enter the sample
(:meth:`EmbeddingSample.would_take`), so a window of N texts costs about
``capacity * (1 + ln(N / capacity))`` embeddings however large N is. Only the sample's vectors are
kept (``capacity`` x 384 float32, ~0.8 MB at 500), never a window's raw vectors; the centroid is the
sample's mean.

**Topic model** (:class:`TopicModel`): k-means (scikit-learn) on the first reference sample of a scope
(or on the pinned baseline), kept until the baseline is set again, so a topic id means the same thing
from window to window. A text is *novel* when its cosine distance to the nearest centroid exceeds the
99th percentile of the reference's distances (:data:`NOVEL_QUANTILE`).

**Tests** (:func:`compare_samples`), on a reference and a current sample with at least ``min_samples``
texts each:

- ``embedding`` / ``mmd``: the maximum mean discrepancy with a Gaussian kernel (bandwidth: the median
  pairwise distance of the pooled sample), tested by permutation. The p-value is the permutation
  p-value; only when the statistic is beyond every permutation is the tail extrapolated, with a
  Pearson type III curve matched to the permutation null's mean, variance and skewness (the
  moment-matching of Gretton et al. 2009), so a clear shift can go below 1 / permutations, which
  Benjamini-Hochberg across many scopes needs. (Fitting the curve everywhere was anti-conservative
  on clustered data: 0.1% where the permutation p-value was 1%.) Effect: the cosine
  distance between the two centroids (interpretable: 0 same direction, 0.02 already a visible shift of
  MiniLM prompt embeddings);
- ``topics`` / ``chi2``: the chi-square test of homogeneity of the topic counts (novel texts as one more
  topic); effect: PSI over the topic shares;
- ``novel`` / ``binomial``: whether the current novel share exceeds the reference's (one-sided binomial
  test against the reference share, add-one smoothed); effect: the difference of the shares.

:func:`flag` applies Benjamini-Hochberg across all embedding results of one evaluation and flags a
result when q <= ``fdr`` and its effect reaches the feature's floor (:class:`EffectFloors`). Pure
computation; the costs (a few ms to ~100 ms per scope at capacity 500) are in ``docs/performance.md``.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "DEFAULT_CAPACITY",
    "NOVEL",
    "EffectFloors",
    "EmbeddingResult",
    "EmbeddingSample",
    "TopicModel",
    "compare_samples",
    "flag",
    "mmd_test",
    "priority",
]

Vectors = npt.NDArray[np.float32]
DEFAULT_CAPACITY: Final = 500
DEFAULT_TOPICS: Final = 8
DEFAULT_PERMUTATIONS: Final = 500
NOVEL: Final = -1  # the topic id of novel texts
NOVEL_QUANTILE: Final = 0.99
PSI_EPSILON: Final = 1e-4
EXAMPLES: Final = 3  # texts shown of the top novel group (then its nearest reference topic)


def priority(event_id: str) -> int:
    """The 64-bit hash that orders texts in a bottom-k sample (independent of the text)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True, slots=True)
class SampledText:
    priority: int
    event_id: str
    vector: Vectors
    example: str | None = None  # the redacted text, only for texts captured with ``store``


@dataclass(slots=True)
class EmbeddingSample:
    """A bottom-k sample of one scope's texts in a window (see the module docstring)."""

    capacity: int = DEFAULT_CAPACITY
    offered: int = 0  # texts of the window, sampled or not
    _heap: list[tuple[int, str, SampledText]] = field(default_factory=list)  # (-priority, ...)

    def __post_init__(self) -> None:
        if self.capacity < 2:
            raise ValueError(f"sample capacity must be >= 2, got {self.capacity!r}")

    def __len__(self) -> int:
        return len(self._heap)

    def would_take(self, rank: int) -> bool:
        """Whether a text of priority ``rank`` would enter the sample now."""
        return len(self._heap) < self.capacity or rank < -self._heap[0][0]

    def add(self, text: SampledText) -> None:
        if not self.would_take(text.priority):
            return
        heapq.heappush(self._heap, (-text.priority, text.event_id, text))
        if len(self._heap) > self.capacity:
            heapq.heappop(self._heap)

    def merge(self, other: EmbeddingSample) -> None:
        self.offered += other.offered
        for _rank, _event, text in other._heap:
            self.add(text)

    def texts(self) -> list[SampledText]:
        """The sampled texts in priority order (deterministic)."""
        return [t for _r, _e, t in sorted(self._heap, key=lambda item: (-item[0], item[1]))]

    def vectors(self) -> Vectors:
        texts = self.texts()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([t.vector for t in texts]).astype(np.float32, copy=False)


def _normalized(vectors: npt.NDArray[np.floating]) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class TopicModel:
    """k-means centroids of a reference sample and its novelty threshold (see the module docstring)."""

    centroids: Vectors
    novel_distance: float
    model_id: str
    fitted_on: frozenset[str] = frozenset()  # event ids k-means saw: never counted in a comparison

    @classmethod
    def fit(cls, sample: Sequence[SampledText], topics: int = DEFAULT_TOPICS) -> TopicModel:
        """Centroids from every other text of ``sample`` (in priority order), the novelty threshold
        from the rest: in-sample distances would be too short and call fresh texts novel too often."""
        from sklearn.cluster import KMeans

        if topics < 1:
            raise ValueError(f"topics must be >= 1, got {topics!r}")
        if len(sample) < 4 * topics:
            raise ValueError(
                f"fitting {topics} topics needs >= {4 * topics} texts, got {len(sample)}"
            )
        fitting, held_out = sample[::2], sample[1::2]
        vectors = np.stack([t.vector for t in fitting])
        kmeans = KMeans(n_clusters=topics, n_init=3, random_state=0).fit(vectors)
        centroids = _normalized(kmeans.cluster_centers_)
        distance = 1.0 - (np.stack([t.vector for t in held_out]) @ centroids.T).max(axis=1)
        threshold = float(np.quantile(distance, NOVEL_QUANTILE))
        model_id = hashlib.blake2b(centroids.tobytes(), digest_size=5).hexdigest()
        return cls(centroids, threshold, model_id, frozenset(t.event_id for t in fitting))

    @property
    def topics(self) -> int:
        return len(self.centroids)

    def assign(self, vectors: Vectors) -> npt.NDArray[np.int64]:
        """Each vector's topic, or :data:`NOVEL` when farther than the threshold from every centroid."""
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.int64)
        similarity = vectors @ self.centroids.T
        labels: npt.NDArray[np.int64] = np.asarray(similarity.argmax(axis=1), dtype=np.int64)
        labels[1.0 - similarity.max(axis=1) > self.novel_distance] = NOVEL
        return labels

    def counts(self, labels: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        index = np.where(labels == NOVEL, self.topics, labels)
        return np.bincount(index, minlength=self.topics + 1).astype(np.float64)


def mmd_test(
    x: Vectors, y: Vectors, *, permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0
) -> tuple[float, float]:
    """(MMD², p-value) of two samples of vectors: Gaussian kernel, permutation null (see the module
    docstring for the tail)."""
    if permutations < 10:
        raise ValueError(f"permutations must be >= 10, got {permutations!r}")
    pooled = np.concatenate([x, y]).astype(np.float64)
    n, total = len(x), len(pooled)
    squared = np.maximum(
        (pooled**2).sum(1)[:, None] + (pooled**2).sum(1)[None, :] - 2.0 * pooled @ pooled.T, 0.0
    )
    upper = squared[np.triu_indices(total, 1)]
    bandwidth = float(np.median(upper)) or 1.0
    kernel = np.exp(-squared / bandwidth)
    rng = np.random.default_rng(seed)
    signs = np.empty((total, permutations + 1))
    base = np.concatenate([np.full(n, 1.0 / n), np.full(total - n, -1.0 / (total - n))])
    signs[:, 0] = base
    for column in range(1, permutations + 1):
        signs[:, column] = rng.permutation(base)
    values = np.einsum("ip,ip->p", signs, kernel @ signs)  # biased MMD² per labelling
    observed, null = float(values[0]), values[1:]
    beyond = int(np.sum(null >= observed))
    p_value = (1 + beyond) / (permutations + 1)
    std = float(null.std())
    if beyond == 0 and std > 0.0:
        # Past every permutation: extrapolate the tail with a Pearson III curve (never above the
        # permutation bound), so a clear shift can pass Benjamini-Hochberg across many scopes.
        skew = float(stats.skew(null))
        tail = float(stats.pearson3.sf(observed, skew, loc=float(null.mean()), scale=std))
        p_value = min(p_value, tail)
    return observed, float(p_value)


@dataclass(frozen=True, slots=True)
class EffectFloors:
    """The smallest effect worth an alert, per test (see the module docstring for the effects).

    Set above the noise of stationary windows of 300 texts against a 500-text reference on the
    generated topic traffic of ``bench/devsets/drift.py``: there, the 99th percentiles were 0.028
    (centroid distance), 0.12 (topic PSI) and 0.025 (novel share increase); a 20% shift to a new topic
    gave at least 0.032, 0.40 and 0.18. Smaller windows are noisier: raise the floors with them."""

    centroid_distance: float = 0.03
    topic_psi: float = 0.15
    novel_share: float = 0.05

    def of(self, feature: str) -> float:
        return {
            "embedding": self.centroid_distance,
            "topics": self.topic_psi,
            "novel": self.novel_share,
        }[feature]


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    scope: tuple[str, str, str]  # service, span kind, direction
    feature: str
    test: str
    statistic: float
    p_value: float
    effect: float
    reference_n: int
    current_n: int
    top_shift: str
    q_value: float = 1.0
    flagged: bool = False


@dataclass(frozen=True, slots=True)
class TopicShares:
    scope: tuple[str, str, str]
    model_id: str
    reference: tuple[float, ...]  # topics 0..k-1, then novel
    current: tuple[float, ...]
    current_n: int
    examples: tuple[str, ...]  # of the largest group of novel texts


def _psi(reference: npt.NDArray[np.float64], current: npt.NDArray[np.float64]) -> float:
    ref, cur = reference + PSI_EPSILON, current + PSI_EPSILON
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _topic_name(topic: int, topics: int) -> str:
    return "novel" if topic == topics else f"topic {topic}"


def _examples(
    texts: Sequence[SampledText], labels: npt.NDArray[np.int64], model: TopicModel
) -> tuple[str, ...]:
    """Up to :data:`EXAMPLES` texts of the largest group of novel texts: ``event <id>``, followed by
    the redacted text when it was captured with ``store``; then the reference topic nearest to the
    group (what the new traffic is closest to, when no text may be shown)."""
    novel = [t for t, label in zip(texts, labels, strict=True) if label == NOVEL]
    if not novel:
        return ()
    vectors = np.stack([t.vector for t in novel])
    if len(novel) >= 2 * EXAMPLES:
        from sklearn.cluster import KMeans

        groups = KMeans(n_clusters=min(3, len(novel) // EXAMPLES), n_init=2, random_state=0)
        group_of = groups.fit_predict(vectors)
        top = int(np.bincount(group_of).argmax())
        members = [i for i, g in enumerate(group_of) if g == top]
        center = _normalized(groups.cluster_centers_[top : top + 1])[0]
    else:
        members = list(range(len(novel)))
        center = _normalized(vectors.mean(axis=0, keepdims=True))[0]
    nearest = sorted(members, key=lambda i: -float(vectors[i] @ center))[:EXAMPLES]
    similarity = model.centroids @ center
    closest = int(similarity.argmax())
    return (
        *(
            f"event {novel[i].event_id}" + (f": {novel[i].example}" if novel[i].example else "")
            for i in nearest
        ),
        f"nearest reference topic: {closest} (cosine distance {1.0 - float(similarity[closest]):.2f})",
    )


def compare_samples(
    scope: tuple[str, str, str],
    reference: EmbeddingSample,
    current: EmbeddingSample,
    model: TopicModel,
    *,
    min_samples: int,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> tuple[list[EmbeddingResult], TopicShares | None]:
    """The three tests of one scope, and its topic shares; nothing when a sample is too small."""
    if min_samples < 2:
        raise ValueError(f"min_samples must be >= 2, got {min_samples!r}")
    ref_texts, cur_texts = reference.texts(), current.texts()
    ref_n, cur_n = len(ref_texts), len(cur_texts)
    if ref_n < min_samples or cur_n < min_samples:
        return [], None
    x = np.stack([t.vector for t in ref_texts])
    y = np.stack([t.vector for t in cur_texts])
    results = []
    mmd2, p_mmd = mmd_test(x, y, permutations=permutations, seed=seed)
    ref_center, cur_center = x.mean(axis=0), y.mean(axis=0)
    cosine = float(
        ref_center
        @ cur_center
        / max(np.linalg.norm(ref_center) * np.linalg.norm(cur_center), 1e-12)
    )
    results.append(
        EmbeddingResult(scope, "embedding", "mmd", mmd2, p_mmd, 1.0 - cosine, ref_n, cur_n, "")
    )
    unseen = np.array([t.event_id not in model.fitted_on for t in ref_texts])
    if unseen.sum() < min_samples // 2:
        return results, None  # the reference is mostly the model's own fitting half
    ref_labels, cur_labels = model.assign(x[unseen]), model.assign(y)
    ref_counts, cur_counts = model.counts(ref_labels), model.counts(cur_labels)
    ref_n = int(unseen.sum())
    keep = (ref_counts + cur_counts) > 0
    ref_share, cur_share = ref_counts / ref_n, cur_counts / cur_n
    moved = int(np.argmax(np.abs(cur_share - ref_share)))
    top = f"{_topic_name(moved, model.topics)}: {ref_share[moved]:.0%} -> {cur_share[moved]:.0%}"
    if keep.sum() >= 2:
        chi2, p_topics, _dof, _expected = stats.chi2_contingency(
            np.stack([ref_counts[keep], cur_counts[keep]]), correction=False
        )
    else:
        chi2, p_topics = 0.0, 1.0
    results.append(
        EmbeddingResult(
            scope, "topics", "chi2", float(chi2), float(p_topics), _psi(ref_share, cur_share),
            ref_n, cur_n, top,
        )
    )  # fmt: skip
    ref_novel = (ref_counts[-1] + 1.0) / (ref_n + 2.0)
    novel = int(cur_counts[-1])
    p_novel = float(stats.binomtest(novel, cur_n, ref_novel, alternative="greater").pvalue)
    results.append(
        EmbeddingResult(
            scope, "novel", "binomial", novel / cur_n, p_novel, novel / cur_n - ref_share[-1],
            ref_n, cur_n, f"novel: {ref_share[-1]:.0%} -> {novel / cur_n:.0%}",
        )
    )  # fmt: skip
    shares = TopicShares(
        scope,
        model.model_id,
        tuple(float(v) for v in ref_share),
        tuple(float(v) for v in cur_share),
        cur_n,
        _examples(cur_texts, cur_labels, model),
    )
    return results, shares


def flag(
    results: Sequence[EmbeddingResult], *, fdr: float, floors: EffectFloors = EffectFloors()
) -> list[EmbeddingResult]:
    """Benjamini-Hochberg over ``results``; flagged when q <= ``fdr`` and the effect reaches its floor."""
    if not 0.0 < fdr < 1.0:
        raise ValueError(f"fdr must be in (0, 1), got {fdr!r}")
    if not results:
        return []
    p_values = np.array([min(max(r.p_value, 0.0), 1.0) for r in results])
    q_values = stats.false_discovery_control(p_values, method="bh")
    return [
        replace(
            r,
            q_value=float(q),
            flagged=bool(q <= fdr and math.isfinite(r.effect) and r.effect >= floors.of(r.feature)),
        )
        for r, q in zip(results, q_values, strict=True)
    ]


def topic_rows(shares: TopicShares) -> list[Mapping[str, object]]:
    """Per topic (and novel, as :data:`NOVEL`): the shares (examples on the novel row)."""
    topics = len(shares.reference) - 1
    return [
        {
            "topic": NOVEL if index == topics else index,
            "reference_share": shares.reference[index],
            "current_share": shares.current[index],
            "examples": list(shares.examples) if index == topics else [],
        }
        for index in range(topics + 1)
    ]
