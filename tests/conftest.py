"""Session-wide test guard: one pytest run per ``--basetemp`` at a time.

pytest empties a given ``--basetemp`` when a run first needs it. A second run started on the
same directory while the first is still going deletes the first's files mid-test: that run
then reports a spurious failure plus an error (e.g. ``FileNotFoundError`` renaming
``home/.alerts-test.duckdb`` in tests/alerts). The second run is refused instead.
"""

import fcntl
import os
from pathlib import Path

import pytest

_held: list[int] = []  # the lock's descriptor, held until the process exits


def pytest_configure(config: pytest.Config) -> None:
    basetemp = config.option.basetemp
    if not basetemp or hasattr(config, "workerinput"):  # xdist workers live inside it
        return
    path = Path(basetemp).resolve()
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise pytest.UsageError(
            f"another pytest run is using --basetemp {basetemp} right now: give each "
            "concurrent run its own --basetemp (it empties that directory)") from None
    _held.append(fd)
