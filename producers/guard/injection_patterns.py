"""The cheap prompt-injection layer: hand-written patterns, structure and de-obfuscation, pure ``re``.

:func:`injection_signals` scores one text in [0, 1] from named signals (``ignore_previous``,
``developer_mode``, ``system_prompt_request``, ``note_to_ai``, ``markdown_image_exfil``,
``destructive_shell``, ``base64`` ...) and names the strongest attack family (``category``). It never
returns the matched text, only signal names, so a verdict can be logged as it is.

Obfuscation: the text is NFKC-normalised, zero-width characters are dropped and Cyrillic/Greek
look-alike letters mapped to Latin before matching; base64 and hex blobs that decode to text, a ROT13
reading and a leetspeak reading are scanned again, and their hits count as much as plain ones (plus a
small weight for the obfuscation itself).

Guarantees: imports only the standard library (the SDK's ``watch.guard`` calls it in-process); never
raises on any ``str`` (non-str input gives an empty result); texts longer than ``MAX_SCAN_CHARS`` are
scanned on their head and tail only. Speed: p99 well under 2 ms for a 200-word prompt on one core
(``.venv/bin/python -m bench.bench_injection`` measures it). This layer is deliberately high precision
and modest recall; ``streams.text.injection.InjectionDetector`` adds a learned model on top.
Accuracy (of both layers, on a held-out dev split): ``bench/results/injection.json``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from producers.guard.injection_families import (
    CATEGORIES,
    IGNORECASE,
    INSTRUCTION_OVERRIDE,
    MAX_DECODED_BLOBS,
    MAX_SCAN_CHARS,
    OBFUSCATION,
    Rule,
)
from producers.guard.injection_rules import (
    DENSITY_MIN_DIRECTIVES,
    DENSITY_WEIGHT,
    META_DISCOUNT,
    META_DISCUSSION,
    OBFUSCATION_WEIGHTS,
    RULES_TABLE,
    SIGNAL_NAMES,
)

__all__ = [
    "CATEGORIES",
    "MAX_SCAN_CHARS",
    "SIGNAL_NAMES",
    "PatternSignals",
    "injection_signals",
]

_ZERO_WIDTH = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")
_LOOKALIKES: Final = str.maketrans(
    (
        "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u0261\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422"
        "\u0425\u0406\u0408\u0405\u03b1\u03bf\u03f2\u03bd\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a7\u03a5"
    ),
    "aeopcyxijsdgABEKMHOPCTXIJSaocvABEZHIKMNOPTXY",
)
_MIXED_SCRIPT_WORD = re.compile(r"(?=\w*[a-zA-Z])(?=\w*[\u0370-\u03ff\u0400-\u04ff])\w+")
_BASE64_BLOB = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{20,}={0,2}")
_HEX_BLOB = re.compile(r"\b(?:[0-9a-fA-F]{2}[\s:]?){12,}\b")
# A whole word of lower-case letters and leet digits (an optional capital first), twice or more,
# suggests leetspeak. Random keys and base64 (mixed case, "+" and "/") and e-mail addresses do not
# count, nor hex (ids, hashes, MAC addresses); the reading still maps "@" and "$".
_LEET_HINT = re.compile(
    r"(?<![A-Za-z0-9+/])(?![0-9a-fA-F]+(?![A-Za-z0-9+/]))"
    r"[A-Za-z]?[a-z]*[0134578]+[a-z][a-z0134578]*(?![A-Za-z0-9+/])"
)
LEET_MIN_HINTS: Final = 2
_LEET_MAP: Final = str.maketrans("0134578@$|", "oieastbasi")
_DIRECTIVE = re.compile(
    r"\byou\s+(?:must|will|shall|should|are\s+to|have\s+to|need\s+to)\b|\b(?:always|never)\s+"
    r"(?:respond|answer|say|reply|output|mention)\b",
    IGNORECASE,
)
_STRONG_RULES: Final = tuple(rule for rule in RULES_TABLE if rule[2] >= 0.45)
# Common English words (and attack words) as they read after ROT13: a reason to scan a ROT13 reading.
_ROT13_HINT = re.compile(
    r"\b(?:gur|naq|lbh|lbhe|vtaber|cerivbhf|vafgehpgvbaf|flfgrz|cebzcg|ehyrf|cnffjbeq|fubj)\b",
    re.IGNORECASE,
)
_NON_LATIN_LETTER = re.compile("[\u0370-\u04ff]")
# A rule's pattern is searched this many characters either side of its triggers (rules span a sentence
# or two; the longest pattern gap is well under this).
MATCH_WINDOW: Final = 320
# Alphabetic triggers this short open a window only as a word of their own.
SHORT_TRIGGER: Final = 3


@dataclass(frozen=True, slots=True)
class PatternSignals:
    """What the pattern layer saw: a score in [0, 1], the strongest family, and the signal names."""

    score: float = 0.0
    category: str | None = None
    signals: tuple[str, ...] = ()


_EMPTY: Final = PatternSignals()


def _normalise(text: str) -> tuple[str, list[str]]:
    """NFKC, zero-width characters removed, look-alike letters mapped; with the obfuscations seen."""
    seen: list[str] = []
    cleaned = _ZERO_WIDTH.sub("", text)
    if len(cleaned) != len(text) and re.search(r"\w[\u200b-\u200d\u2060\ufeff]+\w", text):
        seen.append("zero_width")
    if not unicodedata.is_normalized("NFKC", cleaned):
        cleaned = unicodedata.normalize("NFKC", cleaned)
    if _NON_LATIN_LETTER.search(cleaned) and _MIXED_SCRIPT_WORD.search(cleaned):
        seen.append("homoglyph")
        cleaned = cleaned.translate(_LOOKALIKES)
    return cleaned, seen


def _trigger_index(rules: tuple[Rule, ...]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Each distinct trigger string with the positions of the rules it gates (checked once per text)."""
    index: dict[str, list[int]] = {}
    for position, rule in enumerate(rules):
        for trigger in rule[3]:
            index.setdefault(trigger, []).append(position)
    return tuple((trigger, tuple(positions)) for trigger, positions in index.items())


