"""Prompts and answers of LLM apps, organised by topic, and the per-service topic mix of the simulator.

Used by the simulator (:class:`~producers.simulator.texts.TextMaker` opens each prompt with a topic
prompt for the call's service) and by the embedding-drift calibration tests (a known topic mix, and
:meth:`TopicMix.shifted` for a scripted shift to a topic).

Guarantees:
- Every template, slot value and answer (in ``data/topics.yaml``) is written for llmwatch; no fake-data
  library or published corpus is used. The texts carry no personal data, URLs, attack phrasing or
  insults (the simulator plants those on purpose, elsewhere, and counts them); the tests check that
  llmwatch's PII detector and fast injection detector find nothing in a sample of them.
- Deterministic: :class:`TopicTexts` with the same seed returns the same texts for the same calls, in
  every process (``random.Random`` seeded with a string).
- A prompt is 8 to 80 words (a question, a request, context sentences or a pasted snippet, from slot-filled
  templates); within a topic, texts vary (over 80% of 200 prompts are distinct).
- Topics are semantically apart: with the bundled MiniLM embeddings, a nearest-centroid classifier over
  all 17 topics is >= 90% accurate and k-means recovers the topics with an adjusted Rand index >= 0.6
  (``tests/unit/producers/simulator/test_topics.py`` checks both on 40 prompts per topic; measured over
  three seeds: accuracy 0.97-0.99, ARI 0.91-1.0).
- :data:`HELD_BACK_TOPICS` appear in no service of :data:`DEFAULT_TOPIC_MIX`: shifting traffic to one of
  them is new content for a drift monitor.

The templates, slot values and answers are data: ``data/topics.yaml`` (one mapping per topic; the file's
header describes the fields). Importing this module reads and validates it once (about 5 ms with
libyaml); a broken file raises ValueError at import naming the file, the topic and the field (an unknown
field, no ``asks`` or ``answers``, a template ``{slot}`` that ``slots`` does not define). After that,
nothing here blocks or does I/O; a text costs microseconds.
"""

from __future__ import annotations

import functools
import math
import random
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from producers.simulator.catalog import INCIDENT_SERVICE

try:
    from yaml import CSafeLoader as _BaseLoader
except (
    ImportError
):  # PyYAML built without libyaml: the pure-Python loader (~10x slower, same result)
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

__all__ = [
    "DEFAULT_TOPIC_MIX",
    "HELD_BACK_TOPICS",
    "MAX_PROMPT_WORDS",
    "MIN_PROMPT_WORDS",
    "TOPICS",
    "TopicMix",
    "TopicTexts",
]

MIN_PROMPT_WORDS: Final = 8
MAX_PROMPT_WORDS: Final = 80
_SNIPPET_SHARE: Final = (
    0.35  # of prompts of a topic with snippets: a pasted snippet after a lead-in
)
_DETAIL_COUNTS: Final = (0, 1, 1, 2, 2, 3)  # context sentences around a question, drawn uniformly
_CONTEXT_FIRST_SHARE: Final = 0.5  # context before the question rather than after it
_GREETING_SHARE: Final = 0.3
_CLOSER_SHARE: Final = 0.25
_LOWERCASE_SHARE: Final = 0.08  # typed in a hurry: all lower case (prompts without a snippet)
_ANSWER_CLOSER_SHARE: Final = 0.4

_GREETINGS: Final = ("Hi.", "Hello!", "Hey there.", "Good morning.", "Quick question:", "Hi team!")
_CLOSERS: Final = (
    "Thanks!",
    "Thanks in advance.",
    "Any help is appreciated.",
    "Please advise.",
    "Cheers.",
    "This is fairly urgent.",
)
_ANSWER_CLOSERS: Final = (
    "Let me know if there is anything else I can help with.",
    "I hope this helps.",
    "Feel free to reply here if you have more questions.",
)


@dataclass(frozen=True, slots=True)
class _Topic:
    """Templates of one topic. ``asks``: a question or request; ``details``: context sentences;
    ``lead_ins`` introduce one of ``snippets`` (pasted text); ``answers``: what an assistant says.
    ``{name}`` fields draw from ``slots`` (one value per name per text). Loaded from
    ``data/topics.yaml`` by :func:`_load_specs`."""

    asks: tuple[str, ...]
    details: tuple[str, ...]
    answers: tuple[str, ...]
    slots: Mapping[str, tuple[str, ...]]
    lead_ins: tuple[str, ...] = ()
    snippets: tuple[str, ...] = ()


