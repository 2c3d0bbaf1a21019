"""The `stripe-warehouse` command, run as a real process against the sandbox."""

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from commands.cli import build_parser
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import generate_key, load_key
from tests.command_env import command_env

REPO = Path(__file__).resolve().parents[2]
NOW = 1_780_000_000


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    company = generate_company(CompanyConfig(customers=40, years=2, seed=3, now=NOW))
    with SandboxServer(accounts={"sk_test_cli": company}) as srv:
        yield srv


@pytest.fixture
def env(tmp_path: Path, sandbox: SandboxServer) -> dict[str, str]:
    return command_env(
        STRIPE_WAREHOUSE_HOME=str(tmp_path / "home"),
        STRIPE_WAREHOUSE_SECRET_KEY=generate_key(),
        STRIPE_API_BASE=sandbox.url,
        SHOP_KEY="sk_test_cli",
    )


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", *args],
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
    summary = synced.stdout.splitlines()[-2]  # after the phase lines, before the marts' line
    assert summary.startswith("shop: backfill loaded ") and " rows in " in summary
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


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


def test_every_command_argument_and_option_has_help_text() -> None:
    parser = build_parser()
    missing = [
        f"{name} {action.dest}"
        for name, command in {"stripe-warehouse": parser, **_commands(parser)}.items()
        for action in command._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []
    assert set(_commands(parser)) >= {"connect", "sync", "status", "doctor", "demo", "ui",
                                      "serve", "docs", "metrics", "report"}


def test_version(env: dict[str, str]) -> None:
    result = cli(env, "--version")
    assert result.returncode == 0 and result.stdout == "stripe-warehouse 0.1.0\n"


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["doctor", "shop"],
                                     ["metrics", "shop"], ["export", "shop", "--format", "csv"]])
def test_read_only_commands_never_create_the_state_directory(
    env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in env.items() if k != "STRIPE_WAREHOUSE_HOME"}
    result = subprocess.run([sys.executable, "-m", "commands.cli", *command], env=env,
                            cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, f"no state directory at {elsewhere / 'data'}",
                          "STRIPE_WAREHOUSE_HOME is unset")
    assert list(elsewhere.iterdir()) == []
    env["STRIPE_WAREHOUSE_HOME"] = str(tmp_path / "missing")
    result = subprocess.run([sys.executable, "-m", "commands.cli", *command], env=env,
                            cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, f"no state directory at {tmp_path / 'missing'} "
                          "(STRIPE_WAREHOUSE_HOME)")
    assert not (tmp_path / "missing").exists()


def test_the_demos_key_file_is_used_only_while_the_variable_is_unset_and_said(
    env: dict[str, str],
) -> None:
    home = Path(env["STRIPE_WAREHOUSE_HOME"])
    home.mkdir(mode=0o700)
    key_file = home / "secret.key"
    key_file.write_text(generate_key())
    key_file.chmod(0o600)
    unset = {k: v for k, v in env.items() if k != "STRIPE_WAREHOUSE_SECRET_KEY"}
    note = (f"note: STRIPE_WAREHOUSE_SECRET_KEY is unset: using the demo's key file {key_file} "
            "(a key beside the data it protects is for demos only: export "
            "STRIPE_WAREHOUSE_SECRET_KEY in production)")
    connected = cli(unset, "connect", "shop", "--tier", "pro", "--api-key-env", "SHOP_KEY")
    assert connected.returncode == 0, connected.stderr
    assert connected.stderr.splitlines()[0] == note and connected.stderr.count(note) == 1
    checked = cli(unset, "doctor", "shop")
    assert "OK   credentials decrypt" in checked.stdout
    assert checked.stderr.splitlines() == [note]
    # A live account's key is never stored under a key file beside the data.
    live = cli(dict(unset, LIVE_KEY="rk_live_real_account"), "connect", "acme", "--tier", "pro",
               "--api-key-env", "LIVE_KEY")
    assert live.returncode == 2 and live.stderr.splitlines()[0] == note
    assert live.stderr.splitlines()[1:] == [
        "error: STRIPE_WAREHOUSE_SECRET_KEY is not set: a live key is not stored under the "
        "demo's key file; nothing was stored; export STRIPE_WAREHOUSE_SECRET_KEY (from "
        "`stripe-warehouse keygen`) and use a state directory of your own "
        "(STRIPE_WAREHOUSE_HOME)"]
    assert "acme" not in (home / "connections.json").read_text()
    # A key in the variable always wins, and the file is not mentioned.
    other = cli(env, "doctor", "shop")
    assert "FAIL credentials decrypt" in other.stdout and "cannot decrypt" in other.stdout
    assert "secret.key" not in other.stderr + other.stdout
