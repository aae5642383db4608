"""Apply the versioned schema migrations in ``sinks/migrations`` idempotently.

Files are named ``NNNN_description.sql`` and applied in numeric order. A file's SQL may use the
``{database}`` placeholder, replaced by the target database name (``llmwatch`` by default; tests pass
their own to isolate). Statements are separated by a ``;`` at the end of a line.

Guarantees:
- :func:`apply_migrations` applies each file not yet recorded in ``{database}.schema_migrations`` and
  then records its version, file name and sha256 checksum, so running it again applies nothing.
- A recorded migration whose file changed since (checksum mismatch) raises
  :class:`MigrationChecksumError` naming the file, before anything is applied: history is immutable,
  a change is a new migration.
- ClickHouse DDL is not transactional: if a statement fails, the migration is not recorded and the
  error (:class:`MigrationError`, naming the file and statement) propagates; the next start runs the
  file again from the top. Every statement must therefore be idempotent (``IF NOT EXISTS``,
  ``CREATE OR REPLACE``).
- Two processes migrating at once both run idempotent statements; ``schema_migrations`` is a
  ``ReplacingMergeTree`` keyed by version, so a version recorded twice reads as one (FINAL).

What can block: each DDL statement, for as long as ClickHouse takes.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from clickhouse_connect.driver.client import Client

from sinks.schema import DEFAULT_DATABASE, MIGRATIONS_TABLE, qualified, validate_database

__all__ = [
    "DATABASE_PLACEHOLDER",
    "MIGRATIONS_DIR",
    "Migration",
    "MigrationChecksumError",
    "MigrationError",
    "applied_migrations",
    "apply_migrations",
    "load_migrations",
    "split_statements",
]

log = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
DATABASE_PLACEHOLDER: Final = "{database}"
_FILE_RE: Final = re.compile(r"^(\d+)_[A-Za-z0-9_]+\.sql$")
# A statement ends with ';' at the end of a line (trailing spaces allowed).
_STATEMENT_END_RE: Final = re.compile(r";[ \t]*$", re.MULTILINE)
_COMMENT_LINE_RE: Final = re.compile(r"^\s*--.*$", re.MULTILINE)


class MigrationError(RuntimeError):
    """A migration could not be read or applied."""


class MigrationChecksumError(MigrationError):
    """An applied migration's file has changed since it was applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # the file name, e.g. "0001_llm_calls.sql"
    path: Path
    checksum: str  # sha256 of the file bytes, hex
    sql: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every ``NNNN_name.sql`` in ``directory``, sorted by version; duplicate versions raise."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            raise MigrationError(f"migration file name must look like 0001_name.sql, got {path}")
        data = path.read_bytes()
        migration = Migration(
            version=int(match.group(1)),
            name=path.name,
            path=path,
            checksum=hashlib.sha256(data).hexdigest(),
            sql=data.decode("utf-8"),
        )
        if migration.version in found:
            raise MigrationError(
                f"two migrations share version {migration.version}: "
                f"{found[migration.version].path} and {path}"
            )
        found[migration.version] = migration
    return [found[v] for v in sorted(found)]


def split_statements(sql: str) -> list[str]:
    """The statements of a migration file; comment-only fragments are dropped."""
    statements = []
    for fragment in _STATEMENT_END_RE.split(sql):
        if _COMMENT_LINE_RE.sub("", fragment).strip():
            statements.append(fragment.strip())
    return statements


def _bootstrap(client: Client, database: str) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {qualified(MIGRATIONS_TABLE, database)} ("
        " version UInt32, name String, checksum String,"
        " applied_at DateTime64(3, 'UTC') DEFAULT now64(3)"
        ") ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"
    )


def applied_migrations(client: Client, database: str = DEFAULT_DATABASE) -> dict[int, str]:
    """Recorded migrations of ``database``: version -> checksum (empty before the first run)."""
    table = qualified(MIGRATIONS_TABLE, database)
    exists = client.command(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": MIGRATIONS_TABLE},
    )
    if not int(str(exists)):
        return {}
    result = client.query(f"SELECT version, checksum FROM {table} FINAL ORDER BY version")
    return {int(version): str(checksum) for version, checksum in result.result_rows}


def _verify(migrations: list[Migration], applied: dict[int, str]) -> None:
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationChecksumError(
                f"migration {migration.path} was applied with checksum {recorded[:12]}... but the "
                f"file now has {migration.checksum[:12]}...; applied migrations are immutable, "
                "restore the file and add a new migration for the change"
            )


def _apply(client: Client, migration: Migration, database: str) -> None:
    sql = migration.sql.replace(DATABASE_PLACEHOLDER, database)
    for number, statement in enumerate(split_statements(sql), start=1):
        try:
            client.command(statement)
        except Exception as exc:  # driver errors (DatabaseError, OperationalError, ...)
            raise MigrationError(
                f"migration {migration.name} statement {number} failed: {exc}"
            ) from exc
    client.insert(
        qualified(MIGRATIONS_TABLE, database),
        [[migration.version, migration.name, migration.checksum]],
        column_names=["version", "name", "checksum"],
    )


def apply_migrations(
    client: Client,
    database: str = DEFAULT_DATABASE,
    *,
    directory: Path = MIGRATIONS_DIR,
) -> list[str]:
    """Apply pending migrations to ``database``; return the file names newly applied, in order."""
    validate_database(database)
    migrations = load_migrations(directory)
    _bootstrap(client, database)
    applied = applied_migrations(client, database)
    _verify(migrations, applied)
    newly = []
    for migration in migrations:
        if migration.version in applied:
            continue
        _apply(client, migration, database)
        log.info("applied migration %s to database %s", migration.name, database)
        newly.append(migration.name)
    return newly
