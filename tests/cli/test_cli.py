"""The `stripe-warehouse` command, run as a real process against the sandbox."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import generate_key, load_key

REPO = Path(__file__).resolve().parents[2]
NOW = 1_780_000_000


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    company = generate_company(CompanyConfig(customers=40, years=2, seed=3, now=NOW))
    with SandboxServer(accounts={"sk_test_cli": company}) as srv:
        yield srv


@pytest.fixture
def env(tmp_path: Path, sandbox: SandboxServer) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "STRIPE_WAREHOUSE_HOME": str(tmp_path / "home"),
        "STRIPE_WAREHOUSE_SECRET_KEY": generate_key(),
        "STRIPE_API_BASE": sandbox.url,
        "SHOP_KEY": "sk_test_cli",
    }


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stripe_warehouse.cli", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_keygen_prints_a_usable_key(env: dict[str, str]) -> None:
    result = cli(env, "keygen")
    assert result.returncode == 0
    assert len(load_key(result.stdout.strip())) == 32


def test_connect_sync_and_status(env: dict[str, str]) -> None:
    connected = cli(env, "connect", "shop", "--tier", "pro", "--api-key-env", "SHOP_KEY")
    assert connected.returncode == 0, connected.stderr
    assert "connected shop" in connected.stdout and "test mode" in connected.stdout
    assert "test data does not reflect real revenue" in connected.stderr
    synced = cli(env, "sync", "shop", "--backfill")
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.startswith("shop: backfill loaded ") and " rows in " in synced.stdout
    status = cli(env, "status").stdout.splitlines()
    assert status[0].split()[:7] == ["project", "tier", "status", "mode", "last", "sync", "kind"]
    assert status[1].split()[:4] == ["shop", "pro", "active", "test"]
    assert status[1].split()[7] == "backfill"  # after the date and time of the last sync


def test_key_is_never_accepted_on_the_command_line(env: dict[str, str]) -> None:
    result = cli(env, "connect", "shop", "--tier", "pro", "--api-key", "sk_test_cli")
    assert result.returncode == 2 and "--api-key-env" in result.stderr


def test_unknown_project_error(env: dict[str, str]) -> None:
    assert_one_line_error(cli(env, "sync", "nope", "--refresh"),
                          "unknown project 'nope'", "stripe-warehouse status")


def test_unreachable_api_error_names_stripe_api_base(env: dict[str, str]) -> None:
    env = dict(env, STRIPE_API_BASE="http://127.0.0.1:9")  # discard port: nothing listens
    assert_one_line_error(cli(env, "connect", "shop", "--tier", "pro", "--api-key-env",
                              "SHOP_KEY"), "cannot reach the Stripe API", "STRIPE_API_BASE")


def test_bad_key_error(env: dict[str, str]) -> None:
    env = dict(env, SHOP_KEY="sk_live_wrong")
    assert_one_line_error(cli(env, "connect", "shop", "--tier", "pro", "--api-key-env",
                              "SHOP_KEY"), "rejected the API key", "401")


def test_missing_secret_key_error(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "STRIPE_WAREHOUSE_SECRET_KEY"}
    assert_one_line_error(
        cli(env, "connect", "shop", "--tier", "pro", "--api-key-env", "SHOP_KEY"),
        "STRIPE_WAREHOUSE_SECRET_KEY is not set", "stripe-warehouse keygen")


def test_wrong_secret_key_error_on_sync(env: dict[str, str]) -> None:
    assert cli(env, "connect", "shop", "--tier", "pro", "--api-key-env", "SHOP_KEY"
               ).returncode == 0
    env = dict(env, STRIPE_WAREHOUSE_SECRET_KEY=generate_key())
    assert_one_line_error(cli(env, "sync", "shop", "--refresh"),
                          "cannot decrypt credentials for project shop")


def test_empty_key_variable_error(env: dict[str, str]) -> None:
    assert_one_line_error(
        cli(env, "connect", "shop", "--tier", "pro", "--api-key-env", "NOT_SET_ANYWHERE"),
        "NOT_SET_ANYWHERE is unset or empty")
