"""Dashboards: Grafana dashboards and alert rules as code, and their provisioning files."""

__all__: list[str] = []
