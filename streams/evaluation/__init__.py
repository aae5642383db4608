"""Evaluation of free-text quality: statistics that compare runs (more to come: sampling, judge, rubrics).

- :mod:`streams.evaluation.compare`: paired comparison of a candidate run against a baseline on the same
  cases and seeds (bootstrap CI, Wilcoxon, McNemar, Holm across metrics, pass@k / pass^k), calibrated by
  simulation in ``tests/unit/streams/evaluation``.
"""
