"""Self-hosted model servers (vLLM, TGI): their Prometheus ``/metrics`` text, read into serving gauges.

:func:`read_server_metrics` parses the exposition text with ``prometheus_client``'s parser and returns,
per served model, the few signals on-call needs beside the per-call events: requests waiting (queue
depth), requests running, KV-cache use (0..1, vLLM only) and the running totals of prompt and generated
tokens. :class:`TokenRates` turns successive totals into tokens per second (a counter that went down,
i.e. a server restart, gives no rate for that interval rather than a negative one).

Which metrics (the server kind is detected from the metric names, or given):

- vLLM: ``vllm:num_requests_waiting``, ``vllm:num_requests_running``, ``vllm:kv_cache_usage_perc``
  (older: ``vllm:gpu_cache_usage_perc``), ``vllm:prompt_tokens_total``,
  ``vllm:generation_tokens_total``; per ``model_name`` label.
- TGI: ``tgi_queue_size``, ``tgi_batch_current_size``, and the sums of the
  ``tgi_request_input_length`` / ``tgi_request_generated_tokens`` histograms; one model per server
  (model ``""``).

Guarantees: pure and never raises on any text: unparsable input gives an empty result and a reason.
Nothing here does I/O (``llmwatch scrape`` fetches and publishes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "SERVER_KINDS",
    "SIGNALS",
    "ServerMetrics",
    "TokenRates",
    "detect_server",
    "read_server_metrics",
]

SERVER_KINDS: Final = ("vllm", "tgi")
# Our signal -> the sample names that carry it, per server kind (first present wins).
SIGNALS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "vllm": {
        "queue_depth": ("vllm:num_requests_waiting",),
        "requests_running": ("vllm:num_requests_running",),
        "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        "prompt_tokens_total": ("vllm:prompt_tokens_total",),
        "generation_tokens_total": ("vllm:generation_tokens_total",),
    },
    "tgi": {
        "queue_depth": ("tgi_queue_size",),
        "requests_running": ("tgi_batch_current_size",),
        "prompt_tokens_total": ("tgi_request_input_length_sum",),
        "generation_tokens_total": ("tgi_request_generated_tokens_sum",),
    },
}
TOTALS: Final = ("prompt_tokens_total", "generation_tokens_total")
_MODEL_LABEL: Final = "model_name"


@dataclass(frozen=True, slots=True)
class ServerMetrics:
    """One scrape: the server kind, signal values per model, and why nothing was read (if so)."""

    server: str | None
    by_model: dict[str, dict[str, float]] = field(default_factory=dict)
    problem: str | None = None


def detect_server(names: set[str]) -> str | None:
    """``vllm`` or ``tgi`` from the sample names seen, else None."""
    if any(name.startswith("vllm:") for name in names):
        return "vllm"
    if any(name.startswith("tgi_") for name in names):
        return "tgi"
    return None


def read_server_metrics(text: str, server: str | None = None) -> ServerMetrics:
    """The serving signals in one ``/metrics`` body (see the module docstring); never raises."""
    if server is not None and server not in SERVER_KINDS:
        return ServerMetrics(None, problem=f"server must be one of {SERVER_KINDS}, got {server!r}")
    samples: dict[str, dict[str, float]] = {}  # sample name -> model -> summed value
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                model = sample.labels.get(_MODEL_LABEL, "")
                per_model = samples.setdefault(sample.name, {})
                per_model[model] = per_model.get(model, 0.0) + float(sample.value)
    except Exception as exc:  # the parser raises ValueError and friends on malformed text
        return ServerMetrics(server, problem=f"not Prometheus text: {exc}"[:200])
    kind = server or detect_server(set(samples))
    if kind is None:
        return ServerMetrics(None, problem="no vLLM or TGI metrics in the body")
    by_model: dict[str, dict[str, float]] = {}
    for signal, names in SIGNALS[kind].items():
        name = next((n for n in names if n in samples), None)
        if name is None:
            continue
        for model, value in samples[name].items():
            by_model.setdefault(model, {})[signal] = value
    return ServerMetrics(kind, by_model)


@dataclass
class TokenRates:
    """Tokens per second from successive token totals, per (server, model, signal)."""

    _last: dict[tuple[str, str, str], tuple[float, float]] = field(default_factory=dict)

    def update(
        self, source: str, model: str, values: Mapping[str, float], at_s: float
    ) -> dict[str, float]:
        """Rates since the previous scrape (``prompt_tokens_per_s``, ``generation_tokens_per_s``)."""
        rates: dict[str, float] = {}
        for total in TOTALS:
            if total not in values:
                continue
            key = (source, model, total)
            previous = self._last.get(key)
            self._last[key] = (at_s, values[total])
            if previous is None:
                continue
            elapsed, grown = at_s - previous[0], values[total] - previous[1]
            if elapsed > 0 and grown >= 0:  # a counter that went down: the server restarted
                rates[total.replace("_total", "_per_s")] = grown / elapsed
        return rates
