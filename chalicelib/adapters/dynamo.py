"""What every DynamoDB adapter shares: telling a lost condition from an outage."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pynamodb.exceptions import PynamoDBException

from chalicelib.domain.errors import BackendUnavailableError


def is_condition_failure(exc: PynamoDBException) -> bool:
    """True when a write lost its condition (as opposed to an outage)."""
    return exc.cause_response_code in {
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    }


@contextmanager
def dynamodb_errors(what: str) -> Iterator[None]:
    """Turn an outage of DynamoDB into ``BackendUnavailableError``."""
    try:
        yield
    except PynamoDBException as exc:
        if is_condition_failure(exc):
            raise
        raise BackendUnavailableError(f"the database is unavailable ({what})") from exc


def pause_before_retry(attempt: int) -> None:
    """Wait after ``attempt`` lost its write to a concurrent one: a random pause in a
    window that doubles with each attempt (5 ms for attempt 0) up to 200 ms, on the
    scale of a round trip, so the winner's write is in and the losers do not meet
    again in step."""
    time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** attempt)))
