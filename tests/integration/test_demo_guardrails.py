"""The demo end to end with text analysis: guardrails find what the simulator planted, the injection
SLO fires, no table holds any of the personal data the simulator sent, although the texts are stored
(capture ``store``: redacted), and the quality path judges prompt v8's answers worse and gates it.

Runs the real pipeline (Tansu, the Faust worker and ``llmwatch analyze`` as child processes, the sink
on chdb) on a short burst; about a minute and a half on two cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from llmwatch.embedded import DemoOptions, DemoSummary, run_demo
from llmwatch.settings import Settings
from producers.events import TextCapture
from sinks.clickhouse import connect

EVENTS = 4_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoSummary, Settings]:
    data = tmp_path_factory.mktemp("demo")
    settings = Settings(data_dir=data, clickhouse_dsn=f"chdb://{data / 'chdb'}")
    # "store": the texts are kept, redacted, so the grep below tests the redaction itself.
    options = DemoOptions(
        events=EVENTS,
        rate=1_000.0,
        seed=3,
        bad_events=5,
        drain_timeout_s=150.0,
        text_capture=TextCapture.STORE,
        text_share=0.5,
    )
    summary = run_demo(settings, options, Console(file=open(data / "demo.txt", "w")))  # noqa: SIM115
    return summary, settings


def _all_rows_as_text(client: Any, database: str) -> dict[str, str]:
    tables = [
        str(r[0])
        for r in client.query(
            "SELECT name FROM system.tables WHERE database = {db:String}",
            parameters={"db": database},
        ).result_rows
    ]
    dumped = {}
    for table in tables:
        rows = client.query(f"SELECT * FROM {database}.{table}").result_rows
        dumped[table] = "\n".join(repr(row) for row in rows)
    return dumped


@pytest.mark.slow
def test_the_drift_phase_flags_the_shifted_scope_only(demo: tuple[DemoSummary, Settings]) -> None:
    summary, _settings = demo
    assert summary.drift is not None
    assert summary.drift.shifted_scope_only, summary.drift
    assert {feature for _s, _d, feature, _e, _t in summary.drift.flagged} & {"topics", "novel"}
    assert len(summary.drift.scopes_tested) >= 6  # three services, input and output
    assert summary.complete  # the drift traffic is stored like the rest


@pytest.mark.slow
def test_guardrails_find_the_planted_content_and_an_injection_alert_fires(
    demo: tuple[DemoSummary, Settings],
) -> None:
    summary, _settings = demo
    assert summary.complete, summary
    assert summary.guardrails_drained
    by_service = {row[0]: row for row in summary.guardrails}
    planted_pii = sum(n for (_s, kind), n in summary.planted.items() if kind == "pii")
    found_pii = sum(row[3] for row in summary.guardrails)
    assert planted_pii > 20 and found_pii >= 0.9 * planted_pii
    planted_attacks = sum(
        n for (_s, kind), n in summary.planted.items() if kind in {"attack", "indirect"}
    )
    found_attacks = sum(row[4] for row in by_service.values())
    # The demo runs the fast injection detector (no encoder): it misses some role-play attacks.
    assert planted_attacks > 5 and found_attacks >= 0.6 * planted_attacks
    fired = {(slo, rule) for slo, rule, *_ in summary.alerts}
    assert ("injection-attempts", "fast") in fired, summary.alerts


def test_the_demo_drives_real_openai_and_anthropic_clients(
    demo: tuple[DemoSummary, Settings],
) -> None:
    summary, _settings = demo
    calls = summary.client_calls
    assert calls is not None, "the demo must route calls through the real clients"
    assert set(calls) == {"openai", "anthropic"} and min(calls.values()) > 0
    assert sum(calls.values()) == 200
    assert summary.complete  # and every one of them stored or dead-lettered


@pytest.mark.slow
def test_no_table_holds_the_personal_data_the_simulator_sent(
    demo: tuple[DemoSummary, Settings],
) -> None:
    summary, settings = demo
    assert len(summary.pii_values) > 50
    client = connect(settings.dsn)
    try:
        dumped = _all_rows_as_text(client, settings.database)
    finally:
        client.close()
    assert {"llm_calls", "llm_dlq", "llm_guardrail_findings", "llm_texts"} <= set(dumped)
    assert dumped["llm_scores"] and dumped["llm_eval_results"]  # the quality path's rows too
    assert "<EMAIL>" in dumped["llm_texts"]  # texts were stored, redacted
    leaks = {
        table: sorted(v for v in summary.pii_values if v in text)[:3]
        for table, text in dumped.items()
        if any(v in text for v in summary.pii_values)
    }
    assert leaks == {}
    assert Path(settings.data_dir).is_dir()


@pytest.mark.slow
def test_the_judge_sees_prompt_v8_answer_worse_and_eval_run_gates_it(
    demo: tuple[DemoSummary, Settings],
) -> None:
    summary, _settings = demo
    assert summary.quality_drained
    # v7 and v8 come from the prompt registry (content-addressed ids); v8 is a 10% canary.
    assert summary.canary is not None and summary.canary.served.get(summary.canary.v8, 0) > 0
    relevance = {
        version: mean
        for service, version, rubric, n, mean in summary.quality
        if service == "support-bot" and rubric == "relevance" and n >= 5
    }
    v7, v8 = summary.canary.v7, summary.canary.v8
    assert relevance[v7] >= 4.0 and relevance[v8] <= 2.0, summary.quality
    assert summary.judge_calls >= sum(n for *_rest, n, _mean in summary.quality)
    assert summary.eval_gate is not None and summary.eval_gate.gated, summary.eval_gate
