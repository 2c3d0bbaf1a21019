"""A read-only state directory: reading commands work, writers fail in one line, exit 2."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import PROJECT, Built, cli, copy_home, one_line_error, read_only_view

pytestmark = pytest.mark.e2e


@pytest.fixture
def read_only_home(built: Built, tmp_path: Path) -> Iterator[Path]:
    """A copy of the built state directory, seen through a read-only mount (EROFS)."""
    with read_only_view(copy_home(built, tmp_path / "home")) as home:
        yield home


def test_reading_commands_work_on_a_read_only_home(
    built: Built, read_only_home: Path, tmp_path: Path
) -> None:
    status = cli(read_only_home, built, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[1].startswith(PROJECT)
    metrics = cli(read_only_home, built, "metrics", PROJECT)
    assert metrics.returncode == 0, metrics.stderr
    assert "stripe_mrr" in metrics.stdout
    out = tmp_path / "report.html"
    report = cli(read_only_home, built, "report", PROJECT, "--out", str(out))
    assert report.returncode == 0, report.stderr
    assert out.stat().st_size > 0


@pytest.mark.parametrize("command", [
    ["sync", PROJECT, "--refresh"],
    ["connect", "other", "--tier", "pro", "--api-key-env", "FAULTS_KEY"],
    ["disconnect", PROJECT],
    ["transform"],
])
def test_writers_fail_in_one_line_on_a_read_only_home(
    built: Built, read_only_home: Path, command: list[str]
) -> None:
    line = one_line_error(cli(read_only_home, built, *command, FAULTS_KEY="rk_live_faults_0001"))
    assert "read-only" in line or "writable" in line, line
