"""The README's first command, `make demo` (`stripe-warehouse demo`), as a newcomer runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore

METRIC_LINE = re.compile(r"^\s+(stripe_\w+)\s+(\$?[\d,]+(?:\.\d\d)?)\s", re.M)


def _demo(home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STRIPE_WAREHOUSE_SECRET_KEY"}
    env["STRIPE_WAREHOUSE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "stripe_warehouse.cli", "demo", "--customers", "120"],
        capture_output=True, text=True, env=env, timeout=600,
    )


@pytest.mark.e2e
def test_demo_prints_the_six_metrics_writes_the_report_and_runs_again_the_same(
    tmp_path: Path,
) -> None:
    first = _demo(tmp_path)
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

    second = _demo(tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    # the sandbox company is generated anew from the same seed; the warehouse starts afresh
    again = dict(METRIC_LINE.findall(second.stdout))
    assert again["stripe_customers"] == metrics["stripe_customers"]


@pytest.mark.e2e
def test_demo_refuses_a_state_directory_holding_other_projects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())
    ConnectionStore(tmp_path).connect("acme", "pro", "sk_live_not_a_demo_key")
    (tmp_path / "warehouse.duckdb").write_bytes(b"a real user's warehouse")
    result = _demo(tmp_path)
    assert result.returncode == 2
    assert "holds other projects (acme)" in result.stderr
    assert result.stderr.count("\n") == 1
    assert (tmp_path / "warehouse.duckdb").read_bytes() == b"a real user's warehouse"
