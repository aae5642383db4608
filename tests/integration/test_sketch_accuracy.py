"""Sketches stored per (minute, service, model, partition) in ClickHouse, merged by SQL over any
time range and dimension subset, give every quantile within 1% of the exact value of those events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from streams.analytics.sketches import RELATIVE_ACCURACY, LatencySketch, bin_value
from tests.clock import HOUR, Clock

MIGRATION = Path(__file__).parents[2] / "sinks" / "migrations" / "0003_sketch_functions.sql"
DATABASE = "sketch_accuracy"
TABLE = f"{DATABASE}.latency_sketches"
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
EVENTS = 40_000
MINUTES = 6
SERVICES = ("chat", "search", "agent")
MODELS = ("gpt-4o", "claude-sonnet", "llama-70b")
PARTITIONS = 4
START = Clock.read().ago(hours=1, step=HOUR)  # a whole hour, relative to the run's clock
# On a bin boundary the sketch is off by exactly alpha; allow floating-point rounding on top.
FLOAT_SLACK = 1e-12
# ClickHouse's exp2 may differ from libm's pow in the last bit or two.
ULP_TOLERANCE = 1e-15


def _statements(sql: str) -> list[str]:
    """Split on ';' at end of line (as sinks/migrate.py does), dropping comment lines."""
    parts = re.split(r";[ \t]*$", sql, flags=re.MULTILINE)
    code = [
        "\n".join(line for line in part.splitlines() if not line.strip().startswith("--"))
        for part in parts
    ]
    return [c.strip() for c in code if c.strip()]


@pytest.fixture()
def client(ch_client: Any) -> Iterator[Any]:
    for statement in _statements(MIGRATION.read_text()):
        ch_client.command(statement)
    ch_client.command(f"CREATE DATABASE {DATABASE}")
    ch_client.command(
        f"""CREATE TABLE {TABLE} (
            window DateTime, service LowCardinality(String), model LowCardinality(String),
            partition UInt16, bins Map(Int32, UInt64), zero_count UInt64, count UInt64
        ) ENGINE = MergeTree ORDER BY (window, service, model, partition)"""
    )
    yield ch_client


@dataclass(frozen=True)
class Events:
    latency: npt.NDArray[np.float64]
    minute: npt.NDArray[np.int64]
    service: npt.NDArray[np.int64]
    model: npt.NDArray[np.int64]
    partition: npt.NDArray[np.int64]


def _latencies(kind: str, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    if kind == "lognormal":
        return rng.lognormal(mean=np.log(800.0), sigma=1.0, size=EVENTS)
    if kind == "pareto":
        return (rng.pareto(1.3, size=EVENTS) + 1.0) * 40.0
    if kind == "bimodal_with_zeros":  # cache hits, fast calls, slow tool-using calls
        fast = rng.lognormal(mean=np.log(25.0), sigma=0.3, size=EVENTS)
        slow = rng.lognormal(mean=np.log(4_000.0), sigma=0.5, size=EVENTS)
        which = rng.uniform(size=EVENTS)
        return np.where(which < 0.01, 0.0, np.where(which < 0.7, fast, slow))
    raise AssertionError(kind)


def _events(kind: str, seed: int) -> Events:
    rng = np.random.default_rng(seed)
    return Events(
        latency=_latencies(kind, rng),
        minute=rng.integers(0, MINUTES, size=EVENTS),
        service=rng.choice(len(SERVICES), size=EVENTS, p=[0.6, 0.3, 0.1]),
        model=rng.integers(0, len(MODELS), size=EVENTS),
        partition=rng.integers(0, PARTITIONS, size=EVENTS),
    )


def _insert_sketches(client: Any, events: Events) -> int:
    """One sketch row per (minute, service, model, partition) piece; returns the number of rows."""
    group = ((events.minute * 10 + events.service) * 10 + events.model) * 10 + events.partition
    rows = []
    for g in np.unique(group).tolist():
        mask = group == g
        i = int(np.flatnonzero(mask)[0])
        sketch = LatencySketch()
        sketch.add_many(events.latency[mask])
        state = sketch.to_state()
        window = START + timedelta(minutes=int(events.minute[i]))
        dims = (SERVICES[events.service[i]], MODELS[events.model[i]], int(events.partition[i]))
        rows.append([window, *dims, state.bins, state.zero_count, state.count])
    names = ["window", "service", "model", "partition", "bins", "zero_count", "count"]
    client.insert(TABLE, rows, column_names=names)
    return len(rows)


@dataclass(frozen=True)
class Selection:
    first_minute: int
    end_minute: int
    services: tuple[str, ...] = SERVICES
    models: tuple[str, ...] = MODELS

    def mask(self, events: Events) -> npt.NDArray[np.bool_]:
        service = np.isin(events.service, [SERVICES.index(s) for s in self.services])
        model = np.isin(events.model, [MODELS.index(m) for m in self.models])
        minute = (events.minute >= self.first_minute) & (events.minute < self.end_minute)
        return service & model & minute

    def query(self, client: Any) -> tuple[list[float], int]:
        quantiles = ", ".join(
            f"llmwatch_quantile({q}, sumMap(bins), sum(zero_count))" for q in QUANTILES
        )
        sql = f"""SELECT {quantiles}, sum(count) FROM {TABLE}
                WHERE window >= {{start:DateTime}} AND window < {{end:DateTime}}
                  AND has({{services:Array(String)}}, service)
                  AND has({{models:Array(String)}}, model)"""
        params = {
            "start": START + timedelta(minutes=self.first_minute),
            "end": START + timedelta(minutes=self.end_minute),
            "services": list(self.services),
            "models": list(self.models),
        }
        *values, events = client.query(sql, parameters=params).result_rows[0]
        return [float(v) for v in values], int(events)


SELECTIONS = {
    "everything": Selection(0, MINUTES),
    "middle_minutes_two_services": Selection(1, 4, services=("chat", "agent")),
    "one_minute_one_model": Selection(3, 4, models=("claude-sonnet",)),
    "rare_service_two_models": Selection(0, 5, ("agent",), ("gpt-4o", "llama-70b")),
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("kind", ["lognormal", "pareto", "bimodal_with_zeros"])
def test_sql_quantiles_within_one_percent(client: Any, kind: str, seed: int) -> None:
    events = _events(kind, seed)
    rows = _insert_sketches(client, events)
    assert rows > MINUTES * PARTITIONS * len(MODELS) * len(SERVICES) * 0.9
    for name, selection in SELECTIONS.items():
        got, count = selection.query(client)
        chosen = events.latency[selection.mask(events)]
        assert count == chosen.size > 100, name
        # llmwatch_quantile (like ddsketch) returns the value of rank floor(q * (count - 1)) in
        # the sorted values, which is exactly numpy's "lower" method; interpolating methods would
        # add an error between neighbours that the sketch never claims to bound.
        exact = np.quantile(chosen, QUANTILES, method="lower")
        rel_error = np.abs(np.asarray(got) - exact) / np.where(exact > 0, exact, 1.0)
        assert rel_error.max() <= RELATIVE_ACCURACY + FLOAT_SLACK, (name, got, exact.tolist())
        merged = LatencySketch()
        merged.add_many(chosen)
        python = [merged.quantile(q) for q in QUANTILES]
        assert got == pytest.approx(python, rel=ULP_TOLERANCE, abs=0.0), name


def test_bin_value_matches_python_for_every_key(client: Any) -> None:
    keys = client.query(
        "SELECT k, llmwatch_sketch_bin_value(k) FROM "
        "(SELECT toInt32(number) - 35000 AS k FROM numbers(70001))"
    ).result_rows
    got = np.array([value for _, value in keys])
    want = np.array([bin_value(k) for k, _ in keys])
    assert np.abs(got / want - 1.0).max() <= ULP_TOLERANCE


def test_migration_is_idempotent_and_edges(client: Any) -> None:
    for statement in _statements(MIGRATION.read_text()):
        client.command(statement)
    empty = client.query(
        f"SELECT llmwatch_quantile(0.5, sumMap(bins), sum(zero_count)) FROM {TABLE}"
    ).result_rows
    assert empty == [(None,)]
    client.insert(TABLE, [[START, "chat", "m", 0, {5: 2}, 3, 5]], column_names=None)
    zeros_and_bins = client.query(
        f"SELECT llmwatch_quantile(0.5, bins, zero_count), "
        f"llmwatch_quantile(0.75, bins, zero_count) FROM {TABLE}"
    ).result_rows
    assert zeros_and_bins == [(0.0, pytest.approx(bin_value(5), rel=ULP_TOLERANCE))]
    with pytest.raises(Exception, match=r"q must be in \[0, 1\]"):
        client.query(f"SELECT llmwatch_quantile(1.5, bins, zero_count) FROM {TABLE}")


def test_per_minute_series_with_group_by(client: Any) -> None:
    events = _events("pareto", seed=4)
    _insert_sketches(client, events)
    series = client.query(
        f"SELECT window, llmwatch_quantile(0.99, sumMap(bins), sum(zero_count)) FROM {TABLE} "
        "WHERE service = 'search' GROUP BY window ORDER BY window"
    ).result_rows
    assert len(series) == MINUTES
    for minute, (window, p99) in enumerate(series):
        assert window.replace(tzinfo=UTC) == START + timedelta(minutes=minute)
        chosen = events.latency[(events.minute == minute) & (events.service == 1)]
        exact = float(np.quantile(chosen, 0.99, method="lower"))
        assert abs(p99 - exact) <= (RELATIVE_ACCURACY + FLOAT_SLACK) * exact
