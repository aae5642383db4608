"""Topic texts: deterministic, varied, clean, and apart by the real MiniLM embeddings; the topic mix's
shares, shifts and errors; and the simulator drawing prompts from its services' topics."""

from __future__ import annotations

import math
import string
from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from producers.events import LlmCallEvent, SpanKind
from producers.simulator import (
    DEFAULT_TOPIC_MIX,
    HELD_BACK_TOPICS,
    TOPICS,
    TextMix,
    TopicMix,
    TopicTexts,
    default_scenario,
    run_simulation,
)
from producers.simulator.runner import SimulationReport
from producers.simulator.texts import _WEAK_ANSWERS, WEAK_ANSWER_MARK, TextMaker, TextTruth
from producers.simulator.topics import _SPECS, MAX_PROMPT_WORDS, MIN_PROMPT_WORDS, _load_specs
from tests.clock import Clock

ALL_TOPICS = TOPICS + HELD_BACK_TOPICS
PER_TOPIC = 40  # prompts embedded per topic (half for the centroids, half to classify)
MIN_ACCURACY = 0.90
MIN_ARI = 0.6


def test_the_same_seed_gives_the_same_texts_and_another_seed_others() -> None:
    def texts(seed: int) -> list[str]:
        maker = TopicTexts(seed)
        out = [maker.prompt(t) for t in ALL_TOPICS] + [maker.answer(t) for t in ALL_TOPICS]
        out += [maker.query(t) for t in ALL_TOPICS]
        return out + [
            " | ".join(maker.draw(s, DEFAULT_TOPIC_MIX)) for s in DEFAULT_TOPIC_MIX.services
        ]

    assert texts(4) == texts(4)
    assert texts(4) != texts(5)


@pytest.mark.parametrize("topic", ALL_TOPICS)
def test_every_topic_gives_varied_prompts_of_8_to_80_words_and_answers(topic: str) -> None:
    maker = TopicTexts(1)
    prompts = [maker.prompt(topic) for _ in range(200)]
    assert len(set(prompts)) >= 0.8 * len(prompts)
    words = [len(p.split()) for p in prompts]
    assert min(words) >= MIN_PROMPT_WORDS and max(words) <= MAX_PROMPT_WORDS, (
        min(words),
        max(words),
    )
    assert max(words) - min(words) >= 25  # short questions and long pasted context alike
    answers = [maker.answer(topic) for _ in range(50)]
    assert len(set(answers)) >= 10 and all(len(a.split()) >= 15 for a in answers)
    assert all(maker.query(topic) for _ in range(5))
    # Every slot filled; no answer reads as the regressed prompt's evasive one.
    assert not any("{" in t or "}" in t for t in prompts + answers)
    assert not any(WEAK_ANSWER_MARK in a for a in answers)


def test_every_template_slot_has_a_vocabulary() -> None:
    for name, spec in _SPECS.items():
        templates = (*spec.asks, *spec.details, *spec.answers, *spec.lead_ins, *spec.snippets)
        used = {f for t in templates for _lit, f, _fmt, _conv in string.Formatter().parse(t) if f}
        assert used <= set(spec.slots), (name, used - set(spec.slots))
        assert all(len(values) >= 2 for values in spec.slots.values()), name
        assert bool(spec.lead_ins) == bool(spec.snippets), name


