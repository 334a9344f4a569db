"""The one place that names the stage's tables and queues.

The app, the local provisioning (``localstack/provision.py``) and the
packaged template (``infra/template.py``) all take their names from here.
"""

from __future__ import annotations

from dataclasses import dataclass

PROJECT = "sms-gateway"


@dataclass(frozen=True)
class ResourceNames:
    """Physical names of one stage's resources."""

    stage: str

    def _name(self, what: str) -> str:
        return f"{PROJECT}-{self.stage}-{what}"

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

    def function(self, name: str) -> str:
        """The Lambda function that Chalice knows as ``name`` (``api_handler``, ``sender``...)."""
        return self._name(name.replace("_", "-"))

    def queues(self) -> dict[str, str]:
        """Each work queue and its dead-letter queue."""
        return {self.send_queue: self.send_dlq, self.dlr_queue: self.dlr_dlq,
                self.callbacks_queue: self.callbacks_dlq}


def resource_names(stage: str) -> ResourceNames:
    """Names for ``stage`` (``local``, ``test-…``, ``prod``)."""
    return ResourceNames(stage)
