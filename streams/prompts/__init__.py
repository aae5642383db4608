"""Prompt versions in the stream: per-version canary analysis and automatic rollback.

- ``sequential``: always-valid statistics (mixture SPRT confidence sequences for means and rates,
  Mann-Whitney at planned checkpoints for latency), each with its false-alarm guarantee.
- ``policy``: the label policy file (metrics, thresholds, minimum samples, whether to act).
- ``arms``: per-version metric accumulators, fed from calls, guardrail findings and scores.
- ``verdict``: the Kayenta-style verdict (pass, marginal, fail) over a policy's metrics.
- ``records``: the canary topic's records (verdicts and their metrics) and their table rows.
- ``analyzer``: the canary analysis itself, a pure state machine over registry and call records.
- ``consumer``: the ``llmwatch canary`` process: its own consumer group, so the analysis never slows
  the metrics path.
"""
