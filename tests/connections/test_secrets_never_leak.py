"""After a full flow, no planted secret is anywhere: state dir, Dagster, dbt, logs, output."""

import json
import logging
import os
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance

from commands.cli import main
from orchestration.definitions import defs
from orchestration.partitions import project_partitions
from orchestration.ui import dagster_home
from pipelines.revocation import sync_or_revoke
from sandbox.server import SandboxServer
from sandbox.webhook_sender import sign as signature_header
from stripe_warehouse.crypto import NEW_KEY_ENV, decrypt_secret, generate_key, load_key
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.oauth import OAuthSettings, deauthorize
from stripe_warehouse.registry import ConnectionStore
from tests.connections.conftest import small_company

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PLANTED_KEY = "sk_test_PLANTEDapikey7c4e1b9d2a"
PLANTED_WEBHOOK_SECRET = "whsec_PLANTEDsigning5f3a8c"


def files_holding(roots: list[Path], secrets: list[str]) -> dict[str, list[str]]:
    """Every file under ``roots`` that contains one of ``secrets`` (bytes, any encoding)."""
    found: dict[str, list[str]] = {}
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            if not path.is_file():
                continue
            content = path.read_bytes()
            hits = [s for s in secrets if s.encode() in content]
            if hits:
                found[str(path)] = hits
    return found


def test_no_token_key_or_signing_secret_leaks_anywhere_after_a_full_flow(
    service: str, home: Path, oauth_env: SandboxServer, connected_company,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    oauth_env._serve_token(PLANTED_KEY, small_company(seed=9))  # a key-connected account
    store = ConnectionStore(home)
    errors: list[str] = []

    # Connect: one project by OAuth through the web service, one with a key (and webhooks).
    callback = requests.get(f"{service}/oauth/authorize/oauthshop?tier=pro",
                            allow_redirects=False, timeout=10).headers["Location"]
    callback = requests.get(callback, allow_redirects=False, timeout=10).headers["Location"]
    assert requests.get(callback, timeout=30).status_code == 200
    [token] = oauth_env.oauth.tokens
    refresh_blob = store.get("oauthshop").refresh_token
    assert refresh_blob is not None
    refresh_token = decrypt_secret(refresh_blob, "oauthshop", load_key())
    monkeypatch.setenv("PLANTED_KEY_VAR", PLANTED_KEY)
    monkeypatch.setenv("PLANTED_WHSEC_VAR", PLANTED_WEBHOOK_SECRET)
    assert main(["connect", "keyshop", "--tier", "basic", "--api-key-env", "PLANTED_KEY_VAR",
                 "--webhook-secret-env", "PLANTED_WHSEC_VAR"]) == 0

    # Sync: the OAuth project through a real Dagster backfill run (sync, dbt build, publish),
    # the key project through the CLI; then a webhook, status and doctor.
    with DagsterInstance.from_config(str(dagster_home(home))) as instance:
        instance.add_dynamic_partitions(project_partitions.name, ["oauthshop"])
        run = defs.resolve_job_def("backfill").execute_in_process(
            instance=instance, partition_key="oauthshop", raise_on_error=False)
        assert run.success
    assert main(["sync", "keyshop", "--backfill"]) == 0
    event = json.dumps({"id": "evt_leak_1", "object": "event", "type": "customer.updated",
                        "created": 1_790_000_000, "data": {"object": {"id": "cus_1"}}}).encode()
    answer = requests.post(f"{service}/webhooks/stripe/keyshop", data=event, timeout=10, headers={
        "Content-Type": "application/json",
        "Stripe-Signature": signature_header(event, PLANTED_WEBHOOK_SECRET)})
    assert answer.status_code == 200, answer.text
    assert main(["status"]) == 0
    main(["doctor", "oauthshop"])
    main(["doctor", "keyshop"])

    # Rotate the key, disconnect one project, revoke the other on Stripe's side.
    monkeypatch.setenv(NEW_KEY_ENV, generate_key())
    assert main(["rotate-key"]) == 0
    monkeypatch.setenv("STRIPE_WAREHOUSE_SECRET_KEY", os.environ[NEW_KEY_ENV])
    assert main(["disconnect", "keyshop"]) == 0
    deauthorize(connected_company.account_id, OAuthSettings.from_env())
    with pytest.raises(WarehouseError) as error:
        sync_or_revoke(store, "oauthshop", "refresh")
    errors.append(str(error.value))
    assert main(["doctor", "oauthshop"]) == 1

    secrets = [token, refresh_token, PLANTED_KEY, PLANTED_WEBHOOK_SECRET]
    roots = [home, REPO / "dbt_project" / "target", REPO / "logs"]
    assert files_holding([r for r in roots if r.exists()], secrets) == {}
    output = capsys.readouterr()
    said = [output.out, output.err, caplog.text, *errors]
    assert [s for s in secrets if any(s in text for text in said)] == []
    assert (home / "dagster").is_dir() and any((home / "dagster").rglob("*.db"))
