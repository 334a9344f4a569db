"""The emulator's AWS End User Messaging SMS, over HTTP with real boto3 clients.

One emulator serves the module from a thread (tests/support/emulator_server.py); each
test names its own configuration set, topic and queue. The emulator runs in this
process, so ``MOCK_*`` variables set here decide its outcomes and timing.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.domain.provider_errors import Outcome, mock_outcome, unit_draw
from localstack import smsvoice
from tests.support.emulator_server import client, serving_emulator

pytestmark = pytest.mark.functional

TO = "+14255550156"  # a US number of AWS's examples
EVENT_FIELDS = {
    "eventType", "eventVersion", "eventTimestamp", "isFinal", "originationPhoneNumber",
    "destinationPhoneNumber", "isInternationalSend", "isoCountryCode", "messageId",
    "messageRequestTimestamp", "messageEncoding", "messageType", "messageStatus",
    "messageStatusDescription", "context", "totalMessageParts", "totalMessagePrice", "totalCarrierFee",
}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serving_emulator() as served:
        yield served


@pytest.fixture(autouse=True)
def knobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every send accepted and reported delivered 50 ms later, unless a test says otherwise."""
    for name, value in {"MOCK_SUCCESS_RATE": "1", "MOCK_TEMP_FAIL_RATE": "0", "MOCK_PERM_FAIL_RATE": "0",
                        "MOCK_SEED": "42", "MOCK_DLR_DELAY": "50ms", "MOCK_DLR_FAIL_RATE": "0"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def sms(url: str) -> Any:
    return client(url, "pinpoint-sms-voice-v2")


@pytest.fixture
def unchecked_sms(url: str) -> Any:
    """A client that leaves all validation to the server."""
    return client(url, "pinpoint-sms-voice-v2", parameter_validation=False)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> dict[str, Any]:
    """The parsed error: its code, HTTP status and the model's members (Reason, Fields...)."""
    response: dict[str, Any] = excinfo.value.response
    return {"Code": response["Error"]["Code"],
            "Status": response["ResponseMetadata"]["HTTPStatusCode"],
            **{k: v for k, v in response.items() if k not in ("Error", "ResponseMetadata")}}


def queue_on_topic(url: str) -> tuple[str, str]:
    """A new SNS topic and an SQS queue subscribed to it by raw delivery: (topic ARN, queue URL)."""
    sns, sqs = client(url, "sns"), client(url, "sqs")
    topic = sns.create_topic(Name=unique("events"))["TopicArn"]
    queue = sqs.create_queue(QueueName=unique("events"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return topic, queue


@pytest.fixture
def events_queue(url: str, sms: Any) -> dict[str, str]:
    """A configuration set whose SNS event destination (TEXT_ALL) feeds an SQS queue:
    the set's name and the queue's URL."""
    topic, queue = queue_on_topic(url)
    name = unique("set")
    sms.create_configuration_set(ConfigurationSetName=name)
    sms.create_event_destination(ConfigurationSetName=name, EventDestinationName="sns",
                                 MatchingEventTypes=["TEXT_ALL"], SnsDestination={"TopicArn": topic})
    return {"set": name, "queue": queue}


def received(url: str, queue: str, count: int, within_s: float = 3.0) -> list[dict[str, Any]]:
    """The bodies of the first ``count`` messages on ``queue`` (fewer if they do not come)."""
    sqs, bodies = client(url, "sqs"), []
    deadline = time.monotonic() + within_s
    while len(bodies) < count and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
    return bodies


def nothing_arrives(url: str, queue: str) -> bool:
    time.sleep(0.3)  # six times the report delay
    return "Messages" not in client(url, "sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)


def answer_of(request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    """The status and parsed JSON answer of ``request``, an error's included."""
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post_target(url: str, target: str, body: bytes = b"{}") -> tuple[int, dict[str, Any]]:
    """POST a JSON 1.0 request without a signature; its status and parsed answer."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"})
    return answer_of(request)


# --- configuration sets and event destinations ------------------------------------

def test_a_configuration_set_is_created_described_and_deleted(sms: Any) -> None:
    name = unique("set")
    created = sms.create_configuration_set(ConfigurationSetName=name, Tags=[{"Key": "k", "Value": "v"}])
    arn = f"arn:aws:sms-voice:us-east-1:123456789012:configuration-set/{name}"
    assert created["ConfigurationSetArn"] == arn
    assert created["Tags"] == [{"Key": "k", "Value": "v"}]

    [described] = sms.describe_configuration_sets(ConfigurationSetNames=[name])["ConfigurationSets"]
    assert described["ConfigurationSetName"] == name and described["EventDestinations"] == []
    assert described["CreatedTimestamp"] == created["CreatedTimestamp"]
    assert name in {c["ConfigurationSetName"] for c in sms.describe_configuration_sets()["ConfigurationSets"]}

    deleted = sms.delete_configuration_set(ConfigurationSetName=created["ConfigurationSetArn"])
    assert deleted["ConfigurationSetName"] == name
    with pytest.raises(ClientError) as excinfo:
        sms.describe_configuration_sets(ConfigurationSetNames=[name])
    error = error_of(excinfo)
    assert (error["Code"], error["ResourceType"], error["ResourceId"]) == (
        "ResourceNotFoundException", "configuration-set", name)


def test_a_second_set_of_the_same_name_is_a_conflict_but_a_retry_is_not(sms: Any) -> None:
    name = unique("set")
    first = sms.create_configuration_set(ConfigurationSetName=name, ClientToken="token-1")
    again = sms.create_configuration_set(ConfigurationSetName=name, ClientToken="token-1")
    assert again["ConfigurationSetArn"] == first["ConfigurationSetArn"]
    with pytest.raises(ClientError) as excinfo:
        sms.create_configuration_set(ConfigurationSetName=name)
    error = error_of(excinfo)
    assert (error["Code"], error["Status"], error["Reason"]) == ("ConflictException", 400,
                                                                "RESOURCE_ALREADY_EXISTS")


def test_sets_belong_to_their_region(url: str, sms: Any) -> None:
    name = unique("set")
    sms.create_configuration_set(ConfigurationSetName=name)
    elsewhere = client(url, "pinpoint-sms-voice-v2", region="eu-west-1")
    assert name not in {c["ConfigurationSetName"]
                        for c in elsewhere.describe_configuration_sets()["ConfigurationSets"]}


def test_an_sns_event_destination_is_described_with_its_set_and_deleted(sms: Any) -> None:
    name, topic = unique("set"), "arn:aws:sns:us-east-1:123456789012:some-topic"
    sms.create_configuration_set(ConfigurationSetName=name)
    made = sms.create_event_destination(ConfigurationSetName=name, EventDestinationName="d1",
                                        MatchingEventTypes=["TEXT_DELIVERED", "TEXT_CARRIER_UNREACHABLE"],
                                        SnsDestination={"TopicArn": topic})
    expected = {"EventDestinationName": "d1", "Enabled": True,
                "MatchingEventTypes": ["TEXT_DELIVERED", "TEXT_CARRIER_UNREACHABLE"],
                "SnsDestination": {"TopicArn": topic}}
    assert made["EventDestination"] == expected
    [described] = sms.describe_configuration_sets(ConfigurationSetNames=[name])["ConfigurationSets"]
    assert described["EventDestinations"] == [expected]
    filtered = sms.describe_configuration_sets(
        Filters=[{"Name": "event-destination-name", "Values": ["d1"]}])["ConfigurationSets"]
    assert name in {c["ConfigurationSetName"] for c in filtered}

    with pytest.raises(ClientError) as excinfo:
        sms.create_event_destination(ConfigurationSetName=name, EventDestinationName="d1",
                                     MatchingEventTypes=["ALL"], SnsDestination={"TopicArn": topic})
    assert error_of(excinfo)["Reason"] == "RESOURCE_ALREADY_EXISTS"

    removed = sms.delete_event_destination(ConfigurationSetName=name, EventDestinationName="d1")
    assert removed["EventDestination"] == expected
    with pytest.raises(ClientError) as excinfo:
        sms.delete_event_destination(ConfigurationSetName=name, EventDestinationName="d1")
    assert error_of(excinfo)["Code"] == "ResourceNotFoundException"


def test_an_event_destination_needs_exactly_one_destination_and_no_text_sent(sms: Any) -> None:
    name = unique("set")
    sms.create_configuration_set(ConfigurationSetName=name)
    with pytest.raises(ClientError) as excinfo:
        sms.create_event_destination(ConfigurationSetName=name, EventDestinationName="d",
                                     MatchingEventTypes=["ALL"])
    assert (error_of(excinfo)["Code"], error_of(excinfo)["Reason"]) == ("ValidationException",
                                                                       "MISSING_PARAMETER")
    with pytest.raises(ClientError) as excinfo:
        sms.create_event_destination(ConfigurationSetName=name, EventDestinationName="d",
                                     MatchingEventTypes=["TEXT_SENT"],
                                     SnsDestination={"TopicArn": "arn:aws:sns:us-east-1:123456789012:t"})
    assert error_of(excinfo)["Fields"][0]["Name"] == "MatchingEventTypes"


def test_a_set_holds_at_most_five_event_destinations(sms: Any) -> None:
    name, topic = unique("set"), {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t"}
    sms.create_configuration_set(ConfigurationSetName=name)
    for i in range(5):
        sms.create_event_destination(ConfigurationSetName=name, EventDestinationName=f"d{i}",
                                     MatchingEventTypes=["ALL"], SnsDestination=topic)
    with pytest.raises(ClientError) as excinfo:
        sms.create_event_destination(ConfigurationSetName=name, EventDestinationName="d5",
                                     MatchingEventTypes=["ALL"], SnsDestination=topic)
    assert (error_of(excinfo)["Code"], error_of(excinfo)["Reason"]) == (
        "ServiceQuotaExceededException", "EVENT_DESTINATIONS_PER_CONFIGURATION_SET")


# --- sends and their events ---------------------------------------------------------

def test_an_accepted_send_puts_a_successful_then_a_final_delivered_event_in_the_queue(
        url: str, sms: Any, events_queue: dict[str, str]) -> None:
    context = {"message_id": "gw-1", "attempt": "1"}
    text = "x" * 161  # two GSM parts
    answer = sms.send_text_message(DestinationPhoneNumber=TO, MessageBody=text, MessageType="TRANSACTIONAL",
                                   OriginationIdentity="+12065550152", Context=context,
                                   ConfigurationSetName=events_queue["set"], TimeToLive=300,
                                   MaxPrice="0.50")
    message_id = answer["MessageId"]
    assert uuid.UUID(message_id)

    first, final = received(url, events_queue["queue"], 2)
    assert set(first) == set(final) == EVENT_FIELDS
    assert (first["eventType"], first["messageStatus"], first["isFinal"]) == (
        "TEXT_SUCCESSFUL", "SUCCESSFUL", False)
    assert (final["eventType"], final["messageStatus"], final["isFinal"]) == (
        "TEXT_DELIVERED", "DELIVERED", True)
    for event in (first, final):
        assert event["messageId"] == message_id
        assert event["context"] == context
        assert (event["destinationPhoneNumber"], event["originationPhoneNumber"]) == (TO, "+12065550152")
        assert (event["isoCountryCode"], event["isInternationalSend"]) == ("US", False)
        assert (event["messageEncoding"], event["messageType"], event["eventVersion"]) == (
            "GSM", "TRANSACTIONAL", "1.0")
        assert event["totalMessageParts"] == 2
        assert event["totalMessagePrice"] == pytest.approx(2 * 0.00581)
        assert event["messageRequestTimestamp"] <= first["eventTimestamp"] <= final["eventTimestamp"]


def test_a_unicode_send_abroad_is_priced_and_described_as_such(
        url: str, sms: Any, events_queue: dict[str, str]) -> None:
    sms.send_text_message(DestinationPhoneNumber="+33612345678", MessageBody="Привет 👋",
                          ConfigurationSetName=events_queue["set"])
    events = received(url, events_queue["queue"], 2)
    assert [e["eventType"] for e in events] == ["TEXT_SUCCESSFUL", "TEXT_DELIVERED"]
    assert {(e["messageEncoding"], e["isoCountryCode"], e["isInternationalSend"]) for e in events} == {
        ("UNICODE", "FR", True)}
    assert all("context" not in e for e in events)  # the send had none


def test_a_failed_report_ends_in_a_final_carrier_unreachable_event(
        url: str, sms: Any, events_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_DLR_FAIL_RATE", "1")
    sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi",
                          ConfigurationSetName=events_queue["set"],
                          Context={"message_id": "gw-2", "attempt": "1"})
    first, final = received(url, events_queue["queue"], 2)
    assert (first["eventType"], first["isFinal"]) == ("TEXT_SUCCESSFUL", False)
    assert (final["eventType"], final["messageStatus"], final["isFinal"]) == (
        "TEXT_CARRIER_UNREACHABLE", "CARRIER_UNREACHABLE", True)


def test_a_destination_gets_only_the_event_types_it_matches(url: str, sms: Any) -> None:
    topic, queue = queue_on_topic(url)
    name = unique("set")
    sms.create_configuration_set(ConfigurationSetName=name)
    sms.create_event_destination(ConfigurationSetName=name, EventDestinationName="finals",
                                 MatchingEventTypes=["TEXT_DELIVERED"], SnsDestination={"TopicArn": topic})
    sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi", ConfigurationSetName=name)
    # The two events go out in order: had TEXT_SUCCESSFUL been sent, it would come first.
    assert [e["eventType"] for e in received(url, queue, 1)] == ["TEXT_DELIVERED"]
    assert nothing_arrives(url, queue)


def test_a_topic_that_is_gone_is_logged_and_the_other_destinations_still_get_their_events(
        url: str, sms: Any, caplog: pytest.LogCaptureFixture) -> None:
    topic, queue = queue_on_topic(url)
    gone = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    name = unique("set")
    sms.create_configuration_set(ConfigurationSetName=name)
    for destination, arn in (("gone", gone), ("live", topic)):
        sms.create_event_destination(ConfigurationSetName=name, EventDestinationName=destination,
                                     MatchingEventTypes=["ALL"], SnsDestination={"TopicArn": arn})
    with caplog.at_level("ERROR", logger="localstack.smsvoice"):
        sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi", ConfigurationSetName=name)
        assert [e["eventType"] for e in received(url, queue, 2)] == ["TEXT_SUCCESSFUL", "TEXT_DELIVERED"]
    failures = [r.getMessage() for r in caplog.records if "could not publish" in r.getMessage()]
    assert len(failures) == 2 and all(gone in f for f in failures)
    assert sms.describe_configuration_sets(ConfigurationSetNames=[name])  # the emulator still answers


def test_a_throttled_send_raises_throttling_and_publishes_nothing(
        url: str, sms: Any, events_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_SUCCESS_RATE", "0")
    monkeypatch.setenv("MOCK_TEMP_FAIL_RATE", "1")
    with pytest.raises(ClientError) as excinfo:
        sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi",
                              ConfigurationSetName=events_queue["set"])
    assert (error_of(excinfo)["Code"], error_of(excinfo)["Status"]) == ("ThrottlingException", 400)
    assert nothing_arrives(url, events_queue["queue"])


def test_a_permanent_refusal_is_an_opted_out_destination(
        url: str, sms: Any, events_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_SUCCESS_RATE", "0")
    monkeypatch.setenv("MOCK_PERM_FAIL_RATE", "1")
    with pytest.raises(ClientError) as excinfo:
        sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi",
                              ConfigurationSetName=events_queue["set"])
    assert (error_of(excinfo)["Code"], error_of(excinfo)["Reason"]) == (
        "ConflictException", "DESTINATION_PHONE_NUMBER_OPTED_OUT")
    assert nothing_arrives(url, events_queue["queue"])


def test_outcomes_are_drawn_as_the_mock_provider_draws_them(
        sms: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_SUCCESS_RATE", "0.5")
    monkeypatch.setenv("MOCK_TEMP_FAIL_RATE", "0.3")
    monkeypatch.setenv("MOCK_PERM_FAIL_RATE", "0.2")
    expected_codes = {Outcome.ACCEPTED: None, Outcome.TEMPORARY: "ThrottlingException",
                      Outcome.PERMANENT: "ConflictException"}
    seen = set()
    for attempt in range(1, 13):
        outcome = mock_outcome(unit_draw(42, "gw-draws", attempt), 0.5, 0.3, 0.2)
        seen.add(outcome)
        try:
            sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi",
                                  Context={"message_id": "gw-draws", "attempt": str(attempt)})
            code = None
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
        assert code == expected_codes[outcome], attempt
    assert seen == set(Outcome)  # the twelve attempts cover all three outcomes


def test_a_dry_run_answers_a_message_id_and_publishes_nothing(
        url: str, sms: Any, events_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_SUCCESS_RATE", "0")
    monkeypatch.setenv("MOCK_TEMP_FAIL_RATE", "1")  # a dry run draws no outcome
    answer = sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi", DryRun=True,
                                   ConfigurationSetName=events_queue["set"])
    assert uuid.UUID(answer["MessageId"])
    assert nothing_arrives(url, events_queue["queue"])


def test_an_unknown_configuration_set_is_not_found(sms: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi", ConfigurationSetName="no-such-set")
    error = error_of(excinfo)
    assert (error["Code"], error["ResourceType"], error["ResourceId"]) == (
        "ResourceNotFoundException", "configuration-set", "no-such-set")


@pytest.mark.parametrize("number", ["not-a-number", "+0123456789", "14255550156", "+999123456789"])
def test_a_destination_that_is_not_e164_is_refused(sms: Any, number: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        sms.send_text_message(DestinationPhoneNumber=number, MessageBody="hi")
    error = error_of(excinfo)
    assert (error["Code"], error["Status"], error["Reason"]) == ("ValidationException", 400,
                                                                "FIELD_VALIDATION_FAILED")
    assert [f["Name"] for f in error["Fields"]] == ["DestinationPhoneNumber"]


@pytest.mark.parametrize(("change", "field"), [
    ({"TimeToLive": 1}, "TimeToLive"),
    ({"MessageType": "BULK"}, "MessageType"),
    ({"Context": {f"k{i}": "v" for i in range(6)}}, "Context"),
    ({"MaxPrice": "cheap"}, "MaxPrice"),
])
def test_the_model_s_constraints_are_checked_by_the_server(
        unchecked_sms: Any, change: dict[str, Any], field: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        unchecked_sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi", **change)
    error = error_of(excinfo)
    assert (error["Code"], error["Reason"]) == ("ValidationException", "FIELD_VALIDATION_FAILED")
    assert [f["Name"] for f in error["Fields"]] == [field]


def test_a_price_over_max_price_is_refused(sms: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi", MaxPrice="0.001")
    assert error_of(excinfo)["Reason"] == "PRICE_OVER_THRESHOLD"


@pytest.mark.parametrize("body", [b'{"DestinationPhoneNumber": "+14255550156", "Context": ["a"]}',
                                  b'{"DestinationPhoneNumber": 14255550156}', b"{not json"])
def test_a_body_of_the_wrong_json_type_is_a_serialization_error(url: str, body: bytes) -> None:
    status, answer = post_target(url, "PinpointSMSVoiceV2.SendTextMessage", body)
    assert (status, answer["__type"]) == (400, "SerializationException")


def test_a_ttl_shorter_than_the_report_delay_gives_one_final_ttl_expired_event() -> None:
    knobs = smsvoice.Knobs(1.0, 0.0, 0.0, 42, dlr_delay_s=10.0, dlr_fail_rate=0.0)
    assert smsvoice.timeline(knobs, ttl_s=5, failed=False) == (5.0, [(smsvoice.TTL_EXPIRED, True)])
    assert smsvoice.timeline(knobs, ttl_s=60, failed=True) == (
        10.0, [(smsvoice.SUCCESSFUL, False), (smsvoice.CARRIER_UNREACHABLE, True)])


# --- the emulator's count of what it published ----------------------------------------

def published(url: str, method: str = "GET") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url + smsvoice.PUBLISHES_PATH, method=method)
    return answer_of(request)


def test_each_event_published_is_counted_by_topic_with_its_size(url: str, sms: Any) -> None:
    topic, queue = queue_on_topic(url)
    name = unique("set")
    sms.create_configuration_set(ConfigurationSetName=name)
    sms.create_event_destination(ConfigurationSetName=name, EventDestinationName="sns",
                                 MatchingEventTypes=["TEXT_ALL"], SnsDestination={"TopicArn": topic})
    for i in range(3):
        sms.send_text_message(DestinationPhoneNumber=TO, MessageBody=f"hi {i}", ConfigurationSetName=name)
    sqs, sizes = client(url, "sqs"), []
    deadline = time.monotonic() + 3
    while len(sizes) < 6 and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        sizes += [len(m["Body"].encode()) for m in got.get("Messages", [])]

    status, counts = published(url)

    assert status == 200
    assert counts[topic] == {"publishes": 6, "bytes": sum(sizes), "largest": max(sizes)}


def test_a_refused_send_and_a_dry_run_publish_nothing_that_is_counted(
        url: str, sms: Any, events_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    before = published(url)[1]
    sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi", DryRun=True,
                          ConfigurationSetName=events_queue["set"])
    monkeypatch.setenv("MOCK_SUCCESS_RATE", "0")
    monkeypatch.setenv("MOCK_TEMP_FAIL_RATE", "1")
    with pytest.raises(ClientError):
        sms.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi",
                              ConfigurationSetName=events_queue["set"])
    assert nothing_arrives(url, events_queue["queue"])
    assert published(url)[1] == before


def test_the_count_is_read_only(url: str) -> None:
    assert published(url, "POST")[0] == 405
    assert published(url, "DELETE")[0] == 405


# --- two-way messages -----------------------------------------------------------------

def post_inbound(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{url}/_aws/sms-voice/inbound", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    return answer_of(request)


def test_a_reply_is_published_to_the_two_way_topic_in_aws_s_shape(url: str) -> None:
    topic, queue = queue_on_topic(url)
    status, answer = post_inbound(url, {
        "TwoWayChannelArn": topic, "OriginationNumber": "+14155550111",
        "DestinationNumber": "+14155550000", "MessageBody": " stop "})

    assert status == 200
    [message] = received(url, queue, 1)
    assert message["inboundMessageId"] == answer["InboundMessageId"]
    assert {k: message[k] for k in ("originationNumber", "destinationNumber", "messageBody",
                                    "messageKeyword")} == {
        "originationNumber": "+14155550111", "destinationNumber": "+14155550000",
        "messageBody": " stop ", "messageKeyword": "STOP"}
    assert set(message) == {"originationNumber", "destinationNumber", "messageBody",
                            "messageKeyword", "inboundMessageId", "previousPublishedMessageId"}


def test_a_reply_that_is_no_keyword_names_none(url: str) -> None:
    topic, queue = queue_on_topic(url)
    post_inbound(url, {"TwoWayChannelArn": topic, "OriginationNumber": "+14155550111",
                       "DestinationNumber": "+14155550000", "MessageBody": "stop it"})
    [message] = received(url, queue, 1)
    assert "messageKeyword" not in message


@pytest.mark.parametrize("body", [{}, [], {"TwoWayChannelArn": "arn:aws:sns:us-east-1:1:t"},
                                  {"TwoWayChannelArn": 1, "OriginationNumber": "+1",
                                   "DestinationNumber": "+1", "MessageBody": "x"}])
def test_a_reply_without_its_fields_is_refused(url: str, body: Any) -> None:
    status, answer = post_inbound(url, body)
    assert status == 400 and "TwoWayChannelArn" in answer["message"]


def test_a_reply_to_a_topic_that_does_not_exist_is_not_found(url: str) -> None:
    status, _ = post_inbound(url, {
        "TwoWayChannelArn": "arn:aws:sns:us-east-1:123456789012:no-such-topic",
        "OriginationNumber": "+14155550111", "DestinationNumber": "+14155550000",
        "MessageBody": "hi"})
    assert status == 404


# --- the rest of the emulator -------------------------------------------------------

def test_an_unknown_operation_is_an_unknown_operation_exception(url: str) -> None:
    status, body = post_target(url, "PinpointSMSVoiceV2.DescribePhoneNumbers")
    assert status == 400
    assert body["__type"] == "UnknownOperationException"


def test_moto_s_own_services_still_answer(url: str) -> None:
    dynamodb, sqs = client(url, "dynamodb"), client(url, "sqs")
    table = unique("table")
    dynamodb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    assert table in dynamodb.list_tables()["TableNames"]
    queue = sqs.create_queue(QueueName=unique("plain"))["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="plain")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue)["Messages"]] == ["plain"]
