"""The pinned drift baseline: a known-good period's shape counts and text samples, saved to a folder.

``llmwatch drift baseline set --from now-2h`` reads the calls and texts topics over a time range, builds
one :class:`~streams.drift.shape.ShapeWindow` and one bottom-k
:class:`~streams.drift.embedding.EmbeddingSample` per text scope (the same sampling as the live monitor),
and :func:`save_baseline` writes them to a folder: ``shape.json`` (binned counts), ``texts.npz`` (per
scope: vectors, priorities, event ids; no text) and ``baseline.json`` (the span and when it was set),
written last, so a reader never sees a half-written baseline (each file goes to a temporary name and is
renamed). The drift process checks ``baseline.json``'s modification time on every loop and pins the new
baseline when it changes; ``llmwatch drift baseline clear`` removes it and the trailing reference
returns. Guarantees: a baseline holds no text and no raw event data, only counts, vectors and ids.
What can block: the read (bounded by the range) and the embedding of the sampled texts.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson

from streams.drift.embedding import EmbeddingSample, SampledText
from streams.drift.shape import ShapeWindow

__all__ = ["Baseline", "clear_baseline", "load_baseline", "save_baseline"]

MANIFEST: Final = "baseline.json"
SHAPE_FILE: Final = "shape.json"
TEXTS_FILE: Final = "texts.npz"
SCOPE_SEPARATOR: Final = "\x1f"

TextScope = tuple[str, str, str]


@dataclass(slots=True)
class Baseline:
    start_ms: int
    end_ms: int
    shape: ShapeWindow
    texts: dict[TextScope, EmbeddingSample]
    set_at_ms: int = 0
    set_by: str = ""
    # The encoder backend the vectors come from: vectors of different backends are never compared.
    encoder: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "set_at_ms": self.set_at_ms,
            "set_by": self.set_by,
            "encoder": self.encoder,
            "shape_scopes": {"/".join(s): n for s, n in sorted(self.shape.calls.items())},
            "text_scopes": {"/".join(s): len(x) for s, x in sorted(self.texts.items())},
        }


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def save_baseline(folder: Path, baseline: Baseline) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shape = {
        SCOPE_SEPARATOR.join(scope): {
            "calls": baseline.shape.calls[scope],
            "counts": {name: dict(c) for name, c in baseline.shape.counts.get(scope, {}).items()},
        }
        for scope in baseline.shape.calls
    }
    _write(folder / SHAPE_FILE, orjson.dumps(shape))
    arrays: dict[str, np.ndarray] = {}
    for index, (scope, sample) in enumerate(sorted(baseline.texts.items())):
        texts = sample.texts()
        if not texts:
            continue
        arrays[f"scope_{index}"] = np.array(list(scope))
        arrays[f"vectors_{index}"] = np.stack([t.vector for t in texts]).astype(np.float32)
        arrays[f"priorities_{index}"] = np.array([t.priority for t in texts], dtype=np.uint64)
        arrays[f"events_{index}"] = np.array([t.event_id for t in texts])
        arrays[f"offered_{index}"] = np.array([sample.offered], dtype=np.int64)
    temporary = folder / f".{TEXTS_FILE}.{os.getpid()}.tmp.npz"
    np.savez_compressed(temporary, **arrays)  # type: ignore[arg-type]
    os.replace(temporary, folder / TEXTS_FILE)
    manifest = {
        "start_ms": baseline.start_ms,
        "end_ms": baseline.end_ms,
        "set_at_ms": baseline.set_at_ms,
        "set_by": baseline.set_by,
        "encoder": baseline.encoder,
    }
    _write(folder / MANIFEST, orjson.dumps(manifest))


def load_baseline(folder: Path, capacity: int) -> Baseline | None:
    """The baseline saved in ``folder``, or None when there is none. A damaged one raises
    ``ValueError`` naming the file."""
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        return None
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
        shape_doc = orjson.loads((folder / SHAPE_FILE).read_bytes())
        shape = ShapeWindow()
        for key, doc in shape_doc.items():
            scope = tuple(key.split(SCOPE_SEPARATOR))
            shape.calls[scope] = int(doc["calls"])  # type: ignore[index]
            shape.counts[scope] = {n: Counter(c) for n, c in doc["counts"].items()}  # type: ignore[index]
        texts: dict[TextScope, EmbeddingSample] = {}
        with np.load(folder / TEXTS_FILE) as arrays:
            index = 0
            while f"scope_{index}" in arrays:
                service, span_kind, direction = (str(v) for v in arrays[f"scope_{index}"])
                sample = EmbeddingSample(capacity)
                sample.offered = int(arrays[f"offered_{index}"][0])
                for rank, event, vector in zip(
                    arrays[f"priorities_{index}"],
                    arrays[f"events_{index}"],
                    arrays[f"vectors_{index}"],
                    strict=True,
                ):
                    sample.add(SampledText(int(rank), str(event), vector))
                texts[(service, span_kind, direction)] = sample
                index += 1
    except (OSError, KeyError, ValueError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"drift baseline in {folder} cannot be read: {exc}") from exc
    return Baseline(
        int(manifest["start_ms"]),
        int(manifest["end_ms"]),
        shape,
        texts,
        int(manifest.get("set_at_ms", 0)),
        str(manifest.get("set_by", "")),
        str(manifest.get("encoder", "")),
    )


def clear_baseline(folder: Path) -> bool:
    """Remove the baseline (the manifest first, so readers stop using it); whether there was one."""
    found = False
    for name in (MANIFEST, SHAPE_FILE, TEXTS_FILE):
        path = folder / name
        if path.exists():
            path.unlink()
            found = True
    return found


def manifest_mtime(folder: Path) -> float | None:
    try:
        return (folder / MANIFEST).stat().st_mtime
    except FileNotFoundError:
        return None
