"""Reference metrics: known values (identical, disjoint, hand-computed BLEU and ROUGE-L, sacrebleu's
corpus BLEU), the exact-match normalization, model metrics ranking a paraphrase above an unrelated
sentence, empty texts, result order and implementations, and errors that name the bad value."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import sacrebleu

from streams.evaluation import metrics
from streams.evaluation.metrics import (
    METRIC_NAMES,
    MetricScore,
    check_metric_names,
    normalize_exact,
    score_metrics,
)

LEXICAL = ("exact", "bleu", "chrf", "rouge_l")
MODEL = ("bertscore", "cosine")
REFERENCE = "The invoice for March was paid on the fifth by bank transfer."
PARAPHRASE = "The March bill was settled by a bank transfer on the 5th."
UNRELATED = "Penguins huddle together on the ice to keep warm through the polar winter."


def _values(names: tuple[str, ...], output: str, reference: str) -> dict[str, float]:
    (row,) = score_metrics(names, [output], [reference])
    return {s.name: s.value for s in row}


@pytest.fixture(scope="module")
def loaded() -> Iterator[None]:
    """Both models loaded once for the module, with the network off: a download attempt fails."""

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"metrics tried to use the network: {args!r}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", no_network)
        patch.setattr(socket, "create_connection", no_network)
        patch.setattr(socket, "getaddrinfo", no_network)
        score_metrics(MODEL, ["warm up"], ["warm-up"])
    yield


def test_identical_texts_score_one_on_every_metric(loaded: None) -> None:
    for text in (REFERENCE, "Yes.", "ok"):
        values = _values(METRIC_NAMES, text, text)
        assert values == pytest.approx(dict.fromkeys(METRIC_NAMES, 1.0), abs=1e-5), text


def test_disjoint_texts_score_zero_on_lexical_metrics() -> None:
    # No shared word, and no shared character (so chrF's character n-grams find nothing either).
    values = _values(LEXICAL, "12345 67890", "abcde fghij")
    assert values == dict.fromkeys(LEXICAL, 0.0)
    words = _values(("bleu", "rouge_l"), "penguins huddle on ice", "the invoice was paid")
    assert words == {"bleu": 0.0, "rouge_l": 0.0}


def test_bleu_matches_a_hand_computation_and_sacrebleu_corpus_bleu() -> None:
    output = "the quick brown fox jumps over the dog"
    reference = "the quick brown fox jumps over the lazy dog"
    # n-gram precisions 8/8, 6/7, 5/6, 4/5; brevity penalty exp(1 - 9/8).
    by_hand = math.exp(1 - 9 / 8) * (1 * 6 / 7 * 5 / 6 * 4 / 5) ** 0.25
    corpus = sacrebleu.corpus_bleu([output], [[reference]]).score / 100
    value = _values(("bleu",), output, reference)["bleu"]
    assert value == pytest.approx(by_hand, abs=1e-9)
    assert value == pytest.approx(corpus, abs=1e-9)
    assert 0.76 < value < 0.77


def test_short_outputs_use_effective_order() -> None:
    # Two words have no 3- or 4-grams: with effective order BLEU uses the orders that exist
    # (without it, the missing orders would make these 0).
    assert _values(("bleu",), "paid today", "paid today")["bleu"] == pytest.approx(1.0)
    # Unigrams 1/2; no bigram matches, so exponential smoothing makes it 1/(2 * 1): sqrt(1/2 * 1/2).
    assert _values(("bleu",), "paid today", "paid yesterday")["bleu"] == pytest.approx(0.5)


def test_rouge_l_matches_a_hand_computation() -> None:
    # LCS 8 of 8 output and 9 reference tokens: P 1, R 8/9, F 16/17. Stemming: "jumped" ~ "jumps".
    output = "the quick brown fox jumped over the dog"
    reference = "the quick brown fox jumps over the lazy dog"
    assert _values(("rouge_l",), output, reference)["rouge_l"] == pytest.approx(16 / 17)


def test_chrf_is_between_its_extremes_and_is_rescaled() -> None:
    output, reference = "the invoice was paid", "the invoices were paid"
    expected = sacrebleu.sentence_chrf(output, [reference]).score / 100
    value = _values(("chrf",), output, reference)["chrf"]
    assert value == pytest.approx(expected)
    assert 0.4 < value < 0.9


@pytest.mark.parametrize(
    ("output", "reference"),
    [
        ("Paris", "paris"),
        ("  The  answer\tis\n42 ", "the answer is 42"),
        ("The answer is 42.", "the answer is 42"),
        ("Done!!! ", "done"),
        ("\uff30\uff21\uff32\uff29\uff33", "Paris"),  # full-width letters: NFKC
        ("Straße", "STRASSE"),  # casefold, not lower
        ("", "   "),  # both normalize to ""
    ],
)
def test_exact_match_after_normalization(output: str, reference: str) -> None:
    assert _values(("exact",), output, reference) == {"exact": 1.0}


@pytest.mark.parametrize(
    ("output", "reference"),
    [
        ("42", "43"),
        ("Paris, France", "Paris France"),  # inner punctuation is kept
        ("¿Paris", "Paris"),  # so is leading punctuation
        ("the answer is 42", "answer is 42"),
        ("", "Paris"),
    ],
)
def test_exact_mismatch(output: str, reference: str) -> None:
    assert _values(("exact",), output, reference) == {"exact": 0.0}


def test_normalize_exact_form() -> None:
    assert normalize_exact("  The  ANSWER is \uff14\uff12 !") == "the answer is 42"
    assert normalize_exact("...") == ""


def test_model_metrics_rank_a_paraphrase_above_an_unrelated_sentence(loaded: None) -> None:
    rows = score_metrics(MODEL, [PARAPHRASE, UNRELATED], [REFERENCE, REFERENCE])
    paraphrase, unrelated = ({s.name: s.value for s in row} for row in rows)
    for name in MODEL:
        assert paraphrase[name] > unrelated[name] + 0.3, (name, paraphrase, unrelated)
        assert 0.0 <= unrelated[name] < paraphrase[name] < 1.0
    lexical = _values(("bleu",), PARAPHRASE, REFERENCE)
    assert lexical["bleu"] < paraphrase["bertscore"]  # BLEU misses most of the paraphrase


def test_empty_texts_score_zero_except_exact(loaded: None) -> None:
    outputs = ["", "   ", REFERENCE, ""]
    references = [REFERENCE, REFERENCE, "", ""]
    rows = score_metrics(METRIC_NAMES, outputs, references)
    for i, row in enumerate(rows):
        values = {s.name: s.value for s in row}
        expected_exact = 1.0 if i == 3 else 0.0
        assert values == {**dict.fromkeys(METRIC_NAMES, 0.0), "exact": expected_exact}, i


def test_results_follow_pair_order_and_names_order(loaded: None) -> None:
    names = ("cosine", "exact", "bleu")
    rows = score_metrics(
        names, [REFERENCE, UNRELATED, REFERENCE], [REFERENCE, REFERENCE, UNRELATED]
    )
    assert [[s.name for s in row] for row in rows] == [list(names)] * 3
    assert [row[1].value for row in rows] == [1.0, 0.0, 0.0]
    assert rows[0][0].value == pytest.approx(1.0, abs=1e-5)
    assert rows[1][0].value == pytest.approx(rows[2][0].value, abs=1e-5)  # cosine is symmetric
    assert rows[1][0].value < 0.5
    assert score_metrics(names, [], []) == []
    assert score_metrics((), ["a"], ["b"]) == [[]]


def test_each_score_names_its_implementation(loaded: None) -> None:
    (row,) = score_metrics(METRIC_NAMES, [PARAPHRASE], [REFERENCE])
    implementations = {s.name: s.implementation for s in row}
    assert implementations["bleu"] == f"sacrebleu-{sacrebleu.__version__}"
    assert implementations["chrf"] == implementations["bleu"]
    assert implementations["rouge_l"].startswith("rouge-score-")
    assert implementations["bertscore"].startswith("bert-score-")
    assert implementations["bertscore"].endswith("/minilm-l6")
    assert implementations["cosine"] == "minilm-l6-cosine"
    assert implementations["exact"] == metrics.EXACT_IMPLEMENTATION
    assert all(isinstance(s, MetricScore) and 0.0 <= s.value <= 1.0 for s in row)


def test_check_metric_names_keeps_order() -> None:
    assert check_metric_names(["rouge_l", "exact"]) == ("rouge_l", "exact")
    assert check_metric_names(iter(METRIC_NAMES)) == METRIC_NAMES


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["bleu", "meteor"], r"unknown metric 'meteor'; valid metrics: exact, bleu, chrf, rouge_l"),
        (["BLEU"], r"unknown metric 'BLEU'"),
        ("bleu", r"not one string, got 'bleu'"),
        (["chrf", "chrf"], r"metric 'chrf' is named more than once"),
    ],
)
def test_bad_metric_names_are_named(names: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_metric_names(names)
    with pytest.raises(ValueError, match=message):
        score_metrics(names, ["a"], ["a"])


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match=r"got 2 outputs and 1 references"):
        score_metrics(("exact",), ["a", "b"], ["a"])
    with pytest.raises(ValueError, match=r"outputs must be a sequence of texts.*got 'answer'"):
        score_metrics(("exact",), "answer", ["a"] * 6)
    with pytest.raises(ValueError, match=r"references\[1\] must be a str, got NoneType: None"):
        score_metrics(("exact",), ["a", "b"], ["a", None])  # type: ignore[list-item]
