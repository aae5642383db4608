"""The ``onnx-int8`` embedding backend against the fp32 torch one, on the real model and onnxruntime.

The 200 texts are generated here from word lists: short questions, paragraphs from six domains (some
cut at 128 tokens), code, ten kinds of numeric text, German/French/Spanish/Russian/Chinese. Measured
on them (AMD EPYC with AVX-512 VNNI): cosine to fp32 min 0.982, mean 0.992; the nearest other text is
the same for 92% of texts (where it differs, fp32's best two were within a median 0.006 of each
other). The model is exported once for the module (a few seconds).
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from streams.text import embeddings_onnx
from streams.text.embeddings import BACKENDS, DIMENSIONS, Encoder, load_encoder
from streams.text.embeddings_onnx import OnnxEncoder, ensure_model, load_onnx_encoder, model_file

pytestmark = pytest.mark.slow

MAX_TOKENS = 128
SEED = 7
MIN_COSINE = 0.97
MEAN_COSINE = 0.99
NEIGHBOUR_AGREEMENT = 0.90

# Paragraph domains: (subjects, verbs, objects); each paragraph draws its sentences from one.
_DOMAINS = (
    (
        ("the customer", "our courier", "the warehouse team", "a reseller"),
        ("returned", "lost track of", "asked for a refund on", "double charged for"),
        ("the parcel", "order", "the shipping label", "the damaged blender"),
    ),
    (
        ("the nightly job", "the database primary", "our load balancer", "the on-call engineer"),
        ("crashed while restoring", "timed out on", "rolled back", "paged everyone about"),
        ("the backup", "the schema migration", "shard", "the TLS certificate"),
    ),
    (
        ("the chef", "my grandmother", "the bakery", "a food critic"),
        ("burned", "slowly simmered", "praised", "added too much salt to"),
        ("the tomato soup", "the sourdough loaf", "batch", "the lemon tart"),
    ),
    (
        ("the striker", "our goalkeeper", "the referee", "the home crowd"),
        ("missed", "celebrated", "argued about", "saved"),
        ("the penalty", "the late equaliser", "match", "the corner kick"),
    ),
    (
        ("the patient", "a nurse", "the clinic", "my dentist"),
        ("rescheduled", "forgot", "prescribed antibiotics after", "confirmed"),
        ("the blood test", "the follow-up appointment", "visit", "the x-ray"),
    ),
    (
        ("the hedge fund", "our treasurer", "the central bank", "a retail investor"),
        ("sold", "hedged", "warned about", "doubled"),
        ("the bond position", "interest rates", "quarter", "the currency exposure"),
    ),
)
_CONNECTIVES = ("Meanwhile,", "After that,", "Nobody knows why", "As a result,", "Later that week")
_QUESTIONS = ("How do I", "Why can't I", "Where should I", "When will you", "Can someone")
_TASKS = (
    "reset my password",
    "export the report as CSV",
    "change the billing address",
    "rotate the API key",
    "book a table for four",
    "fix the flaky test",
    "renew my passport",
)
_TAILS = ("?", " today?", " without losing data?", " from my phone?", " before Friday?")
_CODE = (
    "def {f}(items):\n    return sorted(items, key=lambda x: x.{a})[:{n}]",
    "SELECT {a}, count(*) FROM orders WHERE total > {n} GROUP BY {a} ORDER BY 2 DESC;",
    "const {f} = async (id) => {{ const r = await fetch(`/api/{a}/${{id}}`); return r.json(); }}",
    "for i in range({n}):\n    if i % 3 == 0:\n        print('{f}', i, {a}[i])",
    "fn {f}(v: &[u32]) -> u32 {{ v.iter().filter(|x| **x > {n}).sum() }}",
)
_NAMES = ("parse_rows", "load_cfg", "top_users", "retryFetch", "sum_big")
_FIELDS = ("created_at", "customer_id", "region", "price", "status")
_LANGUAGES = {
    "de": (
        ("Der Kunde", "Unsere Buchhaltung", "Die Lieferung", "Mein Nachbar"),
        ("hat die Rechnung", "wartet seit Tagen auf", "beschwert sich über", "bestellt heute"),
        ("die Rückerstattung.", "den neuen Vertrag.", "das kaputte Fahrrad.", "die Ersatzteile."),
    ),
    "fr": (
        ("Le client", "Notre équipe", "La facture", "Ma voisine"),
        ("demande", "n'a pas reçu", "a annulé", "attend toujours"),
        ("le remboursement.", "la livraison du colis.", "le rendez-vous de lundi.", "un devis."),
    ),
    "es": (
        ("El cliente", "Nuestro servidor", "La empresa", "Mi hermano"),
        ("solicitó", "no encuentra", "canceló", "pagó dos veces"),
        ("la factura de marzo.", "el pedido urgente.", "la reserva del hotel.", "el contrato."),
    ),
    "ru": (
        ("Клиент", "Наш сервер", "Бухгалтерия", "Мой сосед"),
        ("не получил", "отменил", "запросил", "снова ждёт"),
        ("возврат денег.", "новый счёт.", "доставку заказа.", "ответ поддержки."),
    ),
    "zh": (
        ("客户", "我们的服务器", "财务部门", "我的邻居"),
        ("没有收到", "取消了", "正在等待", "询问了"),
        ("退款。", "新的发票。", "订单的发货。", "技术支持的回复。"),
    ),
}


_NUMBERS = (
    "Invoice {i}-{j}: {k} x {x:.2f} EUR, due {d}/{m}/{y}, ref {h}",
    "Temperatures this week: {k}C, {d}C, {m}C; humidity {j}%, wind {x:.1f} km/h",
    "AAPL {x:.2f} (+{f:.2f}%), volume {i}{j}k, 52-week high {z:.2f}",
    "Release v{m}.{d}.{k}: fixed {j} bugs, {i} commits, build {h}",
    "Final score {k}-{m} after {j} minutes; attendance {i}{j}, {d} yellow cards",
    "Mix {x:.0f} g flour, {j} ml milk, {m} eggs and {f:.1f} tsp salt; bake {k} min at {z:.0f} C",
    "GPS {f:.5f}, {x:.5f}; altitude {i} m; {d} satellites; fix at {m}:{j}:{k}",
    "{y}-{m:02d}-{d:02d}T{k:02d}:{j:02d}:00Z ERROR worker-{m} latency_ms={i} retries={d} req={h}",
    "Solve {k}x + {j} = {i}; then x = {f:.4f}, and x^2 = {z:.3f}",
    "Call +{d}{m} {i} {i}{k} about ticket #{h} before {k}:{j}",
)


def _texts() -> list[str]:
    rng = random.Random(SEED)
    questions = [
        f"{q} {t}{tail}"
        for q, t, tail in itertools.islice(
            itertools.product(_QUESTIONS, _TASKS, _TAILS), 0, None, 4
        )
    ][:40]
    paragraphs = []
    for n in range(40):
        subjects, verbs, objects = _DOMAINS[n % len(_DOMAINS)]
        paragraphs.append(
            " ".join(
                f"{rng.choice(_CONNECTIVES)} {rng.choice(subjects)} {rng.choice(verbs)} "
                f"{rng.choice(objects)} {rng.randint(2, 999)}."
                for _ in range(rng.randint(3, 14))
            )
        )
    code = [
        rng.choice(_CODE).format(f=rng.choice(_NAMES), a=rng.choice(_FIELDS), n=rng.randint(2, 500))
        for _ in range(30)
    ]
    numbers = [
        template.format(
            i=rng.randint(1000, 9999),
            j=rng.randint(10, 59),
            k=rng.randint(1, 23),
            d=rng.randint(1, 28),
            m=rng.randint(1, 12),
            y=rng.randint(2020, 2030),
            x=rng.uniform(0.5, 999),
            f=rng.uniform(0.1, 9),
            z=rng.uniform(100, 250),
            h=f"{rng.getrandbits(40):x}",
        )
        for template in _NUMBERS
        for _ in range(3)
    ]
    foreign = [
        " ".join(
            f"{rng.choice(s)} {rng.choice(v)} {rng.choice(o)}" for _ in range(rng.randint(1, 3))
        )
        for s, v, o in _LANGUAGES.values()
        for _ in range(12)
    ]
    return questions + paragraphs + code + numbers + foreign


@pytest.fixture(scope="module")
def texts() -> list[str]:
    generated = _texts()
    assert len(generated) == 200 and len(set(generated)) >= 195
    return generated


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def int8(cache_dir: Path) -> OnnxEncoder:
    encoder = load_encoder(MAX_TOKENS, backend="onnx-int8", cache_dir=cache_dir)
    assert isinstance(encoder, OnnxEncoder)
    return encoder


@pytest.fixture(scope="module")
def fp32() -> Encoder:
    return load_encoder(MAX_TOKENS)


@pytest.fixture(scope="module")
def vectors(
    texts: list[str], int8: OnnxEncoder, fp32: Encoder
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    return int8.encode(texts), fp32.encode(texts)


def test_shapes_and_normalization(
    texts: list[str], vectors: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]
) -> None:
    quantized, _ = vectors
    assert quantized.shape == (len(texts), DIMENSIONS)
    assert quantized.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-5)


def test_close_to_fp32(vectors: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]) -> None:
    quantized, reference = vectors
    cosine = (quantized * reference).sum(axis=1)
    assert cosine.min() >= MIN_COSINE, f"min cosine {cosine.min():.4f}"
    assert cosine.mean() >= MEAN_COSINE, f"mean cosine {cosine.mean():.4f}"


def _nearest_other(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.intp]:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return np.asarray(similarity.argmax(axis=1))


def test_nearest_neighbours_agree(
    vectors: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
) -> None:
    quantized, reference = vectors
    agreement = float((_nearest_other(quantized) == _nearest_other(reference)).mean())
    assert agreement >= NEIGHBOUR_AGREEMENT, f"nearest-neighbour agreement {agreement:.3f}"


def test_padding_and_batching_keep_the_vector(texts: list[str], int8: OnnxEncoder) -> None:
    """A short text padded next to a long one (masked correctly) keeps its vector, up to int8 noise."""
    alone = int8.encode([texts[0]])[0]
    padded = int8.encode([texts[0], texts[45]], batch_size=2)[0]  # a long paragraph beside it
    assert float(alone @ padded) >= 0.99
    one_by_one = int8.encode(texts[:8], batch_size=1)
    batched = int8.encode(texts[:8])
    assert ((one_by_one * batched).sum(axis=1) >= 0.99).all()


def test_same_interface_as_torch(texts: list[str], int8: OnnxEncoder, fp32: Encoder) -> None:
    assert int8.max_tokens == fp32.max_tokens == MAX_TOKENS
    assert int8.encode([]).shape == (0, DIMENSIONS)
    assert int8.tokenize_lengths(texts) == fp32.tokenize_lengths(texts)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        int8.encode(texts[:2], batch_size=0)


def test_concurrent_encodes_match_serial(texts: list[str], int8: OnnxEncoder) -> None:
    chunks = [texts[i : i + 10] for i in range(0, 40, 10)]
    serial = [int8.encode(chunk) for chunk in chunks]
    results: dict[int, npt.NDArray[np.float32]] = {}

    def work(i: int) -> None:
        results[i] = int8.encode(chunks[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(chunks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, expected in enumerate(serial):
        np.testing.assert_array_equal(results[i], expected)


def test_the_cached_model_is_reused(cache_dir: Path, int8: OnnxEncoder) -> None:
    path = int8.model_path
    assert path == model_file(cache_dir) and path.is_file()
    before = path.stat().st_mtime_ns
    assert ensure_model(cache_dir) == path
    other = load_onnx_encoder(64, cache_dir)  # a new encoder on the same file
    assert other is not int8 and other.model_path == path
    assert path.stat().st_mtime_ns == before
    assert [p.name for p in cache_dir.iterdir()] == [path.name]  # no temporary files left


def test_a_failed_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also: the scratch folder of an export killed long ago is removed, a recent one is kept."""
    cache = tmp_path / "cache"
    dead, running = cache / ".export-dead", cache / ".export-running"
    for folder in (dead, running):
        folder.mkdir(parents=True)
        (folder / "fp32.onnx").write_bytes(b"\x08\x07")
    old = time.time() - embeddings_onnx.STALE_SCRATCH_S - 60
    os.utime(dead, (old, old))

    def half_written(_weights: Path, destination: Path) -> None:
        destination.write_bytes(b"\x08\x07partial")
        raise OSError("disk full")

    monkeypatch.setattr(embeddings_onnx, "_export_fp32", half_written)
    with pytest.raises(OSError, match="disk full"):
        ensure_model(cache)
    assert [p.name for p in cache.iterdir()] == [running.name]


