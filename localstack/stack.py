"""Start, stop and inspect the local stack: emulator, API, runners.

    python -m localstack.stack up|down|status

Every process runs in its own session with its pid under ``.local/pids`` and
its output under ``.local/logs``; ``down`` stops exactly those. The tests use
the same ``Stack`` class on free ports and a temporary state folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.resources import resource_names

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


class StackError(RuntimeError):
    """The stack could not be started as asked."""


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


@dataclass
class Stack:
    state_dir: Path = ROOT / ".local"
    emulator_port: int = 4566
    api_port: int = 8080
    workers: int = 1
    stage: str = "local"
    extra_env: dict[str, str] = field(default_factory=dict)
    emulator: str = "moto"  # or "localstack" (Docker)
    # How the API and runner processes are started: a command that runs the Python
    # module named by the argument after it, as ``python -m`` does (e.g. a wrapper
    # that sets something up in the process first).
    launcher: list[str] = field(default_factory=lambda: [PYTHON, "-m"])
    # Where the API, the runners and the CLI send their AWS calls: an explicit
    # ``AWS_ENDPOINT_URL`` (here or in ``extra_env``), e.g. a proxy in front of the
    # emulator; by default the emulator itself. Provisioning always talks to the emulator.
    aws_endpoint: str | None = None

    @property
    def endpoint(self) -> str:
        """The emulator, where it listens (``EMULATOR_PORT``)."""
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def client_endpoint(self) -> str:
        """Where the stack's processes send their AWS calls."""
        return self.aws_endpoint or self.extra_env.get("AWS_ENDPOINT_URL") or self.endpoint

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def pids(self) -> Path:
        return self.state_dir / "pids"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    def env(self) -> dict[str, str]:
        """The processes' environment: this one's, ``extra_env`` over it, then the stack's own.

        What is set here wins over the stage's defaults in ``.chalice/config.json``
        (the API and the runners fill in only what is unset).
        """
        env = dict(os.environ)
        env.update(self.extra_env)
        # The local stack never talks to a real account, whatever the shell has.
        env.update({
            "AWS_ENDPOINT_URL": self.client_endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", "us-east-1"),
            "STAGE": self.stage,
            "EMULATOR": self.emulator,  # provisioning builds its clients for it
            "PYTHONPATH": str(ROOT),
            "LOCAL_LOG_DIR": str(self.logs),  # the functions' log groups (loggroups.py)
        })
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_SESSION_TOKEN", None)
        return env

    # -- processes -------------------------------------------------------
    def _pid(self, name: str) -> int | None:
        path = self.pids / f"{name}.pid"
        if not path.exists():
            return None
        pid = int(path.read_text().strip() or 0)
        return pid if pid and alive(pid) else None

    def running(self) -> dict[str, int]:
        if not self.pids.exists():
            return {}
        out = {}
        for path in sorted(self.pids.glob("*.pid")):
            pid = self._pid(path.stem)
            if pid:
                out[path.stem] = pid
        return out

    def _start(self, name: str, argv: list[str], log: Path) -> int:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=self.env(), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        (self.pids / f"{name}.pid").write_text(str(proc.pid))
        return proc.pid

    def _check_port(self, port: int, what: str, variable: str) -> None:
        if not port_free(port):
            raise StackError(f"port {port} ({what}) is already in use by another program; "
                             f"stop it or choose another port with {variable}=...")

    def start_emulator(self, wait: bool = True) -> None:
        """Start the emulator (LocalStack's is always waited for); ``wait``: until it answers."""
        if self.emulator == "localstack":
            self._start_localstack()
            return
        if not self._pid("emulator"):
            self._check_port(self.emulator_port, "the AWS emulator", "EMULATOR_PORT")
            self._start("emulator", [PYTHON, "-m", "localstack.emulator", "--host", "127.0.0.1",
                                     "--port", str(self.emulator_port)],
                        self.logs / "emulator.log")
        if wait:
            self.wait_emulator()

    def wait_emulator(self, timeout_s: float = 30) -> None:
        if self.emulator == "moto":
            self._wait_http(f"{self.endpoint}/moto-api/", "emulator", timeout_s)

    def _compose(self, *args: str) -> list[str]:
        compose = str(ROOT / "localstack" / "docker-compose.yml")
        return ["docker", "compose", "-f", compose, "-p", resource_names(self.stage).prefix, *args]

    def _start_localstack(self) -> None:
        """LocalStack in Docker instead of moto (not exercised by the test suite)."""
        if self.emulator_port != 4566:
            raise StackError("LocalStack mode uses port 4566 (see docker-compose.yml)")
        result = subprocess.run(self._compose("up", "-d"), cwd=ROOT, capture_output=True,
                                text=True, timeout=600)
        if result.returncode != 0:
            raise StackError(f"docker compose failed (is a Docker engine running?):\n"
                             f"{result.stderr.strip()}")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "emulator").write_text("localstack\n")
        self._wait_http(f"{self.endpoint}/_localstack/health", "LocalStack", 120)

    def _stop_localstack(self) -> bool:
        marker = self.state_dir / "emulator"
        if not marker.exists() or marker.read_text().strip() != "localstack":
            return False
        subprocess.run(self._compose("down"), cwd=ROOT, capture_output=True, timeout=300)
        marker.unlink()
        return True

    def provision(self) -> None:
        """Create the tables and queues and seed the demo client, straight in the emulator:
        set-up is not under test, and a proxy that drops answers must not stop it."""
        result = subprocess.run([PYTHON, "-m", "localstack.provision"], cwd=ROOT,
                                env=self.provisioning_env(), capture_output=True, text=True,
                                timeout=120)
        if result.returncode != 0:
            raise StackError(f"provisioning failed:\n{result.stdout}{result.stderr}")
        sys.stdout.write(result.stdout)

    def provisioning_env(self) -> dict[str, str]:
        """The processes' environment, pointed at the emulator itself."""
        return {**self.env(), "AWS_ENDPOINT_URL": self.endpoint}

    def start_api(self) -> None:
        if self._pid("api"):
            return
        self._check_port(self.api_port, "the API", "PORT")
        self._start("api", [*self.launcher, "localstack.local_api", "--no-autoreload",
                            "--host", "127.0.0.1", "--port", str(self.api_port),
                            "--stage", self.stage],
                    self.logs / "api.log")

    def start_workers(self, schedules: bool = True) -> None:
        """Start the runners; the first runs the schedules too, unless not ``schedules``."""
        for i in range(1, self.workers + 1):
            name = f"worker-{i}"
            if self._pid(name):
                continue
            argv = [*self.launcher, "localstack.runner", "--worker-id", str(i)]
            if i == 1 and schedules:
                argv.append("--schedules")
            self._start(name, argv, self.logs / f"{name}.log")

    def up(self, timeout_s: float = 90) -> None:
        """Start what is not running yet, and wait until the API is ready."""
        self.check_settings()
        # Refuse before starting anything, so a busy port leaves nothing behind.
        if self.emulator == "moto" and not self._pid("emulator"):
            self._check_port(self.emulator_port, "the AWS emulator", "EMULATOR_PORT")
        if not self._pid("api"):
            self._check_port(self.api_port, "the API", "PORT")
        # The API imports the app (seconds) while the emulator starts and is provisioned;
        # the runners start on provisioned queues.
        self.start_emulator(wait=False)
        self.start_api()
        self.wait_emulator()
        self.provision()
        self.start_workers()
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = 90) -> None:
        """Until the API's ``/readyz`` answers 200."""
        self._wait_http(f"{self.api_url}/readyz", "API", timeout_s)

    def check_settings(self) -> None:
        """Refuse at once settings the API and the runners would refuse on first use."""
        from chalicelib.settings import Settings, SettingsError, stage_environment

        try:
            settings = Settings.from_env({**stage_environment(self.stage, str(ROOT)), **self.env()})
        except SettingsError as exc:
            raise StackError(f"the settings are refused: {exc}") from None
        problem = settings.provider_problem()
        if problem:  # the API would answer /readyz with 503 for good
            raise StackError(f"nothing could be sent: {problem}")

    def _wait_http(self, url: str, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise StackError(f"the {what} did not become ready at {url} within {timeout_s:.0f} s "
                         f"({last}); see {self.logs}")

    def stop_process(self, name: str, timeout_s: float = 10) -> None:
        pid = self._pid(name)
        path = self.pids / f"{name}.pid"
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        path.unlink(missing_ok=True)

    def down(self) -> list[str]:
        """Stop every process this stack started (workers first, emulator last)."""
        names = [p.stem for p in sorted(self.pids.glob("*.pid"))] if self.pids.exists() else []
        order = sorted(names, key=lambda n: {"emulator": 2, "api": 1}.get(n, 0))
        for name in order:
            self.stop_process(name)
        if self._stop_localstack():
            order.append("localstack")
        return order

    def status(self) -> dict[str, Any]:
        procs = self.running()
        ready = None
        try:
            with urllib.request.urlopen(f"{self.api_url}/readyz", timeout=2) as resp:
                ready = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            ready = json.loads(exc.read() or b"{}")
        except OSError as exc:
            ready = {"status": f"not answering ({exc})"}
        return {"processes": procs, "api": self.api_url, "emulator": self.endpoint,
                "aws_endpoint": self.client_endpoint, "readyz": ready}


def from_env() -> Stack:
    return Stack(
        emulator_port=int(os.environ.get("EMULATOR_PORT", "4566")),
        api_port=int(os.environ.get("PORT", "8080")),
        workers=int(os.environ.get("WORKERS", "1")),
        emulator=os.environ.get("EMULATOR", "moto"),
        aws_endpoint=os.environ.get("AWS_ENDPOINT_URL") or None,  # explicit: it wins
    )


CURL = ("curl -X POST http://localhost:{port}/v1/messages -H \"Content-Type: application/json\" "
        "-H \"X-API-Key: secret\" -d '{{\"to\":\"+1234567890\",\"from\":\"TEST\","
        "\"text\":\"Hello SMS Gateway!\"}}'")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the local stack.")
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    stack = from_env()
    if args.command == "up":
        started = time.monotonic()
        try:
            stack.up()
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"\nThe SMS gateway is up ({time.monotonic() - started:.1f} s):")
        for name, pid in stack.running().items():
            print(f"  {name:<10} pid {pid}")
        print(f"  API        {stack.api_url}   (chalice local)")
        print(f"  emulator   {stack.endpoint}   (moto server; AWS_ENDPOINT_URL)"
              if stack.client_endpoint == stack.endpoint else
              f"  emulator   {stack.endpoint}   (moto server; provisioning talks to it)\n"
              f"  AWS calls  {stack.client_endpoint}   (AWS_ENDPOINT_URL: API, runners, CLI)")
        print(f"  logs       {stack.logs}/\n\nTry:\n  {CURL.format(port=stack.api_port)}")
        if stack.emulator_port == 4566:  # the dev stage's AWS_ENDPOINT_URL (.chalice/config.json)
            print("\nA second API on this stack, under Chalice's own server (stage dev, port 8000):\n"
                  "  .venv/bin/chalice local --no-autoreload\n"
                  "(without --no-autoreload it restarts whenever the stack writes its logs in .local/)")
        return 0
    if args.command == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    print(json.dumps(stack.status(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
