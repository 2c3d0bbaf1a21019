"""Fixtures for file faults: a built state directory, a small tmpfs, a read-only view, the CLI.

The mounts are real (the tests run as root, as CI does): a full tmpfs gives ENOSPC and a
read-only bind mount EROFS exactly where the production code meets them.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.load import sync_project
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build

NOW = 1_790_000_000
API_KEY = "rk_live_faults_0001"
PROJECT = "shop"


@dataclass(frozen=True)
class Built:
    """A state directory with one project synced and its marts built and published."""

    home: Path
    api_base: str
    secret_key: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    company = generate_company(CompanyConfig(customers=40, years=1, seed=8, now=NOW,
                                             livemode=True))
    home = tmp_path_factory.mktemp("faults") / "home"
    secret_key = generate_key()
    with SandboxServer(accounts={API_KEY: company}) as sandbox, \
            pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_KEY_ENV, secret_key)
        mp.delenv("DBT_TARGET_PATH", raising=False)
        store = ConnectionStore(home)
        store.connect(PROJECT, "pro", API_KEY)
        sync_project(store, PROJECT, "backfill", api_base=sandbox.url)
        build(home=home)
        yield Built(home, sandbox.url, secret_key)


def copy_home(built: Built, target: Path) -> Path:
    """A private copy of the built state directory, for a test that damages it."""
    shutil.copytree(built.home, target)
    return target


def cli_env(home: Path, built: Built, **env: str) -> dict[str, str]:
    """The environment of a user's shell for ``home``; no dbt path overrides."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "RUNTIME__"))},
        "STRIPE_WAREHOUSE_HOME": str(home), SECRET_KEY_ENV: built.secret_key,
        "STRIPE_API_BASE": built.api_base, **env,
    }


def cli(home: Path, built: Built, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `stripe-warehouse ARGS` in its own process, as a user would."""
    return subprocess.run([sys.executable, "-m", "commands.cli", *args],
                          env=cli_env(home, built, **env), capture_output=True, text=True,
                          timeout=300)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a command that failed with a user error (exit 2)."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


@contextmanager
def small_tmpfs(megabytes: int) -> Iterator[Path]:
    """A tmpfs of ``megabytes`` mounted under /tmp, unmounted and removed afterwards."""
    mount_point = Path(tempfile.mkdtemp(prefix="faults-tmpfs-", dir="/tmp"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs",
                    str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
        mount_point.rmdir()


@contextmanager
def read_only_view(source: Path) -> Iterator[Path]:
    """``source`` bind-mounted read-only under /tmp (EROFS on every write, root's included)."""
    mount_point = Path(tempfile.mkdtemp(prefix="faults-ro-", dir="/tmp"))
    subprocess.run(["mount", "--bind", str(source), str(mount_point)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount_point)], check=True)
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
        mount_point.rmdir()


def fill_disk(mount_point: Path, leave_bytes: int = 0) -> Path:
    """Fill the file system of ``mount_point`` up to ``leave_bytes`` free; returns the filler."""
    filler = mount_point / "filler"
    with open(filler, "ab", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            with suppress(OSError):  # ENOSPC: on to a smaller chunk
                while True:
                    f.write(b"\0" * chunk)
    if leave_bytes:
        os.truncate(filler, max(0, filler.stat().st_size - leave_bytes))
    return filler
