"""In-memory fakes of the ports in ``chalicelib/ports.py``: one per port.

They keep the adapters' rules (conditional moves between statuses, holds that
never go below zero, a bucket that refuses) so that services can be tested
with no emulator and no I/O. The adapters themselves are tested against moto.
"""

from tests.fakes.accounts import FakeAccounts
from tests.fakes.clock import FakeClock
from tests.fakes.messages import FakeMessages
from tests.fakes.providers import ScriptedProvider
from tests.fakes.queues import FakeQueue
from tests.fakes.telemetry import FakeTelemetry
from tests.fakes.webhooks import FakePoster

__all__ = ["FakeAccounts", "FakeClock", "FakeMessages", "FakePoster", "FakeQueue",
           "FakeTelemetry", "ScriptedProvider"]
