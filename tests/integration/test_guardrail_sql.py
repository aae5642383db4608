"""The guardrail tables on chdb: migration 0009 takes the consumer's rows, replays collapse under FINAL,
and the Grafana burn-rate SQL of a guardrail SLO matches the stream's own evaluation."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any, Final

from dashboards import slo_sql
from producers.texts import TextRecord
from sinks.rows import insert_rows
from streams.ingest.validate import SourcePosition
from streams.slo.burnrate import BurnRateEvaluator
from streams.slo.config import MINUTE_MS, parse_slo_file
from streams.storage import GUARDRAIL_FINDINGS_TABLE, GUARDRAIL_ROLLUP_TABLE, TEXTS_TABLE
from streams.text.consumer import slo_row
from streams.text.findings import InjectionVerdict, PiiSpan, PiiType
from streams.text.records import (
    FINDING_FIELDS,
    GUARDRAIL_ROLLUP_FIELDS,
    TEXT_FIELDS,
    FieldAnalysis,
    TextAnalysis,
    guardrail_tables,
)
from tests.clock import Clock
from tests.integration.conftest import SINK_DB

SLOS: Final = """
version: 1
slos:
  - name: injection
    objective: 0.99
    sli: {type: guardrail, category: prompt_injection}
    selector: {service: bot, span_kind: null}
  - name: pii-bot-llm
    objective: 0.9
    sli: {type: guardrail, category: pii}
    selector: {service: bot}
"""
RECORDS: Final = 40
PER_RECORD: Final = 25
SECRET: Final = "mail me at zed@example.org"


def _analyses(rng: random.Random, start_ms: int, offset: int) -> list[TextAnalysis]:
    out = []
    for i in range(PER_RECORD):
        ms = start_ms + rng.randrange(120 * MINUTE_MS)
        record = TextRecord(
            capture=rng.choice(["analyze", "store"]),
            event_id=f"e{offset}-{i}",
            service=rng.choice(["bot", "bot", "rag"]),
            span_kind=rng.choice(["llm", "llm", "retrieval"]),
            request_model="gpt-4o-mini",
            start_time=datetime.fromtimestamp(ms / 1000, tz=UTC),
            input_text=SECRET,
        )
        attack = rng.random() < 0.08
        pii = (PiiSpan(PiiType.EMAIL, 11, 26, 0.99),) if rng.random() < 0.3 else ()
        verdict = InjectionVerdict(0.95 if attack else 0.05, attack, "roleplay" if attack else None)
        out.append(TextAnalysis(record, (FieldAnalysis("input", pii=pii, injection=verdict),)))
    return out


def test_guardrail_rows_store_once_and_the_sql_matches_the_stream(
    client: Any, clock: Clock
) -> None:
    rng = random.Random(8)
    slos = parse_slo_file(SLOS)
    evaluator = BurnRateEvaluator(slos)
    start_ms = (clock.now_ms - 3 * 60 * MINUTE_MS) // MINUTE_MS * MINUTE_MS
    columns = {
        GUARDRAIL_FINDINGS_TABLE: FINDING_FIELDS,
        GUARDRAIL_ROLLUP_TABLE: GUARDRAIL_ROLLUP_FIELDS,
        TEXTS_TABLE: TEXT_FIELDS,
    }
    findings = 0
    everything = []
    for offset in range(RECORDS):
        analyses = _analyses(rng, start_ms, offset)
        everything += analyses
        tables = guardrail_tables(analyses, SourcePosition("llmwatch.texts", 0, offset))
        findings += len(tables.get(GUARDRAIL_FINDINGS_TABLE, []))
        for _copy in range(2):  # every record twice: a replay
            for table, rows in tables.items():
                insert_rows(client, SINK_DB, table, rows, columns[table])

    # The stream sees calls in time order (late ones would be counted apart, the SQL has no lateness).
    evaluator.observe_many(
        slo_row(a) for a in sorted(everything, key=lambda a: a.record.start_time)
    )

    def scalar(sql: str) -> Any:
        return client.query(sql).result_rows[0][0]

    assert scalar(f"SELECT count() FROM {SINK_DB}.{GUARDRAIL_FINDINGS_TABLE} FINAL") == findings
    total = scalar(f"SELECT sum(texts) FROM {SINK_DB}.{GUARDRAIL_ROLLUP_TABLE} FINAL")
    assert total == RECORDS * PER_RECORD
    stored = client.query(f"SELECT input_text FROM {SINK_DB}.{TEXTS_TABLE} FINAL").result_rows
    assert stored and all("zed@example.org" not in row[0] for row in stored if "<EMAIL>" in row[0])

    now = start_ms + 150 * MINUTE_MS + 12_345
    by_slo = {slo.name: slo for slo in slos.slos}
    for status in evaluator.status_rows(now):
        sql = slo_sql.burn_rate_sql(by_slo[status["slo"]], status["window_ms"], now, SINK_DB)
        good, got_total, _spent, _unpriced, burn = client.query(sql).result_rows[0]
        assert (good, got_total) == (status["good"], status["total"]), (status, sql)
        assert burn == status["burn_rate"] or abs(burn - status["burn_rate"]) < 1e-9