@pytest.mark.parametrize("backend", ["onnx", "ONNX-INT8", "tensorrt"])
def test_an_unknown_backend_is_named(backend: str) -> None:
    with pytest.raises(ValueError, match=rf"'{backend}'.*{', '.join(BACKENDS)}"):
        load_encoder(MAX_TOKENS, backend=backend)


def test_onnx_needs_a_cache_dir() -> None:
    with pytest.raises(ValueError, match="cache_dir"):
        load_encoder(MAX_TOKENS, backend="onnx-int8")


def test_a_missing_onnxruntime_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = metadata.version

    def version(name: str) -> str:
        if name == "onnxruntime":
            raise metadata.PackageNotFoundError(name)
        return installed(name)

    monkeypatch.setattr(metadata, "version", version)
    with pytest.raises(ImportError, match=r"onnxruntime.*llmwatch\[text\]"):
        load_encoder(MAX_TOKENS, backend="onnx-int8", cache_dir=tmp_path)


def test_bad_max_tokens_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="got 4"):
        load_encoder(4, backend="onnx-int8", cache_dir=tmp_path)


@pytest.fixture(autouse=True, scope="module")
def _forget_encoders() -> Iterator[None]:
    yield
    load_onnx_encoder.cache_clear()  # the module's temporary cache folder is gone after it
