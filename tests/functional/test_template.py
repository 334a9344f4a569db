"""The packaged AWS template: complete, valid, least privilege, and creatable.

``infra/package.py`` runs once per session (``chalice package`` takes a few
seconds); every test here reads what it wrote. The policy test runs each
function against moto in-process, records every AWS call it makes, and holds
the calls against the policy in the template.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.adapters.models import ALL_MODELS
from chalicelib.container import Container, forget_stored_settings, get_container, reset_container
from chalicelib.domain.dlr_signature import sign
from chalicelib.domain.provider_errors import Outcome, SubmitResult
from chalicelib.domain.reports import OutboundSms
from chalicelib.resources import PROJECT, resource_names
from chalicelib.settings import Settings
from infra.functions import LambdaFunction, consumed_queues, function_names
from infra.policies import CONSUME, ORIGINATION_IDENTITIES
from infra.template import (
    CONFIGURATION_SET,
    EMULATOR_UNSUPPORTED,
    INBOUND_TOPIC,
    SMS_EVENT_TYPES,
    TOPIC,
    build,
    table_resource,
)
from tests.support.awscalls import ACCOUNT, REGION, arn, recorded_calls
from tests.support.clients import make_client
from tests.support.http import SEED_BODY, as_json, post
from tests.support.paths import ROOT
from tests.support.queues import receive, run
from tests.support.settings import (
    ACCEPTS_ALL,
    FAILS_ALL_PERMANENTLY,
    FAILS_ALL_TEMPORARILY,
    changed,
)

pytestmark = pytest.mark.functional

STAGE = "prod"
NAMES = resource_names(STAGE)
FUNCTION = "AWS::Serverless::Function"
MAX_ZIP_BYTES = 15 * 1024 * 1024


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package") / STAGE
    done = subprocess.run(
        [sys.executable, "-m", "infra.package", "--stage", STAGE, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="session")
def template(packaged: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((packaged / "sam.json").read_text())
    return loaded


@pytest.fixture(scope="session")
def app() -> Any:
    from app import app as chalice_app

    return chalice_app


def of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def suffix(name: str, stage: str) -> str:
    """``send`` for ``sms-gateway-<stage>-send``: a name without its stage."""
    prefix = f"{PROJECT}-{stage}-"
    assert name.startswith(prefix), name
    return name[len(prefix):]


def sqs_events(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Event id -> (function logical id, event properties), for every SQS event source."""
    return {
        event_id: (logical, event["Properties"])
        for logical, fn in of_type(template, FUNCTION).items()
        for event_id, event in fn["Properties"].get("Events", {}).items()
        if event["Type"] == "SQS"
    }


def event_queue_name(properties: dict[str, Any]) -> str:
    return str(properties["Queue"]["Fn::Sub"]).rsplit(":", 1)[1]


# --- the template is valid and complete ------------------------------------------------------


def test_cfn_lint_passes(packaged: Path) -> None:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(packaged / "sam.json", config=ManualArgs(regions=[REGION]))
    assert [str(m) for m in matches] == []


def test_every_function_of_the_app_is_in_the_template(template: dict[str, Any], app: Any) -> None:
    expected = {LambdaFunction(name, 0, None).logical_id for name in function_names(app)}
    assert set(of_type(template, FUNCTION)) == expected
    assert of_type(template, "AWS::Serverless::Api")  # the REST API


