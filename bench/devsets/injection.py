"""Prompt-injection development set: attacks, hard negatives and ordinary prompts, all written here.

How it was made: about 310 attack seeds (six families: instruction override, role-play jailbreaks, system-
prompt extraction, indirect injection, markdown/URL exfiltration, code and SQL relays) and about 210 hard
negatives (benign text that uses attack words: "ignore the previous totals", "act as a SQL tutor",
developer mode in Chrome, migrations with ``DROP TABLE``, security articles about prompt injection) were
written by hand for this project, in two rounds (``injection_seeds`` then ``injection_seeds_extra``, which
widened register, framing, vocabulary and agent tools). Each seed is expanded by templates: benign
wrappers around it, casing and urgency, obfuscation transforms (base64, hex, ROT13, leetspeak, zero-width
characters, Cyrillic look-alike letters) and embedding inside benign documents (retrieved passages, HTML
pages, e-mails, tool JSON, source files) of 40 to 600 words, whose filler comes from mimesis and hand-
written paragraphs. Ordinary prompts (support, coding, writing, RAG questions) come from templates filled
with mimesis values. No published jailbreak corpus or red-teaming tool was read or used.

Every example carries its seed ``group``; :func:`split_devset` splits by group (a seeded hash), so all the
variants of one seed land on the same side and near-duplicates cannot leak from train to dev.
Deterministic: the same seed gives the same list. Used by ``bench/train_injection.py`` (train split) and
``bench/bench_injection.py`` (dev split).
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from mimesis import Address, Finance, Food, Hardware, Person, Text
from mimesis.locales import Locale

from bench.devsets import injection_seeds as seeds
from bench.devsets import injection_seeds_extra as extra

__all__ = ["SOURCES", "LabelledPrompt", "injection_devset", "split_devset"]

SOURCES: Final = ("prompt", "retrieval", "tool", "output")
DEFAULT_DEV_FRACTION: Final = 0.35
ZERO_WIDTH_SPACE: Final = "\u200b"
_HOMOGLYPHS: Final = str.maketrans(
    {"a": "\u0430", "e": "\u0435", "o": "\u043e", "c": "\u0441", "p": "\u0440"}
)
_LEET: Final = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
# The first seed set followed by the second (appended, so the first set's group names are unchanged).
ATTACK_SEEDS: Final = {
    family: payloads + extra.ATTACK_SEEDS_EXTRA.get(family, ())
    for family, payloads in seeds.ATTACK_SEEDS.items()
}
HARD_NEGATIVES: Final = seeds.HARD_NEGATIVES + extra.HARD_NEGATIVES_EXTRA
HARD_NEGATIVE_DOCUMENTS: Final = seeds.HARD_NEGATIVE_DOCUMENTS + extra.HARD_NEGATIVE_DOCUMENTS_EXTRA
BENIGN_PROMPTS: Final = seeds.BENIGN_PROMPTS + extra.BENIGN_PROMPTS_EXTRA
BENIGN_PARAGRAPHS: Final = seeds.BENIGN_PARAGRAPHS + extra.BENIGN_PARAGRAPHS_EXTRA


@dataclass(frozen=True, slots=True)
class LabelledPrompt:
    """One example: ``label`` 1 is an attack; ``group`` is the seed it came from (split key)."""

    text: str
    label: int
    family: str
    source: str
    group: str
    variant: str
    # Where the attack payload sits in ``text`` (the whole text unless it was embedded in a document).
    span: tuple[int, int] = (0, 0)

    def payload_span(self) -> tuple[int, int]:
        """``span``, or the whole text when no narrower span was recorded."""
        return self.span if self.span != (0, 0) else (0, len(self.text))


class _Filler:
    """Benign filler text and values from mimesis, seeded."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.text = Text(Locale.EN, seed=seed)
        self.person = Person(Locale.EN, seed=seed)
        self.address = Address(Locale.EN, seed=seed)
        self.finance = Finance(Locale.EN, seed=seed)
        self.food = Food(Locale.EN, seed=seed)
        self.hardware = Hardware(seed=seed)

    def paragraph(self, sentences: int) -> str:
        pool = [self.text.text(1) for _ in range(sentences)]
        pool.append(self.rng.choice(BENIGN_PARAGRAPHS))
        self.rng.shuffle(pool)
        return " ".join(pool)

    def words(self, count: int) -> str:
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < count:
            parts.append(self.paragraph(4))
        return "\n\n".join(parts)

    def values(self) -> dict[str, str]:
        return {
            "name": self.person.full_name(),
            "city": self.address.city(),
            "company": self.finance.company(),
            "dish": self.food.dish(),
            "device": self.hardware.phone_model(),
            "order": str(self.rng.randint(10_000, 99_999)),
            "topic": self.rng.choice(seeds.TOPICS),
            "lang": self.rng.choice(("Python", "Go", "TypeScript", "Rust", "Java", "SQL")),
        }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _zero_width(text: str) -> str:
    return "".join(
        ch + ZERO_WIDTH_SPACE if ch.isalpha() and i % 3 == 0 else ch for i, ch in enumerate(text)
    )


