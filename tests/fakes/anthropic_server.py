"""The fake Anthropic API for tests: it lives in the product (``producers.simulator.fake_anthropic``),
since the simulator drives real clients against it too. This module only re-exports it."""

from producers.simulator.fake_anthropic import (
    ERROR_TYPES,
    MODEL,
    FakeAnthropic,
    Reply,
    SeenRequest,
    error,
    message,
    ratelimit_headers,
    stream,
)

__all__ = [
    "ERROR_TYPES",
    "MODEL",
    "FakeAnthropic",
    "Reply",
    "SeenRequest",
    "error",
    "message",
    "ratelimit_headers",
    "stream",
]
