from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from sinks.migrate import (
    MIGRATIONS_DIR,
    MigrationChecksumError,
    MigrationError,
    applied_migrations,
    apply_migrations,
    load_migrations,
    split_statements,
)

DB = "mig_test"


@pytest.fixture()
def migrations_copy(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


def test_the_shipped_migrations_are_numbered_in_order() -> None:
    migrations = load_migrations()
    names = [m.name for m in migrations]
    assert names[:2] == ["0001_llm_calls.sql", "0002_llm_dlq.sql"]
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})


def test_apply_runs_every_file_in_order_then_nothing(ch_client: Any) -> None:
    expected = [m.name for m in load_migrations()]
    assert apply_migrations(ch_client, DB) == expected
    assert apply_migrations(ch_client, DB) == []
    tables = ch_client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name",
        parameters={"db": DB},
    ).result_columns[0]
    assert {"llm_calls", "llm_dlq", "schema_migrations"} <= set(tables)


def test_databases_are_migrated_independently(ch_client: Any) -> None:
    first = apply_migrations(ch_client, "db_one")
    assert apply_migrations(ch_client, "db_two") == first
    assert apply_migrations(ch_client, "db_one") == []


def test_recorded_checksums_are_the_file_sha256(ch_client: Any) -> None:
    apply_migrations(ch_client, DB)
    rows = ch_client.query(
        f"SELECT version, name, checksum, applied_at FROM {DB}.schema_migrations ORDER BY version"
    ).result_rows
    expected = [
        (m.version, m.name, hashlib.sha256(m.path.read_bytes()).hexdigest())
        for m in load_migrations()
    ]
    assert [row[:3] for row in rows] == expected
    assert all(row[3].year >= 2026 for row in rows)


def test_a_changed_applied_file_raises_naming_it(ch_client: Any, migrations_copy: Path) -> None:
    apply_migrations(ch_client, DB, directory=migrations_copy)
    changed = migrations_copy / "0002_llm_dlq.sql"
    changed.write_text(changed.read_text() + "\n-- edited after it was applied\n")
    with pytest.raises(MigrationChecksumError, match=r"0002_llm_dlq\.sql"):
        apply_migrations(ch_client, DB, directory=migrations_copy)


def test_a_failing_migration_is_not_recorded_and_names_the_file(
    ch_client: Any, migrations_copy: Path
) -> None:
    (migrations_copy / "9001_broken.sql").write_text(
        "CREATE TABLE IF NOT EXISTS {database}.ok_table (x UInt8) ENGINE = Memory;\n"
        "CREATE TABLE {database}.broken (x NoSuchType) ENGINE = Memory;\n"
    )
    with pytest.raises(MigrationError, match=r"9001_broken\.sql statement 2"):
        apply_migrations(ch_client, DB, directory=migrations_copy)
    assert 9001 not in applied_migrations(ch_client, DB)
    assert 1 in applied_migrations(ch_client, DB)


def test_database_placeholder_is_replaced(ch_client: Any, migrations_copy: Path) -> None:
    (migrations_copy / "9002_extra.sql").write_text(
        "CREATE TABLE IF NOT EXISTS {database}.extra (x UInt8) ENGINE = Memory;\n"
    )
    assert "9002_extra.sql" in apply_migrations(
        ch_client, "placeholder_db", directory=migrations_copy
    )
    assert ch_client.command("EXISTS TABLE placeholder_db.extra") == 1


@pytest.mark.parametrize("name", ["bad-name", "1st", "a.b", "", "x y"])
def test_database_name_must_be_an_identifier(ch_client: Any, name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        apply_migrations(ch_client, name)


def test_badly_named_file_is_refused(migrations_copy: Path) -> None:
    (migrations_copy / "extra.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=r"extra\.sql"):
        load_migrations(migrations_copy)


def test_duplicate_versions_are_refused(migrations_copy: Path) -> None:
    (migrations_copy / "0001_again.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="share version 1"):
        load_migrations(migrations_copy)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1;\nSELECT 2;\n", ["SELECT 1", "SELECT 2"]),
        ("SELECT 1;  \n\nSELECT 2", ["SELECT 1", "SELECT 2"]),
        ("SELECT 'a;b';\n", ["SELECT 'a;b'"]),
        ("-- only a comment\n;\nSELECT 1;\n", ["SELECT 1"]),
        (
            "-- header\nCREATE TABLE t\n(\n  x UInt8\n);\n",
            ["-- header\nCREATE TABLE t\n(\n  x UInt8\n)"],
        ),
        ("", []),
    ],
)
def test_split_statements(sql: str, expected: list[str]) -> None:
    assert split_statements(sql) == expected
