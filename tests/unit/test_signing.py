"""Client callbacks' signatures (Standard Webhooks), no I/O: checked with the reference
``standardwebhooks`` package; their secrets and their rotation."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from chalicelib.domain.errors import BackendUnavailableError
from chalicelib.domain.signing import (
    SecretVersions,
    decode_secret,
    derive_key,
    derive_secret,
    sign,
    webhook_headers,
    webhook_id,
)
from chalicelib.domain.work import CallbackJob
from chalicelib.services.webhook_secrets import WebhookSecrets
from chalicelib.settings import Settings, SettingsError
from tests.fakes.world import World
from tests.support.receiver import verifies

pytestmark = pytest.mark.unit

HYPO = settings(max_examples=150, deadline=None, database=None)
MASTER = "master-secret"
EVENT_ID = "0f3e1c2a-5b6d-5e7f-8a9b-0c1d2e3f4a5b"
BODY = json.dumps({"event_id": EVENT_ID, "status": "DELIVERED"}, separators=(",", ":")).encode()
GRACE = 24 * 3600.0


# -- secrets -----------------------------------------------------------------------
def test_a_secret_is_whsec_and_base64_of_32_key_bytes_that_the_library_reads() -> None:
    secret = derive_secret(MASTER, "acme", 1)

    assert secret.startswith("whsec_")
    key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    assert key == derive_key(MASTER, "acme", 1) == decode_secret(secret)
    assert len(key) == 32  # the specification asks for 24 to 64 bytes
    assert Webhook(secret)._whsecret == key


def test_each_client_and_each_version_has_its_own_secret() -> None:
    secrets = {derive_secret(m, c, v) for m in (MASTER, "other-master")
               for c in ("acme", "globex") for v in (1, 2)}
    assert len(secrets) == 8


@pytest.mark.parametrize("text", ["", "whsec_", "abc", "whsec_not base64!", "v1=abc"])
def test_what_is_not_a_whsec_secret_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        decode_secret(text)


# -- signatures ----------------------------------------------------------------------
@HYPO
@given(msg_id=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True),
       timestamp=st.integers(0, 4_000_000_000), body=st.text(max_size=300),
       key=st.binary(min_size=24, max_size=64))
def test_our_signature_is_the_reference_librarys(msg_id: str, timestamp: int, body: str,
                                                 key: bytes) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    at = datetime.fromtimestamp(timestamp, tz=UTC)
    assert sign(key, msg_id, timestamp, body.encode()) == Webhook(secret).sign(msg_id, at, body)


def test_a_callback_verifies_with_the_library_and_fails_when_anything_changes() -> None:
    secret = derive_secret(MASTER, "acme", 1)
    now = int(time.time())
    headers = webhook_headers([decode_secret(secret)], EVENT_ID, now, BODY)

    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == EVENT_ID and headers["webhook-timestamp"] == str(now)
    assert verifies(secret, BODY, headers)
    assert not verifies(derive_secret(MASTER, "acme", 2), BODY, headers)
    assert not verifies(secret, BODY.replace(b"DELIVERED", b"FAILED_PERM"), headers)
    assert not verifies(secret, BODY, {**headers, "webhook-id": "another-event"})
    assert not verifies(secret, BODY, {**headers, "webhook-timestamp": str(now + 1)})
    stale = webhook_headers([decode_secret(secret)], EVENT_ID, now - 301, BODY)
    assert not verifies(secret, BODY, stale)  # the library's 5-minute tolerance


def test_two_keys_give_two_space_separated_signatures_each_secret_verifies() -> None:
    new, old = derive_secret(MASTER, "acme", 2), derive_secret(MASTER, "acme", 1)
    now = int(time.time())
    headers = webhook_headers([decode_secret(new), decode_secret(old)], EVENT_ID, now, BODY)

    parts = headers["webhook-signature"].split(" ")
    assert len(parts) == 2 and all(p.startswith("v1,") and p.count(",") == 1 for p in parts)
    assert parts[0] == sign(decode_secret(new), EVENT_ID, now, BODY)  # newest first
    assert verifies(new, BODY, headers) and verifies(old, BODY, headers)
    assert not verifies(derive_secret(MASTER, "acme", 3), BODY, headers)


def test_the_webhook_id_is_the_event_id_else_a_stable_one_without_full_stops() -> None:
    assert webhook_id({"event_id": EVENT_ID}, BODY) == EVENT_ID
    made = webhook_id({"event_id": "a.b"}, BODY)
    assert made.startswith("evt_") and "." not in made
    assert made == webhook_id({}, BODY) != webhook_id({}, BODY + b" ")


# -- rotation ---------------------------------------------------------------------------
@pytest.mark.parametrize("versions, age_s, signing", [
    (SecretVersions(), None, (1,)),
    (SecretVersions(2, None), None, (2,)),  # rotated before the time was kept
    (SecretVersions(2, 0.0), 0.0, (2, 1)),
    (SecretVersions(2, 0.0), GRACE - 1, (2, 1)),
    (SecretVersions(2, 0.0), GRACE, (2,)),
    (SecretVersions(5, 0.0), 60.0, (5, 4)),
])
def test_the_previous_version_signs_only_during_the_grace_period(
        versions: SecretVersions, age_s: float | None, signing: tuple[int, ...]) -> None:
    assert versions.in_force(age_s or 0.0, GRACE) == signing


def _deliver_one(world: World) -> tuple[bytes, dict[str, str]]:
    client_id = next(iter(world.accounts.accounts))
    world.callbacks.deliver(CallbackJob(client_id, "https://c.example/h",
                                        {"event_id": EVENT_ID, "status": "DELIVERED"}), 1)
    _, body, headers = world.poster.posted[-1]
    return body, headers


def _signatures_of(secret: str, body: bytes, headers: dict[str, str]) -> str:
    ts = int(headers["webhook-timestamp"])
    return Webhook(secret).sign(headers["webhook-id"], datetime.fromtimestamp(ts, tz=UTC),
                                body.decode())


def test_after_a_rotation_both_secrets_sign_for_the_grace_period_then_only_the_new() -> None:
    # GIVEN a client whose receiver knows its first secret
    world = World()
    client_id = world.client().client_id
    secrets = WebhookSecrets("master-secret", world.accounts, GRACE, world.clock)
    old = secrets.current(client_id)
    assert old.previous_until is None

    # WHEN the operator rotates it
    new = secrets.rotate(client_id)

    # THEN callbacks carry the new signature and the old, until the grace period ends
    assert new.secret != old.secret and new.previous_until == world.clock.now + GRACE
    assert secrets.current(client_id) == new
    body, headers = _deliver_one(world)
    assert headers["webhook-signature"] == " ".join(
        [_signatures_of(new.secret, body, headers), _signatures_of(old.secret, body, headers)])
    world.clock.advance(GRACE - 1)
    assert len(_deliver_one(world)[1]["webhook-signature"].split(" ")) == 2
    world.clock.advance(1)
    body, headers = _deliver_one(world)
    assert headers["webhook-signature"] == _signatures_of(new.secret, body, headers)
    assert secrets.current(client_id).previous_until is None


def test_a_callback_is_signed_by_the_current_secret_the_operator_is_shown() -> None:
    world = World()
    client_id = world.client().client_id
    shown = WebhookSecrets("master-secret", world.accounts, GRACE, world.clock).current(client_id)

    body, headers = _deliver_one(world)

    assert headers["webhook-signature"] == _signatures_of(shown.secret, body, headers)


@pytest.mark.parametrize("text, seconds", [(None, GRACE), ("1h", 3600.0), ("0", 0.0)])
def test_the_grace_period_is_the_webhook_secret_grace_setting(text: str | None,
                                                               seconds: float) -> None:
    env = {} if text is None else {"WEBHOOK_SECRET_GRACE": text}
    assert Settings.from_env(env).webhook_secret_grace_s == seconds


def test_a_grace_period_that_is_not_a_duration_is_refused_at_load() -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({"WEBHOOK_SECRET_GRACE": "a day"})


def test_without_a_master_secret_no_secret_is_shown_or_rotated() -> None:
    world = World()
    client_id = world.client().client_id
    secrets = WebhookSecrets("", world.accounts, GRACE, world.clock)
    for action in (secrets.current, secrets.rotate):
        with pytest.raises(BackendUnavailableError):
            action(client_id)
    assert world.accounts.webhook_secret_versions(client_id) == SecretVersions()
