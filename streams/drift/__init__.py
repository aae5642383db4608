"""Drift in the stream: of the call's shape (no text needed) and, later, of embedded texts.

- ``shape``: per-scope windows of binned token counts, latency, finish reasons and outcomes, compared
  with a reference window by chi-square tests of homogeneity, with PSI as the effect size and
  Benjamini-Hochberg across every (scope, feature) test of an evaluation.
"""
