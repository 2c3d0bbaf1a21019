"""Where the tests find the repository and the `shared/` folder that sits beside it (in CI too)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
STRIPE_FIXTURES = SHARED / "stripe" / "fixtures3.json"
