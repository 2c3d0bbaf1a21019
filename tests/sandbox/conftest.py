"""Fixtures: small generated companies and sandbox servers on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer

NOW = 1_790_000_000  # 2026-09-21: fixed so that every assertion is reproducible
API_KEY = "sk_test_sandbox"


@pytest.fixture(scope="session")
def company() -> Company:
    """A 150-customer company shared by read-only tests."""
    return generate_company(CompanyConfig(customers=150, years=3, seed=7, now=NOW))


@pytest.fixture
def fresh_company() -> Company:
    """A small company that the test may mutate."""
    return generate_company(CompanyConfig(customers=60, years=2, seed=11, now=NOW))


@pytest.fixture(scope="module")
def server(company: Company) -> Iterator[SandboxServer]:
    """A plain sandbox serving `company` (no latency, limits or failures)."""
    with SandboxServer(accounts={API_KEY: company}) as srv:
        yield srv


@pytest.fixture
def client(server: SandboxServer) -> stripe.StripeClient:
    """The real Stripe SDK pointed at the sandbox, without automatic retries."""
    return stripe.StripeClient(API_KEY, base_addresses={"api": server.url},
                               max_network_retries=0)
