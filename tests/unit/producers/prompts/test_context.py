"""``with handle:`` stamps prompt_name / prompt_version / variant on what a real Publisher emits."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from llmwatch.broker import free_port
from producers.events import LlmCallEvent
from producers.prompts.context import active_prompt, with_prompt
from producers.prompts.handle import PromptHandle, fallback_handle
from producers.sdk import Publisher, send_loop
from producers.sdk.encoding import Encoded
from tests.clock import Clock

QUIET: dict[str, Any] = {"log_level": 0}
CHECK_TIMEOUT_S = 15.0
NOW = Clock.read().now
V1 = PromptHandle(
    name="support-bot",
    version="0123456789ab",
    number=1,
    label="production",
    variant="production",
    template="Answer: {{ q }}",
    text="Answer: hi",
)
V2 = PromptHandle(
    name="support-bot",
    version="ba9876543210",
    number=2,
    label="production",
    variant="canary",
    template="Briefly: {{ q }}",
    text="Briefly: hi",
)
STAMP_V1 = {"prompt_name": "support-bot", "prompt_version": "0123456789ab", "variant": "production"}
STAMP_V2 = {"prompt_name": "support-bot", "prompt_version": "ba9876543210", "variant": "canary"}


class Watched:
    """A real Publisher (broker down: emit never blocks) and the events its thread encoded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.publisher = Publisher(
            f"127.0.0.1:{free_port()}",
            f"t{uuid.uuid4().hex[:8]}.events",
            service="unit",
            producer_config=QUIET,
        )
        self.payloads: list[bytes] = []
        encode = send_loop.encode_event

        def recording_encode(event: object, defaults: Any) -> Any:
            result = encode(event, defaults)
            if isinstance(result, Encoded):
                self.payloads.append(result.payload)
            return result

        # emit only queues; the SDK's thread encodes (producers.sdk.send_loop).
        monkeypatch.setattr(send_loop, "encode_event", recording_encode)

    def checked(self) -> None:
        """Wait until the SDK's thread has encoded everything emitted so far."""
        deadline = time.monotonic() + CHECK_TIMEOUT_S
        while self.publisher.stats.queued and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.publisher.stats.queued == 0

    def events(self) -> list[dict[str, Any]]:
        self.checked()
        return [orjson.loads(payload) for payload in self.payloads]

    def prompt_fields(self) -> list[dict[str, Any]]:
        keys = ("prompt_name", "prompt_version", "variant")
        return [{k: e[k] for k in keys if k in e} for e in self.events()]


@pytest.fixture()
def watched(monkeypatch: pytest.MonkeyPatch) -> Iterator[Watched]:
    made = Watched(monkeypatch)
    yield made
    made.publisher.close(timeout=0.1)


def _event(**extra: Any) -> dict[str, Any]:
    return {"start_time": NOW, "end_time": NOW, **extra}


def test_without_a_prompt_nothing_is_stamped_and_the_event_is_passed_as_is(
    watched: Watched,
) -> None:
    event = _event()
    assert with_prompt(event) is event
    assert watched.publisher.emit(event)
    assert watched.prompt_fields() == [{}]


def test_dict_and_model_events_are_stamped_inside_the_handle(watched: Watched) -> None:
    event = _event()
    model = LlmCallEvent.model_validate(_event(service="unit"))
    with V1 as entered:
        assert entered is V1
        assert watched.publisher.emit(event)
        assert watched.publisher.emit(model)
    assert watched.publisher.emit(_event())
    assert watched.prompt_fields() == [STAMP_V1, STAMP_V1, {}]
    assert "prompt_name" not in event and model.prompt_name is None  # the caller's are not mutated


@pytest.mark.parametrize(
    ("own", "expected"),
    [
        ({"variant": "mine"}, {**STAMP_V1, "variant": "mine"}),
        ({"prompt_name": "support-bot", "variant": None}, STAMP_V1),
        ({"prompt_name": "other-bot"}, {"prompt_name": "other-bot"}),
        (
            {"prompt_name": "support-bot", "prompt_version": "ffffffffffff"},
            {"prompt_name": "support-bot", "prompt_version": "ffffffffffff"},
        ),
        ({"prompt_version": V1.version}, STAMP_V1),
    ],
    ids=["own-variant", "none-is-unset", "another-prompt", "another-version", "same-version"],
)
def test_fields_the_event_sets_win(
    watched: Watched, own: dict[str, Any], expected: dict[str, Any]
) -> None:
    with V1:
        watched.publisher.emit(_event(**own))
    assert watched.prompt_fields() == [expected]


def test_inner_handle_wins_and_the_outer_one_returns(watched: Watched) -> None:
    emit = watched.publisher.emit
    with V1:
        emit(_event())
        with V2:
            emit(_event())
        emit(_event())
    assert watched.prompt_fields() == [STAMP_V1, STAMP_V2, STAMP_V1]
    assert active_prompt() is None


def test_the_apps_exception_passes_and_the_prompt_ends(watched: Watched) -> None:
    with pytest.raises(KeyError, match="boom"), V1:
        raise KeyError("boom")
    assert active_prompt() is None


def test_track_spans_inside_the_handle_and_track_prompt(watched: Watched) -> None:
    with V2, watched.publisher.track(provider="openai", model="gpt-4o"):
        pass
    with watched.publisher.track(provider="openai", prompt=V1):
        pass
    assert watched.prompt_fields() == [STAMP_V2, STAMP_V1]


def test_a_fallback_names_the_prompt_and_no_version(watched: Watched) -> None:
    handle = fallback_handle("support-bot", "production", "Answer: {{ q }}", {"q": "hi"})
    with handle:
        watched.publisher.emit(_event())
    assert watched.prompt_fields() == [{"prompt_name": "support-bot", "variant": "fallback"}]


def test_concurrent_tasks_keep_their_own_prompt(watched: Watched) -> None:
    async def call(handle: PromptHandle, tag: str) -> None:
        async with handle:
            await asyncio.sleep(0.01)  # both tasks are inside their handle at once
            watched.publisher.emit(_event(request_model=tag))

    async def main() -> None:
        await asyncio.gather(call(V1, "a"), call(V2, "b"))

    asyncio.run(main())
    by_tag = {e["request_model"]: e["prompt_version"] for e in watched.events()}
    assert by_tag == {"a": V1.version, "b": V2.version}


@pytest.mark.parametrize("garbage", [None, 3, "text", {"x": object()}], ids=repr)
def test_garbage_is_still_rejected_and_counted(watched: Watched, garbage: Any) -> None:
    with V1:
        # A dict is queued (emit does not encode) and dropped by the SDK's thread.
        assert watched.publisher.emit(garbage) is isinstance(garbage, dict)
    watched.checked()
    assert watched.publisher.stats.dropped_invalid == 1
