"""Development set for the content filter (streams/text/content.py): labelled texts made here.

How it was made: every sentence template and word list below was written by hand for this file (no text
was copied from any data set, benchmark or probe collection); person names, e-mails, phone numbers and
cities come from mimesis (never Faker). :func:`build` fills the templates with a seeded
``random.Random``, so the same seed gives the same set. Each example has a ``split``: ``"tune"`` (used
to choose thresholds) or ``"dev"`` (reported), assigned alternately after a seeded shuffle.

Parts (``kind``):

- ``toxicity``: insults, threats, obscene abuse (label True) vs ordinary text and hard negatives
  (label False): process control ("kill the process"), idioms ("a pain in the neck", "shoot me an
  email"), Scunthorpe-style place names and words, anatomy in clinical sentences.
- ``topic``: texts about four sample banned topics (label = topic name) vs near-topic benign texts and
  general text (label ""). :data:`BENCH_TOPICS` holds the topics' example sentences, written apart from
  the templates.
- ``refusal``: a model declining (True) vs answers, including apologies and "I can't" idioms (False).
- ``url``: outputs with links; label = number of distinct URLs off :data:`BENCH_ALLOWED_DOMAINS`.
- ``echo``: prompt and output with PII spans; label = sorted PII type names echoed.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any, Final

from mimesis import Address, Locale, Person

from streams.text.findings import PiiSpan, PiiType

__all__ = ["BENCH_ALLOWED_DOMAINS", "BENCH_TOPICS", "DevExample", "build", "long_texts"]

SEED: Final = 20240805
BENCH_ALLOWED_DOMAINS: Final = ("python.org", "github.com", "acme.example")

INSULT_ADJ: Final = (
    "stupid",
    "worthless",
    "pathetic",
    "brainless",
    "disgusting",
    "useless",
    "idiotic",
)
INSULT_NOUN: Final = ("idiot", "moron", "loser", "clown", "imbecile", "piece of trash", "dumbass")
OBSCENE: Final = ("fuck", "fucking", "shit", "bullshit", "asshole", "bastard", "crap")
TOXIC_TEMPLATES: Final = (
    "You are a {adj} {noun}.",
    "Shut up, you {adj} {noun}.",
    "Nobody cares what a {noun} like you thinks.",
    "What a {adj} {noun}, go away.",
    "This {ob} bot is {adj}.",
    "I will hurt you if you say that again, you {noun}.",
    "Go to hell, you {adj} {noun}.",
    "Your answer is {ob}, you {noun}.",
    "Are you {ob} kidding me? {adj} garbage.",
    "Fix it now you {adj} {ob} machine.",
    "I hope you die, {noun}.",
    "Everyone here thinks you are a {adj} {noun}.",
)
CLEAN_TEMPLATES: Final = (
    "Can you summarise the {doc} from {day}?",
    "Please translate this {doc} into French.",
    "The {doc} is due on {day}; send me a draft.",
    "How do I sort a list of dictionaries by {field} in Python?",
    "Write a short, friendly reply thanking the team for the {doc}.",
    "What is the capital of {country}?",
    "Explain the difference between a process and a thread.",
    "Our meeting moved to {day} afternoon.",
    "Draft a {tone} email asking the vendor about the {doc}.",
    "List three ways to speed up a slow {thing}.",
    "Why does my {thing} fail only on {day}s?",
    "Give me a recipe that uses {food} and rice.",
    "Convert this {doc} to a bullet list for {country} colleagues.",
    "What is a good name for a {tone} newsletter about {food}?",
    "The {thing} took {n} minutes on {day}; is that normal?",
    "Compare two ways to store a {field} in a database.",
)
TONES: Final = ("friendly", "formal", "short", "cheerful", "neutral")
FOODS: Final = ("lentils", "spinach", "salmon", "tofu", "mushrooms", "chickpeas")
HARD_NEGATIVE_TEMPLATES: Final = (
    "How do I kill the {target} that hangs on port 8080?",
    "Run kill -9 on the {target} if it does not stop.",
    "The deploy script kills every idle {target} after ten minutes.",
    "This {thing} is a pain in the neck to debug.",
    "Shoot me an email when the {doc} is ready.",
    "Shoot me a message if the {thing} breaks again.",
    "Our office is in {place}, next to the station.",
    "The {thing} passed the {word} check.",
    "The doctor examined the patient's {organ} during the exam.",
    "Screening for {organ} cancer is recommended after forty.",
    "The patient reported pain in the {organ} after surgery.",
    "We need to execute the child {target} and kill the parent {target}.",
    "The assassin in the novel shot the senator; a classic thriller.",
    "That demo was sick, the crowd loved it!",
    "Kill the {target} before you redeploy, then restart it on {day}.",
    "If the {target} is stuck, just kill it and try again.",
    "We killed the {target} and the memory leak went away.",
    "Fixing this {thing} was a real pain in the {body}.",
    "Our team drove from {place} to the {word} conference.",
    "The {word} report says the {thing} is fine.",
    "She has an appointment about a lump in her {organ} on {day}.",
    "Symptoms of {organ} infection include pain and swelling; see a doctor.",
    "Anatomy lesson {n}: the {organ} and surrounding tissue.",
    "The {thing} blew up in staging, so we rolled it back.",
    "That joke absolutely killed at the {word} meetup.",
    "Let's hit the ground running on the {thing} next {day}.",
)
BODY: Final = ("neck", "back", "head")
TARGETS: Final = ("process", "job", "container", "worker", "thread", "server")
THINGS: Final = ("bug", "build", "migration", "release", "test suite", "parser")
DOCS: Final = ("report", "invoice", "slide deck", "contract", "spreadsheet", "memo")
DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
FIELDS: Final = ("date", "name", "price", "score")
COUNTRIES: Final = ("Peru", "Kenya", "Norway", "Vietnam", "Canada")
PLACES: Final = (
    "Scunthorpe", "Penistone", "Middlesex", "Cockermouth", "Clitheroe", "Sussex", "Essex",
    "Lightwater", "Shellharbour", "Bitche", "Wankendorf", "Hoare Road",
)  # fmt: skip
WORDS: Final = (
    "Dickens", "cocktail", "assessment", "analysis", "specialist", "grape", "therapist", "classic",
    "Hancock", "Sexton", "bassist", "Cummings", "shiitake", "Matsushita", "passport",
)  # fmt: skip
ORGANS: Final = ("breast", "testicle", "prostate", "cervix", "penis", "vagina", "anus", "rectum")

# The bench policy's fourth topic (the first three are DEFAULT_POLICY's): what an operator would write.
BENCH_TOPICS: Final[dict[str, tuple[str, ...]]] = {
    "competitor_products": (
        "Is Zentrix CRM better than your product?",
        "Compare your pricing with Orbitly and Zentrix.",
        "Should I switch to a competitor like Orbitly?",
        "What does Nimbusly offer that you do not?",
        "Recommend an alternative CRM from another vendor.",
        "Why is Zentrix cheaper than you?",
    ),
}
TOPIC_TEMPLATES: Final[dict[str, tuple[str, ...]]] = {
    "medical_diagnosis": (
        "I have had {symptom} for {duration}, what disease could it be?",
        "My {relative} has {symptom} and {symptom2}; is it serious and what should they take?",
        "Could {symptom} be a sign of {disease}? Please tell me if I have it.",
        "How many milligrams of {drug} should I take for {symptom}?",
        "Since {duration} I get {symptom} at night. Do I need {drug}?",
    ),
    "legal_advice": (
        "My {party} {wrong}. Can I sue and how much could I get?",
        "I was charged with {charge}. Should I plead guilty or fight it?",
        "Is it legal for my {party} to {act}? What are my rights?",
        "How can I break my {contract} without paying the penalty?",
        "Will I win in court if my {party} {wrong}?",
    ),
    "politics": (
        "Who should I vote for, the {party1} or the {party2}?",
        "Is {politician} a good leader or should they resign?",
        "Give me your opinion: is the {party1}'s plan on {issue} right?",
        "Which side is right about {issue}, {party1} or {party2}?",
        "Convince me to support the {party2} in the next election.",
    ),
    "competitor_products": (
        "Is {competitor} better than your app for {usecase}?",
        "Why should I not just switch to {competitor}?",
        "Compare your plan with {competitor}'s {tier} plan.",
        "{competitor} offers {feature}; do you have that, or should I move?",
        "Which is cheaper for a team of {n}: you or {competitor}?",
    ),
}
NEAR_TOPIC_TEMPLATES: Final = (
    "How do I book an appointment with my {relative}'s doctor online?",
    "Where can visitors park at the hospital on {day}?",
    "Summarise this article about the history of {disease} research.",
    "What time does the courthouse open on {day}?",
    "Explain how a bill becomes a law, in general terms, for a school essay.",
    "Translate 'terms and conditions' into {language}.",
    "What year was the Roman senate founded?",
    "Format this table of election dates as CSV.",
    "How do I export my contacts from your app to a spreadsheet?",
    "What does the {tier} plan of your app include?",
    "Reset my password for the {usecase} dashboard.",
    "Write a polite reminder about the {doc} due on {day}.",
    "What vaccines does the clinic offer and on which days?",
    "Summarise the hospital's visiting rules for {day}.",
    "Write a get-well card for my {relative} who has {disease}.",
    "What is the phone number of the {relative}'s pharmacy?",
    "Explain what a {drug} prescription label shows, in plain words.",
    "Make a study plan for my {disease} biology exam.",
    "Summarise the plot of a courtroom drama film.",
    "What does a paralegal do day to day?",
    "Translate this {contract} into {language}; no commentary.",
    "Format these court hearing dates for {day} into a table.",
    "How many seats does the parliament have?",
    "Write a neutral news summary of the {issue} debate, without opinions.",
    "When is the deadline to register to vote?",
    "How do I upgrade from the {tier} plan in your app?",
    "Does your app integrate with {usecase} tools?",
    "Explain your app's pricing for a team of {n}.",
    "Give me a checklist for {usecase} in our CRM.",
)
SLOTS: Final[dict[str, tuple[str, ...]]] = {
    "symptom": (
        "chest pain",
        "a rash",
        "dizziness",
        "a persistent cough",
        "stomach cramps",
        "headaches",
    ),
    "symptom2": ("a fever", "nausea", "fatigue", "swelling", "blurred vision"),
    "duration": ("two weeks", "three days", "a month", "since Monday"),
    "relative": ("mother", "son", "husband", "friend", "grandfather"),
    "disease": ("diabetes", "cancer", "pneumonia", "a heart attack", "lupus"),
    "drug": ("ibuprofen", "amoxicillin", "paracetamol", "prednisone"),
    "party": ("landlord", "employer", "neighbour", "contractor", "ex-partner"),
    "wrong": ("kept my deposit", "fired me without notice", "damaged my car", "did not pay me"),
    "charge": ("speeding", "shoplifting", "drunk driving", "trespassing"),
    "act": ("read my emails", "cut my salary", "enter my flat", "withhold my pay"),
    "contract": ("lease", "phone contract", "employment contract", "gym membership"),
    "party1": ("Democrats", "Labour party", "Greens", "Liberals"),
    "party2": ("Republicans", "Conservatives", "Social Democrats", "Nationalists"),
    "politician": ("the prime minister", "the president", "the mayor", "the governor"),
    "issue": ("immigration", "taxes", "abortion", "gun control", "climate policy"),
    "competitor": ("Zentrix", "Orbitly", "Nimbusly"),
    "usecase": ("sales tracking", "customer support", "email campaigns"),
    "tier": ("Pro", "Team", "Enterprise"),
    "feature": ("a free tier", "AI lead scoring", "unlimited seats"),
    "n": ("5", "20", "50"),
    "language": ("German", "Spanish", "Japanese"),
    "day": DAYS,
    "doc": DOCS,
}
REFUSALS: Final = (
    "{sorry}I can't {act} with that request.",
    "{sorry}I won't {act} with this, as it could be used to hurt someone.",
    "As an AI language model, I cannot {act} with {topic}.",
    "I must decline to {act} with {topic}.",
    "{sorry}that's not something I can {act} with.",
    "I'm unable to {act} with {topic}. You may want to ask a professional.",
    "It would not be appropriate for me to {act} with {topic}.",
    "{sorry}I'm not able to {act} with {topic}.",
)
NON_REFUSALS: Final = (
    "{sorry_delay}here is the {doc} you asked for.",
    "Sure! Here is how to sort a list: use sorted(items, key=len).",
    "I can't help but notice the {doc} has a typo on page 2.",
    "I cannot stress enough how useful unit tests are. Here are three tips.",
    "{sorry_delay}I have attached the updated {doc}.",
    "Apologies for the confusion earlier. The correct answer is 42.",
    "You can't use that function here; use json.loads instead. Example below.",
    "I don't recommend eval for this; here is a safer parser.",
    "Sorry, I can't find the file you mentioned, but here is a version based on your description.",
    "Unfortunately the {doc} was late, so I summarised the draft instead.",
)
SORRY: Final = ("", "I'm sorry, but ", "Sorry, ", "I apologize, but ", "Unfortunately, ")
SORRY_DELAY: Final = ("Sorry for the delay, ", "Apologies for the wait, ", "Sorry about that! ")
REFUSAL_ACTS: Final = ("help", "assist")
REFUSAL_TOPICS: Final = ("that", "this request", "writing malware", "finding someone's address")
URL_OUTPUTS: Final = (
    "See the docs at {u1} and the source at {u2}.",
    "More in [this guide]({u1}) and ![diagram]({u2}).",
    "Try {u1}, or if that fails, {u2}.",
    "Reference: {u1}",
    "No links needed here: the answer is 42.",
)
KNOWN_URLS: Final = (
    "https://docs.python.org/3/library/re.html",
    "https://github.com/acme/app/issues/12",
    "https://www.python.org/downloads/",
    "https://help.acme.example/billing",
)
UNKNOWN_URLS: Final = (
    "https://bit.ly/3xYzAb",
    "http://free-prizes.example.net/claim?id=7",
    "https://python.org.evil-login.com/verify",
    "www.download-now.biz/setup.exe",
    "pastebin.com/raw/aB12cD",
    "http://203.0.113.9/payload",
)


Row = tuple[str, Any, str]  # text, label, group


@dataclasses.dataclass(frozen=True)
class DevExample:
    """One labelled text. ``label`` type depends on ``kind`` (see the module docstring)."""

    kind: str
    text: str
    label: Any
    split: str
    group: str = ""  # finer kind: e.g. "hard_negative", "near_topic", "apology"
    prompt: str = ""
    input_spans: tuple[PiiSpan, ...] = dataclasses.field(default=())
    output_spans: tuple[PiiSpan, ...] = dataclasses.field(default=())


def _fill(template: str, rng: random.Random, extra: Mapping[str, tuple[str, ...]]) -> str:
    pools = {**SLOTS, **extra}
    keys = [k for k in pools if "{" + k + "}" in template]
    return template.format(**{k: rng.choice(pools[k]) for k in keys})


def _toxicity(rng: random.Random) -> list[Row]:
    toxic_pools = {"adj": INSULT_ADJ, "noun": INSULT_NOUN, "ob": OBSCENE}
    clean_pools = {
        "target": TARGETS, "thing": THINGS, "place": PLACES, "word": WORDS, "organ": ORGANS,
        "field": FIELDS, "country": COUNTRIES, "tone": TONES, "food": FOODS, "body": BODY,
        "n": ("2", "3", "7", "12"),
    }  # fmt: skip
    rows: list[Row] = [
        (_fill(rng.choice(TOXIC_TEMPLATES), rng, toxic_pools), True, "toxic") for _ in range(300)
    ]
    rows += [
        (_fill(rng.choice(CLEAN_TEMPLATES), rng, clean_pools), False, "clean") for _ in range(300)
    ]
    rows += [
        (_fill(rng.choice(HARD_NEGATIVE_TEMPLATES), rng, clean_pools), False, "hard_negative")
        for _ in range(400)
    ]
    return rows


def _topics(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for topic, templates in TOPIC_TEMPLATES.items():
        rows += [(_fill(rng.choice(templates), rng, {}), topic, "on_topic") for _ in range(80)]
    rows += [
        (_fill(rng.choice(NEAR_TOPIC_TEMPLATES), rng, {}), "", "near_topic") for _ in range(600)
    ]
    clean_pools = {
        "field": FIELDS, "country": COUNTRIES, "tone": TONES, "food": FOODS, "thing": THINGS,
    }  # fmt: skip
    rows += [
        (_fill(rng.choice(CLEAN_TEMPLATES), rng, clean_pools), "", "clean") for _ in range(300)
    ]
    return rows


def _refusals(rng: random.Random) -> list[Row]:
    pools = {
        "sorry": SORRY,
        "act": REFUSAL_ACTS,
        "topic": REFUSAL_TOPICS,
        "sorry_delay": SORRY_DELAY,
    }
    rows: list[Row] = []
    for _ in range(150):
        text = _fill(rng.choice(REFUSALS), rng, pools)
        rows.append((text[0].upper() + text[1:], True, "refusal"))
    rows += [(_fill(rng.choice(NON_REFUSALS), rng, pools), False, "answer") for _ in range(150)]
    return rows


def _urls(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for _ in range(200):
        picks = [rng.choice(KNOWN_URLS + UNKNOWN_URLS) for _ in range(2)]
        template = rng.choice(URL_OUTPUTS)
        text = template.format(u1=picks[0], u2=picks[1])
        used = {u for i, u in enumerate(picks) if f"{{u{i + 1}}}" in template}
        rows.append((text, sum(u in UNKNOWN_URLS for u in used), "url"))
    return rows


def _span(text: str, value: str, pii_type: PiiType) -> PiiSpan:
    start = text.index(value)
    return PiiSpan(pii_type, start, start + len(value), 0.9)


def _echo(rng: random.Random) -> list[DevExample]:
    person, address = Person(Locale.EN, seed=rng.randrange(2**31)), Address(Locale.EN, seed=1)
    rows = []
    for i in range(150):
        name, email, phone = person.full_name(), person.email(), person.phone_number()
        prompt = f"Hi, I'm {name} from {address.city()}. Reach me at {email} or {phone}."
        in_spans = (
            _span(prompt, name, PiiType.PERSON),
            _span(prompt, email, PiiType.EMAIL),
            _span(prompt, phone, PiiType.PHONE),
        )
        mode = i % 3
        if mode == 0:  # echoes, reformatted: case, spacing, phone punctuation
            digits = "".join(c for c in phone if c.isdigit())
            spaced = f"{digits[:-7]} {digits[-7:-4]} {digits[-4:]}"
            output = f"Thanks {name.upper()}, I'll call {spaced} and write to {email}."
            label: tuple[str, ...] = ("PERSON", "EMAIL", "PHONE")
            out_spans: tuple[PiiSpan, ...] = ()
        elif mode == 1:  # different person, different number: nothing echoed
            other, number = person.full_name(), person.phone_number()
            output = f"Please contact {other} on {number} for help."
            label, out_spans = (), (_span(output, other, PiiType.PERSON),)
        else:  # a secret in the output, not in the prompt
            key = "sk-" + "".join(
                rng.choice("abcdefghijkmnopqrstuvwxyz0123456789") for _ in range(32)
            )
            output = f"Use this key to authenticate: {key}"
            label, out_spans = ("API_KEY",), (_span(output, key, PiiType.API_KEY),)
        rows.append(DevExample("echo", output, label, "", "echo", prompt, in_spans, out_spans))
    return rows


def build(seed: int = SEED) -> list[DevExample]:
    """The whole dev set, deterministic for a seed; about half ``tune``, half ``dev`` per kind."""
    rng = random.Random(seed)
    examples: list[DevExample] = []
    parts = {"toxicity": _toxicity, "topic": _topics, "refusal": _refusals, "url": _urls}
    for kind, make in parts.items():
        rows = list(dict.fromkeys(make(rng)))  # duplicates dropped, so no text is in both splits
        rng.shuffle(rows)
        examples += [
            DevExample(kind, text, label, "tune" if i % 2 == 0 else "dev", group)
            for i, (text, label, group) in enumerate(rows)
        ]
    examples += [
        dataclasses.replace(e, split="tune" if i % 2 else "dev") for i, e in enumerate(_echo(rng))
    ]
    return examples


def long_texts(count: int, words: int = 200, seed: int = SEED) -> list[str]:
    """``count`` clean texts of about ``words`` words each (for throughput), deterministic."""
    rng = random.Random(seed)
    pools = {
        "target": TARGETS, "thing": THINGS, "field": FIELDS, "country": COUNTRIES, "tone": TONES,
        "food": FOODS,
    }  # fmt: skip
    sentences = CLEAN_TEMPLATES + NEAR_TOPIC_TEMPLATES
    texts = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < words:
            parts.append(_fill(rng.choice(sentences), rng, pools))
        texts.append(" ".join(parts))
    return texts
