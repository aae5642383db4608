"""The demo's text-analysis part: run ``llmwatch analyze``, wait for its results, read them back.

The demo sends simulated text (``producers.simulator.TextMix``) with ``text_capture="analyze"``: the
text is analysed and never stored. Waiting uses consumer-group lag, not sleeps: the guardrail results
are complete when the analyzer's group has committed the end of the texts topic and the sink's group
the end of the guardrails topic (both commit only after their outputs are safe).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from confluent_kafka import Consumer, KafkaException, TopicPartition

from llmwatch.processes import ChildProcess
from llmwatch.settings import Settings
from streams.storage import GUARDRAIL_ROLLUP_TABLE

__all__ = [
    "GuardrailRow",
    "consumer_lag",
    "read_guardrails",
    "start_analyzer",
    "wait_for_guardrails",
]

# (service, texts analysed, flagged, pii, injection + jailbreak, toxicity, data leaks)
GuardrailRow = tuple[str, int, int, int, int, int, int]
_POLL_S: Final = 0.5
_METADATA_TIMEOUT_S: Final = 5.0


def start_analyzer(
    settings: Settings, slo_file: Path, alert_interval_s: float, sampling_file: Path | None = None
) -> ChildProcess:
    return ChildProcess(
        "analyze",
        ["analyze"],
        {
            # Judge sampling: the given rules, or none (the demo without its quality part).
            "LLMWATCH_SAMPLING_FILE": str(sampling_file) if sampling_file is not None else "off",
            "LLMWATCH_BOOTSTRAP": settings.bootstrap,
            "LLMWATCH_DATA_DIR": str(settings.data_dir),
            "LLMWATCH_SLO_FILE": str(slo_file),
            "LLMWATCH_ALERT_INTERVAL_S": str(alert_interval_s),
            # The demo's burst must be analysed within the run: the fast injection detector.
            "LLMWATCH_ANALYZE_INJECTION_ENCODER": "false",
        },
        settings.log_dir / "analyze.log",
    ).start()


def consumer_lag(bootstrap: str, group: str, topic: str) -> int | None:
    """Records of ``topic`` the consumer group has not committed yet (None if it cannot be read)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=_METADATA_TIMEOUT_S)
        partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        committed = consumer.committed(partitions, timeout=_METADATA_TIMEOUT_S)
        lag = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=_METADATA_TIMEOUT_S)
            position = tp.offset if tp.offset >= 0 else low
            lag += max(0, high - position)
        return lag
    except (KafkaException, KeyError):
        return None
    finally:
        consumer.close()


def wait_for_guardrails(settings: Settings, timeout_s: float, tick: Callable[[int], None]) -> bool:
    """True once the analyzer and the sink have caught up with every text (or False at the timeout)."""
    layout = settings.layout
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        texts = consumer_lag(settings.bootstrap, settings.analyze_group, layout.texts)
        rows = consumer_lag(settings.bootstrap, settings.sink_group, layout.guardrails)
        if texts is not None:
            tick(texts)
        if texts == 0 and rows == 0:
            return True
        time.sleep(_POLL_S)
    return False


def read_guardrails(client: Any, database: str, since_ms: int) -> list[GuardrailRow]:
    """Guardrail counts per service of rows stored since ``since_ms``, most flagged first."""
    query = (
        "SELECT service, sum(texts), sum(flagged_texts), sum(flagged['pii']), "
        "sum(flagged['prompt_injection']) + sum(flagged['jailbreak']), sum(flagged['toxicity']), "
        "sum(flagged['data_leak']) "
        f"FROM {database}.{GUARDRAIL_ROLLUP_TABLE} FINAL "
        # By arrival, not event time: simulated calls may start before the demo did.
        "WHERE ingested_at >= fromUnixTimestamp64Milli({since:Int64}) "
        "GROUP BY service ORDER BY sum(flagged_texts) DESC"
    )
    rows = client.query(query, parameters={"since": since_ms}).result_rows
    return [
        (str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in rows
    ]