def test_every_sqs_event_source_reports_batch_item_failures(
    template: dict[str, Any], app: Any
) -> None:
    events = sqs_events(template)
    assert len(events) == len(consumed_queues(app))
    for _, properties in events.values():
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_queue_has_a_dead_letter_queue_and_outlasts_its_consumer(
    template: dict[str, Any]
) -> None:
    queues = of_type(template, "AWS::SQS::Queue")
    by_name = {q["Properties"]["QueueName"]: logical for logical, q in queues.items()}
    for work, dlq in NAMES.queues().items():
        redrive = queues[by_name[work]]["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [by_name[dlq], "Arn"]}
        assert redrive["maxReceiveCount"] >= 1
    assert set(by_name) == set(NAMES.queues()) | set(NAMES.queues().values())
    functions = template["Resources"]
    for logical, properties in sqs_events(template).values():
        visibility = queues[by_name[event_queue_name(properties)]]["Properties"]["VisibilityTimeout"]
        assert visibility >= 6 * functions[logical]["Properties"]["Timeout"]


def _model_for(table_name: str) -> type[Model]:
    """The model bound to ``table_name``'s table, whatever stage it was bound for."""
    wanted = suffix(table_name, STAGE)
    found = [m for m in ALL_MODELS
             if m.Meta.table_name == wanted or m.Meta.table_name.endswith(f"-{wanted}")]
    assert len(found) == 1, (table_name, found)
    return found[0]


def _keys(hash_attr: Any, range_attr: Any) -> list[dict[str, str]]:
    keys = [{"AttributeName": hash_attr.attr_name, "KeyType": "HASH"}]
    if range_attr is not None:
        keys.append({"AttributeName": range_attr.attr_name, "KeyType": "RANGE"})
    return keys


def _expected_indexes(model: type[Model]) -> dict[str, tuple[list[dict[str, str]], str]]:
    out = {}
    for name, index in model._indexes.items():
        attrs = index.Meta.attributes.values()
        hash_attr = next(a for a in attrs if a.is_hash_key)
        range_attr = next((a for a in attrs if a.is_range_key), None)
        out[name] = (_keys(hash_attr, range_attr), index.Meta.projection.projection_type)
    return out


def test_tables_match_the_models(template: dict[str, Any]) -> None:
    tables = of_type(template, "AWS::DynamoDB::Table")
    assert len(tables) == len(ALL_MODELS)
    for table in tables.values():
        props = table["Properties"]
        model = _model_for(props["TableName"])
        assert props["KeySchema"] == _keys(model._hash_key_attribute(), model._range_key_attribute())
        indexes = {i["IndexName"]: (i["KeySchema"], i["Projection"]["ProjectionType"])
                   for i in props.get("GlobalSecondaryIndexes", [])}
        assert indexes == _expected_indexes(model)
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["DeletionPolicy"] == "Retain"
        has_ttl = any(isinstance(a, TTLAttribute) for a in model.get_attributes().values())
        assert ("TimeToLiveSpecification" in props) == has_ttl


class _Expiring(Model):
    class Meta:
        table_name = "expiring"

    key = UnicodeAttribute(hash_key=True)
    count = NumberAttribute(default=0)
    expires = TTLAttribute(attr_name="expires_at")


def test_a_ttl_attribute_becomes_the_tables_ttl() -> None:
    props = table_resource(_Expiring, "t")["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_alarms_watch_dead_letters_errors_and_throttles(template: dict[str, Any]) -> None:
    watched = {
        (a["Properties"]["MetricName"], a["Properties"]["Dimensions"][0]["Value"])
        for a in of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    for dlq in NAMES.queues().values():
        assert ("ApproximateNumberOfMessagesVisible", dlq) in watched
    for fn in of_type(template, FUNCTION).values():
        name = fn["Properties"]["FunctionName"]
        assert {("Errors", name), ("Throttles", name)} <= watched


# --- delivery events: configuration set -> SNS topic -> DLR queue --------------------------------


def _stage_arn(service: str, resource: str) -> dict[str, str]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:"
                       f"{resource}"}


def _only_statement(resource: dict[str, Any]) -> dict[str, Any]:
    document = resource["Properties"]["PolicyDocument"]
    assert len(document["Statement"]) == 1
    statement: dict[str, Any] = document["Statement"][0]
    assert statement["Effect"] == "Allow"
    return statement


# Each topic AWS End User Messaging publishes to: who may publish, the queue it feeds.
SMS_TOPICS = [
    # delivery events: only the stage's configuration set
    (TOPIC, NAMES.sms_events_topic, f"configuration-set/{NAMES.configuration_set}", "DlrQueue",
     NAMES.dlr_queue),
    # two-way messages: any number or pool of the account (a number's TwoWayChannelArn)
    (INBOUND_TOPIC, NAMES.sms_inbound_topic, "*", "InboundQueue", NAMES.inbound_queue),
]


@pytest.mark.parametrize(("topic", "topic_name", "source", "queue", "queue_name"), SMS_TOPICS)
def test_only_end_user_messaging_of_this_account_may_publish_to_each_sms_topic(
    template: dict[str, Any], topic: str, topic_name: str, source: str, queue: str,
    queue_name: str,
) -> None:
    res = template["Resources"]
    assert res[topic]["Properties"] == {"TopicName": topic_name}
    [policy] = [p for p in of_type(template, "AWS::SNS::TopicPolicy").values()
                if p["Properties"]["Topics"] == [{"Ref": topic}]]
    statement = _only_statement(policy)
    assert statement["Principal"] == {"Service": "sms-voice.amazonaws.com"}
    assert (statement["Action"], statement["Resource"]) == ("sns:Publish", {"Ref": topic})
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": _stage_arn("sms-voice", source)},
    }
    assert template["Outputs"][topic] == {"Value": {"Ref": topic}}


@pytest.mark.parametrize(("topic", "topic_name", "source", "queue", "queue_name"), SMS_TOPICS)
def test_each_queue_takes_its_topics_messages_raw_and_nothing_else_from_sns(
    template: dict[str, Any], topic: str, topic_name: str, source: str, queue: str,
    queue_name: str,
) -> None:
    subscriptions = of_type(template, "AWS::SNS::Subscription").values()
    assert len(subscriptions) == len(SMS_TOPICS)
    [subscription] = [s for s in subscriptions if s["Properties"]["TopicArn"] == {"Ref": topic}]
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": topic}, "Protocol": "sqs",
        "Endpoint": {"Fn::GetAtt": [queue, "Arn"]}, "RawMessageDelivery": True}
    assert template["Resources"][queue]["Properties"]["QueueName"] == queue_name
    [policy] = [p for p in of_type(template, "AWS::SQS::QueuePolicy").values()
                if p["Properties"]["Queues"] == [{"Ref": queue}]]
    statement = _only_statement(policy)
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert (statement["Action"], statement["Resource"]) == (
        "sqs:SendMessage", {"Fn::GetAtt": [queue, "Arn"]})
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": topic}}}


