"""A few hundred hostile requests to the real server: never a 5xx, nothing stored unless valid.

The corpus is generated from a fixed seed: signed bodies nested 100,000 deep, numbers past any
column, wrong types for id/type/created/data.object, bytes that are not UTF-8, mangled
signature headers and paths. Every answer is < 500, only the valid events reach the inbox,
the server answers throughout, and every line it logs is one line.
"""

import http.client
import json
import random
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from sandbox.webhook_sender import sign

from .conftest import SECRET
from .events import subscription_event
from .process import start_service, stop
from .test_receiving import stored_event_ids

SEED = 20
LOG_LINE = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: .*$")
WRONG_VALUES = [None, True, False, 0, -1, 1.5, 10**30, "", " ", "x" * 300, "évt", [],
                {"id": "evt_1"}, ["evt_1"], "\u0000", "evt 1", 1e308]


@dataclass
class Case:
    """One request: what to send, and whether it carries a valid event to store."""

    body: bytes
    headers: dict[str, str | bytes] = field(default_factory=dict)
    project: str = "acme"
    valid_id: str | None = None


def signed(body: bytes, **headers: str | bytes) -> Case:
    return Case(body, {"Content-Type": "application/json",
                       "Stripe-Signature": sign(body, SECRET), **headers})


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def replaced(body: bytes, pattern: bytes, value: bytes) -> bytes:
    changed, count = re.subn(pattern, value, body, count=1)
    assert count == 1, pattern
    return changed


def corpus(rng: random.Random) -> Iterator[Case]:
    base = subscription_event("evt_fuzz_base")
    for n in range(40):  # valid events, so "nothing stored" cannot pass by storing nothing
        event = subscription_event(f"evt_fuzz_ok_{n}")
        case = signed(json.dumps(event).encode())
        case.valid_id = event["id"]
        yield case
    yield signed(nested(100_000))
    yield signed(b'{"object":"event","data":{"object":' + nested(100_000, b"{}") + b"}}")
    for depth in (65, 500, 990, 5000):
        event = dict(base, id=f"evt_deep_{depth}")
        yield signed(replaced(json.dumps(event).encode(), b'"livemode": false',
                              b'"livemode": ' + nested(depth)))
    body = json.dumps(dict(base, id="evt_num")).encode()
    for number in (b"1" * 5000, b"1e400", b"-1e400", b"1" + b"0" * 40, b"NaN", b"-Infinity"):
        yield signed(replaced(body, rb'"quantity": 1\b', b'"quantity": ' + number))
    for number in (b"1000000000000", b"1e30", b"-0", b"0.5", b"1" * 5000, b"1e400", b"NaN"):
        yield signed(replaced(body, rb'"created": \d+', b'"created": ' + number))
    for name in ("id", "type", "created", "data", "object"):
        for value in WRONG_VALUES:
            yield signed(json.dumps(dict(base, **{name: value})).encode())
    for value in WRONG_VALUES:
        for name in ("id", "object"):
            obj = dict(base["data"]["object"], **{name: value})
            yield signed(json.dumps(dict(base, data={"object": obj})).encode())
        if not isinstance(value, dict):
            yield signed(json.dumps(dict(base, data={"object": value})).encode())
    valid = json.dumps(base).encode()
    for _ in range(30):  # bytes that are not UTF-8, signed and unsigned
        # 0xff never occurs in UTF-8: the noise cannot happen to decode
        noise = b"\xff" + bytes(rng.randrange(128, 256) for _ in range(rng.randrange(0, 40)))
        at = rng.randrange(len(valid))
        yield signed(valid[:at] + noise + valid[at:])
        yield Case(noise, {"Content-Type": "application/json", "Stripe-Signature": noise})
    for _ in range(60):  # mangled signature headers
        header = rng.choice([
            "t=" + "9" * rng.randrange(13, 6000) + ",v1=00",
            f"t={rng.randrange(10**9, 2 * 10**9)},v1=" + "é" * rng.randrange(1, 70),
            ",".join(["v1=", "t="] * rng.randrange(1, 500)),
            "t=-1,v1=" + "0" * 64, "t=1e9,v1=00", "", "=", "t", "v1", "\t t = 1 ,",
        ])
        yield Case(valid, {"Content-Type": "application/json",
                           "Stripe-Signature": header.encode("latin-1", "replace")})
    for project in ("", "ACME", "a" * 41, "acme%00", "..%2f..%2fetc", "%ff%fe", "acme.json",
                    "x" * 3000, "acme%20", "%E2%80%AE"):
        yield Case(valid, {"Content-Type": "application/json",
                           "Stripe-Signature": sign(valid, SECRET)}, project=project)
    for content_type in ("", "text/plain", "application/jsonx; charset=\xff", "a" * 5000):
        yield signed(valid, **{"Content-Type": content_type})


MALFORMED_HTTP = [  # uvicorn answers these itself (400) and logs a warning
    b"GARBAGE\r\n\r\n",
    b"POST /webhooks/stripe/acme HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /webhooks/stripe/acme HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
    b"Content-Length: 2\r\n\r\nab",
    b"POST /webhooks/stripe/acme HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    b"POST /webhooks/stripe/acme HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\n",
    b"POST /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
]


def send_raw(url: str, request: bytes) -> int | None:
    """The status the server answers to raw bytes, None if it just closes the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # it closed on us mid-request, which is an answer too
            pass
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    return int(match[1]) if match else None


def post(url: str, case: Case) -> int:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("POST", f"/webhooks/stripe/{case.project}", skip_accept_encoding=True)
        for name, value in case.headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(case.body)))
        connection.endheaders(case.body)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_hostile_requests_never_get_a_5xx_nor_store_anything_invalid(home, tmp_path):
    cases = list(corpus(random.Random(SEED)))
    assert len(cases) > 300
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        process, url = start_service(home, stderr=log)
        try:
            statuses = [(post(url, case), case) for case in cases]
            raw_statuses = [send_raw(url, request) for request in MALFORMED_HTTP]
            answers_after = post(url, signed(json.dumps(subscription_event("evt_last")).encode()))
        finally:
            stop(process)
    server_errors = [(status, case.body[:80], case.headers, case.project)
                     for status, case in statuses if status >= 500]
    assert server_errors == []
    assert all(status is None or status < 500 for status in raw_statuses), raw_statuses
    assert all(status == 200 for status, case in statuses if case.valid_id)
    assert answers_after == 200
    expected = [case.valid_id for case in cases if case.valid_id] + ["evt_last"]
    assert stored_event_ids(home) == expected, set(stored_event_ids(home)) - set(expected)
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line]
    assert lines and all(LOG_LINE.match(line) for line in lines), lines[:5]
