"""The llmwatch producer SDK: publish LLM-call events to Kafka without blocking the app.

Typical use::

    publisher = Publisher("localhost:9092", "llmwatch.events", service="checkout")
    with publisher.track(provider="openai", model="gpt-4o") as span:
        response = client.chat.completions.create(...)
        span.set_usage(input_tokens=..., output_tokens=...)

See :mod:`producers.sdk.publisher` for the delivery guarantees and :mod:`producers.sdk.batching` for
the message key.
"""

from producers.sdk.batching import TRACE_KEY_BUCKETS, bucket_for, bucket_key
from producers.sdk.config import PublisherConfig
from producers.sdk.publisher import Publisher
from producers.sdk.stats import PublisherStats
from producers.sdk.tracking import EventSink, SpanRecorder, TrackedSpan, current_span

__all__ = [
    "TRACE_KEY_BUCKETS",
    "EventSink",
    "Publisher",
    "PublisherConfig",
    "PublisherStats",
    "SpanRecorder",
    "TrackedSpan",
    "bucket_for",
    "bucket_key",
    "current_span",
]