def test_the_configuration_set_sends_every_text_event_to_the_topic(
    template: dict[str, Any]
) -> None:
    import botocore.session

    configuration_set = template["Resources"][CONFIGURATION_SET]
    assert configuration_set["Type"] == "AWS::SMSVOICE::ConfigurationSet"
    assert f"{TOPIC}Policy" in configuration_set["DependsOn"]  # publishing is allowed first
    props = configuration_set["Properties"]
    assert props["ConfigurationSetName"] == NAMES.configuration_set
    [destination] = props["EventDestinations"]
    assert destination["Enabled"] is True
    assert destination["SnsDestination"] == {"TopicArn": {"Ref": TOPIC}}
    assert destination["MatchingEventTypes"] == ["TEXT_ALL"] == list(SMS_EVENT_TYPES)
    event_types = botocore.session.get_session().get_service_model(
        "pinpoint-sms-voice-v2").shape_for("EventType").enum
    assert set(destination["MatchingEventTypes"]) <= set(event_types)
    outputs = template["Outputs"]
    assert outputs[TOPIC] == {"Value": {"Ref": TOPIC}}
    assert outputs[CONFIGURATION_SET] == {"Value": {"Ref": CONFIGURATION_SET}}


def test_the_emulators_template_leaves_out_only_what_motos_cloudformation_skips() -> None:
    full, local = build(STAGE), build(STAGE, emulator=True)
    left_out = {k for k, v in full["Resources"].items() if v["Type"] in EMULATOR_UNSUPPORTED}
    assert left_out == {f"{TOPIC}Policy", f"{TOPIC}Subscription", "DlrQueuePolicy",
                        f"{INBOUND_TOPIC}Policy", f"{INBOUND_TOPIC}Subscription",
                        "InboundQueuePolicy", CONFIGURATION_SET}
    assert local["Resources"] == {k: v for k, v in full["Resources"].items() if k not in left_out}
    assert set(local["Outputs"]) == set(full["Outputs"]) - left_out
    assert not set(references(local)) & left_out


def test_deployment_package_is_small_and_has_no_sdk_or_dev_tools(packaged: Path) -> None:
    path = packaged / "deployment.zip"
    tops = {n.split("/")[0] for n in zipfile.ZipFile(path).namelist()}
    assert path.stat().st_size <= MAX_ZIP_BYTES
    assert not tops & {"boto3", "botocore", "s3transfer", "moto", "pytest", "cfnlint"}
    assert {"app.py", "chalicelib", "pynamodb", "phonenumbers"} <= tops
    assert any(t.startswith("phonenumberslite-") for t in tops)


# --- least privilege --------------------------------------------------------------------------


def _resolve(arn: Any) -> str:
    text = str(arn["Fn::Sub"]) if isinstance(arn, dict) else str(arn)
    return (text.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", REGION)
            .replace("${AWS::AccountId}", ACCOUNT))


def statements(template: dict[str, Any], function: str) -> list[tuple[set[str], str]]:
    """(actions, resource ARN) of the function's role, its ARNs resolved as in moto."""
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    out = []
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for st in policy["PolicyDocument"]["Statement"]:
            assert st["Effect"] == "Allow"
            out.append((set(st["Action"]), _resolve(st["Resource"])))
    return out


SETTINGS_ARN = arn("ssm", f"parameter{NAMES.settings_path}")
CONFIGURATION_SET_ARN = arn("sms-voice", f"configuration-set/{NAMES.configuration_set}")
# Which number, pool or sender ID a stage sends from is a stored setting: any of the
# account's own, in its region, and for SendTextMessage alone.
ORIGINATION_ARNS = {arn("sms-voice", identity) for identity in ORIGINATION_IDENTITIES}


