"""How the web service faces the network: bounded reads, a connection cap, one-line logs.

uvicorn alone bounds neither a client that never finishes its request headers (its
keep-alive timer starts only after a first response) nor one that sends its body a byte at a
time, and ``limit_concurrency`` answers 503 only once headers are complete: slow connections
would pile up until the process runs out of file descriptors. :class:`BoundedH11Protocol`
gives every request ``read_seconds`` from its first byte (or from the connection's opening)
to arrive in full, then answers 408 and closes; it closes at once any connection beyond
``max_connections``. h11, unlike httptools, also caps the header block (16 KiB).
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

READ_SECONDS = 10.0  # a Stripe event is a few KiB: ample for any real sender
MAX_CONNECTIONS = 200  # well under the usual 1,024 file descriptors per process
KEEP_ALIVE_SECONDS = 5
MAX_HEADER_BYTES = 16 * 1024
_TIMEOUT_BODY = (b'{"error":"the request did not arrive within the time allowed: '
                 b'send it again in one go"}')
REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                   b"connection: close\r\ncontent-length: " + str(len(_TIMEOUT_BODY)).encode()
                   + b"\r\n\r\n" + _TIMEOUT_BODY)


@dataclass(frozen=True)
class ServerLimits:
    """What one connection may take: seconds to send a request, and how many may be open."""

    read_seconds: float = READ_SECONDS
    max_connections: int = MAX_CONNECTIONS


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on reading each request and a connection cap."""

    limits = ServerLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._read_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            log.warning("connection refused: %d connections open (the cap)",
                        self.limits.max_connections)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_request()

    def _follow_request(self) -> None:
        """Deadline on while a request is partly read, off once it is read in full.

        Idle with nothing buffered: the connection is new (its deadline runs since
        :meth:`connection_made`) or between requests (uvicorn's keep-alive timer runs).
        """
        their = self.conn.their_state
        if their is h11.SEND_BODY or (their is h11.IDLE and self.conn.trailing_data[0]):
            self._arm()
        elif their is not h11.IDLE:
            self._disarm()

    def _arm(self) -> None:
        if self._read_deadline is None and not self.transport.is_closing():
            self._read_deadline = self.loop.call_later(self.limits.read_seconds, self._expire)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _expire(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        log.info("connection closed: its request took more than %.0f s to arrive",
                 self.limits.read_seconds)
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()


def bounded_protocol(limits: ServerLimits) -> type[BoundedH11Protocol]:
    """A :class:`BoundedH11Protocol` class with ``limits`` (uvicorn takes a class)."""
    return type("BoundedH11Protocol", (BoundedH11Protocol,), {"limits": limits})


class OneLineFormatter(logging.Formatter):
    """Every record on one line: newlines folded, a traceback reduced to its last line."""

    def format(self, record: logging.LogRecord) -> str:
        message = " ".join(record.getMessage().split())
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message += f" ({type(error).__name__}: {' '.join(str(error).split())[:300]})"
        record_copy = logging.makeLogRecord({**record.__dict__, "msg": message, "args": None,
                                             "exc_info": None, "exc_text": None,
                                             "stack_info": None})
        return super().format(record_copy)


def logging_config(level: str = "WARNING") -> dict[str, Any]:
    """uvicorn's ``log_config``: the service's and uvicorn's records, one line each, stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "one_line",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"one_line": {
            "()": OneLineFormatter, "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {name: {"handlers": [], "level": level, "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
