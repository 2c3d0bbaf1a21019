"""`python -m sandbox serve` generates a company, prints its URL and stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.sandbox.conftest import NOW

REPO = Path(__file__).resolve().parents[2]


def _status(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            json.loads(response.read())
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_serve_prints_url_serves_with_preset_limits_and_stops_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--customers", "30", "--years", "1",
         "--seed", "5", "--now", str(NOW), "--port", "0", "--api-key", "sk_test_cli",
         "--rate-limit", "test"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert _status(f"{url}/v1/account", "sk_test_cli") == 200
        assert _status(f"{url}/v1/account", "sk_test_other") == 401
        statuses = [_status(f"{url}/v1/customers", "sk_test_cli") for _ in range(40)]
        assert 429 in statuses  # the test-mode preset allows 25 requests/s
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