def test_policies_name_actions_and_only_the_stages_resources(template: dict[str, Any]) -> None:
    tables = [NAMES.clients_table, NAMES.messages_table, NAMES.provider_sends_table,
              NAMES.ledger_table, NAMES.routing_table, NAMES.inbound_table, NAMES.contacts_table]
    stage_arns = {arn("dynamodb", f"table/{t}") for t in tables}
    stage_arns |= {arn("sqs", q) for pair in NAMES.queues().items() for q in pair}
    stage_arns |= {SETTINGS_ARN, CONFIGURATION_SET_ARN}
    roles = set()
    for logical, fn in of_type(template, FUNCTION).items():
        roles.add(fn["Properties"]["Role"]["Fn::GetAtt"][0])
        own_logs = arn("logs", f"log-group:/aws/lambda/{fn['Properties']['FunctionName']}:*")
        for actions, resource in statements(template, logical):
            assert all("*" not in a for a in actions), (logical, actions)
            if resource in ORIGINATION_ARNS:
                assert actions == {"sms-voice:SendTextMessage"}, (logical, resource)
                continue
            table_arn = resource.split("/index/")[0]
            assert resource == own_logs or table_arn in stage_arns, (logical, resource)
    assert len(roles) == len(of_type(template, FUNCTION))  # one role per function


def test_every_function_reads_its_stages_settings_and_nothing_else_of_ssm(
    template: dict[str, Any]
) -> None:
    for logical in of_type(template, FUNCTION):
        ssm = [(actions, resource) for actions, resource in statements(template, logical)
               if any(a.startswith("ssm:") for a in actions)]
        assert ssm == [({"ssm:GetParametersByPath"}, SETTINGS_ARN)], logical
        assert not any(a.startswith("kms:") for actions, _ in statements(template, logical)
                       for a in actions)  # SecureStrings use the AWS managed key aws/ssm


def test_only_the_sender_sends_texts_and_only_through_the_stages_configuration_set(
    template: dict[str, Any]
) -> None:
    for logical in of_type(template, FUNCTION):
        sms = {resource for actions, resource in statements(template, logical)
               if any(a.startswith("sms-voice:") for a in actions)}
        assert sms == ({CONFIGURATION_SET_ARN} | ORIGINATION_ARNS if logical == "Sender"
                       else set()), logical
    expected = {arn("sms-voice", f"{kind}/*") for kind in ("phone-number", "pool", "sender-id")}
    assert expected == ORIGINATION_ARNS


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The prod stage's names and stored settings, sending with the mock as a sandbox;
    everything due at once, so every code path runs."""
    return replace(settings, stage=STAGE, stuck_after_s=0.0, dlr_timeout_s=0.0, send_timeout_s=0.0,
                   settings_path=NAMES.settings_path, mock_sandbox=True)


# What the stage keeps in SSM for the policy test: a String and a SecureString that
# change nothing the scenarios depend on.
STORED = {"PUBLIC_BASE_URL": ("String", "https://sms.example.com/api"),
          "TWILIO_AUTH_TOKEN": ("SecureString", "stored-twilio-token"),
          "TWILIO_ACCOUNT_SID": ("String", "AC" + "5" * 32)}  # Twilio's inbound webhook
# A number, a pool and a sender ID: the sender on AWS End User Messaging sends from each.
ORIGINATION_IDENTITIES_USED = (
    "phone-0123456789abcdef0123456789abcdef",
    "pool-0123456789abcdef0123456789abcdef",
    f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:sender-id/ACME/GB",
)


def store_settings() -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    for name, (kind, value) in STORED.items():
        ssm.put_parameter(Name=f"{NAMES.settings_path}{name}", Type=kind, Value=value)


def cold_start() -> Container:
    """A new container, as each function builds on its cold start (it reads the stored
    settings then or on first use); Powertools' own caches forgotten too."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    forget_stored_settings()
    container = reset_container(get_container().settings)
    assert container is not None
    return container


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens: every callback fails


def with_rates(rates: dict[str, float]) -> Container:
    """The same emulator, the app's container rebuilt with the mock provider's ``rates``.

    The policy test needs every outcome of the sender in one test: it holds the
    union of the calls against the grants, and a grant no scenario uses fails it.
    """
    container = reset_container(changed(get_container().settings, mock=rates))
    assert container is not None
    return container


