"""Cold start and package size: what a new Lambda container pays before the first request.

``cold_start()`` times ``import app`` (the API function's modules) against a
bare ``import boto3``, each with ``python -X importtime`` in 5 fresh
interpreters (median). ``package_mb()`` is the size of ``make package
STAGE=prod``'s ``deployment.zip``, built first if it is missing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZIP = ROOT / "build" / "prod" / "deployment.zip"
RUNS = 5


def import_ms(module: str) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter, in ms."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_CALLS")}
    env.update({"STAGE": "prod", "PYTHONPATH": str(ROOT)})
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    for line in done.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3 and fields[2].strip() == module:
            return int(fields[1]) / 1000
    raise RuntimeError(f"no import time for {module}:\n{done.stderr[-500:]}")


def cold_start() -> dict[str, float]:
    """Median import times of ``app`` and ``boto3``, and their ratio."""
    app = statistics.median(import_ms("app") for _ in range(RUNS))
    boto3 = statistics.median(import_ms("boto3") for _ in range(RUNS))
    return {"app_ms": app, "boto3_ms": boto3, "ratio": app / boto3}


def package_mb() -> float:
    """The prod deployment package's size in MB (``make package STAGE=prod`` if missing)."""
    if not ZIP.exists():
        subprocess.run(["make", "package", "STAGE=prod"], cwd=ROOT, check=True,
                       stdout=sys.stderr)
    return ZIP.stat().st_size / 1e6


if __name__ == "__main__":
    print(cold_start(), package_mb())
