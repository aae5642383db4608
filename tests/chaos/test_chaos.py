"""The chaos run, short: the same four faults as ``make chaos`` (broker down, ClickHouse unavailable,
worker kill -9, sink kill -9), each lasting ``fault_s`` under steady SDK traffic (about 75 s in all).

It asserts the run's guarantee (``tests.chaos.run``): every event emitted is a row, a dead letter or an
SDK-counted drop, none twice; the rollups add up to the stored calls; and no process had to be restarted
by the supervisor (the worker and the sink ride out each fault on their own).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.faults import FAULTS
from tests.chaos.run import BASELINE, ChaosPlan, run_chaos


@pytest.mark.slow
@pytest.mark.parametrize("fault_s", [5.0])
def test_no_event_is_lost_or_duplicated_under_faults(tmp_path: Path, fault_s: float) -> None:
    plan = ChaosPlan(fault_s, recover_s=7.0, baseline_s=5.0, rate=200.0, drain_timeout_s=60.0)
    report = run_chaos(plan, tmp_path)
    print(f"\n{report.table()}")
    assert [p.name for p in report.phases] == [BASELINE, *(f.name for f in FAULTS)]
    assert report.drained
    outcome = zip(report.phases, report.counts, strict=True)
    assert {p.name: (c.lost, c.duplicated, c.missing_after_recovery) for p, c in outcome} == {
        p.name: (0, 0, 0) for p in report.phases
    }
    total = report.total
    assert total.emitted == total.rows + total.dlq + total.drops
    assert total.dlq == sum(len(p.invalid_ids) for p in report.phases)  # every invalid one
    assert [c.what for c in report.rollups if not c.ok] == []
    assert (report.foreign, report.dlq_unattributed) == (0, 0)
    assert {p.name: dict(p.restarts) for p in report.phases} == {p.name: {} for p in report.phases}
    assert report.ok
