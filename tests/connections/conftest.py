"""Fixtures: a sandbox Stripe with Connect OAuth on a free port, a state dir, the web service."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.oauth import OAuthConfig
from sandbox.server import SandboxServer
from service.app import create_app
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from tests.web_service import serve_app

NOW = 1_790_000_000  # the sandbox company's present: fixed, so data is reproducible
CLIENT_ID = "ca_sandbox_platform"
PLATFORM_KEY = "sk_test_platform_secret"


def small_company(seed: int = 3, livemode: bool = False) -> Company:
    """A 40-customer company: enough objects of every type, quick to sync."""
    return generate_company(CompanyConfig(customers=40, years=1, seed=seed, now=NOW,
                                          livemode=livemode))


@pytest.fixture(scope="module")
def connected_company() -> Company:
    """The company the sandbox's OAuth test user owns."""
    return small_company()


@pytest.fixture
def sandbox(connected_company: Company) -> Iterator[SandboxServer]:
    """A sandbox with Connect OAuth (platform ``ca_sandbox_platform``) on a free port."""
    oauth = OAuthConfig(client_id=CLIENT_ID, platform_key=PLATFORM_KEY, company=connected_company)
    with SandboxServer(accounts={}, oauth=oauth) as server:
        yield server


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty state directory, exported, with a fresh encryption key."""
    state = tmp_path / "home"
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(state))
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())
    monkeypatch.delenv("STRIPE_WAREHOUSE_OLD_SECRET_KEYS", raising=False)
    monkeypatch.delenv("STRIPE_WAREHOUSE_NEW_SECRET_KEY", raising=False)
    monkeypatch.delenv("STRIPE_API_BASE", raising=False)
    return state


@pytest.fixture
def oauth_env(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    """Connect OAuth settings pointing at the sandbox (Stripe API and Connect on one address)."""
    monkeypatch.setenv("STRIPE_CONNECT_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("STRIPE_PLATFORM_SECRET_KEY", PLATFORM_KEY)
    monkeypatch.setenv("STRIPE_CONNECT_BASE", sandbox.url)
    monkeypatch.setenv("STRIPE_API_BASE", sandbox.url)
    return sandbox


@contextmanager
def running_service(home: Path) -> Iterator[str]:
    """The web service of ``home`` on a free 127.0.0.1 port; yields its base URL."""
    with serve_app(create_app(home)) as url:
        yield url


@pytest.fixture
def service(home: Path, oauth_env: SandboxServer, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[str]:
    """The web service, with the OAuth redirect URI pointing at its own callback."""
    with running_service(home) as url:
        monkeypatch.setenv("STRIPE_CONNECT_REDIRECT_URI", f"{url}/oauth/callback")
        yield url
