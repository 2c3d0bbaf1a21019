"""Connecting a project through the sandbox's OAuth pages, without the web service."""

from urllib.parse import parse_qs, urlsplit

import requests

from stripe_warehouse.oauth import authorize_url, complete_authorization
from stripe_warehouse.registry import Connection, ConnectionStore


def connect_with_oauth(store: ConnectionStore, project_id: str, tier: str) -> Connection:
    """Authorize at the sandbox (it approves at once) and complete with the code it returns."""
    answer = requests.get(authorize_url(project_id, tier), allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    return complete_authorization(store, query["state"], query["code"])
