"""In-process guard checks an application can run before it sends a prompt (pure Python, never raise).

:func:`injection_signals` is the cheap prompt-injection pattern layer; the learned detector that builds
on it runs in the text-analysis consumer (``streams.text.injection``).
"""

from producers.guard.injection_patterns import CATEGORIES, PatternSignals, injection_signals

__all__ = ["CATEGORIES", "PatternSignals", "injection_signals"]
