"""A dbt fork server: dbt processes forked from one that has already imported dbt.

Every `dbt` command starts a Python process that imports dbt-core and its adapters: about 2 s
of CPU before it reads a file. A process that runs many builds (the test suite's workers; any
long-lived process that sets ``STRIPE_WAREHOUSE_DBT_FORKSERVER``) can instead start this server
once: it imports dbt, then forks a child per command. Each command is still a process of its
own (its DuckDB connection and file lock end with it, as :mod:`stripe_warehouse.transform`
requires), with the caller's arguments, environment, working directory and umask, writing to the
caller's stdout/stderr (file descriptors passed over the socket). Measured with a one-node
`dbt build` (CPU of the dbt process, one machine, one run): spawned 4.3-5.2 s, forked 2.2-3.0 s.

The child must not outlive its caller (a caller holding the writer lock that dies must not
leave dbt writing): the caller keeps its connection open until the child's exit status arrives,
and the server SIGKILLs a child whose caller's connection closes first. Children also die with
the server (parent-death signal).

Protocol (Unix socket): the caller sends an 8-byte length and a JSON request
``{"args": [...], "env": {...}, "cwd": "...", "umask": 63}`` with two file descriptors
(stdout, stderr) attached; the server answers the child's pid (8 bytes), and later its exit code
(8 bytes, signed; -N for a signal). :func:`start` is the caller's side; a caller falls back to
spawning dbt when no server is named or it cannot be reached.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

SOCKET_ENV = "STRIPE_WAREHOUSE_DBT_FORKSERVER"
_HEADER = struct.Struct("!q")
_PR_SET_PDEATHSIG = 1


class ForkedDbt:
    """A dbt process forked by the server, with the part of ``subprocess.Popen``'s interface
    that :mod:`stripe_warehouse.transform` uses (``stdout``, ``wait``, ``kill``, ``pid``)."""

    def __init__(self, connection: socket.socket, pid: int, stdout: IO[str] | None) -> None:
        self._connection = connection
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None

    def wait(self) -> int:
        if self.returncode is None:
            try:
                status = _receive_exactly(self._connection, _HEADER.size)
                self.returncode = _HEADER.unpack(status)[0]
            except (ConnectionError, OSError):  # the server died: its children died with it
                self.returncode = -signal.SIGKILL
            self._connection.close()
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def start(args: list[str], env: dict[str, str], cwd: Path | str, umask: int,
          stdout_fd: int, stderr_fd: int, server: str | None = None) -> ForkedDbt | None:
    """``dbt <args>`` forked by the server named by ``server`` (default: ``$SOCKET_ENV``),
    writing to the given descriptors; None when there is no server to ask (spawn dbt then)."""
    path = server if server is not None else os.environ.get(SOCKET_ENV)
    if not path:
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
        request = json.dumps({"args": args, "env": env, "cwd": str(cwd), "umask": umask}).encode()
        socket.send_fds(connection, [_HEADER.pack(len(request)) + request],
                        [stdout_fd, stderr_fd])
        pid = _HEADER.unpack(_receive_exactly(connection, _HEADER.size))[0]
    except OSError:
        connection.close()
        return None
    return ForkedDbt(connection, pid, None)


def start_streaming(args: list[str], env: dict[str, str], cwd: Path | str,
                    umask: int) -> ForkedDbt | None:
    """:func:`start` with stdout and stderr into one pipe, read from ``.stdout`` (text), as
    ``Popen(..., stdout=PIPE, stderr=STDOUT, text=True)`` gives."""
    if not os.environ.get(SOCKET_ENV):
        return None
    read_end, write_end = os.pipe()
    try:
        forked = start(args, env, cwd, umask, write_end, write_end)
    finally:
        os.close(write_end)  # the child has its own copy: EOF when it ends
    if forked is None:
        os.close(read_end)
        return None
    forked.stdout = os.fdopen(read_end, "r", encoding="utf-8", errors="replace")
    return forked


def _receive_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the dbt fork server closed the connection")
        data += chunk
    return data


# -- the server ---------------------------------------------------------------------------------

def serve(path: Path) -> None:
    """Import dbt, then fork a dbt process per request until SIGTERM. The socket appears
    (atomically, by rename) only when the server is ready: callers that come earlier spawn dbt
    themselves.

    Nothing else is run here: a fork copies only the forking thread, so the server must stay
    single-threaded (a warm-up `dbt parse` here left two native threads, and a child then hung
    on a lock one of them held); :func:`_accept` refuses to fork otherwise."""
    import multiprocessing.resource_tracker

    from dbt.cli.main import cli  # noqa: F401  (imported once, here, for every child)

    with contextlib.suppress(ImportError):
        import dbt.adapters.duckdb  # noqa: F401
        import dbt.adapters.postgres  # noqa: F401
    # dbt's multiprocessing locks register with one resource tracker: the server's, shared
    multiprocessing.resource_tracker.ensure_running()
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    listening.bind(str(temporary))
    os.chmod(temporary, 0o600)
    listening.listen(64)
    os.replace(temporary, path)
    children: dict[int, socket.socket] = {}  # pid -> the caller's connection
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    selector = selectors.DefaultSelector()
    selector.register(listening, selectors.EVENT_READ)
    try:
        while not stopping:
            for key, _ in selector.select(timeout=0.05):
                if key.fileobj is listening:
                    _accept(listening, selector, children)
                else:  # readable before its child ended: the caller went away
                    caller = key.fileobj
                    assert isinstance(caller, socket.socket)
                    for pid, connection in list(children.items()):
                        if connection is caller:
                            with contextlib.suppress(ProcessLookupError):
                                os.kill(pid, signal.SIGKILL)
                    selector.unregister(caller)
            _reap(selector, children)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _accept(listening: socket.socket, selector: selectors.BaseSelector,
            children: dict[int, socket.socket]) -> None:
    connection, _ = listening.accept()
    try:
        header, fds, _, _ = socket.recv_fds(connection, _HEADER.size, 2)
        if len(header) < _HEADER.size:
            header += _receive_exactly(connection, _HEADER.size - len(header))
        request = json.loads(_receive_exactly(connection, _HEADER.unpack(header)[0]))
    except (OSError, ValueError):
        connection.close()
        return
    if len(os.listdir("/proc/self/task")) > 1:  # not fork-safe: the caller spawns dbt
        for fd in fds:
            os.close(fd)
        connection.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        _run_child(request, fds, connection)
    for fd in fds:
        os.close(fd)
    try:
        connection.sendall(_HEADER.pack(pid))
    except OSError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    children[pid] = connection
    selector.register(connection, selectors.EVENT_READ)


def _reap(selector: selectors.BaseSelector, children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = children.pop(pid, None)
        if connection is None:
            continue
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(connection)
        with contextlib.suppress(OSError):
            connection.sendall(_HEADER.pack(os.waitstatus_to_exitcode(status)))
        connection.close()


def _run_child(request: dict[str, Any], fds: list[int], connection: socket.socket) -> None:
    code = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        connection.close()
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in (stdin, *fds):
            if fd > 2:
                os.close(fd)
        os.umask(int(request["umask"]))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()
        sys.argv = ["dbt", *request["args"]]
        from dbt.cli.main import cli

        try:
            cli()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported on the caller's stderr, then exit 1
        import traceback

        traceback.print_exc()
    finally:
        _close_as_an_exit_would()
        os._exit(code)


def _close_as_an_exit_would() -> None:
    """What a spawned dbt's interpreter does on exit, which ``os._exit`` skips (it must: the
    server's own ``finally`` and exit handlers are not the child's): close dbt-duckdb's
    database, so that DuckDB checkpoints its write-ahead log into the file as the last
    connection closes (left as a .wal otherwise, which a copy of the file alone would miss),
    and flush the output."""
    with contextlib.suppress(Exception):
        connections = sys.modules.get("dbt.adapters.duckdb.connections")
        manager = getattr(connections, "DuckDBConnectionManager", None)
        if manager is not None and manager._ENV is not None:
            manager._ENV.close()
            manager._ENV = None
        import gc

        gc.collect()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()


@contextlib.contextmanager
def running() -> Iterator[str]:
    """A fork server in a subprocess for the duration of the block: yields its socket's path
    (set it as ``$SOCKET_ENV`` for the processes that should use it: they spawn dbt until the
    server is ready); stopped, and its directory removed, at the end."""
    import shutil
    import subprocess

    # a short private directory: a Unix socket's path has at most 107 bytes
    directory = Path(tempfile.mkdtemp(prefix="dbt-fs-"))
    path = directory / "dbt.sock"
    setpriv = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
    # dbt's children leave their multiprocessing locks to the server's resource tracker, which
    # would warn of them when the server stops
    quiet = ["-W", "ignore::UserWarning:multiprocessing.resource_tracker"]
    server = subprocess.Popen([*setpriv, sys.executable, *quiet, "-m", __name__, str(path)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        yield str(path)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(directory, ignore_errors=True)


def client_main(argv: list[str]) -> int:
    """`python -m stripe_warehouse.dbt_forkserver --client ARGS`: run `dbt ARGS` through the
    server with this process's stdout, stderr, environment and directory, and exit with its
    code (the wrapper dagster-dbt starts, scripts/dbt_with_parent). Spawns dbt when there is no
    server."""
    umask = os.umask(0)
    os.umask(umask)
    forked = start(argv, dict(os.environ), os.getcwd(), umask, 1, 2)
    if forked is None:
        dbt = os.environ.get("STRIPE_WAREHOUSE_DBT_EXECUTABLE") or str(Path(sys.executable).parent
                                                                      / "dbt")
        os.execv(dbt, [dbt, *argv])
    for signum in (signal.SIGTERM, signal.SIGINT):  # pass a stop on to dbt, as exec would
        signal.signal(signum, lambda number, _frame: os.kill(forked.pid, number))
    code = forked.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        sys.exit(client_main(sys.argv[2:]))
    serve(Path(sys.argv[1]))
