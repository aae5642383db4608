"""The command line: health checks, clear one-line errors that name the bad value, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmwatch.cli import app
from llmwatch.grafana import parse_time
from tests.clock import Clock

runner = CliRunner()


def test_healthcheck_fails_without_a_heartbeat(tmp_path: Path) -> None:
    result = runner.invoke(app, ["healthcheck", "worker", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "heartbeat missing" in result.output


def test_healthcheck_passes_with_a_fresh_heartbeat(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeats" / "sink.heartbeat"
    beat.parent.mkdir(parents=True)
    beat.touch()
    # Stamped from the process's clock, not the kernel's (they differ under a shifted clock).
    now = time.time()
    os.utime(beat, (now, now))
    result = runner.invoke(app, ["healthcheck", "sink", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "sink healthy" in result.output


def test_healthcheck_rejects_an_old_heartbeat(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeats" / "worker.heartbeat"
    beat.parent.mkdir(parents=True)
    beat.touch()
    old = time.time() - 120
    os.utime(beat, (old, old))
    result = runner.invoke(app, ["healthcheck", "worker", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "s old" in result.output


def test_unknown_process_is_named() -> None:
    result = runner.invoke(app, ["healthcheck", "brokr"])
    assert result.exit_code == 2 and "'brokr'" in result.output


def test_invalid_environment_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMWATCH_PARTITIONS", "0")
    result = runner.invoke(app, ["healthcheck", "worker"])
    assert result.exit_code == 2
    assert "invalid settings" in result.output and "partitions" in result.output


@pytest.mark.parametrize("bad", ["yesterday", "now-5x", "2026-13-01"])
def test_snapshot_rejects_bad_times_by_value(bad: str) -> None:
    result = runner.invoke(app, ["snapshot", "--from", bad])
    assert result.exit_code == 2 and repr(bad) in result.output


def test_parse_time_relative_and_absolute(clock: Clock) -> None:
    now = clock.ago()
    earlier = clock.ago(hours=4)
    assert parse_time("now-90m", now) == now - timedelta(minutes=90)
    assert parse_time(earlier.strftime("%Y-%m-%dT%H:%M"), now) == earlier


def test_unreachable_kafka_is_one_line_naming_the_address(tmp_path: Path) -> None:
    # A closed loopback port: the process must exit 1 with the address, not a traceback.
    result = subprocess.run(
        [sys.executable, "-m", "llmwatch", "topics", "create", "--bootstrap", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LLMWATCH_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "cannot reach Kafka at '127.0.0.1:1'" in result.stderr
    assert "Traceback" not in result.stderr