_DATA_FILE: Final = Path(__file__).parent / "data" / "topics.yaml"
_REQUIRED_FIELDS: Final = ("asks", "answers")
_TEMPLATE_FIELDS: Final = ("asks", "details", "answers", "lead_ins", "snippets")
_FIELDS: Final = frozenset((*_TEMPLATE_FIELDS, "slots"))


class _Loader(_BaseLoader):
    """Safe YAML loading (libyaml's when built in) that rejects a repeated mapping key: a copied topic or
    slot would otherwise silently replace the first one."""


def _unique_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _strings(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of strings, got {value!r}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{where} must hold non-empty strings, got {item!r}")
    return tuple(value)


def _template_slots(where: str, template: str) -> Iterator[str]:
    """The slot names ``template`` uses; anything but a plain ``{name}`` field is an error."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{where}: template {template!r} is not a format string: {exc}") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(
                f"{where}: template {template!r} has the field {{{field}}}; only a plain "
                "{name} of a slot is allowed"
            )
        yield field


def _topic(where: str, raw: object) -> _Topic:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping of fields, got {raw!r}")
    unknown = sorted(str(field) for field in raw if field not in _FIELDS)
    if unknown:
        raise ValueError(
            f"{where} has unknown field {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(_FIELDS))}"
        )
    for field in _REQUIRED_FIELDS:
        if not raw.get(field):
            raise ValueError(f"{where} needs a non-empty {field!r} list")
    lists = {
        field: _strings(f"{where} field {field!r}", raw.get(field, []))
        for field in _TEMPLATE_FIELDS
    }
    if bool(lists["lead_ins"]) != bool(lists["snippets"]):
        raise ValueError(f"{where} needs both 'lead_ins' and 'snippets' or neither")
    raw_slots = raw.get("slots", {})
    if not isinstance(raw_slots, dict):
        raise ValueError(f"{where} field 'slots' must map slot names to values, got {raw_slots!r}")
    slots: dict[str, tuple[str, ...]] = {}
    for slot, values in raw_slots.items():
        if not isinstance(slot, str) or not slot.isidentifier():
            raise ValueError(
                f"{where} field 'slots': a slot name must be an identifier, got {slot!r}"
            )
        slots[slot] = _strings(f"{where} slot {slot!r}", values)
        if not slots[slot]:
            raise ValueError(f"{where} slot {slot!r} needs at least one value")
    for field, templates in lists.items():
        for template in templates:
            for slot in _template_slots(f"{where} field {field!r}", template):
                if slot not in slots:
                    raise ValueError(
                        f"{where} field {field!r}: template {template!r} uses slot {{{slot}}}, "
                        f"which 'slots' does not define (defined: {', '.join(slots) or 'none'})"
                    )
    return _Topic(
        asks=lists["asks"],
        details=lists["details"],
        answers=lists["answers"],
        slots=MappingProxyType(slots),
        lead_ins=lists["lead_ins"],
        snippets=lists["snippets"],
    )


@functools.cache
def _load_specs(path: Path = _DATA_FILE) -> Mapping[str, _Topic]:
    """The topics of the YAML file at ``path``, in file order; read once per path (cached).

    Raises ValueError naming the file, the topic and the field of what is wrong (not YAML, a repeated
    key, an unknown field, no ``asks`` or ``answers``, a non-string value, a template ``{slot}`` that
    ``slots`` does not define); OSError if the file cannot be read."""
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ValueError(f"topics file {path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not doc:
        raise ValueError(f"topics file {path} must map topic names to their templates, got {doc!r}")
    specs: dict[str, _Topic] = {}
    for name, raw in doc.items():
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"topics file {path}: a topic name must be a non-empty string, got {name!r}"
            )
        specs[name] = _topic(f"topics file {path}: topic {name!r}", raw)
    return MappingProxyType(specs)


_SPECS: Final = _load_specs()

HELD_BACK_TOPICS: Final = ("crypto_wallets", "tax_filing", "home_gardening")
TOPICS: Final = tuple(name for name in _SPECS if name not in HELD_BACK_TOPICS)
if _missing := [name for name in HELD_BACK_TOPICS if name not in _SPECS]:
    raise ValueError(f"topics file {_DATA_FILE} lacks the held-back topics {_missing}")


def _spec(topic: str) -> _Topic:
    spec = _SPECS.get(topic)
    if spec is None:
        raise ValueError(f"unknown topic {topic!r}; known: {', '.join(_SPECS)}")
    return spec


def _check_weight(service: str, topic: str, weight: object) -> float:
    _spec(topic)
    if isinstance(weight, bool) or not isinstance(weight, Real):
        raise ValueError(
            f"weight of topic {topic!r} for service {service!r} must be a number, got {weight!r}"
        )
    value = float(weight)
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(
            f"weight of topic {topic!r} for service {service!r} must be finite and >= 0, got {weight!r}"
        )
    return value


class TopicMix:
    """Per-service topic weights: ``{service: {topic: weight}}``. Immutable and hashable.

    Weights are >= 0 and finite, each service's sum > 0; they are stored as shares (summing to 1 per
    service), in the given order, without zero-weight topics. Raises ValueError naming the bad value
    (an unknown topic, a negative or non-finite weight, a service without topics).
    """

    __slots__ = ("_items",)

    def __init__(self, weights: Mapping[str, Mapping[str, float]]) -> None:
        if not isinstance(weights, Mapping) or not weights:
            raise ValueError(f"a topic mix needs at least one service, got {weights!r}")
        items: list[tuple[str, tuple[tuple[str, float], ...]]] = []
        for service, topics in weights.items():
            if not isinstance(service, str) or not service:
                raise ValueError(f"a topic mix service must be a non-empty string, got {service!r}")
            if not isinstance(topics, Mapping):
                raise ValueError(f"topics of service {service!r} must be a mapping, got {topics!r}")
            checked = [(topic, _check_weight(service, topic, w)) for topic, w in topics.items()]
            total = math.fsum(w for _t, w in checked)
            if total <= 0.0:
                raise ValueError(
                    f"service {service!r} needs a topic with weight > 0, got {dict(topics)!r}"
                )
            items.append((service, tuple((t, w / total) for t, w in checked if w > 0.0)))
        self._items: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = tuple(items)

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(service for service, _topics in self._items)

    @property
    def weights(self) -> dict[str, dict[str, float]]:
        """A copy of the shares: ``{service: {topic: share}}``, each service's shares summing to 1."""
        return {service: dict(topics) for service, topics in self._items}

    def shares(self, service: str | None) -> dict[str, float]:
        """The topic shares of ``service``; a service the mix does not name (or None) gets the pooled
        mix, every named service counting equally."""
        for name, topics in self._items:
            if name == service:
                return dict(topics)
        pooled: dict[str, float] = {}
        for _name, topics in self._items:
            for topic, share in topics:
                pooled[topic] = pooled.get(topic, 0.0) + share / len(self._items)
        return pooled

    def shifted(self, service: str, topic: str, share: float) -> TopicMix:
        """A mix where ``share`` of ``service``'s traffic is on ``topic`` and its other topics keep their
        proportions in the remaining ``1 - share``; other services are unchanged.

        Raises ValueError for a service the mix does not name, an unknown topic, a share outside
        [0, 1], or a share below 1 for a service whose only topic is ``topic`` (nothing to scale)."""
        _spec(topic)
        if service not in self.services:
            raise ValueError(
                f"unknown service {service!r}; the mix has: {', '.join(self.services)}"
            )
        if isinstance(share, bool) or not isinstance(share, Real) or not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be a number in [0, 1], got {share!r}")
        current = self.shares(service)
        rest = {t: w for t, w in current.items() if t != topic}
        rest_total = math.fsum(rest.values())
        if rest_total <= 0.0 and share < 1.0:
            raise ValueError(
                f"service {service!r} has only topic {topic!r}: a share of {share!r} leaves nothing "
                "for other topics"
            )
        scale = (1.0 - share) / rest_total if rest_total > 0.0 else 0.0
        new = {t: w * scale for t, w in rest.items()}
        new[topic] = float(share)
        weights = self.weights
        weights[service] = new
        return TopicMix(weights)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TopicMix) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"TopicMix({self.weights!r})"


