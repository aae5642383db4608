"""The SLO file model and loader, the window and burn-rate definitions, and the SQL string builder."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from dashboards.slo_sql import burn_rate_sql, quote, selector_sql
from streams.slo.config import (
    DEFAULT_COST_RULES,
    DEFAULT_RULES,
    HOUR_MS,
    MINUTE_MS,
    Selector,
    Severity,
    SloFileError,
    cost_burn_rate,
    load_slo_file,
    parse_duration,
    parse_slo_file,
    ratio_burn_rate,
    window_bounds,
)

REPO: Final = Path(__file__).resolve().parents[4]
DEFAULT_SLO_FILE: Final = REPO / "config" / "slos.yaml"
SIMULATOR_SERVICES: Final = {"support-bot", "search-rag", "code-agent", "summarizer"}

VALID: Final = """
version: 1
slos:
  - name: bot-latency
    objective: 0.99
    sli: {type: latency, threshold_ms: 5000}
    selector: {service: bot}
  - name: bot-cost
    sli: {type: cost, usd_per_hour: 2.5}
    selector: {service: bot, span_kind: null}
  - name: bot-ttft
    objective: 0.95
    sli: {type: ttft, threshold_ms: 800}
    rules:
      - {name: quick, long_window: 30m, short_window: 2m, burn_rate: 10, severity: page}
    period: 7d
