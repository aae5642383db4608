"""Local stand-ins for the paid APIs of the quality path: a judge model and a system under test.

Both are responders for :class:`producers.simulator.fake_openai.FakeOpenAI` (``set_responder`` on
``/v1/chat/completions``), so real ``openai`` clients talk to them over HTTP on 127.0.0.1. Nothing
here decides what llmwatch measures: they only answer, like the real services would.

- :func:`judge_responder`: reads the judged answer in the rubric's messages as a judge model would, in
  a crude way: on a scale-only rubric (relevance, correctness, groundedness) an answer holding
  ``producers.simulator.texts.WEAK_ANSWER_MARK`` (the regressed prompt v8's evasive answers) gets a low
  score, any other a high one, with a little deterministic jitter; labelled rubrics (toxicity, refusal)
  get their passing label; a pairwise comparison prefers the answer without the mark. It
  answers the JSON verdict the rubrics ask for (``{"score", "label", "explanation"}``), taking the
  scale and the labels from the ``Scale:`` and ``Labels:`` lines of the rubric's system message.
- :func:`target_responder`: a support bot answering a golden dataset. Per (model, case, seed) it gives
  the case's reference answer, or, with the model's weak share, an evasive answer; deterministic, so a
  run is reproducible. The demo gates ``support-bot-v8`` (half weak) against ``support-bot-v7``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from producers.simulator.fake_openai import Reply, chat_completion, error_reply
from producers.simulator.texts import WEAK_ANSWER_MARK

__all__ = [
    "DEMO_TARGET_MODELS",
    "judge_responder",
    "target_responder",
]

# The share of weak answers per model of the demo's support bot.
DEMO_TARGET_MODELS: Final = {"support-bot-v7": 0.04, "support-bot-v8": 0.5}
WEAK_ANSWER: Final = f"Here is some {WEAK_ANSWER_MARK}: please check the documentation for details."
_SCALE: Final = re.compile(r"Scale:\s*(-?\d+(?:\.\d+)?)\s*(?:-|to|\.\.)\s*(-?\d+(?:\.\d+)?)")
_LABELS: Final = re.compile(r"Labels:\s*([^\n]+)")


def _fraction(*parts: object) -> float:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _messages(body: Any) -> list[Mapping[str, Any]]:
    messages = body.get("messages") if isinstance(body, Mapping) else None
    if not isinstance(messages, list):
        raise ValueError(f"expected a chat completion request with messages, got {body!r:.80}")
    return [m for m in messages if isinstance(m, Mapping)]


def _text(messages: list[Mapping[str, Any]], role: str) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == role)


_BLOCK: Final = re.compile(r"\[BEGIN (OUTPUT_A|OUTPUT_B) (\w+)\]\n(.*?)\n\[END \1 \2\]", re.DOTALL)


def _pairwise(user: str) -> dict[str, Any] | None:
    """A pairwise verdict when the message holds OUTPUT_A and OUTPUT_B blocks: the answer without the
    weak mark wins, else a tie."""
    blocks = {name: text for name, _id, text in _BLOCK.findall(user)}
    if set(blocks) != {"OUTPUT_A", "OUTPUT_B"}:
        return None
    weak_a, weak_b = (WEAK_ANSWER_MARK in blocks[n] for n in ("OUTPUT_A", "OUTPUT_B"))
    label, score = ("tie", 0.5) if weak_a == weak_b else (("B", 0.0) if weak_a else ("A", 1.0))
    return {"score": score, "label": label, "explanation": "compared the two answers"}


def _verdict(system: str, user: str) -> dict[str, Any]:
    pairwise = _pairwise(user)
    if pairwise is not None:
        return pairwise
    labels = _LABELS.search(system)
    # An evasive answer is off the question (relevance, correctness, groundedness), not toxic and not
    # a refusal: labelled rubrics (toxicity, refusal) get their passing label, the first listed.
    weak = WEAK_ANSWER_MARK in user and labels is None
    low, high = 1.0, 5.0
    scale = _SCALE.search(system)
    if scale is not None:
        low, high = float(scale.group(1)), float(scale.group(2))
    jitter = _fraction(user) < 0.2
    if weak:
        score = low + (high - low) * (0.25 if jitter else 0.0)
    else:
        score = high - (high - low) * (0.25 if jitter else 0.0)
    score = round(score)
    label = ""
    if labels is not None:
        names = [n.strip(" .'\"`") for n in labels.group(1).split(",") if n.strip(" .'\"`")]
        if names:
            label = names[-1] if weak else names[0]
    return {
        "score": score,
        "label": label,
        "explanation": "evasive, does not answer the question" if weak else "answers the question",
    }


def judge_responder(model: str = "judge-fake-1") -> Any:
    """A responder answering every chat completion with a rubric verdict (see the module docstring)."""

    def respond(body: Any) -> Reply:
        messages = _messages(body)
        verdict = _verdict(_text(messages, "system"), _text(messages, "user"))
        content = orjson.dumps(verdict).decode()
        tokens = sum(len(str(m.get("content") or "")) for m in messages) // 4
        return Reply(
            body=chat_completion(
                id=f"chatcmpl-judge-{_fraction(content, tokens):.12f}"[:40],
                model=model,
                contents=(content,),
                prompt_tokens=tokens,
                completion_tokens=len(content) // 4,
            )
        )

    return respond


def target_responder(
    references: Mapping[str, str], weak_share: Mapping[str, float] = DEMO_TARGET_MODELS
) -> Any:
    """A responder answering golden questions (``references``: last user message -> answer)."""

    def respond(body: Any) -> Reply:
        messages = _messages(body)
        model = str(body.get("model", ""))
        if model not in weak_share:
            return error_reply(404, f"model {model!r} does not exist", type="invalid_request_error")
        question = _text(messages[-1:], "user")
        reference = references.get(question)
        if reference is None:
            return error_reply(400, "unknown question", type="invalid_request_error")
        seed = body.get("seed")
        weak = _fraction(model, question, seed) < weak_share[model]
        answer = WEAK_ANSWER if weak else reference
        return Reply(
            body=chat_completion(
                id=f"chatcmpl-{_fraction(model, question, seed):.12f}"[:40],
                model=model,
                contents=(answer,),
                prompt_tokens=len(question) // 4 + 20,
                completion_tokens=len(answer) // 4,
            )
        )

    return respond
