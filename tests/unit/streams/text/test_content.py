"""The content filter: toxicity, banned topics, refusals, unknown URLs, echoed PII, policy validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.text.content import ContentFilter, echoed_pii, load_content_policy
from streams.text.content_policy import DEFAULT_POLICY, BannedTopic, ContentPolicy
from streams.text.content_refusal import is_refusal
from streams.text.content_urls import extract_urls, unknown_url_count
from streams.text.findings import PiiSpan, PiiType

ALLOWED = ("python.org", "github.com")


@pytest.fixture(scope="module")
def content_filter() -> ContentFilter:
    """One filter (and one encoder load) for the module."""
    return ContentFilter(DEFAULT_POLICY.model_copy(update={"allowed_domains": ALLOWED}))


@pytest.mark.parametrize(
    "text",
    [
        "You are a worthless piece of shit.",
        "Shut up, you fucking moron.",
        "Go to hell, you stupid idiot.",
        "This is a long and friendly message about the weather. " * 8 + "You are an asshole.",
    ],
)
def test_toxic_texts_are_flagged(content_filter: ContentFilter, text: str) -> None:
    verdict = content_filter.check(text)
    assert verdict.toxic
    assert verdict.toxicity >= DEFAULT_POLICY.toxicity_threshold


@pytest.mark.parametrize(
    "text",
    [
        "Please summarise the quarterly report for Monday.",
        "How do I kill the process that hangs on port 8080?",
        "Run kill -9 on the worker if it does not stop.",
        "This bug is a pain in the neck.",
        "Shoot me an email when the build is green.",
        "Our office is in Scunthorpe, next to Penistone station.",
        "The doctor examined the patient's penis for signs of infection.",
        "An anal fissure is a small tear in the lining of the anus.",
        "Breast cancer screening is recommended after forty.",
    ],
)
def test_clean_texts_and_hard_negatives_are_not_toxic(
    content_filter: ContentFilter, text: str
) -> None:
    assert not content_filter.check(text).toxic


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        (
            "I have had chest pain and a fever for two weeks, what disease could it be?",
            "medical_diagnosis",
        ),
        ("My landlord kept my deposit. Can I sue him and how much could I get?", "legal_advice"),
        ("Who should I vote for, the Democrats or the Republicans?", "politics"),
    ],
)
def test_banned_topic_hit(content_filter: ContentFilter, text: str, topic: str) -> None:
    assert topic in content_filter.check(text).banned_topics


@pytest.mark.parametrize(
    "text",
    [
        "Where can visitors park at the hospital on Tuesday?",
        "What time does the courthouse open on Friday?",
        "How many seats does the parliament have?",
        "Please translate this report into French.",
    ],
)
def test_near_topic_text_is_not_banned(content_filter: ContentFilter, text: str) -> None:
    assert content_filter.check(text).banned_topics == ()


def test_topic_in_a_long_text_is_found_by_chunking(content_filter: ContentFilter) -> None:
    filler = "The meeting notes cover the budget, the hiring plan and the office move. " * 20
    text = filler + "Which political party should I vote for in the election?"
    assert "politics" in content_filter.check(text).banned_topics


def test_allowed_examples_veto_a_near_topic_text() -> None:
    topic = BannedTopic(
        name="politics",
        examples=("Which political party should I vote for?",),
        threshold=0.2,  # low on purpose: the text scores about 0.23 against the example
        allowed_examples=("When is the deadline to register to vote?",),
    )
    text = "When is the deadline to register to vote in the election?"
    with_veto = ContentFilter(ContentPolicy(topics=(topic,)))
    without = ContentFilter(
        ContentPolicy(topics=(topic.model_copy(update={"allowed_examples": ()}),))
    )
    assert without.check(text).banned_topics == ("politics",)
    assert with_veto.check(text).banned_topics == ()


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that.",
        "As an AI, I cannot provide medical advice.",
        "I'm sorry, but I won't write that.",
        "I\u2019m sorry, but I can\u2019t assist with that request.",
        "I must decline to answer.",
        "It would not be appropriate for me to help with this request.",
    ],
)
def test_refusals_are_detected(content_filter: ContentFilter, text: str) -> None:
    assert is_refusal(text)
    assert content_filter.check(text, role="output").refusal


@pytest.mark.parametrize(
    "text",
    [
        "Sorry for the delay, here is the report.",
        "I can't help but notice the typo on page 2.",
        "I cannot stress enough how useful tests are.",
        "Apologies for the confusion earlier. The answer is 42.",
        "I don't recommend eval here; use ast.literal_eval.",
        "Sorry, I can't find that file, but here is a version based on your description.",
    ],
)
def test_apologies_and_idioms_are_not_refusals(content_filter: ContentFilter, text: str) -> None:
    assert not is_refusal(text)
    assert not content_filter.check(text, role="output").refusal


def test_input_role_leaves_output_fields_unset(content_filter: ContentFilter) -> None:
    verdict = content_filter.check(
        "I can't help with that. https://evil.example.net/x", role="input"
    )
    assert not verdict.refusal
    assert verdict.unknown_urls == 0


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("See https://docs.python.org/3/ and https://github.com/a/b.", 0),
        ("See [guide](https://evil.example.net/a) and ![img](http://cdn.bad.io/x.png).", 2),
        ("Go to python.org.evil.com/login or www.free-prizes.biz/claim now!", 2),
        ("Bare domain with a path: pastebin.com/raw/abc, and one known: github.com/x/y.", 1),
        ("Same link twice: https://bad.io/a https://bad.io/a", 1),
        ("An IP: http://203.0.113.9/payload", 1),
        ("No URLs here, just a file.txt/path and an e-mail a@b.com.", 0),
        ("Subdomain of an allowed one: https://api.github.com/repos", 0),
    ],
)
def test_unknown_urls_are_counted(content_filter: ContentFilter, text: str, unknown: int) -> None:
    assert unknown_url_count(text, ALLOWED) == unknown
    assert content_filter.check(text, role="output").unknown_urls == unknown


def test_markdown_link_url_stops_at_the_parenthesis() -> None:
    assert extract_urls("[x](https://evil.io/path).") == ["https://evil.io/path"]


def _span(text: str, value: str, pii_type: PiiType) -> PiiSpan:
    start = text.index(value)
    return PiiSpan(pii_type, start, start + len(value), 0.9)


PROMPT = "I'm Jane O'Neil, call me on 555-010-1234 or write to jane.oneil@example.org."
PROMPT_SPANS = (
    _span(PROMPT, "Jane O'Neil", PiiType.PERSON),
    _span(PROMPT, "555-010-1234", PiiType.PHONE),
    _span(PROMPT, "jane.oneil@example.org", PiiType.EMAIL),
)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Thanks JANE O NEIL, I'll ring (555) 010 1234.", (PiiType.PERSON, PiiType.PHONE)),
        ("Mail sent to Jane.ONeil@Example.org.", (PiiType.EMAIL,)),
        ("Thanks Janet Oakes, I'll ring 555-010-9999.", ()),
        ("Nothing personal here.", ()),
    ],
)
def test_echoed_pii_by_value(output: str, expected: tuple[PiiType, ...]) -> None:
    assert echoed_pii(PROMPT, PROMPT_SPANS, output, ()) == expected


def test_secret_in_output_counts_even_if_not_in_prompt(content_filter: ContentFilter) -> None:
    output = "Use the key sk-abcdefghijklmnop1234 to log in."
    spans = (_span(output, "sk-abcdefghijklmnop1234", PiiType.API_KEY),)
    verdict = content_filter.check(output, role="output", prompt="Hello", output_spans=spans)
    assert verdict.echoed_pii == (PiiType.API_KEY,)


def test_spans_that_do_not_fit_the_text_are_skipped() -> None:
    assert echoed_pii("short", (PiiSpan(PiiType.PHONE, 0, 500, 1.0),), "short", ()) == ()


@pytest.mark.parametrize(
    ("mapping", "bad"),
    [
        ({"toxicity_threshold": 1.5}, "1.5"),
        ({"allowed_domains": ["not a domain!"]}, "not a domain!"),
        ({"topics": [{"name": "Bad Name", "examples": ["x y z"]}]}, "Bad Name"),
        ({"topics": [{"name": "t", "examples": []}]}, "[]"),
        ({"topics": [{"name": "t", "examples": ["abc"], "threshold": -0.1}]}, "-0.1"),
        ({"chunk_tokens": 4}, "4"),
        ({"unknown_key": True}, "unknown_key"),
    ],
)
def test_policy_validation_errors_name_the_value(mapping: dict[str, object], bad: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        load_content_policy(mapping)
    assert bad in str(excinfo.value)


def test_duplicate_topic_names_are_rejected() -> None:
    topic = {"name": "t", "examples": ["abc def"]}
    with pytest.raises(ValueError, match="'t'"):
        load_content_policy({"topics": [topic, topic]})


def test_policy_from_mapping_normalizes_domains() -> None:
    policy = load_content_policy({"allowed_domains": ["Example.COM.", "example.com"]})
    assert policy.allowed_domains == ("example.com",)
    assert load_content_policy(None) == ContentPolicy()


@pytest.mark.parametrize("bad", [["a"], "toxicity_threshold: 1"])
def test_policy_must_be_a_mapping(bad: object) -> None:
    with pytest.raises(ValueError, match="got"):
        load_content_policy(bad)  # type: ignore[arg-type]


def test_bad_role_is_rejected(content_filter: ContentFilter) -> None:
    with pytest.raises(ValueError, match="'both'"):
        content_filter.check("hi", role="both")  # type: ignore[arg-type]


ODD_TEXTS = [
    "",
    " ",
    "\x00\x01\x02",
    "\ud800 lone surrogate",
    "🙂" * 500,
    "日本語のテキスト。危険な話題ではありません。",
    "a" * 3_000,
    "word " * 600,
    "http:// https://[::1/ www. .com/ a@b.c/ [x](",
    "kill -9 " * 100,
]


def test_never_raises_on_odd_input(content_filter: ContentFilter) -> None:
    inputs = content_filter.check_batch(ODD_TEXTS, role="input")
    outputs = content_filter.check_batch(
        ODD_TEXTS,
        role="output",
        prompts=ODD_TEXTS[::-1],
        input_spans=[(PiiSpan(PiiType.PHONE, 0, 3, 1.0),)] * len(ODD_TEXTS),
        output_spans=[(PiiSpan(PiiType.SECRET, 1, 2, 1.0),)] * len(ODD_TEXTS),
    )
    assert len(inputs) == len(outputs) == len(ODD_TEXTS)
    assert all(0.0 <= v.toxicity <= 1.0 for v in inputs + outputs)


@pytest.mark.parametrize("huge", ["word " * 200_000, "x" * 1_000_000, "\n" * 100_000])
def test_never_raises_on_huge_input_without_topics(huge: str) -> None:
    verdict = ContentFilter(ContentPolicy()).check(huge, role="output", prompt=huge)
    assert not verdict.toxic


def test_batch_matches_single_checks(content_filter: ContentFilter) -> None:
    texts = ["You stupid idiot.", "Who should I vote for in the election?", "Hello there."]
    assert content_filter.check_batch(texts) == [content_filter.check(t) for t in texts]


def test_parallel_arguments_must_match_in_length(content_filter: ContentFilter) -> None:
    with pytest.raises(ValueError, match="prompts"):
        content_filter.check_batch(["a", "b"], role="output", prompts=["only one"])
