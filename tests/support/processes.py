"""A private stack's processes seen from a test: requests that survive a dead API,
SIGKILL, restarts, and the reconcile CLI."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from tests.support.gateway import Answer
from tests.support.paths import ROOT


def request(url: str, method: str, path: str, key: str | None, body: Any = None,
            headers: dict[str, str] | None = None, timeout: float = 30) -> Answer:
    """Like Gateway.request, but a dropped connection is an answer with status 0."""
    data = json.dumps(body).encode() if body is not None else None
    h = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {}), **(headers or {})}
    req = urllib.request.Request(url + path, data=data, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return Answer(resp.status, dict(resp.headers), json.loads(raw or b"null"))
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            parsed = json.loads(raw or b"null")
        except ValueError:
            parsed = {"not_json": raw[:300].decode(errors="replace")}
        return Answer(exc.code, dict(exc.headers), parsed)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return Answer(0, {}, None)  # IncompleteRead: the API died while it answered


def reconcile_exit(stack: Any) -> tuple[int, str]:
    env = {**stack.env(), "STAGE": "local"}
    result = subprocess.run([sys.executable, "-m", "chalicelib.cli", "reconcile"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def kill(stack: Any, name: str) -> None:
    pid = stack._pid(name)
    if pid:
        os.killpg(pid, signal.SIGKILL)
        while stack._pid(name):
            time.sleep(0.05)
        (stack.pids / f"{name}.pid").unlink(missing_ok=True)


def restart_api(stack: Any) -> None:
    """Start the API again once its port is free (a killed server's socket lingers briefly)."""
    from localstack.stack import StackError

    deadline = time.monotonic() + 30
    while True:
        try:
            stack.start_api()
            break
        except StackError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    wait_ready(stack.api_url)


def wait_ready(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if request(url, "GET", "/readyz", None, timeout=2).status == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready")