def drive_api(api: Any, key: str) -> Iterator[tuple[str, str]]:
    """Send, replay, read, balance, readiness, and a signed delivery report."""
    report = json.dumps({"reference": "m-1", "provider_message_id": "mock-x",
                         "status": "DELIVERED"}).encode()
    ts = int(time.time())
    signature = sign(dict(get_container().settings.dlr_secrets)["mock"], ts, report)
    with recorded_calls() as calls:
        cold_start()
        message_id = as_json(post(api, key, SEED_BODY, {"Idempotency-Key": "k1"}))["message_id"]
        post(api, key, SEED_BODY, {"Idempotency-Key": "k1"})
        api.http.get(f"/v1/messages/{message_id}", headers={"X-API-Key": key})
        api.http.get("/v1/me", headers={"X-API-Key": key})
        assert api.http.get("/v1/messages?limit=5", headers={"X-API-Key": key}).status_code == 200
        assert api.http.post(f"/v1/messages/{message_id}/cancel",
                             headers={"X-API-Key": key}).status_code == 200
        assert api.http.get("/readyz").status_code == 200
        assert api.http.post("/v1/dlr/mock", body=report, headers={
            "Content-Type": "application/json", "X-Signature-Timestamp": str(ts),
            "X-Signature": signature}).status_code == 202
    yield from calls


def drive_console(api: Any, key: str) -> Iterator[tuple[str, str]]:
    """The console's reads: the client's statistics, and the operator's view (every client,
    the queues with their dead letters, the providers) with the operator key."""
    get_container().api_keys.set_operator("operator-key")
    with recorded_calls() as calls:
        assert api.http.get("/v1/stats?bucket=1h", headers={"X-API-Key": key}).status_code == 200
        for view in ("clients", "queues", "providers"):
            assert api.http.get(f"/v1/admin/{view}",
                                headers={"X-API-Key": "operator-key"}).status_code == 200
    yield from calls


def drive_inbound(api: Any, key: str) -> Iterator[tuple[str, str]]:
    """Twilio's signed STOP to the client's number (stored, opted out, confirmed, told),
    the re-run of one stored before a crash, and the list of inbound messages."""
    from twilio.request_validator import RequestValidator

    from chalicelib.domain.inbound import InboundMessage, Keyword, inbound_id_for, reply_id_for

    number, person, sid = "+14155550000", "+14155550111", STORED["TWILIO_ACCOUNT_SID"][1]
    aws = get_container()
    client = aws.authenticator.client_for(key)
    assert client is not None
    aws.sender_claims.claim(client.client_id, [number])
    url = f"{STORED['PUBLIC_BASE_URL'][1]}/v1/inbound/twilio"

    def signed(message_sid: str) -> Any:
        form = {"AccountSid": sid, "MessageSid": message_sid, "From": person, "To": number,
                "Body": "STOP"}
        signature = RequestValidator(STORED["TWILIO_AUTH_TOKEN"][1]).compute_signature(url, form)
        return api.http.post("/v1/inbound/twilio", body=urllib.parse.urlencode(form).encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      "X-Twilio-Signature": signature})

    with recorded_calls() as calls:
        cold_start()
        assert signed("SM1").status_code == 200
    yield from calls
    # Stored by a run that crashed before it was done (its STOP older than the one stored).
    aws = get_container()
    aws.inbound_store.put_new(InboundMessage(
        inbound_id_for("twilio", "SM0"), "twilio", "SM0", client.client_id, person, number,
        "STOP", time.time() - 60, Keyword.OPT_OUT,
        reply_id=reply_id_for(inbound_id_for("twilio", "SM0"))))
    with recorded_calls() as calls:
        cold_start()
        assert signed("SM0").status_code == 200
        assert api.http.get("/v1/inbound", headers={"X-API-Key": key}).status_code == 200
    yield from calls
    # The confirmations would go out through Twilio: cancelled, so no later scenario sends them.
    for message_sid in ("SM0", "SM1"):
        get_container().manager.cancel(client, reply_id_for(inbound_id_for("twilio", message_sid)))


