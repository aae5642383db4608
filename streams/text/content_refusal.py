"""Refusals: a model's output that declines the request (issue 8, item 5, output side).

A refusal is a first-person statement that the model will not or cannot do what was asked: "I can't help
with that", "As an AI, I cannot ...", "I'm sorry, but I won't ...", "I must decline". Only the opening of
the output is read (:data:`OPENING_CHARS`): a refusal that comes after a full answer is a caveat, not a
refusal. Benign apologies ("Sorry for the delay, here is the report") and idioms ("I can't help but
notice", "I cannot stress enough") do not match: the patterns need a declining verb followed by an
action the user asked for, or an explicit decline ("I must decline", "I won't be able to").

Guarantees: pure, no model; never raises on any str; linear in :data:`OPENING_CHARS`.
Accuracy: ``.venv/bin/python -m bench.bench_content`` (``refusal`` rows).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["OPENING_CHARS", "REFUSAL_EXAMPLES", "RIGHT_QUOTE", "is_refusal"]

OPENING_CHARS: Final = 400
RIGHT_QUOTE: Final = "\u2019"  # typographic apostrophe, read as '

_DECLINE: Final = (
    r"(?:can ?not|can't|won't|will not|shan't|am unable to|'m unable to|am not able to|'m not able to"
    r"|am not going to|'m not going to|won't be able to|will not be able to|am not allowed to"
    r"|'m not allowed to|am not permitted to|'m not permitted to)"
)
# After "As an AI ...", "I don't" also declines ("As an AI, I don't have access to ...").
_AI_DECLINE: Final = rf"(?:{_DECLINE}|do not|don't|must not|should not|am not|'m not|have no)"
# What the user asked for: the declined action (a closed list keeps "I can't stress enough" out).
_ACTION: Final = (
    r"(?:help|assist|provide|comply|fulfil+|do (?:that|this|so|it)|support|engage|generate|create"
    r"|write|share|answer|give|offer|produce|complete|continue|participate|disclose|reveal|advise"
    r"|go along|endorse|facilitate|perform|carry out|draft|discuss|process|respond)"
)
_SUBJECT: Final = r"\bI\s*(?:'m|am)?\s*"
REFUSAL_PATTERNS: Final = (
    # "I can't help with that", "I won't provide ...", "I'm unable to assist" (not "I can't help but ...").
    re.compile(
        rf"{_SUBJECT}{_DECLINE}\s+(?:really\s+|in good conscience\s+)?{_ACTION}\b(?!\s+but\b)"
    ),
    # "I must / have to / need to decline", "I'll have to pass on this".
    re.compile(
        r"\bI\s*(?:must|have to|need to|'ll have to|will have to)\s+(?:respectfully\s+)?"
        r"(?:decline|refuse|pass on)\b"
    ),
    # "As an AI (language model), I cannot / don't ...".
    re.compile(
        r"\bas an? (?:AI|artificial intelligence|(?:AI )?language model|AI assistant)\b"
        rf"[^.!?\n]{{0,80}}?{_SUBJECT}{_AI_DECLINE}\b",
        re.IGNORECASE,
    ),
    # "That's not something I can help with", "this is not something I'm able to do".
    re.compile(r"\bnot something I\s*(?:'m|am)?\s*(?:can|able to|allowed to|comfortable)\b"),
    # "It would not be appropriate for me to", "it's against my guidelines / policies".
    re.compile(
        r"\b(?:not (?:be )?|n't be |in)appropriate for me to\b"
        r"|\bagainst my (?:guidelines|policies|programming)\b",
        re.IGNORECASE,
    ),
    # "I'm sorry, but I won't.", "Sorry, I can't do that": an apology joined to a decline.
    re.compile(
        rf"\b(?:sorry|apologi[sz]e|afraid|regret)\b[^.!?\n]{{0,30}}?{_SUBJECT}{_DECLINE}"
        rf"(?:\s*[.!,;]|\s+(?:that|this|be able|{_ACTION})\b)",
        re.IGNORECASE,
    ),
    # "I cannot and will not", "I refuse to", "I decline to".
    re.compile(r"\bI (?:cannot and will not|can't and won't|refuse to|decline to)\b"),
)

# Refusals written for the optional embedding check and the tests; the bench's dev set is separate.
REFUSAL_EXAMPLES: Final = (
    "I'm sorry, but I can't help with that request.",
    "As an AI language model, I cannot provide that information.",
    "I won't assist with this because it could cause harm.",
    "I must decline to answer that question.",
    "That's not something I'm able to help with.",
)


def is_refusal(text: str) -> bool:
    """Whether the opening of ``text`` declines the request; never raises."""
    if not isinstance(text, str) or not text.strip():
        return False
    opening = text.lstrip()[:OPENING_CHARS].replace(RIGHT_QUOTE, "'")
    return any(pattern.search(opening) for pattern in REFUSAL_PATTERNS)