DEFAULT_TOPIC_MIX: Final = TopicMix(
    {
        INCIDENT_SERVICE: {  # support-bot
            "billing_refunds": 0.30,
            "shipping_delivery": 0.25,
            "account_access": 0.25,
            "data_export": 0.20,
        },
        "search-rag": {
            "hr_leave": 0.25,
            "travel_booking": 0.20,
            "medical_appointments": 0.20,
            "legal_contracts": 0.20,
            "cooking_recipes": 0.15,
        },
        "code-agent": {"software_bugs": 0.40, "code_generation": 0.40, "cloud_deployment": 0.20},
        "summarizer": {"meeting_notes": 0.40, "marketing_copy": 0.30, "legal_contracts": 0.30},
    }
)


class _Slots(dict[str, str]):
    """Slot values of one text: each name drawn once, on first use, so repeats agree."""

    def __init__(self, rng: random.Random, vocab: Mapping[str, tuple[str, ...]]) -> None:
        super().__init__()
        self._rng = rng
        self._vocab = vocab

    def __missing__(self, key: str) -> str:
        values = self._vocab.get(key)
        if values is None:
            raise ValueError(f"template slot {{{key}}} has no vocabulary")
        value = self._rng.choice(values)
        self[key] = value
        return value


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _words(parts: Iterable[str]) -> int:
    return sum(len(part.split()) for part in parts)


