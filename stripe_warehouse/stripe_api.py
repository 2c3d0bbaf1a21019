"""Facts about Stripe's API every layer needs: the pinned API version and a key's mode."""

STRIPE_API_VERSION = "2025-09-30.clover"


def key_mode(api_key: str) -> str:
    """``test`` for test-mode keys (``sk_test_``, ``rk_test_``), otherwise ``live``."""
    return "test" if api_key[2:8] == "_test_" else "live"
