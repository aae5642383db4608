"""The fake OpenAI API for tests: it lives in the product (``producers.simulator.fake_openai``), since the
simulator drives real clients against it too. This module only re-exports it."""

from producers.simulator.fake_openai import (
    DEFAULT_REMAINING_REQUESTS,
    DEFAULT_REMAINING_TOKENS,
    FakeOpenAI,
    Recorded,
    Reply,
    chat_chunks,
    chat_completion,
    embeddings_body,
    error_reply,
    response_body,
    response_events,
    sse_reply,
)

__all__ = [
    "DEFAULT_REMAINING_REQUESTS",
    "DEFAULT_REMAINING_TOKENS",
    "FakeOpenAI",
    "Recorded",
    "Reply",
    "chat_chunks",
    "chat_completion",
    "embeddings_body",
    "error_reply",
    "response_body",
    "response_events",
    "sse_reply",
]
