"""``llmwatch scrape URL...``: self-hosted model servers' ``/metrics`` into llmwatch's pipeline metrics.

Every ``interval_s`` each URL is fetched (``timeout_s`` per request), read by
:func:`producers.selfhosted.read_server_metrics`, and published to the metrics topic as
``llm_pipeline_metrics`` rows of process ``scrape``, labelled with the server kind, the model and the
URL's host: ``queue_depth``, ``requests_running``, ``kv_cache_usage`` (vLLM), the token totals, and
``prompt_tokens_per_s`` / ``generation_tokens_per_s`` from two successive scrapes. A URL that cannot be
fetched or read counts in ``scrape_errors`` (labelled with the host and a short reason) and is tried
again next time: one bad server never stops the others. Query them with ``llmwatch sql``, e.g.
``SELECT ts, labels['model'], value FROM llmwatch.llm_pipeline_metrics WHERE metric = 'queue_depth'``.

What can block: the HTTP fetches (bounded by ``timeout_s`` each) and the final flush (5 s).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from producers.selfhosted import TokenRates, read_server_metrics
from streams.periodic import PIPELINE_METRICS_TABLE, Metrics, encode_snapshot, metric_rows

__all__ = ["PROCESS", "Scraper", "run_scrape"]

log = logging.getLogger(__name__)

PROCESS: Final = "scrape"
MAX_BODY_BYTES: Final = 8 * 1024 * 1024

Fetch = Callable[[str, float], str]


def _fetch(url: str, timeout_s: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        body: bytes = response.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"body larger than {MAX_BODY_BYTES} bytes")
    return body.decode("utf-8", errors="replace")


@dataclass
class Scraper:
    """Scrapes the URLs once per :meth:`scrape` call; keeps the token totals for rates."""

    urls: Sequence[str]
    timeout_s: float = 5.0
    fetch: Fetch = _fetch
    rates: TokenRates = field(default_factory=TokenRates)

    def __post_init__(self) -> None:
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"a metrics URL must be http(s)://host[:port]/path, got {url!r}")

    def scrape(self, now_s: float) -> Metrics:
        """Metrics of one round over every URL (never raises)."""
        metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for url in self.urls:
            host = urlsplit(url).netloc
            try:
                read = read_server_metrics(self.fetch(url, self.timeout_s))
            except (OSError, ValueError, urllib.error.URLError) as exc:
                self._error(metrics, host, type(exc).__name__)
                log.warning("scrape of %s failed: %s", url, exc)
                continue
            if read.problem is not None or read.server is None:
                self._error(metrics, host, "unreadable")
                log.warning("scrape of %s: %s", url, read.problem)
                continue
            for model, values in read.by_model.items():
                labels = (("host", host), ("model", model), ("server", read.server))
                for name, value in values.items():
                    metrics[(name, labels)] = value
                for name, value in self.rates.update(host, model, values, now_s).items():
                    metrics[(name, labels)] = value
        return metrics

    @staticmethod
    def _error(metrics: dict[Any, float], host: str, reason: str) -> None:
        key = ("scrape_errors", (("host", host), ("reason", reason)))
        metrics[key] = metrics.get(key, 0.0) + 1.0


def run_scrape(
    urls: Sequence[str],
    *,
    bootstrap: str,
    topic: str,
    interval_s: float,
    stop: threading.Event,
    timeout_s: float = 5.0,
) -> int:
    """Scrape every ``interval_s`` and publish to ``topic`` until ``stop`` is set."""
    from confluent_kafka import Producer

    scraper = Scraper(urls, timeout_s)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    instance = f"{socket.gethostname()}-{os.getpid()}"
    started_ms = int(time.time() * 1000)
    try:
        while True:
            now = time.time()
            metrics = scraper.scrape(now)
            rows = metric_rows(PROCESS, instance, started_ms, int(now * 1000), metrics)
            if rows:
                producer.produce(topic, encode_snapshot({PIPELINE_METRICS_TABLE: rows}))
            producer.poll(0)
            if stop.wait(interval_s):
                return 0
    finally:
        producer.flush(5.0)
