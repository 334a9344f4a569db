"""Settings a test runs with: changes for the ``settings`` mark, and the mock provider's rates.

A test that needs other settings says so with a mark, and the ``settings``
fixture applies it before the container and the test client are built::

    @pytest.mark.settings(max_attempts=3, mock=FAILS_ALL_TEMPORARILY)
    def test_...(api, aws): ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from chalicelib.settings import Settings

# Rates of the mock provider (``mock=`` of the mark).
ACCEPTS_ALL = {"success_rate": 1.0}
FAILS_ALL_TEMPORARILY = {"success_rate": 0.0, "temp_fail_rate": 1.0}
FAILS_ALL_PERMANENTLY = {"success_rate": 0.0, "temp_fail_rate": 0.0, "perm_fail_rate": 1.0}


def functional_settings() -> Settings:
    """Fast settings for functional tests (stage ``local``, no endpoint: moto in-process)."""
    base = Settings.from_env({})
    return replace(base, stage="local", strict_phone_numbers=False,
                   retry_min_delay_s=1.0, retry_max_delay_s=2.0,
                   dlr_secrets={"mock": "test-dlr-secret"},
                   webhook_master_secret="test-master-secret", callback_allow_private=True,
                   mock=replace(base.mock, dlr_delay_s=0))


def changed(settings: Settings, mock: Mapping[str, Any] | None = None, **changes: Any) -> Settings:
    """``settings`` with ``changes``, and the mock provider's settings with ``mock``."""
    return replace(settings, **changes, mock=replace(settings.mock, **(mock or {})))
