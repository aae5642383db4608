"""Guard of scripts/test-clock-shift.sh: the run really sees the shifted clock, so it never passes vacuously.

Skipped unless the script sets ``LLMWATCH_TEST_CLOCK_SHIFT`` to ``<days>:<real epoch seconds>`` (the real
clock read just before the shifted run started). What libfaketime shifts (checked on Debian 12, 0.9.10):
Python and its child processes (``llmwatch worker`` / ``llmwatch sink``): yes. chdb: no, the ClickHouse
inside it reads the clock through the vDSO, past LD_PRELOAD; it is shifted only when the run is emulated
by qemu-user (``LLMWATCH_TEST_CLOCK_SHIFT_CHDB=1``), whose syscalls go through the faked libc. The Tansu
broker is a static binary and keeps the real clock (record timestamps come from the clients).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any, Final

import pytest

SHIFT_ENV: Final = "LLMWATCH_TEST_CLOCK_SHIFT"
CHDB_ENV: Final = "LLMWATCH_TEST_CLOCK_SHIFT_CHDB"
DAY_S: Final = 86_400
# The run may take minutes after the real clock was read (longer when emulated).
TOLERANCE_S: Final = 3_600

pytestmark = pytest.mark.skipif(
    SHIFT_ENV not in os.environ, reason=f"only under scripts/test-clock-shift.sh ({SHIFT_ENV})"
)


def _shift() -> tuple[int, float]:
    """(days, real epoch seconds at the start) from the environment."""
    value = os.environ[SHIFT_ENV]
    days, sep, real = value.partition(":")
    if not sep or not days.isdigit():
        raise ValueError(f"{SHIFT_ENV} must be '<days>:<real epoch seconds>', got {value!r}")
    return int(days), float(real)


def _assert_shifted(seen_s: float, what: str) -> None:
    days, real = _shift()
    shift_s = seen_s - real
    assert abs(shift_s - days * DAY_S) <= TOLERANCE_S, (
        f"{what} reads {datetime.fromtimestamp(seen_s, UTC).isoformat()}: shifted by "
        f"{shift_s / DAY_S:.2f} days, expected {days}; the clock shift is not in effect"
    )


def test_python_clock_is_shifted() -> None:
    _assert_shifted(time.time(), "time.time()")
    _assert_shifted(datetime.now(UTC).timestamp(), "datetime.now()")


def test_child_process_clock_is_shifted() -> None:
    if os.environ.get(CHDB_ENV) == "1":
        pytest.skip("under qemu-user a child process runs natively, outside the emulated clock")
    child = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    _assert_shifted(float(child.stdout), "a child Python process")


def test_chdb_clock_is_shifted(ch_client: Any) -> None:
    if os.environ.get(CHDB_ENV) != "1":
        pytest.skip("chdb reads the vDSO clock: shifted only under qemu-user")
    now_s, today = ch_client.query("SELECT toUnixTimestamp(now()), today()").result_rows[0]
    _assert_shifted(float(now_s), "chdb now()")
    assert today == datetime.fromtimestamp(now_s, UTC).date(), f"chdb today() is {today!r}"
