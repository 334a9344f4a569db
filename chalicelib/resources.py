"""The one place that names the stage's tables and queues.

The app, the local provisioning (``localstack/provision.py``) and the
packaged template (``infra/template.py``) all take their names from here.
"""

from __future__ import annotations

from dataclasses import dataclass

PROJECT = "sms-gateway"

# How often each work queue hands out a record before its dead-letter queue
# takes it (the redrive policy's maxReceiveCount). The code relies on them:
# settings refuse a MAX_ATTEMPTS that would not fit, and a unit test checks
# that the callback schedule spans about 24 h over CALLBACK_MAX_RECEIVES.
# Well above MAX_ATTEMPTS (10 by default; up to 99 allowed, e.g. many fast retries
# within a short validity period) with room for early duplicates: the dead-letter
# queue only catches poison records, never a message still being retried.
SEND_MAX_RECEIVES = 100
# A DLR for an unknown provider id is retried this often (1, 2, 4, 8 s), then
# dead-lettered.
DLR_MAX_RECEIVES = 5
# A callback is tried this often over ~24 h (30 s, 1, 2, 4 ... minutes, capped
# at 2 h), then dead-lettered.
CALLBACK_MAX_RECEIVES = 20
# An inbound message whose processing keeps failing (a store down) is tried this often
# (backing off), then dead-lettered; `make redrive` brings it back.
INBOUND_MAX_RECEIVES = 10
# The sender function's timeout (.chalice/config.json says the same; a test checks).
# It takes a record only with a provider call's timeout plus SEND_MARGIN_S left (the
# SENT write and its retries), so Lambda never cuts a provider call short.
SENDER_TIMEOUT_S = 30
SEND_MARGIN_S = 8.0
# The callbacks function's timeout (.chalice/config.json's default, as the template's
# CALLBACK_TIMEOUT_S). A batch's POSTs run side by side, each within CALLBACK_TIMEOUT
# (DNS included), which settings keep CALLBACK_MARGIN_S inside it, so one slow URL
# never makes the function time out and its batch come back.
CALLBACKS_TIMEOUT_S = 10
CALLBACK_MARGIN_S = 3.0


@dataclass(frozen=True)
class ResourceNames:
    """Physical names of one stage's resources."""

    stage: str

    @property
    def prefix(self) -> str:
        """``sms-gateway-<stage>``: what every name of the stage starts with; also the
        stage's deployed CloudFormation stack and its LocalStack Compose project."""
        return f"{PROJECT}-{self.stage}"

    def _name(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    @property
    def resources_stack(self) -> str:
        """The CloudFormation stack that provisions the tables and queues in the emulator."""
        return self._name("resources")

    @property
    def clients_table(self) -> str:
        return self._name("clients")

    @property
    def messages_table(self) -> str:
        return self._name("messages")

    @property
    def provider_sends_table(self) -> str:
        return self._name("mock-provider-sends")

    @property
    def ledger_table(self) -> str:
        return self._name("ledger")

    @property
    def routing_table(self) -> str:
        """Routes, provider costs, circuit breakers and provider pacing buckets."""
        return self._name("routing")

    @property
    def inbound_table(self) -> str:
        """Inbound (mobile-originated) messages."""
        return self._name("inbound")

    @property
    def contacts_table(self) -> str:
        """Per client and person: opt-outs, and the velocity guard's counters."""
        return self._name("contacts")

    @property
    def inbound_queue(self) -> str:
        """Inbound messages to process: AWS End User Messaging's two-way topic (raw
        delivery) and the mock's injected replies."""
        return self._name("inbound")

    @property
    def inbound_dlq(self) -> str:
        return self._name("inbound-dlq")

    @property
    def sms_inbound_topic(self) -> str:
        """The SNS topic AWS End User Messaging SMS publishes two-way messages to (a
        phone number's ``TwoWayChannelArn``); the inbound queue is subscribed to it."""
        return self._name("sms-inbound")

    @property
    def callbacks_queue(self) -> str:
        return self._name("callbacks")

    @property
    def callbacks_dlq(self) -> str:
        return self._name("callbacks-dlq")

    @property
    def send_queue(self) -> str:
        return self._name("send")

    @property
    def send_dlq(self) -> str:
        return self._name("send-dlq")

    @property
    def dlr_queue(self) -> str:
        return self._name("dlr")

    @property
    def dlr_dlq(self) -> str:
        return self._name("dlr-dlq")

    @property
    def alarm_topic(self) -> str:
        return self._name("alarms")

    @property
    def sms_events_topic(self) -> str:
        """The SNS topic AWS End User Messaging SMS publishes delivery events to; the DLR
        queue is subscribed to it (raw delivery)."""
        return self._name("sms-events")

    @property
    def configuration_set(self) -> str:
        """The AWS End User Messaging SMS configuration set whose event destination is
        ``sms_events_topic``."""
        return self._name("sms")

    @property
    def settings_path(self) -> str:
        """The SSM Parameter Store path of the stage's stored settings, each named like its
        setting (``PROVIDER``, ``TWILIO_AUTH_TOKEN``...); secrets are SecureString."""
        return f"/{PROJECT}/{self.stage}/"

    def function(self, name: str) -> str:
        """The Lambda function that Chalice knows as ``name`` (``api_handler``, ``sender``...)."""
        return self._name(name.replace("_", "-"))

    def queues(self) -> dict[str, str]:
        """Each work queue and its dead-letter queue."""
        return {self.send_queue: self.send_dlq, self.dlr_queue: self.dlr_dlq,
                self.callbacks_queue: self.callbacks_dlq, self.inbound_queue: self.inbound_dlq}


def artifacts_bucket(account: str, region: str) -> str:
    """The S3 bucket ``make deploy`` uploads packages to, one per account and region."""
    return f"{PROJECT}-artifacts-{account}-{region}"


def resource_names(stage: str) -> ResourceNames:
    """Names for ``stage`` (``local``, ``test-…``, ``prod``)."""
    return ResourceNames(stage)
