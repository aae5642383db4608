"""Settings: precedence, validation that names the bad value, and a README that lists every variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from llmwatch.settings import ENV_PREFIX, Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def test_environment_is_read_and_explicit_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMWATCH_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("LLMWATCH_PARTITIONS", "12")
    assert Settings().bootstrap == "kafka:9092"
    assert Settings().layout.partitions == 12
    assert Settings(bootstrap="other:19092").bootstrap == "other:19092"


def test_default_dsn_is_embedded_chdb_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.dsn == f"chdb://{tmp_path.resolve() / 'clickhouse'}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bootstrap", "no-port-here"),
        ("clickhouse_dsn", "mysql://x"),
        ("partitions", 0),
        ("log_level", "LOUD"),
    ],
)
def test_bad_values_are_named(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**{field: value})
    assert str(value) in str(info.value)


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_readme_documents_every_setting(name: str) -> None:
    assert f"`{ENV_PREFIX}{name.upper()}`" in README.read_text()
