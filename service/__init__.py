"""The small web service: Stripe webhooks into a durable inbox, and the OAuth callback.

The app lives in `service.app`. The inbox and the event checks it shares with the applier
(`stripe_warehouse.inbox`, `stripe_warehouse.event_shape`) are core modules: nothing below
this package imports it.
"""
