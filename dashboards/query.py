"""The ClickHouse data query for grafana-foundation-sdk, which has no query type for this plugin.

:class:`ClickHouseQuery` is the raw-SQL query model of the ``grafana-clickhouse-datasource`` plugin
(v4, the version docker-compose.yml preinstalls): ``editorType`` ``"sql"``, ``rawSql``, ``format``
(0 = time series, 1 = table, the sqlds numbering the plugin's backend uses), ``queryType`` (the
plugin's v4 display hint, ``"timeseries"`` or ``"table"``), ``pluginVersion`` and the datasource
reference. Plugin v3 stored ``queryType: "sql"`` instead; v4 migrates such queries on load, so the v4
shape is emitted directly. :func:`register` makes the SDK's JSON parser (``Dashboard.from_json``)
build :class:`ClickHouseQuery` objects for targets of this datasource type.

Every llmwatch query goes to the datasource provisioned by
``dashboards/provisioning/datasources/clickhouse.yaml`` (uid :data:`DATASOURCE_UID`). Nothing here
does I/O.
"""

from __future__ import annotations

import enum
from typing import Any, Final, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

from streams.storage import DEFAULT_DATABASE

__all__ = [
    "DATABASE",
    "DATASOURCE_TYPE",
    "DATASOURCE_UID",
    "PLUGIN_VERSION",
    "ClickHouseAnnotationTarget",
    "ClickHouseQuery",
    "ClickHouseQueryBuilder",
    "Format",
    "annotation_target",
    "datasource_ref",
    "register",
]

DATASOURCE_UID: Final = "llmwatch-clickhouse"
DATASOURCE_TYPE: Final = "grafana-clickhouse-datasource"
# The plugin version docker-compose.yml preinstalls (GF_PLUGINS_PREINSTALL).
PLUGIN_VERSION: Final = "4.14.0"
# The database every query names explicitly (the datasource's defaultDatabase too).
DATABASE: Final = DEFAULT_DATABASE
EDITOR_SQL: Final = "sql"


class Format(enum.IntEnum):
    """Result format of a query (grafana/sqlds numbering, used by the plugin's backend)."""

    TIME_SERIES = 0
    TABLE = 1

    @property
    def query_type(self) -> str:
        """The plugin's v4 ``queryType`` for this format."""
        return "timeseries" if self is Format.TIME_SERIES else "table"


def datasource_ref() -> dashboard.DataSourceRef:
    return dashboard.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class ClickHouseQuery(cogvariants.Dataquery):
    """One raw-SQL query of the ClickHouse plugin."""

    def __init__(
        self,
        raw_sql: str = "",
        fmt: Format = Format.TABLE,
        ref_id: str = "A",
        datasource: dashboard.DataSourceRef | None = None,
        plugin_version: str = PLUGIN_VERSION,
        hide: bool | None = None,
    ) -> None:
        self.raw_sql = raw_sql
        self.format = fmt
        self.ref_id = ref_id
        self.datasource = datasource if datasource is not None else datasource_ref()
        self.plugin_version = plugin_version
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "datasource": self.datasource.to_json(),
            "editorType": EDITOR_SQL,
            "format": int(self.format),
            "pluginVersion": self.plugin_version,
            "queryType": self.format.query_type,
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        raw_format = data.get("format", int(Format.TABLE))
        try:
            fmt = Format(int(raw_format))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"ClickHouse query format must be 0 or 1, got {raw_format!r}") from exc
        source = data.get("datasource")
        return cls(
            raw_sql=str(data.get("rawSql", "")),
            fmt=fmt,
            ref_id=str(data.get("refId", "A")),
            datasource=dashboard.DataSourceRef.from_json(source) if source else None,
            plugin_version=str(data.get("pluginVersion", PLUGIN_VERSION)),
            hide=data.get("hide"),
        )


class ClickHouseQueryBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder for :class:`ClickHouseQuery`, usable wherever the SDK takes a query builder."""

    def __init__(self, raw_sql: str, fmt: Format = Format.TABLE, ref_id: str = "A") -> None:
        self._internal = ClickHouseQuery(raw_sql=raw_sql, fmt=fmt, ref_id=ref_id)

    def build(self) -> ClickHouseQuery:
        return self._internal


class ClickHouseAnnotationTarget(dashboard.AnnotationTarget):
    """An annotation query on the ClickHouse datasource (columns: time, timeEnd, title, text, tags).

    Grafana's v1 dashboard schema types an annotation target as the built-in datasource's
    (limit, matchAny, tags, type) and notes it "should just be a normal query target"; Grafana passes
    the target of a datasource annotation to that datasource as its query, so this emits the
    ClickHouse query instead.
    """

    def __init__(self, raw_sql: str) -> None:
        super().__init__()
        self.query = ClickHouseQuery(raw_sql=raw_sql, fmt=Format.TABLE, ref_id="Anno")

    def to_json(self) -> dict[str, object]:
        return self.query.to_json()


class _AnnotationTargetBuilder(cogbuilder.Builder[dashboard.AnnotationTarget]):
    def __init__(self, raw_sql: str) -> None:
        self._internal = ClickHouseAnnotationTarget(raw_sql)

    def build(self) -> ClickHouseAnnotationTarget:
        return self._internal


def annotation_target(raw_sql: str) -> cogbuilder.Builder[dashboard.AnnotationTarget]:
    """A builder for ``AnnotationQuery.target`` holding a ClickHouse query."""
    return _AnnotationTargetBuilder(raw_sql)


def register() -> None:
    """Teach the SDK's JSON parser the ClickHouse query (idempotent)."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(
            identifier=DATASOURCE_TYPE, from_json_hook=ClickHouseQuery.from_json
        )
    )