class TopicTexts:
    """Prompts and answers per topic, deterministic for ``seed`` (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"topics:{seed}")

    def prompt(self, topic: str) -> str:
        """A user prompt on ``topic``, :data:`MIN_PROMPT_WORDS` to :data:`MAX_PROMPT_WORDS` words."""
        spec, rng = _spec(topic), self._rng
        slots = _Slots(rng, spec.slots)
        snippet = bool(spec.snippets) and rng.random() < _SNIPPET_SHARE
        if snippet:
            # The lead-in and the pasted text stay one block (joined by a line break).
            core = f"{_capitalized(rng.choice(spec.lead_ins).format_map(slots))}\n" + rng.choice(
                spec.snippets
            ).format_map(slots)
            count = rng.choice(_DETAIL_COUNTS[:2])
        else:
            core = _capitalized(rng.choice(spec.asks).format_map(slots))
            count = rng.choice(_DETAIL_COUNTS)
        pool = [
            _capitalized(d.format_map(slots)) for d in rng.sample(spec.details, len(spec.details))
        ]
        details, spare = pool[:count], pool[count:]
        # A pasted snippet ends the prompt: its context goes first.
        context_first = rng.random() < _CONTEXT_FIRST_SHARE or snippet
        greeting = rng.choice(_GREETINGS) if rng.random() < _GREETING_SHARE else None
        closer = rng.choice(_CLOSERS) if rng.random() < _CLOSER_SHARE and not snippet else None
        lower = not snippet and rng.random() < _LOWERCASE_SHARE

        def assemble() -> list[str]:
            body = [*details, core] if context_first else [core, *details]
            return [p for p in (greeting, *body, closer) if p is not None]

        while _words(assemble()) < MIN_PROMPT_WORDS and spare:
            details.append(spare.pop())
        while _words(assemble()) > MAX_PROMPT_WORDS and (details or greeting or closer):
            if details:
                details.pop()
            elif closer is not None:
                closer = None
            else:
                greeting = None
        text = " ".join(assemble())
        return text.lower() if lower else text

    def query(self, topic: str) -> str:
        """A short search query on ``topic`` (one question or request, no context)."""
        spec, rng = _spec(topic), self._rng
        return _capitalized(rng.choice(spec.asks).format_map(_Slots(rng, spec.slots)))

    def answer(self, topic: str) -> str:
        """An assistant's answer on ``topic``."""
        spec, rng = _spec(topic), self._rng
        text = _capitalized(rng.choice(spec.answers).format_map(_Slots(rng, spec.slots)))
        if rng.random() < _ANSWER_CLOSER_SHARE:
            text = f"{text} {rng.choice(_ANSWER_CLOSERS)}"
        return text

    def draw(self, service: str | None, mix: TopicMix = DEFAULT_TOPIC_MIX) -> tuple[str, str]:
        """A topic drawn from ``service``'s shares in ``mix`` (see :meth:`TopicMix.shares`) and a prompt
        on it."""
        topic = self.topic(service, mix)
        return topic, self.prompt(topic)

    def topic(self, service: str | None, mix: TopicMix = DEFAULT_TOPIC_MIX) -> str:
        """A topic drawn from ``service``'s shares in ``mix``."""
        shares = mix.shares(service)
        return self._rng.choices(tuple(shares), weights=tuple(shares.values()))[0]
