"""`stripe-warehouse sync` shows its phases: plain lines in a pipe, a live bar on a terminal.

Both run the real command against the sandbox, through extraction, dlt and `dbt build`.
"""

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import generate_key
from stripe_warehouse.progress import PHASES, PlainProgress
from tests.command_env import command_env

REPO = Path(__file__).resolve().parents[2]
NOW = 1_780_000_000
KEY = "sk_test_progress"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    company = generate_company(CompanyConfig(customers=700, years=2, seed=5, now=NOW))
    with SandboxServer(accounts={KEY: company}) as srv:
        yield srv


@pytest.fixture
def env(tmp_path: Path, sandbox: SandboxServer) -> dict[str, str]:
    env = command_env(
        STRIPE_WAREHOUSE_HOME=str(tmp_path / "home"),
        STRIPE_WAREHOUSE_SECRET_KEY=generate_key(), STRIPE_API_BASE=sandbox.url,
        SHOP_KEY=KEY, TERM="xterm-256color", COLUMNS="120",
    )
    connected = subprocess.run(
        [sys.executable, "-m", "commands.cli", "connect", "shop", "--tier", "basic",
         "--api-key-env", "SHOP_KEY"], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=60)
    assert connected.returncode == 0, connected.stderr
    return env


def test_plain_lines_show_every_phase_in_order_with_elapsed_time(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "commands.cli", "sync", "shop", "--backfill"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr  # warnings and errors only: the test mode warning
    lines = result.stdout.splitlines()
    assert not any(ANSI.search(line) for line in lines), "no terminal codes in a pipe"
    starts = [m[1] for line in lines if (m := re.fullmatch(
        r"\[\d/5\] (\w+) \(elapsed \d+:\d\d:\d\d\)", line))]
    assert starts == list(PHASES)
    done = [m[1] for line in lines if (m := re.match(r"(\w+) done in \d+\.\d s", line))]
    assert done == list(PHASES)
    extracted = next(line for line in lines if line.startswith("extract done"))
    objects = int(re.search(r", ([\d,]+) objects, [\d,]+/s$", extracted)[1].replace(",", ""))
    assert objects > 1000  # 700 customers and their subscriptions, invoices, ...
    assert any(re.fullmatch(r"  read [\d,]+ objects \(.*\), [\d,]+/s, elapsed \d+:\d\d:\d\d",
                            line) for line in lines)
    built = [tuple(map(int, m.groups())) for line in lines
             if (m := re.match(r"  built (\d+)/(\d+) dbt nodes, ETA \d+:\d\d:\d\d", line))]
    assert built and built[-1][0] == built[-1][1] > 10  # the last line: every node done
    assert re.fullmatch(r"finished in \d+:\d\d:\d\d", lines[-3])
    assert lines[-2].startswith("shop: backfill loaded ") and lines[-1] == (
        "marts built and published")


def read_all(fd: int, proc: subprocess.Popen, timeout: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


def test_a_terminal_gets_a_live_bar_with_rate_and_eta(env: dict[str, str]) -> None:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "sync", "shop", "--backfill"],
        env=env, cwd=REPO, stdin=terminal, stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    try:
        screen = read_all(controller, proc, timeout=300).decode("utf-8", "replace")
        stdout = proc.stdout.read().decode()
        assert proc.wait(timeout=60) == 0, screen
    finally:
        proc.kill()
        os.close(controller)
    assert "\x1b[" in screen  # redrawn in place, not line after line
    text = ANSI.sub("", screen)
    for name in PHASES:
        assert re.search(rf"{name}\s+━", text), f"no bar for {name}"
    assert re.search(r"[\d,]+ objects\s+[\d,]+ objects/s", text)  # extraction: count and rate
    assert re.search(r"\d+/\d+ nodes", text)  # build: dbt nodes done of all
    assert re.search(r"ETA \d+:\d\d:\d\d", text)
    assert "[1/5]" not in text  # the plain lines are for pipes only
    assert "[1/5]" not in stdout and "marts built and published" in stdout


def test_plain_progress_lines_for_build_steps_and_phases() -> None:
    """The line format, with a fake clock: rate and ETA are what the counts and times say."""
    clock = iter([0.0, 0.0, 2.0, 2.0, 4.0, 4.0, 10.0, 10.0, 12.0, 12.0])

    class Out:
        lines: list[str] = []

        def write(self, text: str) -> None:
            self.lines += [line for line in text.splitlines() if line]

        def flush(self) -> None:
            pass

    out = Out()
    progress = PlainProgress(out, clock=lambda: next(clock))
    progress.phase("extract")  # t=0
    progress.objects({"customers": 600, "invoices": 600})  # t=2: 1,200 objects in 2 s
    progress.phase("build")  # t=4
    progress.steps(10, 40)  # t=10: 10 nodes in 6 s, 30 to go: 18 s
    progress.close()
    assert out.lines == [
        "[1/5] extract (elapsed 0:00:00)",
        "  read 1,200 objects (customers 600, invoices 600), 600/s, elapsed 0:00:02",
        "extract done in 4.0 s, 1,200 objects, 300/s",
        "[4/5] build (elapsed 0:00:04)",
        "  built 10/40 dbt nodes, ETA 0:00:18, elapsed 0:00:10",
        "build done in 8.0 s",
        "finished in 0:00:12",
    ]


def test_ctrl_c_on_a_terminal_stops_the_bar_with_one_error_line(env: dict[str, str]) -> None:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "sync", "shop", "--backfill"],
        env=env, cwd=REPO, stdin=terminal, stdout=subprocess.DEVNULL, stderr=terminal,
        start_new_session=True,  # its own group, as a terminal's foreground job is
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(terminal)
    try:
        screen = b""
        deadline = time.monotonic() + 120
        while b"objects/s" not in screen and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.5)[0]:
                screen += os.read(controller, 65536)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        screen += read_all(controller, proc, timeout=60)
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
        os.close(controller)
    text = ANSI.sub("", screen.decode("utf-8", "replace"))
    assert "objects/s" in text and "Traceback" not in text
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[-1] == "error: interrupted: run the command again; loaded data is kept"
    assert sum("error" in line for line in lines) == 1
