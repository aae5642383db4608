"""Publishing a side consumer's outputs until the broker has them (``llmwatch canary``, ``drift``).

:func:`send_until_acked` produces every output, flushes, and repeats the whole batch until the broker
acknowledged all of it or ``stop`` is set; it returns whether everything was acknowledged. A repeat can
duplicate records already stored, so the outputs must be idempotent downstream (their tables are
ReplacingMergeTrees keyed by the records' content). What can block: each flush, up to
``flush_timeout_s``, and the pause between attempts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Final

from confluent_kafka import KafkaError, Message, Producer

__all__ = ["Output", "send_until_acked"]

log = logging.getLogger(__name__)

Output = tuple[str, bytes | None, bytes]  # topic, key, value
RETRY_PAUSE_S: Final = 1.0


def _collect(failed: list[str]) -> Callable[[KafkaError | None, Message], None]:
    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failed.append(f"{msg.topic()}: {err}")

    return on_delivery


def send_until_acked(
    producer: Producer,
    outputs: Sequence[Output],
    *,
    flush_timeout_s: float,
    stop: threading.Event,
    what: str,
) -> bool:
    """Produce ``outputs`` until all are acknowledged (True) or ``stop`` is set (False)."""
    while True:
        failed: list[str] = []
        on_delivery = _collect(failed)
        for topic, key, value in outputs:
            producer.produce(topic, value, key=key, on_delivery=on_delivery)
        left = producer.flush(flush_timeout_s)
        if left == 0 and not failed:
            return True
        log.warning("%s outputs not acknowledged (%s); retrying", what, failed or f"{left} left")
        if stop.wait(RETRY_PAUSE_S):
            return False
