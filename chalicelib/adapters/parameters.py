"""Stored settings: SSM Parameter Store, read with Powertools' Parameters utility.

A deployed stage keeps its provider credentials, DLR secrets and webhook
master secret as SecureString parameters (and its other provider settings as
String parameters) under ``SETTINGS_PATH``, each named like its setting:
``/sms-gateway/prod/TWILIO_AUTH_TOKEN``. ``make deploy`` writes them. One
``GetParametersByPath`` reads them all; Powertools caches the answer for
``SETTINGS_MAX_AGE``.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import BackendUnavailableError
from chalicelib.settings import STORED_SETTINGS


class StoredSettings:
    """The parameters under one path, as ``{setting name: value}``."""

    def __init__(self, ssm_client: Any, path: str, max_age_s: float) -> None:
        # Deferred: only stages with SETTINGS_PATH pay for the import.
        from aws_lambda_powertools.utilities.parameters import SSMProvider

        self._provider = SSMProvider(boto3_client=ssm_client)
        self._path = path if path.endswith("/") else f"{path}/"
        self._max_age_s = int(max_age_s)

    def read(self, fresh: bool = False) -> dict[str, str]:
        """The stored settings this code knows, decrypted; others under the path are ignored.
        ``fresh``: ask SSM now, not Powertools' cache."""
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            values = self._provider.get_multiple(self._path, decrypt=True, recursive=False,
                                                 max_age=self._max_age_s, force_fetch=fresh)
        except (GetParameterError, OSError) as exc:
            raise BackendUnavailableError(
                f"cannot read the stored settings under {self._path}: {exc}") from exc
        return {name: str(value) for name, value in values.items() if name in STORED_SETTINGS}