def drive_inbound_worker(api: Any, key: str) -> Iterator[tuple[str, str]]:
    """The inbound queue's worker: a mock STOP and an AWS End User Messaging HELP (raw,
    as the two-way topic delivers it) to the client's number, each twice; then a STOP
    whose last step failed (it comes back, and is finished)."""
    from chalicelib.adapters.inbound import DynamoInbound
    from chalicelib.domain.errors import BackendUnavailableError
    from chalicelib.domain.inbound import inbound_id_for, reply_id_for
    from chalicelib.providers import mock as mock_provider

    number, person = "+14155550000", "+14155550122"  # claimed by drive_inbound
    aws = get_container()
    client = aws.authenticator.client_for(key)
    assert client is not None
    aws.inbound_queue.send(mock_provider.inbound_body(person, number, "STOP", time.time(),
                                                      "mock-in-1"))
    aws.inbound_queue.send({"originationNumber": person, "destinationNumber": number,
                            "messageBody": "HELP", "inboundMessageId": "aws-in-1"})
    records = receive(aws, aws.settings.names.inbound_queue)
    assert len(records) == 2
    with recorded_calls() as calls:
        cold_start()
        assert run(api, "inbound", records + records)["batchItemFailures"] == []
    yield from calls
    aws.inbound_queue.send(mock_provider.inbound_body("+14155550123", number, "STOP",
                                                      time.time(), "mock-in-2"))
    records = receive(aws, aws.settings.names.inbound_queue)
    with recorded_calls() as calls:
        with mock.patch.object(DynamoInbound, "mark_done",
                               side_effect=BackendUnavailableError("down")):
            cold_start()
            assert len(run(api, "inbound", records)["batchItemFailures"]) == 1
        cold_start()  # it comes back: the steps taken are not taken again
        assert run(api, "inbound", records)["batchItemFailures"] == []
    yield from calls
    for provider, provider_id in (("mock", "mock-in-1"), ("aws-sms", "aws-in-1"),
                                  ("mock", "mock-in-2")):
        get_container().manager.cancel(client, reply_id_for(inbound_id_for(provider,
                                                                           provider_id)))


def drive_guards(api: Any, key: str) -> Iterator[tuple[str, str]]:
    """A send counted by the velocity guard (block mode: in the hold's transaction; then
    monitor mode: counted after it), and the opt-out list and an opt-out by the API."""
    aws = get_container()
    client = aws.authenticator.client_for(key)
    assert client is not None
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    with recorded_calls() as calls:
        for mode in ("block", "monitor"):
            aws.accounts.configure(client.client_id, velocity_limit=100, velocity_mode=mode)
            cold_start()
            assert post(api, key, SEED_BODY).status_code == 202
        assert api.http.get("/v1/opt-outs", headers=headers).status_code == 200
        assert api.http.post("/v1/opt-outs", headers=headers,
                             body=b'{"number": "+14155550199"}').status_code == 201
    aws.accounts.configure(client.client_id, velocity_limit=None, velocity_mode=None)
    yield from calls


def drive_sender(api: Any, key: str) -> Iterator[tuple[str, str]]:
    """Accepted, temporary and permanent failures (each with a duplicate), a re-submission."""
    for rates in (ACCEPTS_ALL, FAILS_ALL_TEMPORARILY, FAILS_ALL_PERMANENTLY):
        aws = with_rates(rates)
        post(api, key, SEED_BODY)
        records = receive(aws, aws.settings.names.send_queue)
        with recorded_calls() as calls:
            cold_start()
            run(api, "sender", records + records)
        yield from calls
    # The provider refuses the recipient as opted out there: recorded as the client's
    # opt-out (the client read, its opt-out written, its event queued).
    aws = with_rates(ACCEPTS_ALL)
    refused_id = as_json(post(api, key, {**SEED_BODY, "to": "+14155550177"}))["message_id"]
    # Only its record: a retry of the scenarios above coming back would be refused too,
    # and opt the seed's number out.
    records = [r for r in receive(aws, aws.settings.names.send_queue)
               if json.loads(r["Body"])["message_id"] == refused_id]
    refusal = SubmitResult(Outcome.PERMANENT, error_code="21610", reason="unsubscribed")
    with recorded_calls() as calls, mock.patch.object(type(aws.provider), "submit",
                                                      autospec=True, return_value=refusal):
        cold_start()
        run(api, "sender", records)
    yield from calls
    # The worker died after the provider accepted: the next claim asks the provider
    # (its record answers), and when the provider cannot be asked, it re-submits.
    for can_ask in (True, False):
        aws = with_rates(ACCEPTS_ALL)
        message_id = as_json(post(api, key, SEED_BODY))["message_id"]
        records = receive(aws, aws.settings.names.send_queue)
        claimed = aws.messages.claim(message_id, time.time(), stale_before=0)
        assert claimed is not None
        aws.provider.submit(OutboundSms(message_id, 1, claimed.to, claimed.sender, claimed.text,
                                        1))
        with recorded_calls() as calls, mock.patch.object(
                type(aws.provider), "accepted_before",
                side_effect=None if can_ask else OSError("cannot ask"),
                autospec=True, return_value=None) if not can_ask else contextlib.nullcontext():
            cold_start()
            run(api, "sender", records)
        yield from calls
    # An invocation with no time left for a provider call queues a fresh copy of its
    # record (so does a record that waited for a provider 20 times).
    aws = with_rates(ACCEPTS_ALL)
    post(api, key, SEED_BODY)
    records = receive(aws, aws.settings.names.send_queue)
    with recorded_calls() as calls:
        cold_start()
        run(api, "sender", records, lives_s=5)
    yield from calls


