"""A throwaway PostgreSQL server on 127.0.0.1, for the PostgreSQL warehouse target's tests and CI.

Debian's PostgreSQL 15 server binaries (installed with apt-get when missing), one cluster in a
fresh temporary directory, a free port on 127.0.0.1 only (TCP, no Unix socket), password
authentication with a random password. PostgreSQL refuses to run as root: as root the cluster
belongs to the `postgres` user and runs as it (`runuser`).

    .venv/bin/python scripts/postgres.py start          # prints the directory, then the URL
    .venv/bin/python scripts/postgres.py url DIRECTORY  # the server's URL
    .venv/bin/python scripts/postgres.py stop DIRECTORY # stops it and deletes the directory

The test suite's `postgres_url` fixture (tests/conftest.py) uses `start` and `stop`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_VERSION = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
SERVER_USER = "postgres"  # the OS user the server runs as when we are root
DATABASE = "warehouse"
ROLE = "warehouse"
URL_FILE = "url"  # in the server's directory: the URL with its password (0600)


@dataclass(frozen=True)
class PostgresServer:
    """A started cluster: its directory (data, socket, log, URL) and its URL."""

    directory: Path
    url: str

    def stop(self) -> None:
        stop(self.directory)


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVER_USER, "--", *command]


def ensure_binaries() -> Path:
    """The server binaries' directory; installs Debian's `postgresql` when they are missing."""
    if not (PG_BIN / "initdb").exists():
        print(f"installing Debian's postgresql ({PG_BIN} is missing)", file=sys.stderr)
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment)
        subprocess.run(["apt-get", "install", "-y", "-qq", f"postgresql-{PG_VERSION}"],
                       check=True, env=environment, stdout=subprocess.DEVNULL)
    return PG_BIN


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(parent: Path | None = None) -> PostgresServer:
    """Create and start a cluster in a new directory under ``parent`` (default: the system's
    temporary directory); returns once it accepts connections."""
    binaries = ensure_binaries()
    directory = Path(tempfile.mkdtemp(prefix="stripe-warehouse-pg-", dir=parent))
    password = secrets.token_hex(16)
    (directory / "password").write_text(password)
    if os.geteuid() == 0:
        shutil.chown(directory, SERVER_USER, SERVER_USER)
        shutil.chown(directory / "password", SERVER_USER, SERVER_USER)
        # the server user must be able to reach a directory nested in root's 0700 ones
        _allow_traversal(directory)
    data = directory / "data"
    try:
        subprocess.run(
            _as_server_user([
                str(binaries / "initdb"), "-D", str(data), "-U", ROLE, "--auth=scram-sha-256",
                f"--pwfile={directory / 'password'}", "-E", "UTF8", "--locale=C.UTF-8",
            ]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        (directory / "password").unlink()
        port = _free_port()
        # TCP on 127.0.0.1 only, no Unix socket: its path must fit in 107 bytes, which a
        # directory under pytest's basetemp in CI did not ("Unix-domain socket path ... is too
        # long"); every client here connects over TCP anyway
        options = (f"-h 127.0.0.1 -p {port} -k '' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c TimeZone=UTC")
        subprocess.run(
            _as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-l",
                             str(directory / "server.log"), "-o", options, "-w", "start"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        subprocess.run(
            _as_server_user([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                             "-U", ROLE, DATABASE]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PGPASSWORD": password})
    except subprocess.CalledProcessError as error:
        log = directory / "server.log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        stop(directory)
        raise RuntimeError(f"PostgreSQL did not start ({error.stderr.strip()}) {detail}") \
            from None
    url = f"postgresql://{ROLE}:{password}@127.0.0.1:{port}/{DATABASE}"
    url_file = directory / URL_FILE
    url_file.write_text(url)
    url_file.chmod(0o600)
    return PostgresServer(directory, url)


def _allow_traversal(directory: Path) -> None:
    """Give others search (x) permission on the parents that lack it, so that the server user
    reaches its directory; nothing is made readable or listable."""
    for parent in directory.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def url(directory: Path) -> str:
    return (Path(directory) / URL_FILE).read_text()


def stop(directory: Path) -> None:
    """Stop the cluster (fast shutdown: open sessions are ended) and delete its directory."""
    directory = Path(directory)
    data = directory / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(_as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast",
                                        "-w", "stop"]),
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["start"]:
        server = start(Path(argv[1]) if len(argv) > 1 else None)
        print(server.directory)
        print(server.url)
        return 0
    if len(argv) == 2 and argv[0] in ("url", "stop"):
        if argv[0] == "url":
            print(url(Path(argv[1])))
        else:
            stop(Path(argv[1]))
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
