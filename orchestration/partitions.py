"""One partition per connected project: the unit of syncing and of run requests."""

from dagster import DynamicPartitionsDefinition

project_partitions = DynamicPartitionsDefinition(name="projects")
