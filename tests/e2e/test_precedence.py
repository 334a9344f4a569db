"""An explicit environment variable beats the stage's defaults in the stack's processes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
SEED = {"to": "+1234567890", "from": "TEST", "text": "Hello SMS Gateway!"}  # the README's curl


def test_phone_validation_from_the_shell_wins_over_the_local_stages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localstack.stack import Stack, free_port

    monkeypatch.setenv("PHONE_VALIDATION", "strict")  # the local stage says e164
    # The API alone answers this; no runner is needed.
    stack = Stack(state_dir=tmp_path / "stack", emulator_port=free_port(), api_port=free_port(),
                  workers=0)
    try:
        stack.up(timeout_s=120)
        request = urllib.request.Request(
            f"{stack.api_url}/v1/messages", data=json.dumps(SEED).encode(), method="POST",
            headers={"X-API-Key": "secret", "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400
        assert json.loads(refused.value.read())["error"]["field"] == "to"
    finally:
        stack.down()
