"""Sinks: the ClickHouse schema (versioned migrations) and the batching writers."""

__all__: list[str] = []
