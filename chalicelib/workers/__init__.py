"""The queue and schedule edge: Lambda-shaped events in, one service call per record."""

from chalicelib.workers.consumers import workers

__all__ = ["workers"]
