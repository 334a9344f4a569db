"""Telemetry that remembers what it was told."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class FakeTelemetry:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.by_provider: Counter[tuple[str, str]] = Counter()
        self.durations: dict[str, list[float]] = {}
        self.keys: dict[str, Any] = {}

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] += value

    def count_failure(self, reason: str) -> None:
        self.failures[reason] += 1

    def count_for_provider(self, name: str, provider: str) -> None:
        self.by_provider[(name, provider)] += 1

    def record_ms(self, name: str, milliseconds: float) -> None:
        self.durations.setdefault(name, []).append(milliseconds)

    def correlate(self, **keys: Any) -> None:
        self.keys.update({k: v for k, v in keys.items() if v is not None})

    @contextmanager
    def scope(self, **keys: Any) -> Iterator[None]:
        saved = dict(self.keys)
        self.correlate(**keys)
        try:
            yield
        finally:
            self.keys = saved
