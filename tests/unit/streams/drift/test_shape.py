"""Shape drift calibration: stationary traffic flags at most 1% of (window, scope, feature) results
after Benjamini-Hochberg, a silent model update (longer answers, same model id) is flagged on that scope
only, and a finish-reason shift is found."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from streams.drift.shape import ShapeWindow, compare, flag

SCOPES = [("support-bot", "gpt-4o-mini", "llm"), ("search-rag", "gpt-4o", "llm"),
          ("summarizer", "claude-haiku-4-5", "llm"), ("code-agent", "gpt-4o", "llm")]  # fmt: skip
FDR, MIN_PSI, MIN_SAMPLES = 0.01, 0.1, 200
WINDOW = 500


def _rows(
    rng: np.random.Generator, n: int, scope: tuple[str, str, str], *, longer: float = 1.0,
    length_share: float = 0.05,
) -> list[dict[str, Any]]:  # fmt: skip
    service, model, kind = scope
    out_tokens = rng.lognormal(np.log(250 * longer), 0.6, n)
    failed = rng.random(n) < 0.02
    length = rng.random(n) < length_share
    rows = []
    for i in range(n):
        rows.append({
            "service": service, "request_model": model, "span_kind": kind,
            "input_tokens": int(rng.lognormal(np.log(1500), 0.5)),
            "output_tokens": int(out_tokens[i]),
            "duration_ms": float(rng.lognormal(np.log(900 * longer), 0.5)),
            "time_to_first_token_ms": float(rng.lognormal(np.log(350), 0.4)),
            "finish_reasons": ["length" if length[i] else "stop"],
            "status": "error" if failed[i] else "ok",
            "error_type": "rate_limit" if failed[i] else None,
        })  # fmt: skip
    return rows


def _window(rng: np.random.Generator, n: int, **shifted: Any) -> ShapeWindow:
    window = ShapeWindow()
    for scope in SCOPES:
        kwargs = shifted if scope == SCOPES[0] else {}
        window.add_all(_rows(rng, n, scope, **kwargs))
    return window


def test_stationary_traffic_flags_at_most_one_percent_after_correction() -> None:
    rng = np.random.default_rng(1)
    reference = _window(rng, 4 * WINDOW)
    flagged = total = 0
    for _ in range(100):
        results = flag(compare(reference, _window(rng, WINDOW), min_samples=MIN_SAMPLES),
                       fdr=FDR, min_psi=MIN_PSI)  # fmt: skip
        flagged += sum(r.flagged for r in results)
        total += len(results)
    assert total == 100 * len(SCOPES) * 6
    assert flagged / total <= 0.01, f"{flagged} of {total} stationary results flagged"


def test_a_silent_model_update_is_flagged_on_its_scope_only() -> None:
    """Answers 30% longer (and slower) behind the same model id, in one scope."""
    rng = np.random.default_rng(2)
    reference = _window(rng, 4 * WINDOW)
    caught = 0
    for _ in range(30):
        results = flag(compare(reference, _window(rng, WINDOW, longer=1.3), min_samples=MIN_SAMPLES),
                       fdr=FDR, min_psi=MIN_PSI)  # fmt: skip
        hits = {(r.scope, r.feature) for r in results if r.flagged}
        caught += (SCOPES[0], "output_tokens") in hits
        assert all(scope == SCOPES[0] for scope, _feature in hits), hits
    assert caught >= 27, f"flagged in {caught} of 30 windows"


def test_a_finish_reason_shift_is_flagged_with_the_category_that_moved() -> None:
    rng = np.random.default_rng(3)
    reference = _window(rng, 4 * WINDOW)
    results = flag(compare(reference, _window(rng, WINDOW, length_share=0.25),
                           min_samples=MIN_SAMPLES), fdr=FDR, min_psi=MIN_PSI)  # fmt: skip
    (hit,) = [r for r in results if r.flagged]
    assert hit.feature == "finish_reason" and hit.scope == SCOPES[0]
    assert hit.top_shift.startswith("length: 5% -> 2") or hit.top_shift.startswith("length:")


def test_scopes_below_the_minimum_sample_are_not_tested() -> None:
    rng = np.random.default_rng(4)
    reference, current = _window(rng, 1_000), ShapeWindow()
    current.add_all(_rows(rng, MIN_SAMPLES - 1, SCOPES[0], longer=3.0))
    assert compare(reference, current, min_samples=MIN_SAMPLES) == []


def test_windows_merge_like_one_window() -> None:
    rng = np.random.default_rng(5)
    rows = _rows(rng, 600, SCOPES[1])
    whole, first, second = ShapeWindow(), ShapeWindow(), ShapeWindow()
    whole.add_all(rows)
    first.add_all(rows[:250])
    second.add_all(rows[250:])
    first.merge(second)
    assert first.calls == whole.calls and first.counts == whole.counts


@pytest.mark.parametrize(("fdr", "min_psi"), [(0.0, 0.1), (1.0, 0.1), (0.01, -1.0)])
def test_bad_thresholds_name_the_value(fdr: float, min_psi: float) -> None:
    with pytest.raises(ValueError, match="got"):
        flag([], fdr=fdr, min_psi=min_psi)
