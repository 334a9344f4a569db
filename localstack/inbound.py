"""Inject a person's reply into the local stack (``make inbound``).

With ``--provider mock`` the mock's reply goes on the inbound queue, as the mock
provider would put it. With ``--provider aws-sms`` the emulator publishes AWS End
User Messaging's two-way message to the stage's two-way topic
(``POST /_aws/sms-voice/inbound``), whose subscription delivers it to the same
queue; with ``EMULATOR=localstack`` (no SMS API) the same message is published to
the topic through SNS. Either way the ``inbound`` worker takes it from there, as on
AWS.

    python -m localstack.inbound --from +14155550111 --to +14155550000 --text STOP
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

from chalicelib.domain.errors import GatewayError
from chalicelib.domain.validation import parse_phone_number
from chalicelib.providers import mock
from chalicelib.settings import Settings
from infra.template import INBOUND_TOPIC
from localstack import smsvoice
from localstack.provision import Emulator, stack_outputs


def inject(settings: Settings, provider: str, from_number: str, to_number: str,
           text: str, provider_message_id: str | None = None) -> str:
    """Put the reply on its way; the provider's id of the inbound message (the mock's
    may be given: the same id again is a duplicate, and is dropped)."""
    if provider == mock.NAME:
        from chalicelib.container import Container

        body = mock.inbound_body(from_number, to_number, text, time.time(),
                                 provider_message_id)
        Container(settings).inbound_queue.send(body)
        return str(body["provider_message_id"])
    emulator = Emulator(settings)
    topic = stack_outputs(emulator)[INBOUND_TOPIC]
    if emulator.kind == "localstack":
        message = smsvoice.two_way_message(from_number, to_number, text)
        emulator.client("sns").publish(TopicArn=topic, Message=json.dumps(message))
        return str(message["inboundMessageId"])
    request = urllib.request.Request(
        f"{settings.endpoint_url}{smsvoice.INBOUND_PATH}", method="POST",
        data=json.dumps({"TwoWayChannelArn": topic, "OriginationNumber": from_number,
                         "DestinationNumber": to_number, "MessageBody": text}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.loads(answer.read())["InboundMessageId"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Inject a person's reply into the local stack.")
    parser.add_argument("--from", dest="from_number", required=True,
                        help="the person's number (E.164)")
    parser.add_argument("--to", dest="to_number", required=True,
                        help="the gateway's number it is sent to: a client's sender ID")
    parser.add_argument("--text", required=True)
    parser.add_argument("--provider", choices=(mock.NAME, "aws-sms"), default=mock.NAME)
    parser.add_argument("--id", dest="provider_message_id",
                        help="the mock's message id (default: a new one); AWS's is the "
                        "emulator's")
    args = parser.parse_args(argv)
    if args.provider_message_id is not None and args.provider != mock.NAME:
        parser.error("--id is the mock's only: the emulator gives AWS's messages their id")
    settings = Settings.from_env()
    if not settings.endpoint_url:
        print("AWS_ENDPOINT_URL is not set: make inbound injects into the local stack only",
              file=sys.stderr)
        return 2
    try:
        numbers = [parse_phone_number(n, f, strict=False) for n, f in (
            (args.from_number, "FROM"), (args.to_number, "TO"))]
        provider_id = inject(settings, args.provider, numbers[0], numbers[1], args.text,
                             args.provider_message_id)
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, urllib.error.URLError, KeyError) as exc:
        print(f"error: the stack could not take it ({exc}); is it up (make up)?",
              file=sys.stderr)
        return 1
    print(f"inbound {args.provider} message {provider_id} queued: GET /v1/inbound lists it "
          "once the inbound worker took it")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    sys.exit(main())
