"""The small web service: Stripe webhooks into a durable inbox, and the OAuth callback.

The app lives in `service.app`; this package imports nothing at load time, so that
`pipelines.webhooks_apply` can use `service.inbox` and `service.event_shape` without
importing the app (which imports it).
"""
