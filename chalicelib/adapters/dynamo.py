"""What every DynamoDB adapter shares: telling a lost condition from an outage."""

from __future__ import annotations

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