def drive_sender_on_aws_sms(api: Any, key: str) -> Iterator[tuple[str, str]]:
    """PROVIDER=aws-sms, from a number, a pool and a sender ID. moto has no End User
    Messaging: the call is recorded, then answered 404, and the message waits for a retry."""
    before = get_container().settings
    try:
        for identity in ORIGINATION_IDENTITIES_USED:
            aws = reset_container(replace(before, provider="aws-sms", aws_sms=replace(
                before.aws_sms, origination_identity=identity)))
            assert aws is not None
            post(api, key, SEED_BODY)
            records = receive(aws, aws.settings.names.send_queue)
            with recorded_calls() as calls:
                cold_start()
                run(api, "sender", records)
            yield from calls
    finally:
        reset_container(before)


def drive_dlr(api: Any) -> Iterator[tuple[str, str]]:
    """Reports, each twice, and one for a provider id nobody knows."""
    aws = get_container()
    queue = aws.settings.names.dlr_queue
    aws.sqs.send_message(QueueUrl=aws.queue(queue).url(), MessageBody=json.dumps(
        {"provider": "mock", "reference": "m-unknown", "provider_message_id": "mock-unknown",
         "status": "DELIVERED"}))
    reports = receive(aws, queue)
    with recorded_calls() as calls:
        cold_start()
        run(api, "dlr", reports + reports)
    yield from calls


def drive_sweeper(api: Any, key: str) -> Iterator[tuple[str, str]]:
    """A message whose enqueue was lost, and one SENT past the DLR timeout."""
    aws = get_container()  # the mock provider accepts everything
    post(api, key, SEED_BODY)
    run(api, "sender", receive(aws, aws.settings.names.send_queue))
    post(api, key, SEED_BODY)
    receive(aws, aws.settings.names.send_queue)  # taken, never handled
    event = api.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
    with recorded_calls() as calls:
        cold_start()
        api.lambda_.invoke("sweeper", event)
    yield from calls


def drive_callbacks(api: Any) -> Iterator[tuple[str, str]]:
    """Events to an endpoint that does not answer: each is put back for later."""
    aws = get_container()
    records = receive(aws, aws.settings.names.callbacks_queue)
    assert records
    with recorded_calls() as calls:
        cold_start()
        run(api, "callbacks", records)
    yield from calls


def test_each_function_is_granted_exactly_what_its_code_calls(
    api: Any, aws: Container, template: dict[str, Any]
) -> None:
    # Needs the code that reads SETTINGS_PATH with Powertools and sends with
    # PROVIDER=aws-sms: until then its SSM and sms-voice grants are reported unused.
    store_settings()
    key = make_client(aws, credit_cents=100_000, callback_url=closed_port_url())
    calls = {
        "APIHandler": set(drive_api(api, key)) | set(drive_inbound(api, key))
        | set(drive_guards(api, key)) | set(drive_console(api, key)),
        "Sender": set(drive_sender(api, key)),
        "Dlr": set(drive_dlr(api)),
        "Sweeper": set(drive_sweeper(api, key)),
        "Callbacks": set(drive_callbacks(api)),
        "Inbound": set(drive_inbound_worker(api, key)),
    }
    # Last: its messages wait for retries, which would hold the sweeper's scenario back.
    calls["Sender"] |= set(drive_sender_on_aws_sms(api, key))
    assert set(calls) == set(of_type(template, FUNCTION)), "a new function needs a scenario here"
    for function, made in calls.items():
        _assert_granted_exactly(template, function, made)


def _assert_granted_exactly(template: dict[str, Any], function: str,
                            made: set[tuple[str, str]]) -> None:
    granted = statements(template, function)
    refused = {(a, r) for a, r in made
               if not any(a in actions and fnmatchcase(r, res) for actions, res in granted)}
    assert refused == set(), f"{function} calls what its policy does not grant"
    queue = _consumed_queue_arn(template, function)
    used = made | _lookups(made)
    # A grant with a wildcard (the origination identities) is used when a call fell under it.
    unused = {(a, res) for actions, res in granted for a in actions
              if not a.startswith("logs:")
              and not any(a == action and fnmatchcase(r, res) for action, r in used)
              and not (res == queue and a.removeprefix("sqs:") in CONSUME)}
    assert unused == set(), f"{function} is granted what its code never calls"


