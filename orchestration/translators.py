"""Every asset key of the platform is decided here, so dlt and dbt lineage meet on the same keys."""

from collections.abc import Mapping
from typing import Any

from dagster import AssetKey, AssetSpec
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from stripe_warehouse.settings import RAW_DATASET

RAW_GROUP = "stripe_raw"
METRICS_DAILY_KEY = AssetKey(["marts", "metrics_daily"])


def raw_table_key(table: str) -> AssetKey:
    """``stripe_raw/<table>``: the key both the dlt asset and the dbt source of a table use."""
    return AssetKey([RAW_DATASET, table])


def raw_table_spec(table: str) -> AssetSpec:
    """The asset of one raw table, as :class:`StripeDltTranslator` describes a dlt resource,
    made without a dlt source or pipeline: the definitions build none at import
    (``tests/orchestration/test_definitions_load.py`` checks both give the same specs)."""
    return AssetSpec(
        key=raw_table_key(table),
        group_name=RAW_GROUP,
        kinds={"dlt", "duckdb"},
        metadata={"dagster/table_name": table, "dagster/storage_kind": "duckdb"},
    )


class StripeDltTranslator(DagsterDltTranslator):
    """One asset per dlt resource, keyed like the raw table it loads, with no upstream keys."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        spec = super().get_asset_spec(data)
        # The default adds an upstream "<source>_<resource>" key that exists nowhere: a phantom.
        return spec.replace_attributes(
            key=raw_table_key(data.resource.name),
            deps=[],
            group_name=RAW_GROUP,
            kinds={"dlt", "duckdb"},
        )


class StripeDbtTranslator(DagsterDbtTranslator):
    """dbt sources land on the dlt keys; models are keyed ``<schema>/<model>`` like their tables."""

    def __init__(self) -> None:
        super().__init__(DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return raw_table_key(dbt_resource_props["name"])
        return AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return RAW_GROUP
        return dbt_resource_props["schema"]
