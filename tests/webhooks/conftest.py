"""Fixtures: a state directory with a connected project, and the web service on a free port."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from sandbox.webhook_sender import WebhookSender
from service.app import create_app
from stripe_warehouse.crypto import generate_key
from stripe_warehouse.registry import ConnectionStore
from tests.web_service import serve_app

from .warehouse import load_backfill

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


@contextmanager
def running_service(home: Path, **app_options) -> Iterator[RunningService]:
    """The web service of ``home`` in a thread on a free 127.0.0.1 port, stopped on exit."""
    with serve_app(create_app(home, **app_options)) as url:
        yield RunningService(home, url)


@pytest.fixture
def service(home: Path) -> Iterator[RunningService]:
    """The web service of the ``home`` fixture."""
    with running_service(home) as running:
        yield running


@pytest.fixture
def company():
    """A small sandbox company whose present is now (signatures need real time)."""
    return generate_company(CompanyConfig(customers=20, seed=3, now=int(time.time()) - 60))


@pytest.fixture
def stripe_api(company):
    """The sandbox Stripe API serving ``company`` under the project's key."""
    with SandboxServer({API_KEY: company}) as server:
        yield server


@pytest.fixture
def backfilled(home, company):
    """``home`` with the company backfilled into the warehouse."""
    load_backfill(home, PROJECT, company)
    return home
