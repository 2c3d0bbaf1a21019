"""A sync runs Python's cycle collector less often, and gives the process its settings back."""

import gc

import pytest

from pipelines.load import SYNC_GC_THRESHOLD, sync_project
from sandbox.server import SandboxServer
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import ConnectionStore
from tests.pipelines.conftest import NOW


@pytest.mark.e2e
def test_extraction_collects_less_often_and_the_threshold_is_restored(
    sandbox: SandboxServer, store: ConnectionStore
) -> None:
    before = gc.get_threshold()
    assert before != SYNC_GC_THRESHOLD
    seen: set[tuple[int, ...]] = set()

    result = sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW,
                          progress=lambda counts: seen.add(gc.get_threshold()))

    assert result.objects_loaded > 0
    assert seen == {SYNC_GC_THRESHOLD}
    assert gc.get_threshold() == before


def test_a_failed_sync_restores_the_threshold_too(store: ConnectionStore) -> None:
    before = gc.get_threshold()
    assert before != SYNC_GC_THRESHOLD
    with pytest.raises(WarehouseError, match="cannot reach the Stripe API"):
        sync_project(store, "acme", "backfill", api_base="http://127.0.0.1:9", now=NOW)
    assert gc.get_threshold() == before