_TRIGGERS: Final = {rules: _trigger_index(rules) for rules in (RULES_TABLE, _STRONG_RULES)}


def _trigger_windows(text: str, lower: str, triggers: list[str]) -> list[tuple[int, int]] | None:
    """Merged ``[start, end)`` windows of ``MATCH_WINDOW`` characters around each trigger in ``text``.

    ``None`` means "search the whole text": the lower-case copy does not line up with ``text`` (a few
    characters change length when lower-cased) or a trigger was only seen across collapsed whitespace.
    A short alphabetic trigger ("ai", "bot") counts only as a word of its own, so "email" or "said" do
    not open a window.
    """
    if len(lower) != len(text):
        return None
    spans: list[tuple[int, int]] = []
    for trigger in triggers:
        located = False
        short_word = len(trigger) <= SHORT_TRIGGER and trigger.isalpha()
        at = lower.find(trigger)
        while at >= 0:
            located = True
            end = at + len(trigger)
            if not short_word or (
                (at == 0 or not lower[at - 1].isalpha())
                and (end >= len(lower) or not lower[end].isalpha() or lower[end] == "s")
            ):
                spans.append((max(0, at - MATCH_WINDOW), min(len(text), end + MATCH_WINDOW)))
            at = lower.find(trigger, end)
        if not located:
            return None
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _match(text: str, rules: tuple[Rule, ...] = RULES_TABLE) -> list[tuple[str, str, float]]:
    """(name, category, weight) of each rule whose triggers and pattern are in ``text``, in table order.

    A rule's pattern runs only near its triggers (within ``MATCH_WINDOW`` characters), which keeps a
    long prompt's cost close to that of the sentences that look like an attack.
    """
    lower = text.lower()
    gate = " ".join(lower.split())
    found: dict[int, list[str]] = {}
    for trigger, positions in _TRIGGERS[rules]:
        if trigger in gate:
            for position in positions:
                found.setdefault(position, []).append(trigger)
    hits = []
    for position in sorted(found):
        name, category, weight, _triggers, pattern = rules[position]
        windows = _trigger_windows(text, lower, found[position])
        if windows is None:
            matched = pattern.search(text) is not None
        else:
            matched = any(pattern.search(text, start, end) for start, end in windows)
        if matched:
            hits.append((name, category, weight))
    return hits


