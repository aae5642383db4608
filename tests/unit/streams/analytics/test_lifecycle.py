"""DeprecationCatalog: statuses around the boundary dates, matching, bundled data, bad files."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from streams.analytics.lifecycle import (
    GENAI_PRICES_SOURCE,
    DeprecationCatalog,
    DeprecationStatus,
    LifecycleFileError,
    ModelLifecycle,
)

S = DeprecationStatus
# Deprecated 2025-01-21, retired 2025-07-21 (Anthropic's Claude 2.1 dates).
DATED = ModelLifecycle(
    provider="anthropic",
    model="claude-2.1",
    deprecation_date=date(2025, 1, 21),
    retirement_date=date(2025, 7, 21),
    source="test",
)
RETIREMENT_ONLY = ModelLifecycle(
    provider="google", model="gemini-x", retirement_date=date(2025, 2, 15), source="test"
)
FLAGGED = ModelLifecycle(provider="google", model="gemini-y", deprecated=True, source="test")


@pytest.mark.parametrize(
    ("lifecycle", "today", "warn_days", "expected"),
    [
        (DATED, date(2024, 12, 21), 30, S.OK),  # 31 days before deprecation
        (DATED, date(2024, 12, 22), 30, S.DEPRECATION_SOON),  # 30 days before
        (DATED, date(2025, 1, 20), 30, S.DEPRECATION_SOON),
        (DATED, date(2025, 1, 20), 0, S.OK),
        (DATED, date(2025, 1, 21), 30, S.DEPRECATED),  # on the day
        (DATED, date(2025, 6, 20), 30, S.DEPRECATED),  # 31 days before retirement
        (DATED, date(2025, 6, 21), 30, S.RETIRING_SOON),  # 30 days before
        (DATED, date(2025, 7, 20), 30, S.RETIRING_SOON),
        (DATED, date(2025, 7, 20), 0, S.DEPRECATED),
        (DATED, date(2025, 7, 21), 30, S.RETIRED),  # on the day
        (DATED, date(2030, 1, 1), 30, S.RETIRED),
        (DATED, date(2024, 1, 1), 600, S.RETIRING_SOON),  # both windows open: retirement first
        (RETIREMENT_ONLY, date(2025, 1, 16), 30, S.RETIRING_SOON),
        (RETIREMENT_ONLY, date(2025, 1, 15), 30, S.OK),
        (RETIREMENT_ONLY, date(2025, 2, 15), 0, S.RETIRED),
        (FLAGGED, date(2020, 1, 1), 30, S.DEPRECATED),
    ],
)
def test_status_around_boundaries(
    lifecycle: ModelLifecycle, today: date, warn_days: int, expected: DeprecationStatus
) -> None:
    catalog = DeprecationCatalog([lifecycle], include_genai_prices=False)
    assert lifecycle.status(today, warn_days) == expected
    assert catalog.status(lifecycle.provider, lifecycle.model, today, warn_days) == expected


@pytest.fixture(scope="module")
def bundled() -> DeprecationCatalog:
    return DeprecationCatalog.load()


@pytest.mark.parametrize(
    ("provider", "model", "found"),
    [
        ("openai", "gpt-4-32k", ("openai", "gpt-4-32k", "2024-06-06", "2025-06-06")),
        (
            "openai",
            "GPT-4-Vision-Preview",
            ("openai", "gpt-4-vision-preview", "2024-06-06", "2024-12-06"),
        ),
        (
            "openai",
            "gpt-3.5-turbo-0613",
            ("openai", "gpt-3.5-turbo-0613", "2023-11-06", "2024-09-13"),
        ),
        ("anthropic", "claude-2.1", ("anthropic", "claude-2.1", "2025-01-21", "2025-07-21")),
        (
            "anthropic",
            "claude-instant-1.2",
            ("anthropic", "claude-instant-1.2", "2024-09-04", "2024-11-06"),
        ),
        (
            "anthropic",
            "claude-3-sonnet-20240229",
            ("anthropic", "claude-3-sonnet-20240229", "2025-01-21", "2025-07-21"),
        ),
        (None, "claude-2.0", ("anthropic", "claude-2.0", "2025-01-21", "2025-07-21")),  # inferred
        (
            "gcp.gemini",
            "gemini-2.5-pro-preview-05-06",
            ("google", "gemini-2.5-pro-preview-05-06", None, "2025-12-02"),
        ),
        (
            "gcp.vertex_ai",
            "gemini-1.0-pro-001",
            ("gcp.vertex_ai", "gemini-1.0-pro-001", None, "2025-04-09"),
        ),
        ("gcp.gemini", "gemini-1.0-pro-001", None),  # Vertex AI's date, not the Gemini API's
        ("azure.ai.openai", "gpt-4-32k", None),  # Azure retires on its own schedule
        ("openai", "gpt-4o", None),
        ("vllm", "llama-3-8b", None),
    ],
)
def test_bundled_lookup(
    bundled: DeprecationCatalog,
    provider: str | None,
    model: str,
    found: tuple[str, str, str | None, str] | None,
) -> None:
    lifecycle = bundled.lookup(provider, model)
    if found is None:
        assert lifecycle is None
    else:
        assert lifecycle is not None
        dates = (lifecycle.deprecation_date, lifecycle.retirement_date)
        assert (lifecycle.provider, lifecycle.model) == found[:2]
        assert tuple(d.isoformat() if d else None for d in dates) == found[2:]


@pytest.mark.parametrize(
    ("provider", "model", "today", "expected"),
    [
        ("openai", "gpt-4-32k", date(2024, 1, 1), S.OK),
        ("openai", "gpt-4-32k", date(2024, 5, 20), S.DEPRECATION_SOON),
        ("openai", "gpt-4-32k", date(2025, 1, 1), S.DEPRECATED),
        ("openai", "gpt-4-32k", date(2025, 5, 20), S.RETIRING_SOON),
        ("openai", "gpt-4-32k", date(2025, 6, 6), S.RETIRED),
        ("openai", "gpt-4o", date(2025, 6, 6), S.OK),
        ("openai", None, date(2025, 6, 6), S.OK),
    ],
)
def test_bundled_status(
    bundled: DeprecationCatalog,
    provider: str,
    model: str | None,
    today: date,
    expected: DeprecationStatus,
) -> None:
    assert bundled.status(provider, model, today, warn_days=30) == expected


def test_genai_prices_flag_is_used(bundled: DeprecationCatalog) -> None:
    lifecycle = bundled.lookup("gcp.gemini", "gemini-2.0-flash")
    assert lifecycle is not None
    assert (lifecycle.provider, lifecycle.deprecated, lifecycle.source) == (
        "google",
        True,
        GENAI_PRICES_SOURCE,
    )
    assert bundled.status("gcp.gemini", "gemini-2.0-flash", date(2025, 1, 1), 30) == S.DEPRECATED
    without = DeprecationCatalog.load(include_genai_prices=False)
    assert without.lookup("gcp.gemini", "gemini-2.0-flash") is None


def test_bundled_file_entries_cite_their_source(bundled: DeprecationCatalog) -> None:
    uncited = [e.model for e in bundled.entries if not e.source.startswith("https://")]
    assert len(bundled.entries) >= 30
    assert uncited == []


def test_exact_entries_win_over_globs_and_globs_apply_in_order(tmp_path: Path) -> None:
    path = tmp_path / "lifecycle.yaml"
    path.write_text(
        "models:\n"
        "  - {provider: acme, model: 'acme-1*', retirement_date: 2025-01-01, source: first}\n"
        "  - {provider: '*', model: 'acme-*', retirement_date: 2026-01-01, source: second}\n"
        "  - {provider: acme, model: acme-1-large, retirement_date: 2027-01-01, source: exact}\n"
    )
    catalog = DeprecationCatalog.load(path, include_genai_prices=False)
    sources = [
        getattr(catalog.lookup(provider, model), "source", None)
        for provider, model in [
            ("acme", "ACME-1-large"),
            ("acme", "acme-1-small"),
            ("other", "acme-2"),
            ("other", "beta"),
        ]
    ]
    assert sources == ["exact", "first", "second", None]


def test_lookups_are_cached(bundled: DeprecationCatalog) -> None:
    first = bundled.lookup("anthropic", "claude-2.1")
    assert bundled.lookup("anthropic", "claude-2.1") is first


def test_negative_warn_days_are_rejected(bundled: DeprecationCatalog) -> None:
    with pytest.raises(ValueError, match="got -1"):
        bundled.status("openai", "gpt-4-32k", date(2025, 1, 1), -1)


ENTRY: dict[str, Any] = {"provider": "openai", "model": "gpt-x", "source": "https://example.com"}


def _yaml_entry(**fields: Any) -> str:
    entry = {**ENTRY, **fields}
    body = ", ".join(f"{key}: {value}" for key, value in entry.items() if value is not None)
    return f"  - {{{body}}}\n"


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (
            _yaml_entry(deprecation_date="2025-06-01", retirement_date="2025-01-01"),
            ["models[0]", "model='gpt-x'", "2025-01-01 is before deprecation_date 2025-06-01"],
        ),
        (_yaml_entry(retirement_date="2025-13-01"), ["retirement_date", "'2025-13-01'"]),
        (_yaml_entry(retirement_date="soon"), ["retirement_date", "'soon'"]),
        (_yaml_entry(), ["needs a deprecation_date, a retirement_date or deprecated: true"]),
        (
            _yaml_entry(deprecated="true", deprecation_date="2025-01-01"),
            ["deprecation_date=2025-01-01"],
        ),
        (_yaml_entry(model="'  '", retirement_date="2025-01-01"), ["model:", "'  '"]),
        (_yaml_entry(source=None, retirement_date="2025-01-01"), ["source:", "Field required"]),
        (_yaml_entry(retired_on="2025-01-01"), ["retired_on", "Extra inputs"]),
        (
            _yaml_entry(retirement_date="2025-01-01") + _yaml_entry(retirement_date="2025-02-01"),
            ["duplicate", "model='gpt-x'"],
        ),
    ],
)
def test_invalid_entries_name_the_bad_value(
    tmp_path: Path, entries: str, expected: list[str]
) -> None:
    path = tmp_path / "lifecycle.yaml"
    path.write_text("version: 1\nmodels:\n" + entries)
    with pytest.raises(LifecycleFileError) as caught:
        DeprecationCatalog.load(path)
    message = str(caught.value)
    assert str(path) in message
    assert [part for part in expected if part not in message] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models: [\n", "not valid YAML"),
        ("[1, 2]\n", "expected a mapping"),
        ("version: 3\n", "got 3"),
    ],
)
def test_invalid_files_are_rejected(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "lifecycle.yaml"
    path.write_text(text)
    with pytest.raises(LifecycleFileError, match=expected):
        DeprecationCatalog.load(path)
