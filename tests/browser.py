"""Headless Chromium (Debian's package) for the tests that look at pages as a person would."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1600,1000",
    # Single-page apps answer their queries after load: give them time before capture.
    "--virtual-time-budget=20000",
]


def chromium(*args: str) -> str:
    """Run headless Chromium with a fresh profile; returns stdout (the DOM for --dump-dom)."""
    binary = shutil.which("chromium")
    assert binary, "headless Chromium is missing: `make test` installs it (apt-get chromium)"
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=180,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class DevToolsPage:
    """One page of a headless Chromium, driven over the DevTools protocol."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events received meanwhile are dropped)."""
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == self._next_id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message["result"]

    def wait_for(self, event: str) -> None:
        while json.loads(self._socket.recv(timeout=60)).get("method") != event:
            pass

    def resize(self, width: int, height: int, scale: float = 1.0) -> None:
        """Lay the page out on a screen of `width` x `height` CSS px (a phone below 600)."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=scale, mobile=width < 600)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression evaluated in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"]["value"]

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page (not only the screen's height)."""
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))


@contextmanager
def open_page(url: str, width: int, height: int = 1000, scale: float = 1.0
              ) -> Iterator[DevToolsPage]:
    """`url` loaded in headless Chromium on an emulated screen of any width.

    `--window-size` cannot go below 500 px in headless mode, so phone widths are emulated
    through the DevTools protocol (as a browser's device toolbar does).
    """
    binary = shutil.which("chromium")
    assert binary, "headless Chromium is missing: `make test` installs it (apt-get chromium)"
    flags = [f for f in CHROMIUM_FLAGS if not f.startswith("--virtual-time-budget")]
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [binary, *flags, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            port = _devtools_port(Path(profile) / "DevToolsActivePort", browser)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
                targets = json.load(r)
            address = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            with connect(address, max_size=None, open_timeout=30) as socket:
                page = DevToolsPage(socket)
                page.resize(width, height, scale)
                page.call("Page.enable")
                page.call("Page.navigate", url=url)
                page.wait_for("Page.loadEventFired")
                yield page
        finally:
            # Chromium's renderer and helper processes share its process group.
            os.killpg(browser.pid, signal.SIGTERM)
            try:
                browser.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(browser.pid, signal.SIGKILL)
                browser.wait(timeout=20)


def _devtools_port(active_port_file: Path, browser: subprocess.Popen[bytes]) -> int:
    """The port Chromium chose (it writes it to its profile once it listens)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert browser.poll() is None, f"chromium exited with code {browser.returncode}"
        if active_port_file.exists() and active_port_file.read_text().strip():
            return int(active_port_file.read_text().split()[0])
        time.sleep(0.1)
    raise AssertionError("chromium did not open its DevTools port within 60 s")
