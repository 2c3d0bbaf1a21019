"""The state directory's one home (StateDir) and the facts that must not drift apart."""

import os
import stat
from pathlib import Path

import pytest
import yaml

from stripe_warehouse.state_dir import (
    DUCKDB_STORAGE_VERSION,
    HOME_ENV,
    MissingStateDirectory,
    StateDir,
)
from stripe_warehouse.transform import DBT_PROFILES_DIR, dbt_invocation

REPO = Path(__file__).resolve().parents[1]


def test_profiles_yml_gives_dbt_the_storage_version_of_the_warehouse() -> None:
    """dbt cannot import Python: profiles.yml repeats the one constant, and must equal it."""
    profile = yaml.safe_load((DBT_PROFILES_DIR / "profiles.yml").read_text())
    options = profile["stripe_warehouse"]["outputs"]["local"]["config_options"]
    assert options["storage_compatibility_version"] == DUCKDB_STORAGE_VERSION == "v1.4.0"


def test_state_dir_is_resolved_from_the_environment_and_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(HOME_ENV, raising=False)
    assert StateDir.resolve().root == tmp_path / "data"
    monkeypatch.setenv(HOME_ENV, "elsewhere")
    state = StateDir.resolve()
    assert state.root == tmp_path / "elsewhere"
    assert StateDir.resolve("given").root == tmp_path / "given"  # an argument wins
    assert StateDir.resolve(state) is state
    assert not state.root.exists()  # resolving creates nothing
    assert (state.warehouse, state.reporting, state.inbox, state.registry, state.dagster) == (
        state.root / "warehouse.duckdb", state.root / "reporting.duckdb",
        state.root / "inbox.sqlite", state.root / "connections.json", state.root / "dagster")


def test_state_dir_is_created_owner_only_and_read_only_commands_never_create_it(
    tmp_path: Path,
) -> None:
    state = StateDir.resolve(tmp_path / "home")
    with pytest.raises(MissingStateDirectory, match="nothing was created"):
        state.existing()
    assert not state.root.exists()
    assert state.create() is state
    assert stat.S_IMODE(state.root.stat().st_mode) == 0o700
    assert state.existing() is state


def test_dbt_runs_with_the_state_dirs_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    monkeypatch.delenv("DBT_LOG_PATH", raising=False)
    state = StateDir.resolve(tmp_path / "home")
    command, environment = dbt_invocation(["build"], state.root)
    assert environment[HOME_ENV] == str(state.root)
    assert environment["DBT_TARGET_PATH"] == str(state.root / "dbt" / "target")
    assert environment["DBT_LOG_PATH"] == str(state.root / "dbt" / "logs")
    assert command[-4:] == ["--project-dir", str(REPO), "--profiles-dir", str(REPO)]
    assert os.environ.get(HOME_ENV) != str(state.root)  # the caller's environment is untouched


def test_code_below_the_entry_points_is_handed_the_state_dir_and_never_reads_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """StateDir.of takes what an entry point resolved (the value or its path) and ignores
    STRIPE_WAREHOUSE_HOME; given nothing it fails instead of falling back to the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-the-environment"))
    state = StateDir.resolve(tmp_path / "given")
    assert StateDir.of(state) is state
    assert StateDir.of("given") == state == StateDir.of(tmp_path / "given")
    with pytest.raises(TypeError, match="resolve it once at the entry point"):
        StateDir.of(None)  # type: ignore[arg-type]
    assert not state.root.exists()  # creates nothing either
