"""The IAM policy of each Lambda function: what its code calls, and nothing else.

``CODE_GRANTS`` is read off the code (adapters and services); the functional
test ``tests/functional/test_template.py`` runs every function against moto,
records each AWS call it makes, and fails when a call is not granted here or
a grant is never used. Added to it, per function: consuming its SQS queue (the
event source mapping polls with the function's role) and writing its logs.

Two renderings of one document: ``.chalice/policy-<stage>-<function>.json``
(what ``chalice deploy`` would use; region and account left open) and the
packaged template's (``Fn::Sub`` pins them to the stack's own).

    python -m infra.policies --stage prod     # rewrite the .chalice policy files
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.adapters.models import ClientModel, InboundModel, MessageModel
from chalicelib.resources import ResourceNames, resource_names
from infra.functions import ROOT, LambdaFunction, functions, load_app

# What Lambda's SQS event source mapping does with the function's role.
CONSUME = ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")
LOG_ACTIONS = ("CreateLogStream", "PutLogEvents")  # the log group is in the template

ArnRenderer = Callable[[str, str], Any]


class MissingGrantsError(ValueError):
    """A function has no entry in ``CODE_GRANTS``, or shares a policy file."""


@dataclass(frozen=True)
class Grant:
    """``actions`` of ``service`` on one resource (the part of its ARN after the account)."""

    service: str
    resource: str
    actions: tuple[str, ...]


def table(name: str, *actions: str) -> Grant:
    return Grant("dynamodb", f"table/{name}", actions)


def index(table_name: str, index_name: str, *actions: str) -> Grant:
    return Grant("dynamodb", f"table/{table_name}/index/{index_name}", actions)


def queue(name: str, *actions: str) -> Grant:
    return Grant("sqs", name, actions)


def settings_under(path: str) -> Grant:
    """Reading the stage's stored settings: ``GetParametersByPath`` is authorized against
    the path in the request (``parameter`` + the path, its trailing slash kept), not the
    parameters it returns. SecureStrings use the AWS managed key ``aws/ssm``, whose key
    policy lets every principal of the account decrypt through SSM: no ``kms:Decrypt``."""
    return Grant("ssm", f"parameter{path}", ("GetParametersByPath",))


# The origination identities SendTextMessage authorizes besides the configuration set
# (Service Authorization Reference, sms-voice). Which one a stage sends from is a stored
# setting (AWS_SMS_ORIGINATION_IDENTITY), not known when the template is built: any of
# the account's own, in the stack's region. Protect configurations are left out: the
# code names none.
ORIGINATION_IDENTITIES = ("phone-number/*", "pool/*", "sender-id/*")


def send_texts(configuration_set: str) -> tuple[Grant, ...]:
    """``SendTextMessage`` through the stage's configuration set, from the account's numbers."""
    return tuple(Grant("sms-voice", resource, ("SendTextMessage",))
                 for resource in (f"configuration-set/{configuration_set}",
                                  *ORIGINATION_IDENTITIES))


def _index_name(model_index: Any) -> str:
    return str(model_index.Meta.index_name)


def code_grants(n: ResourceNames) -> dict[str, tuple[Grant, ...]]:
    """Per function (Chalice's name), the calls its code makes."""
    reads_settings = settings_under(n.settings_path)  # every function, on its cold start
    return {
        "api_handler": (
            reads_settings,
            index(n.clients_table, _index_name(ClientModel.api_key_index), "Query"),
            table(n.clients_table, "GetItem", "UpdateItem"),
            table(n.messages_table, "GetItem", "PutItem", "UpdateItem", "BatchGetItem",
                  "DescribeTable"),
            index(n.messages_table, _index_name(MessageModel.client_index), "Query"),  # list
            table(n.routing_table, "Query"),  # routes (cached), at acceptance
            queue(n.send_queue, "GetQueueUrl", "SendMessage"),
            queue(n.dlr_queue, "GetQueueUrl", "SendMessage"),  # the DLR webhook
            queue(n.callbacks_queue, "GetQueueUrl", "SendMessage"),  # cancel's callback
            # two-way: Twilio's incoming message webhook (processed in the request) and
            # GET /v1/inbound; the keyword's confirmation is a message put and enqueued
            table(n.inbound_table, "GetItem", "PutItem", "UpdateItem"),
            index(n.inbound_table, _index_name(InboundModel.client_index), "Query"),
            index(n.messages_table, _index_name(MessageModel.recipient_index), "Query"),
            # opt-outs (keywords, /v1/opt-outs), the velocity counters and the delivery
            # statistics (UpdateItem; Query: GET /v1/stats; BatchGetItem: today's, per client)
            table(n.contacts_table, "GetItem", "PutItem", "UpdateItem", "Query", "BatchGetItem"),
            # the operator's view: every client (Scan), each queue's depth and dead letters
            table(n.clients_table, "Scan"),
            *(queue(q, "GetQueueUrl", "GetQueueAttributes")
              for pair in n.queues().items() for q in pair),
        ),
        "sender": (
            reads_settings,
            *send_texts(n.configuration_set),  # PROVIDER=aws-sms
            table(n.messages_table, "GetItem", "UpdateItem"),
            # UpdateItem: settlements; GetItem: the client of a provider's opt-out refusal
            table(n.clients_table, "GetItem", "UpdateItem"),
            table(n.provider_sends_table, "GetItem", "PutItem", "UpdateItem"),
            # routes (cached), breakers and pacing buckets
            table(n.routing_table, "Query", "GetItem", "PutItem", "UpdateItem"),
            # ChangeMessageVisibility: a retry's delay; SendMessage: a fresh copy of a
            # record (no time left in the invocation, or it waited for a provider long)
            queue(n.send_queue, "GetQueueUrl", "ChangeMessageVisibility", "SendMessage"),
            queue(n.dlr_queue, "GetQueueUrl", "SendMessage"),
            queue(n.callbacks_queue, "GetQueueUrl", "SendMessage"),
            # the opt-out check right before the send; a provider's opt-out refusal recorded;
            # the statistics of a settlement and of a temporary failure (UpdateItem)
            table(n.contacts_table, "GetItem", "PutItem", "UpdateItem"),
        ),
        "dlr": (
            reads_settings,
            table(n.messages_table, "GetItem", "UpdateItem"),
            table(n.clients_table, "UpdateItem"),
            table(n.contacts_table, "UpdateItem"),  # the settlement's statistics
            queue(n.dlr_queue, "GetQueueUrl", "ChangeMessageVisibility"),
            queue(n.callbacks_queue, "GetQueueUrl", "SendMessage"),
        ),
        "sweeper": (
            reads_settings,
            index(n.messages_table, _index_name(MessageModel.sweep_index), "Query"),
            table(n.messages_table, "GetItem", "UpdateItem"),
            table(n.clients_table, "UpdateItem"),
            table(n.contacts_table, "UpdateItem"),  # the settlement's statistics
            queue(n.send_queue, "GetQueueUrl", "SendMessage"),
            queue(n.callbacks_queue, "GetQueueUrl", "SendMessage"),
        ),
        "callbacks": (
            reads_settings,
            table(n.clients_table, "GetItem"),
            queue(n.callbacks_queue, "GetQueueUrl", "ChangeMessageVisibility"),
        ),
        "inbound": (  # AWS End User Messaging's two-way messages, the mock's replies
            reads_settings,
            table(n.inbound_table, "GetItem", "PutItem", "UpdateItem"),
            # the number's sender claim and the client (GetItem)
            table(n.clients_table, "GetItem"),
            # the conversation's last message; the keyword's confirmation put
            index(n.messages_table, _index_name(MessageModel.recipient_index), "Query"),
            table(n.messages_table, "GetItem", "PutItem"),
            table(n.contacts_table, "GetItem", "PutItem"),  # the opt-out or opt-in
            queue(n.send_queue, "GetQueueUrl", "SendMessage"),  # the confirmation
            queue(n.callbacks_queue, "GetQueueUrl", "SendMessage"),  # the client's events
            queue(n.inbound_queue, "GetQueueUrl", "ChangeMessageVisibility"),
        ),
    }


def grants(fn: LambdaFunction, names: ResourceNames) -> list[Grant]:
    """Everything ``fn`` may do: its code's calls, its queue, its logs."""
    code = code_grants(names)
    if fn.name not in code:
        raise MissingGrantsError(
            f"function {fn.name!r} has no grants: add what its code calls to "
            "CODE_GRANTS in infra/policies.py")
    out = list(code[fn.name])
    if fn.queue is not None:
        out.append(queue(fn.queue, *CONSUME))
    out.append(Grant("logs", f"log-group:/aws/lambda/{names.function(fn.name)}:*", LOG_ACTIONS))
    return out


def file_arn(service: str, resource: str) -> str:
    """An ARN for a ``.chalice`` policy file: any region and account."""
    return f"arn:aws:{service}:*:*:{resource}"


def stack_arn(service: str, resource: str) -> dict[str, str]:
    """An ARN in the stack's own partition, region and account."""
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:"
                       f"{resource}"}


