"""Dashboards: Grafana dashboards as code (grafana-foundation-sdk), their provisioning files, offline
checks (schema, cross-references, macro expansion) and snapshots rendered with matplotlib.

Entry points: ``dashboards.build.build_all`` / ``write_all`` and ``dashboards.snapshot.render_snapshot``.
Submodules are imported explicitly, so importing this package loads nothing heavy.
"""

__all__: list[str] = []