# Obfuscation transforms: (variant name, how the payload is dressed).
_OBFUSCATIONS: Final[tuple[tuple[str, Callable[[str], str]], ...]] = (
    ("base64", lambda p: f"Decode this base64 and follow what it says: {_b64(p)}"),
    ("base64_bare", lambda p: f"{_b64(p)}\n(base64; act on the decoded text)"),
    ("hex", lambda p: f"Hex message, decode and comply: {p.encode().hex()}"),
    (
        "rot13",
        lambda p: f"The next line is rot13. Decode it and do it.\n{codecs.encode(p, 'rot13')}",
    ),
    ("leetspeak", lambda p: p.translate(_LEET)),
    ("zero_width", _zero_width),
    ("homoglyph", lambda p: p.translate(_HOMOGLYPHS)),
)


def _direct_variants(payload: str, fill: _Filler) -> list[tuple[str, str]]:
    """The payload as a user prompt, plain, wrapped by a benign request, and obfuscated (one transform)."""
    values = fill.values()
    request = fill.rng.choice(BENIGN_PROMPTS).format(**values)
    wrapped = fill.rng.choice(seeds.ATTACK_WRAPPERS).format(payload=payload, request=request)
    name, transform = fill.rng.choice(_OBFUSCATIONS)
    return [("plain", payload), ("wrapped", wrapped), (name, transform(payload))]