def _lookups(made: set[tuple[str, str]]) -> set[tuple[str, str]]:
    # The adapter looks a queue's URL up once per container: a queue the code
    # used needs GetQueueUrl even when this run found the URL cached.
    return {("sqs:GetQueueUrl", res) for action, res in made if action.startswith("sqs:")}


def _consumed_queue_arn(template: dict[str, Any], function: str) -> str | None:
    for logical, properties in sqs_events(template).values():
        if logical == function:
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{event_queue_name(properties)}"
    return None


# --- the infrastructure is created by CloudFormation -------------------------------------------

SERVERLESS = {FUNCTION, "AWS::Serverless::Api", "AWS::Lambda::Permission"}


def references(node: Any) -> Iterator[str]:
    """Logical ids that ``node`` names through Ref, Fn::GetAtt or Fn::Sub."""
    if isinstance(node, list):
        for item in node:
            yield from references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                yield str(value)
            elif key == "Fn::GetAtt":
                yield str(value[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                yield from (part.split("}")[0].split(".")[0] for part in text.split("${")[1:])
            else:
                yield from references(value)


def infrastructure(template: dict[str, Any]) -> dict[str, Any]:
    """The resources that need no function: tables, queues, roles, logs, alarms."""
    res = template["Resources"]
    keep = {k: v for k, v in res.items() if v["Type"] not in SERVERLESS}
    while True:
        drop = {k for k, v in keep.items()
                if any(d in res and d not in keep
                       for d in [*references(v), *v.get("DependsOn", [])])}
        if not drop:
            return keep
        keep = {k: v for k, v in keep.items() if k not in drop}


def test_infrastructure_reaches_create_complete_in_moto(template: dict[str, Any]) -> None:
    from moto import mock_aws

    # What moto's CloudFormation would skip is left out, as for the emulator
    # (localstack/provision.py makes the subscription itself).
    infra = {k: v for k, v in infrastructure(template).items()
             if v["Type"] not in EMULATOR_UNSUPPORTED}
    alarms = {k: infra.pop(k) for k in list(infra) if infra[k]["Type"] == "AWS::CloudWatch::Alarm"}
    assert infra.keys() >= {"ClientsTable", "SendQueue", "SenderRole", "SenderLogGroup", TOPIC}
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(StackName="infra", Capabilities=["CAPABILITY_IAM"], TemplateBody=json.dumps(
            {"AWSTemplateFormatVersion": "2010-09-09", "Resources": infra}))
        stack = cfn.describe_stacks(StackName="infra")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        created = cfn.list_stack_resources(StackName="infra")["StackResourceSummaries"]
        assert {r["LogicalResourceId"] for r in created} == set(infra)
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.get_queue_url(QueueName=NAMES.send_queue)["QueueUrl"]
        assert "RedrivePolicy" in sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["All"])["Attributes"]
        # moto's CloudFormation has no alarms: put them through CloudWatch itself.
        _put_alarms(alarms, sns_topic=arn("sns", NAMES.alarm_topic))


def _put_alarms(alarms: dict[str, Any], sns_topic: str) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for alarm in alarms.values():
        props = dict(alarm["Properties"])
        props["AlarmActions"] = props["OKActions"] = [sns_topic]
        cloudwatch.put_metric_alarm(**props)
    names = {a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert len(names) == len(alarms)


def test_deploy_uploads_the_code_and_creates_the_stack(template: dict[str, Any],
                                                       tmp_path: Path) -> None:
    from moto import mock_aws

    from infra.deploy import deploy, with_code_location

    located = with_code_location(template, "bucket", "key.zip")
    for fn in of_type(located, FUNCTION).values():
        assert fn["Properties"]["CodeUri"] == {"Bucket": "bucket", "Key": "key.zip"}
    # moto cannot expand SAM: deploy the infrastructure part through the same steps.
    (tmp_path / "sam.json").write_text(json.dumps(
        {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {
            k: v for k, v in infrastructure(template).items()
            if v["Type"] in {"AWS::DynamoDB::Table", "AWS::SQS::Queue"}}}))
    (tmp_path / "deployment.zip").write_bytes(b"zip")
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        outputs = deploy(session, STAGE, tmp_path, environ={})
        assert deploy(session, STAGE, tmp_path, environ={}) == outputs  # the second: no change
        stack = session.client("cloudformation").describe_stacks(StackName="sms-gateway-prod")
        assert stack["Stacks"][0]["StackStatus"] in {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
        objects = session.client("s3").list_objects_v2(
            Bucket=f"sms-gateway-artifacts-{ACCOUNT}-{REGION}")["Contents"]
        assert any(o["Key"].endswith(".zip") for o in objects)
