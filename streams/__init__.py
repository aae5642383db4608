"""Streams: the Faust worker and the analytics it runs on every event."""

__all__: list[str] = []
