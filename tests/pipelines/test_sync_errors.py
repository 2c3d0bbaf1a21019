"""A failed sync says in one line what went wrong and how to fix it; loaded rows are kept."""

from pathlib import Path

import pytest

from pipelines.load import _user_error, sync_project
from sandbox.company import Company
from sandbox.server import SandboxServer
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import ConnectionStore
from tests.locks import held_by_another_process
from tests.pipelines.conftest import NOW, table_ids
from tests.pipelines.expected import expected_backfill_ids


def _wrapped(root: BaseException) -> BaseException:
    """A failure wrapped the way dlt wraps them: outer messages end with 'exception:'."""
    try:
        try:
            raise root
        except BaseException as cause:
            raise RuntimeError("In processing pipe `stripe_objects`: caused an exception: ") \
                from cause
    except RuntimeError as middle:
        try:
            raise ValueError("Pipeline execution failed at `step=extract` with exception:\n\n") \
                from middle
        except ValueError as outer:
            return outer


def test_the_innermost_cause_names_the_failure() -> None:
    root = OSError("\n\n\n   Connection refused by 127.0.0.1:9\n more detail")
    error = _user_error(_wrapped(root), "acme", Path("/tmp/w.duckdb"))
    assert str(error) == ("sync of project acme failed (OSError: Connection refused by "
                          "127.0.0.1:9): run it again; rows loaded so far are kept")
    assert "\n" not in str(error)


def test_a_warehouse_error_inside_the_chain_is_passed_on_as_it_is() -> None:
    inner = WarehouseError("the Stripe key of project acme was rejected: reconnect it")
    assert _user_error(_wrapped(inner), "acme", Path("/tmp/w.duckdb")) is inner


def test_a_block_in_the_message_is_not_taken_for_the_warehouse_lock() -> None:
    error = _user_error(_wrapped(OSError("blocked by a firewall")), "acme", Path("/w.duckdb"))
    assert "open in another process" not in str(error)


@pytest.mark.e2e
def test_warehouse_held_by_another_process_names_the_fix_and_keeps_loaded_rows(
    company: Company, sandbox: SandboxServer, store: ConnectionStore
) -> None:
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    warehouse = store.home / "warehouse.duckdb"
    with held_by_another_process(warehouse), pytest.raises(WarehouseError) as failure:
        sync_project(store, "acme", "refresh", api_base=sandbox.url, now=NOW + 3600)
    message = str(failure.value)
    assert "open in another process" in message and "run the sync of acme again" in message
    assert "\n" not in message
    # the backfill's rows are all still there, and the refresh succeeds once the lock is gone
    expected = expected_backfill_ids(company, NOW)
    assert table_ids(store.home, "subscriptions") == sorted(expected["subscriptions"])
    sync_project(store, "acme", "refresh", api_base=sandbox.url, now=NOW + 3600)
    assert table_ids(store.home, "subscriptions") == sorted(expected["subscriptions"])
