"""One writer at a time for warehouse.duckdb, shared fairly by every process of ours that writes it.

DuckDB locks the whole file for a read-write connection and a second process fails at once
("Conflicting lock is held"); it never waits. So every writer of ours (CLI sync and transform,
Dagster runs, the real-time applier, retention, the publish of the readers' copy) first takes
this lock, an ``fcntl.flock`` on ``<home>/warehouse.lock``, and only then opens DuckDB or starts
dbt (the lock is held in the parent around the dbt subprocess). A writer that finds the lock
taken waits its turn, up to a bounded time, printing who holds it every few seconds; when the
wait runs out the one-line error names the holder's pid and command. A DuckDB lock error met
while holding this lock can only come from a process outside it: a BI tool, the DuckDB CLI.

Why flock: the kernel releases it when the holder dies (kill -9 leaves no stale lock), and it
works between any processes of one machine, which is where DuckDB's own lock works too.

Fairness: flock does not queue its waiters, and the real-time applier takes the lock again
a moment after releasing it, so a sync polling for it could wait for ever. Every acquisition
therefore passes a turnstile first, a second flock on ``warehouse.lock.queue``: a waiter holds
the turnstile while it waits for the lock, so the holder, once it releases, cannot come back
before the waiter has had its turn. Writers alternate instead of the quickest one winning.

Re-entrant per thread: a build holds the lock and calls dbt and the publish, which take it
again; a nested block in the same thread just runs. Other threads of the process wait like
other processes do (flock would not stop them: it is per open file).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stripe_warehouse.errors import WarehouseError

LOCK_NAME = "warehouse.lock"
QUEUE_NAME = "warehouse.lock.queue"
WAIT_ENV = "STRIPE_WAREHOUSE_LOCK_WAIT"
# A batch writer (sync load, dbt build) holds the warehouse for seconds to minutes.
DEFAULT_WAIT_SECONDS = 600.0
FIRST_PROGRESS_SECONDS = 2.0  # short waits (an applier batch) print nothing
PROGRESS_EVERY_SECONDS = 5.0
POLL_SECONDS = 0.05
COMMAND_CHARS = 120


class WarehouseBusy(WarehouseError):
    """Another writer held the warehouse for longer than this one would wait."""


@dataclass(frozen=True)
class Holder:
    """The process holding the writer lock: what ``warehouse.lock`` records."""

    pid: int
    command: str
    purpose: str
    since: float

    def describe(self, now: float | None = None) -> str:
        """``pid 123 (stripe-warehouse sync shop --refresh: loading shop) for 12 s``."""
        held = max(0.0, (now or time.time()) - self.since)
        return f"pid {self.pid} ({self.command}: {self.purpose}) for {held:.0f} s"


def lock_path(home: Path | str) -> Path:
    """The lock file of the warehouse in state directory ``home``."""
    return Path(home) / LOCK_NAME


def default_wait_seconds() -> float:
    """How long a writer waits for the lock: ``STRIPE_WAREHOUSE_LOCK_WAIT`` seconds, else 600."""
    text = os.environ.get(WAIT_ENV, "").strip()
    if not text:
        return DEFAULT_WAIT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        raise WarehouseError(f"{WAIT_ENV}={text!r} is not a number of seconds: "
                             "set it to e.g. 600, or unset it")
    return seconds


def read_holder(home: Path | str) -> Holder | None:
    """Who holds the lock now, as recorded in the lock file (None: free, or just changing)."""
    try:
        record = json.loads(lock_path(home).read_text() or "null")
        return Holder(int(record["pid"]), str(record["command"]), str(record["purpose"]),
                      float(record["since"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def this_command() -> str:
    """This process's command line, short enough for one line (the program's name, no path)."""
    argv = sys.argv or ["python"]
    program = "python -c" if argv[0] == "-c" else Path(argv[0]).name or "python"
    # A serialised blob (a Dagster step's arguments) says nothing to a reader and may carry
    # configuration: it is left out.
    words = [program, *("..." if arg.lstrip().startswith(("{", "[")) else arg
                        for arg in argv[1:])]
    text = " ".join(" ".join(words).split())
    return text if len(text) <= COMMAND_CHARS else text[: COMMAND_CHARS - 3] + "..."


class _ThreadOwnership:
    """Which thread of this process holds a home's lock (others wait on ``lock``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None


