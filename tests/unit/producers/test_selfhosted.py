"""vLLM and TGI /metrics text read into serving signals; token rates from successive totals."""

from __future__ import annotations

import pytest

from producers.selfhosted import TokenRates, read_server_metrics

VLLM = """\
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 12.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.83
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 120000.0
# TYPE vllm:generation_tokens counter
vllm:generation_tokens_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 45000.0
# TYPE vllm:generation_tokens counter
"""
TGI = """\
# TYPE tgi_queue_size gauge
tgi_queue_size 3
# TYPE tgi_batch_current_size gauge
tgi_batch_current_size 8
# TYPE tgi_request_generated_tokens histogram
tgi_request_generated_tokens_bucket{le="+Inf"} 10
tgi_request_generated_tokens_sum 2500
tgi_request_generated_tokens_count 10
# TYPE tgi_request_input_length histogram
tgi_request_input_length_bucket{le="+Inf"} 10
tgi_request_input_length_sum 9000
tgi_request_input_length_count 10
"""
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def test_vllm_signals_per_model() -> None:
    read = read_server_metrics(VLLM)
    assert read.server == "vllm" and read.problem is None
    assert read.by_model == {
        MODEL: {
            "queue_depth": 7.0,
            "requests_running": 12.0,
            "kv_cache_usage": 0.83,
            "prompt_tokens_total": 120000.0,
            "generation_tokens_total": 45000.0,
        }
    }


def test_older_vllm_cache_metric_is_read() -> None:
    old = VLLM.replace("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
    assert read_server_metrics(old).by_model[MODEL]["kv_cache_usage"] == 0.83


def test_tgi_signals_from_gauges_and_histogram_sums() -> None:
    read = read_server_metrics(TGI)
    assert read.server == "tgi"
    assert read.by_model == {
        "": {
            "queue_depth": 3.0,
            "requests_running": 8.0,
            "prompt_tokens_total": 9000.0,
            "generation_tokens_total": 2500.0,
        }
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("node_cpu_seconds_total 5\n", "no vLLM or TGI"),
        ("this is { not prometheus\n", "not Prometheus text"),
        ("", "no vLLM or TGI"),
    ],
)
def test_unreadable_bodies_say_why(text: str, reason: str) -> None:
    read = read_server_metrics(text)
    assert read.by_model == {} and read.problem is not None and reason in read.problem


def test_an_unknown_server_kind_is_named() -> None:
    assert "'sglang'" in (read_server_metrics(VLLM, server="sglang").problem or "")


def test_token_rates_need_two_scrapes_and_skip_a_restart() -> None:
    rates = TokenRates()
    assert rates.update("h", "m", {"generation_tokens_total": 1000.0}, at_s=100.0) == {}
    assert rates.update("h", "m", {"generation_tokens_total": 1600.0}, at_s=110.0) == {
        "generation_tokens_per_s": 60.0
    }
    assert rates.update("h", "m", {"generation_tokens_total": 50.0}, at_s=120.0) == {}  # restart
    assert rates.update("h", "m", {"generation_tokens_total": 350.0}, at_s=130.0) == {
        "generation_tokens_per_s": 30.0
    }
