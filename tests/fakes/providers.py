"""A provider that answers from a script: ``ScriptedProvider([TEMPORARY, ACCEPTED])``."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from chalicelib.domain.provider_errors import Outcome, SubmitResult
from chalicelib.domain.reports import OutboundSms

TEMPORARY, ACCEPTED, PERMANENT = Outcome.TEMPORARY, Outcome.ACCEPTED, Outcome.PERMANENT
CODES = {Outcome.TEMPORARY: "ESME_RTHROTTLED", Outcome.PERMANENT: "ESME_RINVDSTADR"}


class ScriptedProvider:
    """Each submission takes the next outcome; the last one repeats. Like a real
    provider, a message it accepted stays accepted (same id) when re-submitted."""

    def __init__(self, script: Iterable[Outcome | SubmitResult | Exception],
                 name: str = "scripted") -> None:
        self.name = name
        self._script = list(script)
        self._ids = itertools.count(1)
        self.accepted: dict[str, str] = {}
        self.submissions: list[OutboundSms] = []

    def accepted_before(self, message_id: str) -> str | None:
        return self.accepted.get(message_id)

    def submit(self, sms: OutboundSms) -> SubmitResult:
        self.submissions.append(sms)
        if sms.test_mode:
            return SubmitResult(Outcome.ACCEPTED, provider_message_id="dry", dry_run=True)
        if sms.message_id in self.accepted:
            return SubmitResult(Outcome.ACCEPTED, provider_message_id=self.accepted[sms.message_id])
        step = self._script.pop(0) if len(self._script) > 1 else self._script[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, SubmitResult):
            return step
        if step is Outcome.ACCEPTED:
            provider_id = f"{self.name}-{next(self._ids)}"
            self.accepted[sms.message_id] = provider_id
            return SubmitResult(Outcome.ACCEPTED, provider_message_id=provider_id)
        return SubmitResult.failed(CODES[step])
