"""The README's first command, `make demo` (`stripe-warehouse demo`), as a newcomer runs it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from tests.newcomer import newcomer_cli, run_demo

METRIC_LINE = re.compile(r"^\s+(stripe_\w+)\s+(\$?[\d,]+(?:\.\d\d)?)\s", re.M)


@pytest.mark.e2e
def test_demo_prints_the_six_metrics_writes_the_report_and_runs_again_the_same(
    newcomers_demo: tuple[Path, subprocess.CompletedProcess[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp_path, first = newcomers_demo
    assert first.returncode == 0, first.stderr[-2000:]
    metrics = dict(METRIC_LINE.findall(first.stdout))
    assert set(metrics) == {
        "stripe_mrr", "stripe_arr", "stripe_revenue", "stripe_active_subscriptions",
        "stripe_customers", "stripe_failed_payments",
    }
    assert metrics["stripe_mrr"] != "$0.00"
    assert "generated an encryption key" in first.stdout
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "reports" / "demo.html").exists()
    assert (tmp_path / "reporting.duckdb").exists()
    # it ends with the alerts its example rules raised, sent nowhere (no channel)
    alerts = first.stdout[first.stdout.index("demo: "):].split("demo: done in")[0]
    header = re.search(r"demo: (\d+) alert\(s\) from the rules mrr_change \(day over day\) "
                       r"beyond \+/-5%.*\(delivered to no channel: add one with "
                       r"`stripe-warehouse alerts channel demo \.\.\.`\):", alerts)
    assert header is not None, alerts[-2000:]
    listed = alerts[header.end():].strip().splitlines()
    assert len(listed) == int(header[1])
    assert all(line.strip().startswith(("[ALERT] demo ", "[RESOLVED] demo ")) for line in listed)

    # again over the first one's state (a copy: the session's demo is read by other tests)
    again_home = tmp_path_factory.mktemp("demo_again") / "state"
    shutil.copytree(tmp_path, again_home, symlinks=True)
    second = run_demo(again_home)
    assert second.returncode == 0, second.stderr[-2000:]
    # the sandbox company is generated anew from the same seed; the warehouse starts afresh
    again = dict(METRIC_LINE.findall(second.stdout))
    assert again["stripe_customers"] == metrics["stripe_customers"]


@pytest.mark.e2e
def test_demo_ends_with_verify_reconciling_every_check(
    newcomers_demo: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """`make demo` runs `verify` against its sandbox: six checks, all green."""
    _, first = newcomers_demo
    report = first.stdout[first.stdout.index("verify demo:"):]
    checks = [line for line in report.splitlines() if line.startswith(("ok ", "DIFF "))]
    assert len(checks) == 6, report
    assert all(line.startswith("ok ") for line in checks), report


@pytest.mark.e2e
def test_demo_refuses_a_state_directory_holding_other_projects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())
    ConnectionStore(tmp_path).connect("acme", "pro", "sk_live_not_a_demo_key")
    (tmp_path / "warehouse.duckdb").write_bytes(b"a real user's warehouse")
    result = run_demo(tmp_path)
    assert result.returncode == 2
    assert "holds other projects (acme)" in result.stderr
    assert result.stderr.count("\n") == 1
    assert (tmp_path / "warehouse.duckdb").read_bytes() == b"a real user's warehouse"


@pytest.mark.e2e
def test_after_the_demo_every_command_finds_its_key_and_says_what_to_do_with_it(
    newcomers_demo: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    home, first = newcomers_demo
    assert first.returncode == 0, first.stderr[-2000:]
    assert "project demo is marked as the demo's" in first.stdout
    note = (f"note: STRIPE_WAREHOUSE_SECRET_KEY is unset: using the demo's key file "
            f"{home / 'secret.key'}")

    doctor = newcomer_cli(home, "doctor", "demo")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    outcomes = {line.split()[0] for line in doctor.stdout.splitlines()}
    assert outcomes <= {"OK", "WARN"}, doctor.stdout
    assert "OK   credentials decrypt" in doctor.stdout
    assert "run `stripe-warehouse demo` again" in doctor.stdout
    assert doctor.stderr.startswith(note)

    sync = newcomer_cli(home, "sync", "demo", "--refresh")
    assert sync.returncode == 2
    assert sync.stderr.splitlines()[-1].startswith(
        "error: project demo is the demo's sandbox company")

    status = newcomer_cli(home, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[1].split()[:3] == ["demo", "pro", "active"]
    assert "demo: the demo's sandbox company" in status.stdout
    assert "scheduler: NOT running" in status.stdout
