"""``llmwatch sink`` waits for ClickHouse to become available instead of exiting at start.

With embedded ClickHouse (chdb) only one process may open the data folder; while another holds it, the
sink's connect fails. A supervisor (compose's ``restart: unless-stopped``) would restart a sink that
exits, but a sink that waits and retries with backoff loses no time and needs no supervisor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

from llmwatch.broker import TansuBroker
from sinks.schema import MIGRATIONS_TABLE, qualified
from streams.admin import ensure_topics
from tests.chaos.folder_lock import FolderLock
from tests.integration.pipeline_harness import (
    ProcessGroup,
    clickhouse,
    pipeline_settings,
    wait_until,
)

# Long enough for the sink to start, fail to open the folder and (before the fix) exit.
LOCKED_FOR_S: Final = 6.0
OPEN_TIMEOUT_S: Final = 30.0


def test_sink_started_while_clickhouse_is_locked_waits_and_then_runs(
    broker: TansuBroker,
    topic_prefix: str,
    tmp_path: Path,
    chdb_dsn: str,
    processes: ProcessGroup,
) -> None:
    settings = pipeline_settings(broker.bootstrap, topic_prefix, tmp_path / "data")
    settings = settings.model_copy(update={"clickhouse_dsn": chdb_dsn})
    ensure_topics(broker.bootstrap, settings.layout.specs())
    heartbeat = settings.heartbeat_path("sink")
    with FolderLock(chdb_dsn):
        sink = processes.start("sink", settings)
        time.sleep(LOCKED_FOR_S)
        processes.check()  # the sink is still there, waiting
        assert not heartbeat.exists(), "the sink ran although ClickHouse was locked"
    wait_until(heartbeat.exists, "the sink to open ClickHouse", OPEN_TIMEOUT_S, processes)
    assert processes.tails().count("retrying") >= 1  # it said what it was waiting for
    assert sink.stop() == 0
    with clickhouse(chdb_dsn) as client:  # it migrated the folder once it could open it
        assert (
            int(
                client.command(
                    f"SELECT count() FROM {qualified(MIGRATIONS_TABLE, settings.database)}"
                )
            )
            > 0
        )
