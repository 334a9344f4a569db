"""The embedded emulator's changes to moto keep moto's answers."""

from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws
from moto.core.utils import unix_time_millis
from moto.sqs.models import sqs_backends

from localstack import emulator

ACCOUNT, REGION = "123456789012", "us-east-1"


def test_the_fast_clock_reads_the_same_time_as_motos() -> None:
    before = unix_time_millis()
    fast = emulator.fast_unix_time_millis()
    after = unix_time_millis()
    assert before - 1 <= fast <= after + 1


@mock_aws
@pytest.mark.parametrize(("age_s", "retained"), [(0, True), (59, True), (61, False)])
def test_retention_is_judged_as_moto_judges_it(age_s: int, retained: bool) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    backend = sqs_backends[ACCOUNT][REGION]
    message = backend.get_queue("q")._messages[0]
    message.sent_timestamp = int((time.time() - age_s) * 1000)
    assert emulator.valid_for_retention(backend, "q", message) is retained
    assert backend.is_message_valid_based_on_retention_period("q", message) is retained


@mock_aws
def test_delete_removes_only_its_message_and_accepts_a_second_delete() -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="d")["QueueUrl"]
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=5)["Messages"]
    queue = sqs_backends[ACCOUNT][REGION].get_queue("d")
    emulator.delete_message(queue, got[2]["ReceiptHandle"])
    emulator.delete_message(queue, got[2]["ReceiptHandle"])  # again: accepted, as moto does
    assert sorted(m.body for m in queue._messages) == sorted(
        m["Body"] for i, m in enumerate(got) if i != 2)
    with pytest.raises(Exception, match="ReceiptHandleIsInvalid|not a valid"):
        emulator.delete_message(queue, "no-such-handle")


def _tables(ddb: object) -> None:
    for name, keys in (("a", [("k", "HASH")]), ("b", [("k", "HASH"), ("r", "RANGE")])):
        ddb.create_table(  # type: ignore[attr-defined]
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": n, "KeyType": t} for n, t in keys],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n, _ in keys])


@mock_aws
def test_a_cancelled_transaction_leaves_every_item_as_it_was() -> None:
    emulator.patch_moto_transactions()
    ddb = boto3.client("dynamodb", region_name=REGION)
    _tables(ddb)
    ddb.put_item(TableName="a", Item={"k": {"S": "x"}, "n": {"N": "1"}})
    # WHEN a transaction writes a new item, updates one, and then fails a condition
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as cancelled:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "b", "Item": {"k": {"S": "new"}, "r": {"S": "1"}}}},
            {"Update": {"TableName": "a", "Key": {"k": {"S": "x"}},
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": {"TableName": "a", "Item": {"k": {"S": "y"}},
                     "ConditionExpression": "attribute_exists(k)"}},
        ])
    # THEN nothing of it is left, and moto's reasons are given item by item
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert "Item" not in ddb.get_item(TableName="b", Key={"k": {"S": "new"}, "r": {"S": "1"}})
    assert ddb.get_item(TableName="a", Key={"k": {"S": "x"}})["Item"]["n"] == {"N": "1"}
    assert "Item" not in ddb.get_item(TableName="a", Key={"k": {"S": "y"}})
    # AND a transaction that passes applies every write
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "b", "Item": {"k": {"S": "new"}, "r": {"S": "1"}}}},
        {"Update": {"TableName": "a", "Key": {"k": {"S": "x"}},
                    "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ])
    assert ddb.get_item(TableName="a", Key={"k": {"S": "x"}})["Item"]["n"] == {"N": "2"}
    assert "Item" in ddb.get_item(TableName="b", Key={"k": {"S": "new"}, "r": {"S": "1"}})

