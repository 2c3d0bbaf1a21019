"""Where the tests find the repository and the fixture files it ships (tests/fixtures/)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
# Stripe's own sample objects (MIT licence, origin in tests/fixtures/stripe/README.md)
STRIPE_FIXTURES = FIXTURES_DIR / "stripe" / "fixtures3.json"
