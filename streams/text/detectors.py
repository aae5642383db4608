"""Build the deployment's :class:`~streams.text.analyzer.TextAnalyzer` from its guardrail settings.

The detectors' libraries (presidio, spaCy, torch, sentence-transformers, alt-profanity-check) are
imported here, lazily, so that the metrics path never loads them; a missing one raises ImportError
with the install command (the ``text`` extra).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from streams.text.analyzer import TextAnalyzer

__all__ = ["INSTALL_HINT", "build_analyzer", "load_guardrails_file"]

INSTALL_HINT: Final = "text analysis needs the 'text' extra: pip install 'llmwatch[text]'"
_SECTIONS: Final = frozenset({"version", "content"})


def load_guardrails_file(path: Path | None) -> dict[str, Any]:
    """The guardrails file as a mapping (``{}`` when ``path`` is None); errors name the file."""
    if path is None:
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read guardrails file {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"guardrails file {path}: expected a mapping, got {type(doc).__name__}")
    unknown = sorted(set(doc) - _SECTIONS)
    if unknown:
        raise ValueError(
            f"guardrails file {path}: unknown sections {unknown}, expected {sorted(_SECTIONS)}"
        )
    if doc.get("version", 1) != 1:
        raise ValueError(f"guardrails file {path}: version must be 1, got {doc.get('version')!r}")
    return doc


def build_analyzer(
    settings: Mapping[str, Any] | None = None, *, injection_encoder: bool = True
) -> TextAnalyzer:
    """Every detector, with the ``content`` policy of a guardrails file's mapping (defaults if absent:
    no banned topics, no URL allow list)."""
    try:
        from streams.text.content import ContentFilter
        from streams.text.content_policy import load_content_policy
        from streams.text.injection import InjectionDetector
        from streams.text.pii import PiiDetector
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    # Without a file, no banned topics: they cost encoder time per text (config/guardrails.example.yaml).
    policy = load_content_policy((settings or {}).get("content"))
    # Without the encoder the injection detector is ~17x faster and less accurate (docs/guardrails.md).
    injection = InjectionDetector(use_encoder=injection_encoder)
    return TextAnalyzer(PiiDetector(), injection, ContentFilter(policy))
