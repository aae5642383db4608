#!/usr/bin/env bash
# Run the time-sensitive tests with the clock shifted a year ahead, so that no test depends on the
# calendar day it runs (rows past a table's TTL, events outside the worker's accepted window).
#
#   scripts/test-clock-shift.sh            the cheap subset (`make test` runs this)
#   scripts/test-clock-shift.sh --full     the whole suite under libfaketime, then the chdb subset
#   CLOCK_SHIFT_DAYS=730 scripts/...       another shift (days, default 365)
#
# How the clock is shifted (Debian 12: libfaketime 0.9.10, qemu-user 7.2), checked component by component:
# - Python and its child processes (`llmwatch worker` / `llmwatch sink`): libfaketime (LD_PRELOAD,
#   FAKETIME=+365d, inherited by children). FAKETIME_DONT_FAKE_MONOTONIC=1 keeps the monotonic clock real
#   (faking it makes every timed wait hang). libfaketime 0.9.10 then still gets monotonic and C11
#   deadlines wrong (time.sleep fails with EINVAL, librdkafka never times out): the small preload
#   scripts/clock-shift/monotonic_waits.c, built here with gcc, routes those waits around it.
# - chdb (in-process ClickHouse: now(), today(), TTL merges): NOT shifted by libfaketime; ClickHouse reads
#   the clock through the vDSO, past LD_PRELOAD. Under qemu-user (`qemu-x86_64 -U LD_PRELOAD python`,
#   qemu itself preloaded) every guest syscall goes through qemu's libc calls, which libfaketime fakes:
#   then now(), today() and TTL merges are shifted too. Emulation costs ~15x, so only the tests that need
#   chdb's own clock (TTL expiry, replayed dead letters, alert/status rows) run that way, and no child
#   processes (qemu-user runs them natively, unshifted).
# - The Tansu broker: a static binary, keeps the real clock (harmless: record timestamps come from the
#   clients, which are shifted).
# A guard test (tests/unit/test_clock_shift.py) asserts the shift inside each run, and this script fails
# unless it passed, so the check can never pass vacuously.
set -euo pipefail

cd "$(dirname "$0")/.."
DAYS="${CLOCK_SHIFT_DAYS:-365}"
PYTHON="${PYTHON:-.venv/bin/python}"
GUARD="tests/unit/test_clock_shift.py"
SHIM_SOURCE="scripts/clock-shift/monotonic_waits.c"
SHIM="${CLOCK_SHIFT_BUILD_DIR:-.venv/clock-shift}/monotonic_waits.so"

# Tests that insert rows into TTL'd tables or check event-time bounds, and the unit tests with clock logic.
SUBSET=(
    "$GUARD"
    tests/unit/sinks/test_schema.py
    tests/unit/sinks/test_rows.py
    tests/unit/sinks/test_health.py
    tests/unit/sinks/test_values.py
    tests/unit/streams/slo/test_burnrate.py
    tests/unit/streams/test_monitor.py
    tests/unit/streams/analytics/test_rollups.py
    tests/unit/streams/ingest/test_validate.py
    tests/unit/streams/analytics/test_lifecycle.py
    tests/unit/streams/test_stream_clock.py
    tests/unit/streams/ingest/test_time_bounds.py
    tests/unit/streams/analytics/test_topk.py
    tests/unit/dashboards/test_macros.py
    tests/unit/producers/test_events.py
    tests/integration/test_sink_writer.py::test_sink_writes_exactly_the_rows_and_replays_do_not_duplicate
    tests/integration/test_sink_writer.py::test_undecodable_and_rejected_records_become_dead_letters
    tests/integration/test_burnrate_sql.py
    tests/integration/test_rollup_windows.py
    tests/integration/test_alert_rules_sql.py
    tests/integration/test_dashboard_queries.py::test_query_returns_what_its_panel_needs
)
# Tests that read chdb's own clock (TTL merges, now()): shifted only under qemu-user.
CHDB_CLOCK=(
    tests/unit/sinks/test_schema.py::test_ttls_expire_old_rows_and_old_texts
    tests/unit/sinks/test_schema.py::test_replayed_dead_letters_count_once_but_other_payloads_stay
    tests/integration/test_burnrate_sql.py::test_alert_and_status_rows_are_stored_once
)
# Plugins those tests do not use: importing hypothesis alone takes ~8 s under emulation.
UNUSED_PLUGINS=(-p no:hypothesispytest -p no:anyio -p no:pytest_httpserver)
# Under libfaketime alone chdb keeps the real clock: deselect the tests that compare chdb's clock with
# Python's (the TTL test runs under qemu-user instead). File timestamps set by the kernel keep the real
# clock too: tests stamp files with os.utime from Python's clock instead.
NEEDS_REAL_CLOCK="test_ttls_expire_old_rows_and_old_texts or test_row_values_round_trip"
NEEDS_REAL_CLOCK+=" or test_rules_at_clickhouse_now"