"""


def _slo(body: str) -> str:
    return "version: 1\nslos:\n" + body


def test_default_file_loads_and_covers_the_simulator_services() -> None:
    slo_file = load_slo_file(DEFAULT_SLO_FILE)
    services = {slo.selector.service for slo in slo_file.slos}
    types = {slo.sli.type for slo in slo_file.slos}
    tenants = {slo.selector.tenant for slo in slo_file.slos if slo.sli.type == "cost"}
    assert services >= SIMULATOR_SERVICES
    assert types == {"latency", "availability", "ttft", "cost", "guardrail"}
    assert tenants - {None}, "one cost budget per tenant"
    assert all(slo.burn_rules for slo in slo_file.slos)


def test_defaults_are_the_sre_workbook_rules() -> None:
    slo_file = parse_slo_file(VALID)
    latency, cost, ttft = slo_file.slos
    fast, slow = latency.burn_rules
    assert (fast.name, fast.long_ms, fast.short_ms, fast.burn_rate, fast.severity) == (
        "fast", HOUR_MS, 5 * MINUTE_MS, 14.4, Severity.PAGE
    )  # fmt: skip
    assert (slow.name, slow.long_ms, slow.short_ms, slow.burn_rate, slow.severity) == (
        "slow", 6 * HOUR_MS, 30 * MINUTE_MS, 6.0, Severity.TICKET
    )  # fmt: skip
    assert latency.burn_rules == DEFAULT_RULES
    assert cost.burn_rules == DEFAULT_COST_RULES
    assert (cost.burn_rules[0].burn_rate, cost.burn_rules[0].severity) == (1.0, Severity.TICKET)
    assert [r.name for r in ttft.burn_rules] == ["quick"]
    assert (ttft.period_ms, latency.period_ms) == (7 * 24 * HOUR_MS, 30 * 24 * HOUR_MS)
    assert slo_file.allowed_lateness_ms == 2 * MINUTE_MS
    assert cost.selector.span_kind is None and latency.selector.span_kind == "llm"


def test_defaults_section_overrides_the_builtin_rules() -> None:
    text = (
        "version: 1\ndefaults:\n  allowed_lateness: 30s\n  rules:\n"
        "    - {name: only, long_window: 2h, short_window: 10m, burn_rate: 3, severity: ticket}\n"
        "slos:\n  - {name: a, objective: 0.9, sli: {type: availability}}\n"
    )
    slo_file = parse_slo_file(text)
    assert [r.name for r in slo_file.slos[0].burn_rules] == ["only"]
    assert slo_file.slos[0].longest_window_ms == 2 * HOUR_MS
    assert slo_file.allowed_lateness_ms == 30_000


@pytest.mark.parametrize(
    ("text", "ms"),
    [("5m", 300_000), ("1h", 3_600_000), ("6h", 21_600_000), ("30d", 2_592_000_000),
     ("45s", 45_000), ("2w", 1_209_600_000), ("0m", 0)],
)  # fmt: skip
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    "text", ["5", "5 m", "1.5h", "5M", "05m", "-5m", "1h30m", "m", "", "5mins"]
)
def test_parse_duration_is_strict(text: str) -> None:
    with pytest.raises(ValueError, match="duration must be") as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            _slo(" - {name: a, objective: 1.5, sli: {type: availability}}"),
            ["slos[0] (name='a')", "objective", "1.5"],
            id="objective-above-1",
        ),
        pytest.param(
            _slo(" - {name: a, objective: 0, sli: {type: availability}}"),
            ["slos[0] (name='a')", "objective", "got 0"],
            id="objective-zero",
        ),
        pytest.param(
            _slo(" - {name: a, objective: 0.9, sli: {type: saturation}}"),
            ["slos[0] (name='a')", "sli", "'saturation'"],
            id="unknown-sli-type",
        ),
        pytest.param(
            _slo(
                " - {name: a, objective: 0.9, sli: {type: availability}}\n"
                " - {name: b, objective: 0.9, sli: {type: availability}}\n"
                " - {name: a, objective: 0.9, sli: {type: availability}}"
            ),
            ["duplicate SLO name 'a'", "slos[0]", "slos[2]"],
            id="duplicate-names",
        ),
        pytest.param(
            _slo(
                " - {name: a, objective: 0.9, sli: {type: availability}, rules: [{name: f,"
                " long_window: 1hour, short_window: 5m, burn_rate: 2, severity: page}]}"
            ),
            ["slos[0] (name='a')", "rules.0.long_window", "'1hour'"],
            id="bad-duration",
        ),
        pytest.param(
            _slo(
                " - {name: a, objective: 0.9, sli: {type: availability}, rules: [{name: f,"
                " long_window: 1h, short_window: 90s, burn_rate: 2, severity: page}]}"
            ),
            ["slos[0] (name='a')", "whole number of minutes", "'90s'"],
            id="window-not-whole-minutes",
        ),
        pytest.param(
            _slo(
                " - {name: a, objective: 0.9, sli: {type: availability}, rules: [{name: f,"
                " long_window: 5m, short_window: 1h, burn_rate: 2, severity: page}]}"
            ),
            ["slos[0] (name='a')", "short_window must be shorter", "'1h'"],
            id="short-longer-than-long",
        ),
        pytest.param(
            _slo(" - {name: Bot_Latency, objective: 0.9, sli: {type: availability}}"),
            ["slos[0] (name='Bot_Latency')", "name", "'Bot_Latency'"],
            id="bad-name",
        ),
        pytest.param(
            _slo(" - {name: a, sli: {type: latency, threshold_ms: 100}}"),
            ["slos[0] (name='a')", "needs an objective", "'latency'"],
            id="missing-objective",
        ),
        pytest.param(
            _slo(" - {name: a, objective: 0.99, sli: {type: cost, usd_per_hour: 5}}"),
            ["slos[0] (name='a')", "takes no objective", "0.99"],
            id="objective-on-cost",
        ),
        pytest.param(
            _slo(" - {name: a, objective: 0.9, sli: {type: latency, threshold_ms: -1}}"),
            ["slos[0] (name='a')", "threshold_ms", "-1"],
            id="negative-threshold",
        ),
        pytest.param(
            _slo(" - {name: a, objective: 0.9, sli: {type: availability}, selector: {team: x}}"),
            ["slos[0] (name='a')", "selector.team", "'x'"],
            id="unknown-selector-field",
        ),
        pytest.param(
            "version: 1\ndefaults: {period: 90m}\n", ["defaults.period", "'90m'"], id="bad-period"
        ),
        pytest.param(
            _slo(" - {name: a, objective: 0.9, sli: {type: availability}, period: 2h}"),
            ["SLO 'a'", "period '2h' is shorter than its longest window", "'6h'"],
            id="period-shorter-than-window",
        ),
        pytest.param("version: 2\n", ["version", "got 2"], id="bad-version"),
        pytest.param("- 1\n", ["expected a mapping", "[1]"], id="not-a-mapping"),
        pytest.param("version: [1\n", ["not valid YAML"], id="not-yaml"),
    ],
)
def test_file_errors_name_the_file_the_slo_and_the_value(text: str, expected: list[str]) -> None:
    with pytest.raises(SloFileError) as info:
        parse_slo_file(text, "team/slos.yaml")
    message = str(info.value)
    assert message.startswith("team/slos.yaml: ")
    for part in expected:
        assert part in message


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SloFileError, match=r"nope\.yaml"):
        load_slo_file(missing)


@pytest.mark.parametrize(
    ("now_ms", "window_ms", "bounds"),
    [
        (10 * MINUTE_MS, 5 * MINUTE_MS, (6 * MINUTE_MS, 11 * MINUTE_MS)),
        (10 * MINUTE_MS + 59_999, 5 * MINUTE_MS, (6 * MINUTE_MS, 11 * MINUTE_MS)),
        (11 * MINUTE_MS, 5 * MINUTE_MS, (7 * MINUTE_MS, 12 * MINUTE_MS)),
        (2 * HOUR_MS + 1, HOUR_MS, (HOUR_MS + MINUTE_MS, 2 * HOUR_MS + MINUTE_MS)),
    ],
)
def test_window_bounds_hold_whole_minute_buckets(
    now_ms: int, window_ms: int, bounds: tuple[int, int]
) -> None:
    assert window_bounds(now_ms, window_ms) == bounds
    assert (bounds[1] - bounds[0]) == window_ms


@pytest.mark.parametrize(
    ("good", "total", "objective", "burn"),
    [(0, 0, 0.99, 0.0), (99, 100, 0.99, 1.0), (90, 100, 0.99, 10.0), (100, 100, 0.9, 0.0),
     (0, 10, 0.5, 2.0)],
)  # fmt: skip
def test_ratio_burn_rate(good: int, total: int, objective: float, burn: float) -> None:
    assert ratio_burn_rate(good, total, objective) == pytest.approx(burn)


@pytest.mark.parametrize(
    ("spent", "window_ms", "budget", "burn"),
    [(1.0, HOUR_MS, 1.0, 1.0), (1.0, 5 * MINUTE_MS, 2.0, 6.0), (0.0, HOUR_MS, 3.0, 0.0)],
)
def test_cost_burn_rate(spent: float, window_ms: int, budget: float, burn: float) -> None:
    assert cost_burn_rate(spent, window_ms, budget) == pytest.approx(burn)


@pytest.mark.parametrize(
    ("value", "literal"), [("a", "'a'"), ("o'brien", "'o\\'brien'"), ("c:\\x", "'c:\\\\x'")]
)
def test_quote_escapes(value: str, literal: str) -> None:
    assert quote(value) == literal


@pytest.mark.parametrize(
    ("selector", "sql"),
    [
        (Selector(span_kind=None), "1"),
        (Selector(), "span_kind = 'llm'"),
        (
            Selector(service="s", environment="prod", provider="openai", tenant="t", model="m"),
            "service = 's' AND environment = 'prod' AND provider_name = 'openai' AND "
            "tenant_id = 't' AND span_kind = 'llm' AND "
            "if(request_model != '', request_model, response_model) = 'm'",
        ),
    ],
)
def test_selector_sql(selector: Selector, sql: str) -> None:
    assert selector_sql(selector) == sql


@pytest.mark.parametrize(
    ("window", "database", "error"),
    [("90s", "db", "whole number of minutes"), (0, "db", "got 0"),
     ("1h", "db; DROP", "plain identifier")],
)  # fmt: skip
def test_burn_rate_sql_rejects_bad_arguments(window: str | int, database: str, error: str) -> None:
    slo = parse_slo_file(VALID).slos[0]
    with pytest.raises(ValueError, match=error):
        burn_rate_sql(slo, window, 0, database)


def test_burn_rate_sql_without_now_uses_the_server_clock() -> None:
    slo = parse_slo_file(VALID).slos[1]
    sql = burn_rate_sql(slo, "5m", None, "llmwatch")
    assert "toStartOfMinute(now())" in sql
    assert "FROM llmwatch.llm_calls FINAL" in sql
