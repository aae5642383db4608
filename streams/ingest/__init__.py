"""Ingest: split raw records, validate and normalize events, dead-letter the bad ones.

Guarantees: every event of a raw record ends as exactly one normalized call row or one dead letter with
its reason (``streams.ingest.validate``); dead letters keep a redacted, capped payload and never raw
secrets or personal data (``streams.ingest.deadletter``); one raw record's outputs fit the broker's record
limit (``streams.ingest.pipeline``). Nothing here does I/O or blocks.
"""

__all__: list[str] = []