def policy_document(fn: LambdaFunction, names: ResourceNames, arn: ArnRenderer) -> dict[str, Any]:
    """One statement per resource, its actions merged and sorted."""
    merged: dict[tuple[str, str], set[str]] = {}
    for grant in grants(fn, names):
        merged.setdefault((grant.service, grant.resource), set()).update(grant.actions)
    statements = [
        {
            "Effect": "Allow",
            "Action": sorted(f"{service}:{action}" for action in actions),
            "Resource": arn(service, resource),
        }
        for (service, resource), actions in merged.items()
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def policy_files(fns: list[LambdaFunction], names: ResourceNames) -> dict[str, dict[str, Any]]:
    """``.chalice`` file name -> its document; each function needs a file of its own."""
    owners: dict[str, str] = {}
    for fn in fns:
        other = owners.setdefault(str(fn.policy_file), fn.name)
        if fn.policy_file is None or other != fn.name:
            raise MissingGrantsError(
                f"function {fn.name!r} has no iam_policy_file of its own in stage "
                f"{names.stage!r} of .chalice/config.json (it would share {other!r}'s)")
    return {str(fn.policy_file): policy_document(fn, names, file_arn) for fn in fns}


def write_policy_files(documents: Mapping[str, dict[str, Any]], folder: Path) -> list[Path]:
    """Write the documents that changed; return those paths."""
    written = []
    for name, document in documents.items():
        path = folder / name
        text = json.dumps(document, indent=2) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the stage's .chalice policy files.")
    parser.add_argument("--stage", default="prod")
    args = parser.parse_args(argv)
    names = resource_names(args.stage)
    fns = functions(load_app(args.stage), args.stage, set(names.queues()))
    for path in write_policy_files(policy_files(fns, names), ROOT / ".chalice"):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
