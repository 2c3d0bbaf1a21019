"""The one error type users see: its message is one line saying what went wrong and the fix."""


class WarehouseError(Exception):
    """A failure the user can fix; ``str(error)`` is the whole one-line message."""

    def __init__(self, message: str) -> None:
        # Keep user-facing messages on one line whatever the caller passed in.
        super().__init__(" ".join(message.split()))
