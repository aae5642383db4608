"""Which arm of a split label a caller gets: deterministic, sticky, weighted.

Guarantees:
- Sticky: a key's bucket is the BLAKE2b hash of ``"{name}/{label}/{key}"`` modulo :data:`BUCKETS`
  (10,000, i.e. 100 per percent of weight), so the same key gets the same arm on every machine and in
  every Python run (no builtin ``hash()``, no seed). The version ids are not hashed: a key keeps its
  bucket across label moves, only the arms' ranges move.
- Exact shares: each percent of weight owns exactly 100 buckets, so over many keys an arm's share
  converges to its weight (binomial error only).
- Minimal movement: the arms are laid out from bucket 0 up, the non-canary arms in version order and
  the canary (:attr:`LabelMove.canary`) last, so the canary always owns the *top* of the range. Adding
  a canary at w% over one baseline moves exactly the keys in the top w% (everyone else stays on the
  baseline); ramping the canary up (10% -> 50%) only adds keys to it; rolling back returns everyone to
  the baseline. With several non-canary arms, ``RegistryState.plan_label`` rescales them, so their
  boundaries shift too and some keys move between them.
- ``key=None``: a fresh random bucket per call (no stickiness), so anonymous traffic still splits in
  proportion to the weights.

Nothing here blocks or does I/O.
"""

from __future__ import annotations

import hashlib
import random
from typing import Final

from producers.prompts.records import TOTAL_WEIGHT, LabelArm, LabelMove

__all__ = ["BUCKETS", "bucket_of", "choose_arm", "ordered_arms"]

BUCKETS: Final = 10_000
_PER_PERCENT: Final = BUCKETS // TOTAL_WEIGHT
_DIGEST_BYTES: Final = 8


def bucket_of(name: str, label: str, key: str) -> int:
    """The key's bucket in ``[0, BUCKETS)`` for this prompt's label: the same everywhere, always."""
    digest = hashlib.blake2b(f"{name}/{label}/{key}".encode(), digest_size=_DIGEST_BYTES).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def ordered_arms(move: LabelMove) -> tuple[LabelArm, ...]:
    """The arms in bucket order: non-canary arms by version, then the canary (the top range)."""
    return tuple(sorted(move.arms, key=lambda arm: (arm.version == move.canary, arm.version)))


def choose_arm(move: LabelMove, key: str | None) -> LabelArm:
    """The arm of ``move`` that ``key`` falls in; ``None``: a random arm, in proportion to weight."""
    if len(move.arms) == 1:
        return move.arms[0]
    bucket = random.randrange(BUCKETS) if key is None else bucket_of(move.name, move.label, key)
    arms = ordered_arms(move)
    upper = 0
    for arm in arms:
        upper += arm.weight * _PER_PERCENT
        if bucket < upper:
            return arm
    return arms[-1]  # unreachable: weights sum to 100 (validated by LabelMove)
