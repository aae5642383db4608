"""Analytics on normalized rows: cost and pricing, latency sketches, rollups, top-K users, model lifecycle.

Guarantees: cost is computed once per event from the bundled price snapshot or the operator's overrides
(``streams.analytics.cost``); rollups are mergeable and idempotent under replay (their keys include the
source position, ``streams.analytics.rollups``); latency quantiles carry 1% relative accuracy
(``streams.analytics.sketches``); the top-K is bounded in memory (``streams.analytics.topk``). Pure
computation: nothing here does I/O or blocks.
"""

__all__: list[str] = []
