"""Another commit's files, for the benchmarks that run the code before and after a change in
one run (``before_after.py``, ``test_suite_time.py``, ``transform_build.py --against``)."""

from __future__ import annotations

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def short_commit(ref: str) -> str:
    """``ref``'s short commit hash."""
    return subprocess.run(["git", "rev-parse", "--short", ref], cwd=REPO_ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def export_tree(ref: str, into: Path) -> Path:
    """The files of commit ``ref`` under ``into`` (git archive: no git metadata, no
    virtualenv); an ``into`` that exists already is taken as that export and reused."""
    if not into.exists():
        archive = subprocess.run(["git", "archive", ref], cwd=REPO_ROOT, check=True,
                                 capture_output=True).stdout
        into.mkdir(parents=True)
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(into, filter="data")
    return into
