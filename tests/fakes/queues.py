"""A work queue in a list: what was sent, and which receipts were pushed back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.errors import BackendUnavailableError


class FakeQueue:
    def __init__(self, name: str = "queue") -> None:
        self.name = name
        self.sent: list[dict[str, Any]] = []
        self.attributes: list[dict[str, str] | None] = []
        self.delayed: list[tuple[str, float]] = []
        self.visible = 0  # what depth() reports as waiting
        self.down = False

    def send(self, body: Mapping[str, Any], delay_s: int = 0,
             attributes: Mapping[str, str] | None = None) -> None:
        if self.down:
            raise BackendUnavailableError(f"the queue is unavailable ({self.name})")
        self.sent.append(dict(body))
        self.attributes.append(dict(attributes) if attributes else None)

    def depth(self) -> dict[str, int]:
        if self.down:
            raise BackendUnavailableError(f"the queue is unavailable ({self.name})")
        return {"visible": self.visible, "in_flight": 0, "delayed": 0}

    def delay_redelivery(self, receipt_handle: str, delay_s: float) -> bool:
        self.delayed.append((receipt_handle, delay_s))
        return not self.down
