"""Pick and start the embedded broker: Tansu (``llmwatch.broker``) or librdkafka's mock cluster
(``llmwatch.mockbroker``). Kept apart from both so that neither imports the other's engine."""

from __future__ import annotations

from collections.abc import Sequence

from llmwatch.broker import BrokerError, RunningBroker, TansuBroker
from llmwatch.mockbroker import MockClusterBroker
from streams.topics import TopicSpec

__all__ = ["start_broker"]


def start_broker(engine: str, *, port: int, specs: Sequence[TopicSpec] = ()) -> RunningBroker:
    """Start the embedded broker named by ``engine``: ``tansu`` (default) or ``mock``."""
    if engine == "tansu":
        return TansuBroker(port=port).start()
    if engine == "mock":
        # The mock cluster picks its own port and has no CreateTopics API: topics are made here.
        return MockClusterBroker(topics=specs).start()
    raise BrokerError(f"unknown broker engine {engine!r}; expected 'tansu' or 'mock'")
