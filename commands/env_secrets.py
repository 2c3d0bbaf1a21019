"""Secrets the CLI reads from an environment variable the user names, never from argv."""

from __future__ import annotations

import os

from stripe_warehouse.errors import WarehouseError

# What a secret itself (rather than a variable's name) starts with: Stripe keys, signing
# secrets, webhook URLs. A variable's name never holds a "/".
_SECRET_PREFIXES = ("sk_", "rk_", "whsec_", "http://", "https://")


def read_env_secret(variable: str, what: str) -> str:
    """The value of ``variable``; a one-line error when the user passed the secret itself
    (it would end up in shell history) or the variable is unset."""
    if variable.startswith(_SECRET_PREFIXES) or "/" in variable:
        raise WarehouseError(f"pass the name of an environment variable holding the {what}, "
                             "not the value: secrets on the command line end up in shell history")
    value = os.environ.get(variable, "").strip()
    if not value:
        raise WarehouseError(f"environment variable {variable} is unset or empty: export the "
                             f"{what}")
    return value