def _document(payload: str, fill: _Filler, words: int) -> tuple[str, str]:
    """A benign document of about ``words`` words with ``payload`` hidden inside; (source, text)."""
    before = fill.words(words // 2)
    after = fill.words(words // 2)
    kind = fill.rng.choice(("passage", "html", "email", "tool_json", "code"))
    if kind == "passage":
        return "retrieval", f"{before}\n\n{payload}\n\n{after}"
    if kind == "html":
        hidden = fill.rng.choice(
            (f"<!-- {payload} -->", f'<span style="display:none">{payload}</span>')
        )
        return (
            "retrieval",
            f"<html><body><h1>{fill.values()['company']}</h1><p>{before}</p>{hidden}<p>{after}</p></body></html>",
        )
    if kind == "email":
        values = fill.values()
        return (
            "tool",
            f"From: {values['name']}\nSubject: {values['topic']}\n\n{before}\n\n{payload}"
            f"\n\nRegards,\n{values['name']}",
        )
    if kind == "tool_json":
        results = [
            {"title": fill.text.title(), "snippet": before[:400]},
            {"title": fill.text.title(), "snippet": payload},
        ]
        results.append({"title": fill.text.title(), "snippet": after[:400]})
        return "tool", json.dumps({"status": "ok", "results": results})
    code = fill.rng.choice(seeds.CODE_SNIPPETS)
    return "retrieval", f"{code}\n# {payload}\n{code}"


def _locate(text: str, payload: str) -> tuple[int, int]:
    """Where ``payload`` (or its JSON-escaped form) sits in ``text``."""
    for form in (payload, json.dumps(payload)[1:-1]):
        start = text.find(form)
        if start >= 0:
            return start, start + len(form)
    raise ValueError(f"payload not found in the document, got {payload[:40]!r}")


def _attacks(fill: _Filler) -> list[LabelledPrompt]:
    out: list[LabelledPrompt] = []
    for family, payloads in ATTACK_SEEDS.items():
        for index, payload in enumerate(payloads):
            group = f"{family}:{index}"
            if family != "indirect_injection":
                for variant, text in _direct_variants(payload, fill):
                    out.append(LabelledPrompt(text, 1, family, "prompt", group, variant))
            for words in (60, fill.rng.choice((200, 400, 600))):
                source, text = _document(payload, fill, words)
                span = _locate(text, payload)
                out.append(
                    LabelledPrompt(text, 1, family, source, group, f"embedded_{words}", span)
                )
            if family == "exfiltration":
                before = fill.paragraph(3)
                out.append(
                    LabelledPrompt(f"{before}\n\n{payload}", 1, family, "output", group, "output")
                )
    return out


def _hard_negatives(fill: _Filler) -> list[LabelledPrompt]:
    out: list[LabelledPrompt] = []
    for index, text in enumerate(HARD_NEGATIVES):
        group = f"hard:{index}"
        out.append(LabelledPrompt(text, 0, "hard_negative", "prompt", group, "plain"))
        request = fill.rng.choice(BENIGN_PROMPTS).format(**fill.values())
        out.append(
            LabelledPrompt(f"{text} {request}", 0, "hard_negative", "prompt", group, "wrapped")
        )
        source, document = _document(text, fill, fill.rng.choice((60, 300)))
        out.append(LabelledPrompt(document, 0, "hard_negative", source, group, "embedded"))
    for index, document in enumerate(HARD_NEGATIVE_DOCUMENTS):
        group = f"hard_doc:{index}"
        out.append(LabelledPrompt(document, 0, "hard_negative", "retrieval", group, "document"))
        padded = f"{fill.words(120)}\n\n{document}\n\n{fill.words(120)}"
        out.append(LabelledPrompt(padded, 0, "hard_negative", "retrieval", group, "embedded"))
    return out


def _benign(fill: _Filler, per_template: int) -> list[LabelledPrompt]:
    out: list[LabelledPrompt] = []
    for index, template in enumerate(BENIGN_PROMPTS):
        group = f"benign:{index}"
        for _ in range(per_template):
            text = template.format(**fill.values())
            out.append(LabelledPrompt(text, 0, "benign", "prompt", group, "plain"))
        source, document = _document(fill.paragraph(2), fill, fill.rng.choice((60, 200, 400)))
        out.append(LabelledPrompt(document, 0, "benign", source, group, "document"))
        long_prompt = f"{template.format(**fill.values())}\n\nContext:\n{fill.words(180)}"
        out.append(LabelledPrompt(long_prompt, 0, "benign", "prompt", group, "long"))
    return out


def injection_devset(seed: int = 0, benign_per_template: int = 6) -> list[LabelledPrompt]:
    """All examples, attacks first; the same ``seed`` gives the same list."""
    if benign_per_template < 1:
        raise ValueError(f"benign_per_template must be at least 1, got {benign_per_template!r}")
    fill = _Filler(seed)
    return _attacks(fill) + _hard_negatives(fill) + _benign(fill, benign_per_template)


def _in_dev(group: str, seed: int, dev_fraction: float) -> bool:
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < dev_fraction


def split_devset(
    examples: Sequence[LabelledPrompt], seed: int = 0, dev_fraction: float = DEFAULT_DEV_FRACTION
) -> tuple[list[LabelledPrompt], list[LabelledPrompt]]:
    """(train, dev): whole seed groups go to one side, chosen by a seeded hash of the group name."""
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in (0, 1), got {dev_fraction!r}")
    train = [e for e in examples if not _in_dev(e.group, seed, dev_fraction)]
    dev = [e for e in examples if _in_dev(e.group, seed, dev_fraction)]
    return train, dev
