"""A damaged warehouse.duckdb or reporting.duckdb is reported with the fix, never called healthy."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import PROJECT, Built, cli, copy_home, one_line_error
from tests.locks import held_by_another_process

pytestmark = pytest.mark.e2e


def truncate_to_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def overwrite_with_text(path: Path) -> None:
    path.write_text("not a database\n")


def overwrite_a_block(path: Path) -> None:
    """Random bytes over the first data block: the header still reads, the checksum not."""
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(os.urandom(8192))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": truncate_to_half, "overwritten": overwrite_with_text,
    "block overwritten": overwrite_a_block,
}


def doctor_lines(result_stdout: str) -> dict[str, str]:
    """``doctor``'s lines by check name: ``{"warehouse file": "FAIL  ..."}``."""
    lines = {}
    for line in result_stdout.splitlines():
        outcome, rest = line.split(maxsplit=1)
        for name in ("warehouse file", "published copy", "initial sync"):
            if rest.startswith(name):
                lines[name] = f"{outcome} {rest[len(name):].strip()}"
    return lines


@pytest.mark.parametrize("damage", DAMAGE)
def test_doctor_fails_on_a_damaged_warehouse_and_names_the_restore(
    built: Built, tmp_path: Path, damage: str
) -> None:
    home = copy_home(built, tmp_path / "home")
    DAMAGE[damage](home / "warehouse.duckdb")
    result = cli(home, built, "doctor", PROJECT)
    assert result.returncode == 1, result.stdout + result.stderr
    line = doctor_lines(result.stdout)["warehouse file"]
    assert line.startswith("FAIL ") and "is damaged" in line
    assert "stripe-warehouse sync PROJECT --backfill" in line and "backup" in line
    assert doctor_lines(result.stdout)["published copy"].startswith("OK ")


def test_doctor_fails_on_a_damaged_published_copy(built: Built, tmp_path: Path) -> None:
    home = copy_home(built, tmp_path / "home")
    truncate_to_half(home / "reporting.duckdb")
    result = cli(home, built, "doctor", PROJECT)
    assert result.returncode == 1
    lines = doctor_lines(result.stdout)
    assert lines["warehouse file"].startswith("OK ")
    assert lines["published copy"].startswith("FAIL ")
    assert "run `stripe-warehouse transform`" in lines["published copy"]


def test_doctor_passes_the_files_of_a_healthy_home(built: Built, tmp_path: Path) -> None:
    home = copy_home(built, tmp_path / "home")
    result = cli(home, built, "doctor", PROJECT)
    assert result.returncode == 0, result.stdout
    lines = doctor_lines(result.stdout)
    assert lines["warehouse file"].startswith("OK opens read-only")
    assert lines["published copy"].startswith("OK opens read-only")


def test_doctor_calls_a_warehouse_a_writer_holds_in_use_not_damaged(
    built: Built, tmp_path: Path
) -> None:
    home = copy_home(built, tmp_path / "home")
    with held_by_another_process(home / "warehouse.duckdb"):
        result = cli(home, built, "doctor", PROJECT)
    assert result.returncode == 0, result.stdout
    line = doctor_lines(result.stdout)["warehouse file"]
    assert line.startswith("WARN in use by another process")


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_sync_of_a_damaged_warehouse_says_how_to_restore_it_not_to_run_again(
    built: Built, tmp_path: Path, damage: str
) -> None:
    home = copy_home(built, tmp_path / "home")
    DAMAGE[damage](home / "warehouse.duckdb")
    line = one_line_error(cli(home, built, "sync", PROJECT, "--refresh", "--no-transform"))
    assert f"{home / 'warehouse.duckdb'} is damaged" in line
    assert "--backfill" in line and "run it again" not in line


@pytest.mark.parametrize("command", [["metrics", PROJECT], ["report", PROJECT]])
@pytest.mark.parametrize("damage", DAMAGE)
def test_metrics_and_report_on_a_damaged_published_copy_print_one_line(
    built: Built, tmp_path: Path, command: list[str], damage: str
) -> None:
    home = copy_home(built, tmp_path / "home")
    DAMAGE[damage](home / "reporting.duckdb")
    line = one_line_error(cli(home, built, *command))
    assert f"{home / 'reporting.duckdb'} is damaged" in line
    assert "run `stripe-warehouse transform`" in line


@pytest.mark.parametrize(("name", "damage"), [
    ("warehouse.duckdb", "overwritten"), ("reporting.duckdb", "truncated"),
    ("reporting.duckdb", "block overwritten"),
])
def test_status_names_a_damaged_file_and_exits_1(
    built: Built, tmp_path: Path, name: str, damage: str
) -> None:
    home = copy_home(built, tmp_path / "home")
    DAMAGE[damage](home / name)
    result = cli(home, built, "status")
    assert result.returncode == 1
    assert result.stdout.splitlines()[1].startswith(PROJECT)
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {home / name} is damaged")


def test_status_of_a_healthy_home_reports_no_damage(built: Built, tmp_path: Path) -> None:
    result = cli(copy_home(built, tmp_path / "home"), built, "status")
    assert result.returncode == 0 and result.stderr == ""
