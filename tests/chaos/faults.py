"""The faults of the chaos run, each a ``begin`` / ``end`` pair applied to a :class:`ChaosRig`.

- broker down: the proxy refuses connections and resets live ones (every client loses the broker);
  at the end it listens again.
- ClickHouse unavailable: the sink stops cleanly, another process locks the chdb folder and a new sink
  is started, which must wait for the folder; at the end the lock is released.
- worker kill -9 / sink kill -9: SIGKILL of ``llmwatch worker`` / ``llmwatch sink``; at the end a new
  one is started.

Nothing here blocks for long: the folder lock waits at most its acquire and release timeouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from tests.chaos.rig import SINK, WORKER, ChaosRig

__all__ = ["FAULTS", "Fault"]


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    begin: Callable[[ChaosRig], None]
    end: Callable[[ChaosRig], None]
    exercises: str


def _broker_down(rig: ChaosRig) -> None:
    rig.proxy.cut()


def _broker_up(rig: ChaosRig) -> None:
    rig.proxy.restore()


def _clickhouse_locked(rig: ChaosRig) -> None:
    rig.lock_clickhouse()


def _clickhouse_released(rig: ChaosRig) -> None:
    rig.release_clickhouse()


def _kill(command: str) -> Callable[[ChaosRig], None]:
    return lambda rig: rig.processes.kill_command(command)


def _restart(command: str) -> Callable[[ChaosRig], None]:
    return lambda rig: rig.processes.restart(command)


FAULTS: Final = (
    Fault(
        "broker down",
        _broker_down,
        _broker_up,
        "SDK buffering and delivery timeouts; worker and sink reconnect, rejoin their groups "
        "and resume from committed offsets; no commit is taken for output that was not acked",
    ),
    Fault(
        "ClickHouse unavailable",
        _clickhouse_locked,
        _clickhouse_released,
        "the sink's start-up waits for ClickHouse (retry with backoff) while the topics back up; "
        "then it drains the backlog",
    ),
    Fault(
        "worker kill -9",
        _kill(WORKER),
        _restart(WORKER),
        "worker at-least-once: records processed but not committed are processed again; "
        "replayed rows and rollups have the same keys and collapse under FINAL",
    ),
    Fault(
        "sink kill -9",
        _kill(SINK),
        _restart(SINK),
        "sink at-least-once: rows inserted but not committed are inserted again and collapse "
        "under FINAL",
    ),
)