def _printable_share(decoded: str) -> float:
    if not decoded:
        return 0.0
    return sum(ch.isprintable() or ch in "\n\t" for ch in decoded) / len(decoded)


def _decode_blobs(text: str) -> list[tuple[str, str]]:
    """(obfuscation name, decoded text) for base64 and hex blobs that decode to readable text."""
    decoded: list[tuple[str, str]] = []
    for blob in _BASE64_BLOB.findall(text)[:MAX_DECODED_BLOBS]:
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
            plain = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if _printable_share(plain) > 0.95 and re.search(r"[a-zA-Z]{3,}\s+[a-zA-Z]{2,}", plain):
            decoded.append(("base64", plain))
    for blob in _HEX_BLOB.findall(text)[:MAX_DECODED_BLOBS]:
        try:
            plain = bytes.fromhex(re.sub(r"[\s:]", "", blob)).decode("utf-8")
        except ValueError:
            continue
        if _printable_share(plain) > 0.95 and " " in plain:
            decoded.append(("hex", plain))
    return decoded


def _alternate_readings(text: str) -> list[tuple[str, str]]:
    """Readings of an obfuscated text to scan again: decoded blobs, ROT13, leetspeak."""
    readings = _decode_blobs(text)
    if _ROT13_HINT.search(text):  # ROT13-encoded English has these words; plain text does not
        readings.append(("rot13", codecs.decode(text, "rot13")))
    if len(_LEET_HINT.findall(text, 0, MAX_SCAN_CHARS)) >= LEET_MIN_HINTS:
        readings.append(("leetspeak", text.translate(_LEET_MAP)))
    return readings


def _may_direct(text: str) -> bool:
    """Whether ``_DIRECTIVE`` can match at all (a substring check is far cheaper than the scan)."""
    lower = text.lower()
    return "you" in lower or "always" in lower or "never" in lower


def _combine(hits: dict[str, tuple[str, float]]) -> PatternSignals:
    if not hits:
        return _EMPTY
    keep = 1.0
    per_category: dict[str, float] = {}
    for family, weight in hits.values():
        keep *= 1.0 - weight
        if family != OBFUSCATION:
            per_category[family] = per_category.get(family, 0.0) + weight
    strongest = max(per_category, key=per_category.__getitem__) if per_category else None
    return PatternSignals(min(1.0, max(0.0, 1.0 - keep)), strongest, tuple(sorted(hits)))


def _scan(text: str) -> PatternSignals:
    cleaned, obfuscations = _normalise(text)
    hits: dict[str, tuple[str, float]] = {n: (c, w) for n, c, w in _match(cleaned)}
    for name in obfuscations:
        hits[name] = (OBFUSCATION, OBFUSCATION_WEIGHTS[name])
    for how, reading in _alternate_readings(cleaned):
        found = _match(reading, _STRONG_RULES if how in ("rot13", "leetspeak") else RULES_TABLE)
        new = [hit for hit in found if hit[0] not in hits]
        if new:
            hits[how] = (OBFUSCATION, OBFUSCATION_WEIGHTS[how])
            hits.update({n: (c, w) for n, c, w in new})
    if _may_direct(cleaned) and len(_DIRECTIVE.findall(cleaned)) >= DENSITY_MIN_DIRECTIVES:
        hits["instruction_density"] = (INSTRUCTION_OVERRIDE, DENSITY_WEIGHT)
    result = _combine(hits)
    if result.signals and META_DISCUSSION.search(cleaned):
        return PatternSignals(
            result.score * META_DISCOUNT, result.category, (*result.signals, "meta_discussion")
        )
    return result


def injection_signals(text: str) -> PatternSignals:
    """The pattern layer's view of ``text``; never raises (a non-str or failing input scores 0)."""
    if not isinstance(text, str) or not text:
        return _EMPTY
    if len(text) > MAX_SCAN_CHARS:
        half = MAX_SCAN_CHARS // 2
        text = text[:half] + "\n" + text[-half:]
    try:
        return _scan(text)
    except Exception:  # the SDK's guard must never raise
        return _EMPTY
