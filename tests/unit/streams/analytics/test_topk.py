"""Top-K users: exact while under capacity, bounded over-estimation beyond it, trailing-hour window."""

from __future__ import annotations

import numpy as np
import pytest

from streams.analytics.topk import HOUR_MS, TopUsers

T0 = 1_790_000_000_000


def test_exact_under_capacity() -> None:
    top = TopUsers(capacity=100)
    for i, cost in enumerate([1.0, 5.0, 3.0, 5.0]):
        top.add("acme", f"u{i % 3}", cost, T0 + i)
    result = top.top(2)
    assert [(u.user_id, u.cost_usd, u.requests) for u in result] == [("u0", 6.0, 2), ("u1", 5.0, 1)]
    assert all(u.error_bound_usd == 0 for u in result)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_heavy_hitters_found_with_bounded_error_beyond_capacity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.3, 50_000) % 20_000
    costs = rng.lognormal(-5, 1, users.size)
    top = TopUsers(capacity=200)
    truth: dict[str, float] = {}
    for i, (user, cost) in enumerate(zip(users, costs, strict=True)):
        top.add("t", f"u{user}", float(cost), T0 + i)  # all inside one minute bucket
        truth[f"u{user}"] = truth.get(f"u{user}", 0.0) + float(cost)
    true_top = sorted(truth, key=lambda u: -truth[u])[:10]
    reported = {u.user_id: u for u in top.top(10)}
    assert set(reported) == set(true_top)
    for user, entry in reported.items():
        assert truth[user] <= entry.cost_usd + 1e-9
        assert entry.cost_usd - truth[user] <= entry.error_bound_usd + 1e-9


def test_trailing_hour_drops_old_buckets() -> None:
    top = TopUsers(capacity=10)
    top.add("t", "old", 100.0, T0)
    top.add("t", "new", 1.0, T0 + HOUR_MS + 60_000)
    assert [u.user_id for u in top.top(5)] == ["new"]


def test_unknown_cost_and_anonymous_calls_are_ignored() -> None:
    top = TopUsers()
    top.add("t", "", 1.0, T0)
    top.add("t", "u", None, T0)
    assert top.top(3) == []


@pytest.mark.parametrize(("kwargs", "bad"), [({"capacity": 0}, "0"), ({"window_ms": 1234}, "1234")])
def test_bad_arguments_are_named(kwargs: dict[str, int], bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        TopUsers(**kwargs)


def _naive_space_saving(
    stream: list[tuple[str, float]], capacity: int
) -> dict[tuple[str, str], list[float]]:
    """The textbook fold: evict ``min(entries, key=cost)``, ties to the earliest inserted."""
    entries: dict[tuple[str, str], list[float]] = {}
    for user, cost in stream:
        key = ("t", user)
        if key in entries:
            entries[key][0] += cost
            entries[key][1] += 1
        elif len(entries) < capacity:
            entries[key] = [cost, 1, 0.0]
        else:
            victim = min(entries, key=lambda k: entries[k][0])
            floor = entries.pop(victim)[0]
            entries[key] = [floor + cost, 1, floor]
    return entries


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_heap_eviction_matches_the_textbook_fold_including_ties(seed: int) -> None:
    # Costs from a tiny set (zeros included) make equal totals, where the victim's choice shows.
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.2, 6_000) % 400
    costs = rng.choice([0.0, 0.5, 1.0, 2.0], users.size)
    stream = [(f"u{u}", float(c)) for u, c in zip(users, costs, strict=True)]
    capacity = 25
    top = TopUsers(capacity=capacity)
    for i, (user, cost) in enumerate(stream[:3_000]):
        top.add("t", user, cost, T0 + i % 1_000)
    restored = TopUsers(capacity=capacity)  # a restart mid-stream keeps the same victims
    restored.load(top.dump())
    for i, (user, cost) in enumerate(stream[3_000:]):
        restored.add("t", user, cost, T0 + i % 1_000)
    bucket = restored.dump()["buckets"]
    assert len(bucket) == 1
    got = {(t, u): [c, r, e] for t, u, c, r, e in bucket[0][1]}
    assert got == _naive_space_saving(stream, capacity)


def test_load_rejects_a_user_listed_twice() -> None:
    entry = ["t", "u1", 1.0, 1, 0.0]
    with pytest.raises(ValueError, match=r"'u1'.*twice"):
        TopUsers(capacity=10).load({"watermark": T0, "buckets": [[T0, [entry, entry]]]})
