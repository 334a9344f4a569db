"""Cold start and package size: what a new Lambda container pays before the first request.

``cold_start()`` times ``import app`` (the API function's modules) against a
bare ``import boto3``, each with ``python -X importtime`` in a fresh
interpreter, in 11 interleaved pairs (app, boto3, boto3, app, ...): the ratio
is the median of the pairwise ratios, so a burst of load on a noisy machine
moves both sides of a pair, not one. ``spread`` is the interquartile range of
the pairwise ratios. ``package_mb()`` is the size of ``make package
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
PAIRS = 11


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


def cold_start(pairs: int = PAIRS) -> dict[str, float]:
    """Median import times of ``app`` and ``boto3``, the median pairwise ratio, its spread."""
    apps, botos = [], []
    for i in range(pairs):
        order = ("app", "boto3") if i % 2 == 0 else ("boto3", "app")  # neither always goes first
        timed = {module: import_ms(module) for module in order}
        apps.append(timed["app"])
        botos.append(timed["boto3"])
    ratios = sorted(a / b for a, b in zip(apps, botos, strict=True))
    quartiles = statistics.quantiles(ratios, n=4)
    return {"app_ms": statistics.median(apps), "boto3_ms": statistics.median(botos),
            "ratio": statistics.median(ratios), "spread": quartiles[2] - quartiles[0],
            "pairs": float(pairs)}


def package_mb() -> float:
    """The prod deployment package's size in MB (``make package STAGE=prod`` if missing)."""
    if not ZIP.exists():
        subprocess.run(["make", "package", "STAGE=prod"], cwd=ROOT, check=True,
                       stdout=sys.stderr)
    return ZIP.stat().st_size / 1e6


if __name__ == "__main__":
    print(cold_start(), package_mb())
