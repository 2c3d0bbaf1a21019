"""The small web service: Stripe webhooks into a durable inbox (and later the OAuth callback)."""

from service.app import create_app, run

__all__ = ["create_app", "run"]
