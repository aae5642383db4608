from __future__ import annotations

import pytest

from llmwatch.broker import free_port
from sinks.clickhouse import ClickHouseConnectError, connect, mask_dsn


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("http://user:s3cret@host:8123/db", "http://user:***@host:8123/db"),
        (
            "https://u:p%40ss@ch.example.com:8443/llmwatch",
            "https://u:***@ch.example.com:8443/llmwatch",
        ),
        ("http://host:8123/db", "http://host:8123/db"),
        ("chdb:///var/lib/llmwatch/clickhouse", "chdb:///var/lib/llmwatch/clickhouse"),
        ("http://:onlypass@host/db", "http://:***@host/db"),
    ],
)
def test_mask_dsn(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("mysql://u:topsecret@host/db", "scheme must be one of"),
        ("chdb://relative/path", "chdb:///absolute/path or chdb://memory"),
        ("http:///db", "has no host"),
    ],
)
def test_malformed_dsn_raises_value_error_without_password(dsn: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        connect(dsn)
    assert "topsecret" not in str(info.value)


def test_unreachable_server_names_the_masked_dsn_and_chains_the_driver_error() -> None:
    dsn = f"http://llm:hunter2@127.0.0.1:{free_port()}/llmwatch"
    with pytest.raises(ClickHouseConnectError) as info:
        connect(dsn)
    message = str(info.value)
    assert "http://llm:***@127.0.0.1:" in message
    assert "hunter2" not in message
    assert info.value.__cause__ is not None


def test_chdb_dsn_connects(chdb_dsn: str) -> None:
    client = connect(chdb_dsn)
    try:
        assert client.command("SELECT 40 + 2") == 42
    finally:
        client.close()