_POND = """\
garden_ponds:
  asks: ["How deep should a pond for {fish} be?"]
  answers: ["A pond for {fish} needs at least a metre of water."]
  slots: {fish: [koi, goldfish]}
"""


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (
            _POND.replace("needs at least", "like {fishes} needs"),
            r"topic 'garden_ponds' field 'answers': template .* uses slot \{fishes\}, which 'slots' "
            r"does not define \(defined: fish\)",
        ),
        (_POND + "  hints: [nets]\n", r"topic 'garden_ponds' has unknown field 'hints'"),
        (_POND.replace("  asks:", "  details:"), r"topic 'garden_ponds' needs a non-empty 'asks'"),
        (_POND.replace("  answers: [", "  answers: []\n  details: ["), r"non-empty 'answers'"),
        (_POND.replace("[koi, goldfish]", "[koi, 7]"), r"slot 'fish' must hold .* got 7"),
        (_POND + _POND, r"duplicate key 'garden_ponds'"),
    ],
)
def test_a_broken_topics_file_names_the_topic_and_the_field(
    tmp_path: Path, broken: str, message: str
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(_POND, encoding="utf-8")
    assert _load_specs(good)["garden_ponds"].slots == {"fish": ("koi", "goldfish")}
    path = tmp_path / "topics.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as raised:
        _load_specs(path)
    assert str(path) in str(raised.value)


def test_topic_texts_carry_no_personal_data_or_injection_the_detectors_find() -> None:
    from streams.text.injection import InjectionDetector
    from streams.text.pii import PiiDetector

    maker = TopicTexts(2)
    texts = [maker.prompt(t) for t in ALL_TOPICS for _ in range(30)]
    texts += [maker.answer(t) for t in ALL_TOPICS for _ in range(10)]
    pii = PiiDetector()
    found = [(text, spans) for text in texts if (spans := pii.detect(text))]
    assert found == []
    verdicts = InjectionDetector(use_encoder=False).score_batch(texts)
    assert [t for t, v in zip(texts, verdicts, strict=True) if v.flagged] == []


def test_the_default_mix_covers_the_demo_services_with_3_to_6_topics_and_no_held_back_one() -> None:
    services = {s.name for s in default_scenario().services}
    assert set(DEFAULT_TOPIC_MIX.services) == services
    used: set[str] = set()
    for service, shares in DEFAULT_TOPIC_MIX.weights.items():
        assert 3 <= len(shares) <= 6, service
        assert math.isclose(sum(shares.values()), 1.0)
        used |= set(shares)
    assert used == set(TOPICS) and not used & set(HELD_BACK_TOPICS)
    assert len(TOPICS) >= 12 and len(HELD_BACK_TOPICS) >= 3


def test_draws_follow_the_service_shares_and_an_unknown_service_the_pooled_mix() -> None:
    maker = TopicTexts(8)
    n = 4_000
    drawn = Counter(maker.topic("support-bot") for _ in range(n))
    for topic, share in DEFAULT_TOPIC_MIX.shares("support-bot").items():
        assert drawn[topic] / n == pytest.approx(share, abs=0.03), topic
    pooled = DEFAULT_TOPIC_MIX.shares("no-such-service")
    assert pooled == DEFAULT_TOPIC_MIX.shares(None)
    assert math.isclose(sum(pooled.values()), 1.0) and set(pooled) == set(TOPICS)
    # legal_contracts is in two of the four services
    assert pooled["legal_contracts"] == pytest.approx((0.2 + 0.3) / 4)


def test_weights_are_stored_as_shares_and_the_mix_is_immutable_and_hashable() -> None:
    mix = TopicMix({"a": {"cooking_recipes": 3, "tax_filing": 1, "hr_leave": 0}})
    assert mix.weights == {"a": {"cooking_recipes": 0.75, "tax_filing": 0.25}}
    mix.weights["a"]["hr_leave"] = 1.0  # a copy
    assert "hr_leave" not in mix.shares("a")
    assert mix == TopicMix({"a": {"cooking_recipes": 0.75, "tax_filing": 0.25}})
    assert hash(TextMix(topics=mix)) == hash(TextMix(topics=mix))


def test_shifted_sends_the_share_to_the_topic_and_scales_the_rest() -> None:
    base = DEFAULT_TOPIC_MIX
    before = base.shares("support-bot")
    shifted = base.shifted("support-bot", "crypto_wallets", 0.3)
    after = shifted.shares("support-bot")
    assert after["crypto_wallets"] == pytest.approx(0.3)
    for topic, share in before.items():
        assert after[topic] == pytest.approx(0.7 * share)
    assert math.isclose(sum(after.values()), 1.0)
    for service in ("search-rag", "code-agent", "summarizer"):
        assert shifted.shares(service) == base.shares(service)
    # A topic already in the mix gets exactly the share; the others keep their proportions.
    more = base.shifted("support-bot", "billing_refunds", 0.6)
    rest = {t: s for t, s in before.items() if t != "billing_refunds"}
    assert more.shares("support-bot")["billing_refunds"] == pytest.approx(0.6)
    for topic, share in rest.items():
        assert more.shares("support-bot")[topic] == pytest.approx(0.4 * share / sum(rest.values()))
    assert base.shifted("support-bot", "billing_refunds", 0.0).shares("support-bot").keys() == set(
        rest
    )
    assert base.shifted("code-agent", "tax_filing", 1.0).shares("code-agent") == {"tax_filing": 1.0}
    assert base.shifted("code-agent", "tax_filing", 0.0) == base
    assert base.shares("support-bot") == before  # the original is unchanged


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: DEFAULT_TOPIC_MIX.shifted("support-bot", "astrology", 0.2),
            "unknown topic 'astrology'",
        ),
        (
            lambda: DEFAULT_TOPIC_MIX.shifted("chat-bot", "tax_filing", 0.2),
            "unknown service 'chat-bot'",
        ),
        (
            lambda: DEFAULT_TOPIC_MIX.shifted("support-bot", "tax_filing", 1.5),
            r"share must be a number in \[0, 1\], got 1.5",
        ),
        (lambda: DEFAULT_TOPIC_MIX.shifted("support-bot", "tax_filing", math.nan), "got nan"),
        (
            lambda: TopicMix({"a": {"tax_filing": 1.0}}).shifted("a", "tax_filing", 0.5),
            "only topic 'tax_filing': a share of 0.5 leaves nothing",
        ),
        (lambda: TopicMix({"a": {"astrology": 1.0}}), "unknown topic 'astrology'"),
        (lambda: TopicMix({"a": {"tax_filing": -1.0}}), "finite and >= 0, got -1.0"),
        (lambda: TopicMix({"a": {"tax_filing": math.inf}}), "finite and >= 0, got inf"),
        (lambda: TopicMix({"a": {"tax_filing": 0.0}}), "service 'a' needs a topic with weight > 0"),
        (lambda: TopicMix({"a": {}}), "service 'a' needs a topic"),
        (lambda: TopicMix({}), "at least one service, got {}"),
        (lambda: TopicTexts(1).prompt("astrology"), "unknown topic 'astrology'"),
        (lambda: TextMix(topics={"a": {"tax_filing": 1.0}}), "must be a TopicMix or None"),  # type: ignore[arg-type]
    ],
)
def test_bad_values_are_named(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def _simulate(mix: TextMix, events: int = 3_000) -> tuple[list[LlmCallEvent], SimulationReport]:
    sent: list[LlmCallEvent] = []

    def emit(event: LlmCallEvent) -> bool:
        sent.append(event)
        return True

    start = Clock.read().now
    report = run_simulation(emit, events=events, rate=0, seed=6, now=lambda: start, texts=mix)
    return sent, report


def test_the_simulator_prompts_on_each_services_topics() -> None:
    sent, report = _simulate(TextMix())
    llm = [e for e in sent if e.span_kind == SpanKind.LLM and e.input_text]
    assert sum(report.topics.values()) == len(llm)
    for (service, topic), _n in report.topics.items():
        assert topic in DEFAULT_TOPIC_MIX.shares(service), (service, topic)
    assert {s for s, _t in report.topics} == set(DEFAULT_TOPIC_MIX.services)
    assert not any(e.input_text.startswith("Hi, my last invoice") for e in llm if e.input_text)


def test_a_shifted_mix_moves_that_share_of_the_services_prompts() -> None:
    shifted = DEFAULT_TOPIC_MIX.shifted("support-bot", "home_gardening", 0.5)
    _sent, report = _simulate(TextMix(topics=shifted))
    support = {t: n for (s, t), n in report.topics.items() if s == "support-bot"}
    assert support["home_gardening"] / sum(support.values()) == pytest.approx(0.5, abs=0.06)
    assert not any(t == "home_gardening" for (s, t) in report.topics if s != "support-bot")


def test_answers_are_on_the_prompts_topic_and_weak_ones_stay_the_evasive_ones() -> None:
    maker = TextMaker(3)
    truth = TextTruth()
    maker.prompt(truth, "code-agent")
    assert truth.topic in DEFAULT_TOPIC_MIX.shares("code-agent")
    answers = [maker.completion(False, truth.topic) for _ in range(20)]
    assert not any(WEAK_ANSWER_MARK in a for a in answers) and len(set(answers)) > 5
    assert all(maker.completion(True, truth.topic) in _WEAK_ANSWERS for _ in range(20))
    # Weak or not, the texts that follow are the same.
    one, two = TextMaker(3), TextMaker(3)
    one.completion(True, "hr_leave")
    two.completion(False, "hr_leave")
    assert one.prompt(TextTruth(), "search-rag") == two.prompt(TextTruth(), "search-rag")


def test_without_a_topic_mix_prompts_keep_the_fixed_openings() -> None:
    maker = TextMaker(3, TextMix(topics=None))
    truth = TextTruth()
    assert maker.prompt(truth, "support-bot").startswith("Hi, ") and truth.topic is None
    assert maker.query("support-bot").startswith("search the knowledge base: ")


@pytest.fixture(scope="module")
def embedded() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """PER_TOPIC prompts per topic (held-back ones too), embedded by the real bundled MiniLM."""
    from streams.text.embeddings import load_encoder

    maker = TopicTexts(3)
    texts = [maker.prompt(topic) for topic in ALL_TOPICS for _ in range(PER_TOPIC)]
    labels = np.repeat(np.arange(len(ALL_TOPICS)), PER_TOPIC)
    return load_encoder().encode(texts), labels


def test_topics_are_apart_for_a_nearest_centroid_classifier(
    embedded: tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]],
) -> None:
    vectors, labels = embedded
    train = np.arange(len(labels)) % 2 == 0
    centroids = np.stack(
        [vectors[train & (labels == k)].mean(axis=0) for k in range(len(ALL_TOPICS))]
    )
    predicted = (vectors[~train] @ centroids.T).argmax(axis=1)
    accuracy = float((predicted == labels[~train]).mean())
    assert accuracy >= MIN_ACCURACY, accuracy


def test_k_means_recovers_the_topics(
    embedded: tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]],
) -> None:
    vectors, labels = embedded
    clusters = KMeans(n_clusters=len(ALL_TOPICS), n_init=10, random_state=0).fit_predict(vectors)
    ari = adjusted_rand_score(labels, clusters)
    assert ari >= MIN_ARI, ari