log() { printf 'test-clock-shift: %s\n' "$*" >&2; }
die() {
    log "FAILED: $*"
    exit 1
}

ensure_tools() {
    local tool
    for tool in faketime qemu-x86_64 gcc; do
        if ! command -v "$tool" >/dev/null; then
            ./scripts/install-tools.sh
            break
        fi
    done
    command -v faketime >/dev/null || die "faketime is not installed (apt-get install faketime)"
    command -v qemu-x86_64 >/dev/null || die "qemu-x86_64 is not installed (apt-get install qemu-user)"
    [ -x "$PYTHON" ] || die "no Python at $PYTHON (run make install)"
    LIBFAKETIME="$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketime.so.1$' | head -n 1 || true)"
    [ -f "$LIBFAKETIME" ] || die "libfaketime.so.1 not found (apt-get install libfaketime)"
    if [ ! -f "$SHIM" ] || [ "$SHIM_SOURCE" -nt "$SHIM" ]; then
        command -v gcc >/dev/null || die "gcc is needed to build $SHIM_SOURCE (apt-get install gcc)"
        mkdir -p "$(dirname "$SHIM")"
        gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$SHIM" "$SHIM_SOURCE" -ldl \
            || die "could not build $SHIM_SOURCE"
    fi
}

# Run "$@" with the clock shifted; the guard reads the real start time from LLMWATCH_TEST_CLOCK_SHIFT.
shifted() {
    env TZ=UTC LD_PRELOAD="$PWD/$SHIM:$LIBFAKETIME" FAKETIME="+${DAYS}d" FAKETIME_DONT_FAKE_MONOTONIC=1 \
        LLMWATCH_TEST_CLOCK_SHIFT="$DAYS:$(date +%s)" "$@"
}

# Fail unless the shift is visible before any test runs.
check_python_shift() {
    local want got
    want="$(date -u -d "+${DAYS} days" +%Y-%m-%d)"
    got="$(shifted "$PYTHON" -c 'import datetime; print(datetime.datetime.now(datetime.UTC).date())')"
    [ "$got" = "$want" ] || die "the clock is not shifted: Python sees $got, expected $want"
    log "Python sees $got (real $(date -u +%Y-%m-%d), +$DAYS days)"
}

# run_pytest LABEL GUARD_TESTS COMMAND...: fail unless pytest passed and every guard test PASSED.
run_pytest() {
    local label="$1" guards="$2" report start=$SECONDS status=0 guard missing=""
    shift 2
    report="$(mktemp)"
    "$@" -q -p no:cacheprovider -rA >"$report" 2>&1 || status=$?
    for guard in $guards; do
        grep -q "^PASSED $GUARD::$guard\b" "$report" || missing+=" $guard"
    done
    tail -n 5 "$report" >&2
    [ -z "$missing" ] || grep -F "$GUARD" "$report" | head -n 5 >&2 || true
    rm -f "$report"
    [ -z "$missing" ] || die "$label: guard$missing did not pass, so the clock shift is not proven"
    [ "$status" -eq 0 ] || die "$label: tests failed with the clock +$DAYS days ahead (exit $status)"
    log "$label: passed in $((SECONDS - start)) s"
}

ensure_tools
check_python_shift
if [ "${1:-}" = "--full" ]; then
    shift
    TARGETS=(tests "$@")
else
    TARGETS=("${SUBSET[@]}" "$@")
fi

# The two runs are independent (own chdb folders, own broker): run them side by side.
run_pytest "qemu-user + libfaketime (chdb too)" \
    "test_python_clock_is_shifted test_chdb_clock_is_shifted" \
    shifted qemu-x86_64 -U LD_PRELOAD -E LLMWATCH_TEST_CLOCK_SHIFT_CHDB=1 \
    "$PYTHON" -m pytest "${UNUSED_PLUGINS[@]}" "$GUARD" "${CHDB_CLOCK[@]}" &
EMULATED=$!
trap 'pkill -P "$EMULATED" 2>/dev/null; kill "$EMULATED" 2>/dev/null || true' EXIT

run_pytest "libfaketime (Python and child processes)" \
    "test_python_clock_is_shifted test_child_process_clock_is_shifted" \
    shifted "$PYTHON" -m pytest "${TARGETS[@]}" -k "not ($NEEDS_REAL_CLOCK)"

wait "$EMULATED" || die "the emulated run (chdb's clock) failed"
trap - EXIT
log "all passed with the clock +$DAYS days ahead"
