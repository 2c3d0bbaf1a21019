"""The web service facing a hostile network: slow clients, too many connections, probing."""

import json
import select
import socket
import time

import pytest

from pipelines.revocation import disconnect_project
from sandbox.webhook_sender import WebhookSender
from stripe_warehouse.registry import ConnectionStore

from .conftest import SECRET
from .events import subscription_event
from .process import kill_hard, start_service
from .test_receiving import signed_headers, stored_event_ids

READ_TIMEOUT = 2.0  # the production default is 10 s; the mechanism is the same


def open_connection(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.setblocking(False)
    return sock


def closed_by_server(sock: socket.socket) -> tuple[bool, bytes]:
    """Whether the server ended the connection (reading what it sent last), without waiting."""
    received = b""
    while select.select([sock], [], [], 0)[0]:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True, received
        if not chunk:
            return True, received
        received += chunk
    return False, received


@pytest.fixture
def slow_service(home):
    """``python -m commands.serve`` (the production server settings) with a short read timeout."""
    process, url = start_service(home, "--read-timeout", str(READ_TIMEOUT),
                                 "--max-connections", "40")
    try:
        yield url
    finally:
        kill_hard(process)


def test_slow_clients_are_answered_408_and_dropped_after_the_read_timeout(slow_service, home):
    body_head = (b"POST /webhooks/stripe/acme HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{")
    silent = [open_connection(slow_service) for _ in range(4)]  # connect, send nothing
    dribbling_headers = [open_connection(slow_service) for _ in range(4)]
    dribbling_body = [open_connection(slow_service) for _ in range(4)]
    for sock in dribbling_body:
        sock.sendall(body_head)
    opened = time.monotonic()
    slow = {sock: None for sock in silent + dribbling_headers + dribbling_body}
    answers: dict[socket.socket, bytes] = {}
    header = iter(b"POST /webhooks/stripe/acme HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 999)
    byte = next(header)
    legit_status = None
    while time.monotonic() - opened < READ_TIMEOUT + 3 and None in slow.values():
        for sock in dribbling_headers + dribbling_body:  # one byte each, every 0.2 s
            if slow[sock] is None:
                try:
                    sock.send(bytes([byte]) if sock in dribbling_headers else b" ")
                except OSError:
                    pass
        byte = next(header)
        if legit_status is None:  # a real delivery is served meanwhile
            [delivery] = WebhookSender(f"{slow_service}/webhooks/stripe/acme", SECRET).send(
                [subscription_event("evt_during_slowloris")])
            legit_status = delivery.status
        time.sleep(0.2)
        for sock in slow:
            if slow[sock] is None:
                done, data = closed_by_server(sock)
                answers[sock] = answers.get(sock, b"") + data
                if done:
                    slow[sock] = time.monotonic() - opened
    for sock in slow:
        sock.close()
    assert legit_status == 200
    assert None not in slow.values(), "a slow connection was still open"
    assert all(READ_TIMEOUT - 0.5 <= seconds <= READ_TIMEOUT + 1.5 for seconds in slow.values())
    assert all(answers[sock].startswith(b"HTTP/1.1 408 ") for sock in slow)
    assert stored_event_ids(home) == ["evt_during_slowloris"]


def test_connections_beyond_the_cap_are_closed_at_once(home):
    process, url = start_service(home, "--max-connections", "8")
    try:
        idle = [open_connection(url) for _ in range(12)]
        time.sleep(0.5)
        closed = [sock for sock in idle if closed_by_server(sock)[0]]
        assert (len(closed), len(idle) - len(closed)) == (4, 8)
        for sock in idle:
            sock.close()
        time.sleep(0.3)  # the server notices the closed connections
        [delivery] = WebhookSender(f"{url}/webhooks/stripe/acme", SECRET).send(
            [subscription_event("evt_after_cap")])
        assert delivery.status == 200
    finally:
        kill_hard(process)


def test_unknown_project_no_secret_and_no_access_answer_identically(service):
    store = ConnectionStore(service.home)
    store.connect("nosecret", "starter", "sk_test_nosecret_key")
    store.connect("gone", "starter", "sk_test_gone_key", webhook_secret=SECRET)
    disconnect_project(store, "gone")
    body = json.dumps(subscription_event()).encode()
    answers = {project: service.sender(project_id=project).post(body, signed_headers(body))
               for project in ("nobody", "nosecret", "gone", "Not-An-Id")}
    assert len({json.dumps(answer) for answer in answers.values()}) == 1, answers
    assert answers["nobody"][0] == 404
    assert stored_event_ids(service.home) == []


@pytest.mark.parametrize("registry", [
    b"{", b"[1, 2]", b"null", b'{"connections": {"acme": {"tier": 1}}}',
    b'{"connections": []}'])
def test_unreadable_registry_answers_503_in_one_line_without_paths(service, registry):
    (service.home / "connections.json").write_bytes(registry)
    body = json.dumps(subscription_event()).encode()
    status, answer = service.sender().post(body, signed_headers(body))
    assert status == 503, answer
    assert "\n" not in answer["error"] and "Stripe retries" in answer["error"]
    text = json.dumps(answer)
    assert str(service.home) not in text and "connections.json" not in text
    assert stored_event_ids(service.home) == []
