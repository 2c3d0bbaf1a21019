"""Fixtures: a state directory with a connected project, and the web service on a free port."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from sandbox.webhook_sender import WebhookSender
from service.app import create_app
from stripe_warehouse.crypto import generate_key
from stripe_warehouse.registry import ConnectionStore

PROJECT = "acme"
SECRET = "whsec_test_acme_0123456789"
API_KEY = "sk_test_acme_key"


@dataclass
class RunningService:
    """The service of one test: its home, base URL and a sender for the project."""

    home: Path
    url: str

    def endpoint(self, project_id: str = PROJECT) -> str:
        """The webhook URL of ``project_id``."""
        return f"{self.url}/webhooks/stripe/{project_id}"

    def sender(self, secret: str = SECRET, project_id: str = PROJECT, **options) -> WebhookSender:
        """A sender signing with ``secret`` to ``project_id``'s endpoint."""
        return WebhookSender(self.endpoint(project_id), secret, **options)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory with project ``acme`` connected (test key, webhook secret)."""
    monkeypatch.setenv("STRIPE_WAREHOUSE_SECRET_KEY", generate_key())
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(tmp_path / "home"))
    state = tmp_path / "home"
    ConnectionStore(state).connect(PROJECT, "starter", API_KEY, webhook_secret=SECRET)
    return state


def free_socket() -> socket.socket:
    """A listening-ready socket bound to a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def running_service(home: Path, **app_options) -> Iterator[RunningService]:
    """The web service of ``home`` in a thread on a free 127.0.0.1 port, stopped on exit."""
    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(home, **app_options), log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the web service did not start within 10 s")
            time.sleep(0.01)
        yield RunningService(home, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def service(home: Path) -> Iterator[RunningService]:
    """The web service of the ``home`` fixture."""
    with running_service(home) as running:
        yield running
