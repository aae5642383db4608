"""SLOs: the SLO file, per-SLO event-time windows, multi-window burn-rate alerting, alert records.

Guarantees: an SLO file is validated whole, and errors name the file, the SLO and the value
(``streams.slo.config``); burn rates are computed on event time with bounded lateness, and a clock keeps
one stray event from moving them (``streams.slo.burnrate``); alert transitions carry the values that fired
them (``streams.slo.alerts``). Pure computation: nothing here does I/O or blocks.
"""

__all__: list[str] = []