_ownerships: dict[Path, _ThreadOwnership] = {}
_ownerships_guard = threading.Lock()


def _ownership(path: Path) -> _ThreadOwnership:
    with _ownerships_guard:
        return _ownerships.setdefault(path, _ThreadOwnership())


def _print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _Wait:
    """The deadline of one wait, its progress lines, and the error when it runs out."""

    def __init__(self, home: Path, purpose: str, seconds: float,
                 progress: Callable[[str], None]) -> None:
        self.home = home
        self.purpose = purpose
        self.seconds = seconds
        self.progress = progress
        self.started = time.monotonic()
        self.next_progress = self.started + min(FIRST_PROGRESS_SECONDS, PROGRESS_EVERY_SECONDS)

    def remaining(self) -> float:
        return self.started + self.seconds - time.monotonic()

    def tick(self) -> None:
        """Between two tries: report progress, raise when the time is up, else sleep a little."""
        now = time.monotonic()
        if now >= self.next_progress:
            self.next_progress = now + PROGRESS_EVERY_SECONDS
            holder = read_holder(self.home)
            who = holder.describe() if holder else "another writer"
            self.progress(f"waiting for the warehouse ({self.purpose}): held by {who}")
        if self.remaining() <= 0:
            raise self.busy()
        time.sleep(min(POLL_SECONDS, max(self.remaining(), 0.0)))

    def busy(self) -> WarehouseBusy:
        holder = read_holder(self.home)
        if holder is None:
            return WarehouseBusy(
                f"waited {self.seconds:.0f} s to write the warehouse ({self.purpose}) but "
                f"another writer kept {lock_path(self.home)} locked: try again when it "
                f"finishes, or set {WAIT_ENV}=SECONDS to wait longer")
        return WarehouseBusy(
            f"waited {self.seconds:.0f} s to write the warehouse ({self.purpose}) but it is "
            f"still held by {holder.describe()}: try again when that finishes, or stop it "
            f"(`kill {holder.pid}`) if it is stuck; set {WAIT_ENV}=SECONDS to wait longer")


def _open_lock_file(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def _flock_polling(fd: int, wait: _Wait) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            wait.tick()


def _acquire_across_processes(home: Path, wait: _Wait) -> int:
    """Pass the turnstile, take the lock, leave the turnstile; the lock file's descriptor."""
    queue = _open_lock_file(home / QUEUE_NAME)
    try:
        _flock_polling(queue, wait)
        fd = _open_lock_file(lock_path(home))
        try:
            _flock_polling(fd, wait)
        except BaseException:
            os.close(fd)
            raise
    finally:
        os.close(queue)  # closing releases the turnstile
    return fd


def _record_holder(fd: int, purpose: str) -> None:
    record = {"pid": os.getpid(), "command": this_command(), "purpose": purpose,
              "since": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)


@contextmanager
def warehouse_writer(
    home: Path | str,
    purpose: str,
    wait: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the warehouse's writer lock for the block, waiting up to ``wait`` seconds for it.

    ``purpose`` says what this writer does ("loading shop"); it is shown to whoever waits.
    ``wait`` defaults to :func:`default_wait_seconds`; ``progress`` receives the waiting
    lines (default: stderr). Raises :class:`WarehouseBusy` when the wait runs out.
    """
    home = Path(home).resolve()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    ownership = _ownership(home)
    me = threading.get_ident()
    if ownership.owner == me:  # nested in this thread: the outer block releases the lock
        yield
        return
    waiting = _Wait(home, purpose, default_wait_seconds() if wait is None else wait,
                    progress or _print_progress)
    while not ownership.lock.acquire(timeout=max(min(POLL_SECONDS, waiting.remaining()), 0)):
        waiting.tick()
    try:
        fd = _acquire_across_processes(home, waiting)
        try:
            _record_holder(fd, purpose)
            ownership.owner = me
            try:
                yield
            finally:
                ownership.owner = None
                os.ftruncate(fd, 0)  # nobody holds it: waiters read no stale holder
        finally:
            os.close(fd)  # closing releases the flock
    finally:
        ownership.lock.release()
