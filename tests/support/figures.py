"""Rows of RELIABILITY.md: recorded by the reliability tests, rendered when the session ends."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Figures:
    """One row of RELIABILITY.md, every number measured by the test that records it."""

    scenario: str
    messages: int = 0
    lost: int = 0
    sent_twice: int = 0
    charged_twice: int = 0
    ledger_drift_cents: int = 0
    answers_5xx: int = 0
    seconds: float = 0.0
    notes: str = ""


@dataclass
class FigureBook:
    """The rows the tests of one session recorded."""

    rows: list[Figures] = field(default_factory=list)

    def record(self, row: Figures) -> None:
        self.rows.append(row)


def render(rows: Iterable[Figures]) -> str:
    """RELIABILITY.md for these rows."""
    lines = [
        "# Reliability figures",
        "",
        "Written by `make test-reliability` from what its tests measured on this run "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). Rerun it to reproduce.",
        "",
        "- **lost**: accepted (202) messages not in a final status at the end.",
        "- **sent twice**: messages the provider was asked to send again after it had accepted "
        "them (the mock provider's own record, `submissions > 1`). The mock is idempotent by "
        "message id, so these are not second SMS here; a provider without that guarantee would "
        "send them twice.",
        "- **charged twice**: cents captured beyond the price of the messages whose hold is CAPTURED.",
        "- **ledger drift**: cents by which the books audit (`make reconcile`) is off, summed.",
        "- **5xx**: answers with a 5xx status seen by the test's clients (503 is the expected "
        "answer during an outage; the notes say which).",
        "",
        "| scenario | messages | lost | sent twice | charged twice | ledger drift (cents) | 5xx | "
        "time (s) | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r.scenario} | {r.messages} | {r.lost} | {r.sent_twice} | {r.charged_twice} "
                     f"| {r.ledger_drift_cents} | {r.answers_5xx} | {r.seconds:.1f} | {r.notes} |")
    return "\n".join(lines) + "\n"
