"""Alert delivery to loopback receivers: SMTP (aiosmtpd, login, STARTTLS), a Slack-style
incoming webhook and the signed JSON webhook; retries, recorded failures, secrets kept
encrypted and out of every message."""

import datetime as dt
import json
import sqlite3
import time
from pathlib import Path

import pytest

from commands.cli import main
from stripe_warehouse.alert_delivery import SIGNATURE_HEADER, verify_signature
from stripe_warehouse.alerts import run_alerts
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from tests.alerts.marts import DAY, PROJECT, connected_home, write_marts
from tests.alerts.receivers import free_port, http_receiver, self_signed_certificate, smtp_server

NOW = dt.datetime(2026, 11, 30, 18, tzinfo=dt.UTC)
SIGNING_SECRET = "whsec_alerts_test_secret"
SMTP_PASSWORD = "smtp-pass-never-logged"
# One churn on DAY: cus_c loses $1200, above the rule's $1000.
MOVEMENTS = [(DAY, "cus_c", "0", "1200")]
MRR = {DAY - dt.timedelta(days=1): "5000", DAY: "3800"}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())
    home = connected_home(tmp_path)
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
    monkeypatch.setenv("ALERT_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("ALERT_SMTP_PASSWORD", SMTP_PASSWORD)
    write_marts(home, MRR, {}, MOVEMENTS)
    assert main(["alerts", "add", PROJECT, "churned_mrr", "$1000"]) == 0
    return home


def add_channel(*args: str) -> None:
    assert main(["alerts", "channel", PROJECT, *args]) == 0


def deliveries(home: Path) -> list[tuple[str, int, int, str | None]]:
    with sqlite3.connect(home / "alerts.sqlite") as con:
        return con.execute("select channel_id, delivered, attempts, error "
                           "from alert_deliveries order by rowid").fetchall()


def test_email_slack_and_signed_webhook_receive_the_alert(
        home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The churn alert (cus_c $1200 > $1000) reaches all three channels once; the webhook's
    signature verifies with the channel's secret and fails with another; the email went over
    STARTTLS with a login; no secret is in the registry file in clear."""
    cert, key = self_signed_certificate(tmp_path)
    with (smtp_server("alerts", SMTP_PASSWORD, (cert, key)) as (port, mailbox),
          http_receiver() as slack, http_receiver() as hook):
        monkeypatch.setenv("ALERT_SLACK_URL", f"{slack.url}/services/T000/B000/XXXX")
        add_channel("email", "--smtp-host", "127.0.0.1", "--smtp-port", str(port),
                    "--tls", "starttls", "--smtp-ca-file", str(cert), "--smtp-user", "alerts",
                    "--smtp-password-env", "ALERT_SMTP_PASSWORD",
                    "--from", "alerts@example.com", "--to", "team@example.com")
        add_channel("slack", "--url-env", "ALERT_SLACK_URL")
        add_channel("webhook", "--url", f"{hook.url}/alerts", "--signing-secret-env",
                    "ALERT_SIGNING_SECRET")
        round_ = run_alerts(home, now=NOW, backoff=0.01)
        assert [e.event for e in round_.events] == ["fired"]
        assert deliveries(home) == [("email-1", 1, 1, None), ("slack-1", 1, 1, None),
                                    ("webhook-1", 1, 1, None)]
        # a refresh with the same numbers sends nothing new
        assert run_alerts(home, now=NOW, backoff=0.01).events == []

    assert mailbox.logins == ["alerts"]
    [(sender, recipients, text)] = mailbox.messages
    assert (sender, recipients) == ("alerts@example.com", ["team@example.com"])
    assert f"[ALERT] {PROJECT} {DAY}: churned_mrr above $1000" in text
    assert "cus_c $1200.000000" in text

    [(path, _, body)] = slack.requests
    assert path == "/services/T000/B000/XXXX"
    assert json.loads(body)["text"].startswith(f"[ALERT] {PROJECT} {DAY}: churned_mrr")

    [(path, headers, body)] = hook.requests
    payload = json.loads(body)
    assert (path, payload["rule"], payload["day"], payload["value"], payload["threshold"]) == (
        "/alerts", "churned_mrr-1", DAY.isoformat(), "1200.000000", "$1000")
    assert payload["customers"] == [{"customer_id": "cus_c", "lost_mrr": "1200.000000"}]
    signature = headers[SIGNATURE_HEADER]
    assert signature.startswith("t=") and ",v1=" in signature
    assert verify_signature(body, signature, SIGNING_SECRET)
    assert not verify_signature(body, signature, "whsec_other")
    assert not verify_signature(body.replace(b"1200", b"1300"), signature, SIGNING_SECRET)
    assert not verify_signature(body, signature, SIGNING_SECRET, now=time.time() + 3600)

    stored = ConnectionStore(home).path.read_text()
    for secret in (SIGNING_SECRET, SMTP_PASSWORD, "/services/T000/B000/XXXX"):
        assert secret not in stored


def test_a_500_is_retried_then_recorded_as_a_failure_and_other_channels_still_get_it(
        home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The Slack receiver answers 500 three times: three attempts, then a recorded failure (one
    line naming the channel, never its URL, which is the secret); the webhook answers 500 once
    then 200: delivered on the second attempt. run_alerts returns normally (a build calling it
    is not blocked), and a later run does not send the recorded alert again."""
    with http_receiver([500]) as hook, http_receiver([500, 500, 500]) as slack:
        monkeypatch.setenv("ALERT_SLACK_URL", f"{slack.url}/services/secret-path")
        add_channel("webhook", "--url", f"{hook.url}/alerts", "--signing-secret-env",
                    "ALERT_SIGNING_SECRET")
        add_channel("slack", "--url-env", "ALERT_SLACK_URL")
        round_ = run_alerts(home, now=NOW, backoff=0.01)
        assert len(hook.requests) == 2 and len(slack.requests) == 3
        capsys.readouterr()
        assert main(["alerts", "run", PROJECT]) == 0
        assert len(hook.requests) == 2 and len(slack.requests) == 3
    assert deliveries(home) == [
        ("webhook-1", 1, 2, None),
        ("slack-1", 0, 3, "Slack channel slack-1 failed after 3 attempts (HTTP 500): the alert "
                          "is recorded; check the receiver is up")]
    assert [d.channel_id for d in round_.failed_deliveries] == ["slack-1"]
    assert "secret-path" not in capsys.readouterr().out


def test_an_unreachable_smtp_host_is_one_line(home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    add_channel("email", "--smtp-host", "127.0.0.1", "--smtp-port", str(port), "--tls", "none",
                "--from", "alerts@example.com", "--to", "team@example.com")
    capsys.readouterr()
    assert main(["alerts", "test", PROJECT]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"email-1: error: cannot reach SMTP host 127.0.0.1:{port} "
                   "(Connection refused): check --smtp-host and --smtp-port"]
    run_alerts(home, now=NOW)
    assert deliveries(home)[0][:3] == ("email-1", 0, 1)
    assert main(["alerts", "list", PROJECT]) == 0  # nothing stored was lost


def test_a_secret_on_the_command_line_is_refused(home: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    before = ConnectionStore(home).path.read_text()
    assert main(["alerts", "channel", PROJECT, "slack", "--url-env",
                 "https://hooks.slack.com/services/T/B/X"]) == 2
    assert "pass the name of an environment variable" in capsys.readouterr().err
    assert ConnectionStore(home).path.read_text() == before


def test_rotating_the_key_keeps_channel_secrets_readable(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add_channel("webhook", "--url", "http://127.0.0.1:9/alerts", "--signing-secret-env",
                "ALERT_SIGNING_SECRET")
    new_key = generate_key()
    monkeypatch.setenv("STRIPE_WAREHOUSE_NEW_SECRET_KEY", new_key)
    assert main(["rotate-key"]) == 0
    monkeypatch.setenv(SECRET_KEY_ENV, new_key)
    monkeypatch.delenv("STRIPE_WAREHOUSE_NEW_SECRET_KEY")
    store = ConnectionStore(home)
    [channel] = store.get(PROJECT).alert_channels or []
    assert store.channel_secret(PROJECT, channel) == SIGNING_SECRET
