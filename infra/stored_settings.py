"""The stage's stored settings in SSM Parameter Store, as ``make deploy`` writes them.

A deployed stage reads ``STORED_SETTINGS`` from parameters under its
``SETTINGS_PATH`` (``ResourceNames.settings_path``), each named like its
setting; ``SECRET_SETTINGS`` are SecureStrings (the AWS managed key
``aws/ssm``). Whatever of them the deployer's environment sets is written, and
only when it differs from what is stored; the signing secrets are generated
once when neither the environment nor the store has them, and a stored one is
never replaced by a generated one. Nothing here prints or returns a value:
only names and what happened to them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.settings import SECRET_SETTINGS, STORED_SETTINGS

SECURE, PLAIN = "SecureString", "String"
CREATED, UPDATED, KEPT, GENERATED = "created", "updated", "kept", "generated"
ENDPOINT_OUTPUT = "EndpointURL"  # what `chalice package` names the REST API's URL


def _token() -> str:
    return secrets.token_urlsafe(32)


# Made up when missing: the callbacks' signing key, and the mock provider's DLR secret.
GENERATORS: dict[str, Callable[[], str]] = {
    "WEBHOOK_MASTER_SECRET": _token,
    "DLR_SECRETS": lambda: f"mock={_token()}",
}


@dataclass(frozen=True)
class Stored:
    """One stored parameter: its type and (decrypted) value."""

    kind: str
    value: str


def kind_of(name: str) -> str:
    """The parameter type a setting is stored as."""
    return SECURE if name in SECRET_SETTINGS else PLAIN


def read_stored(ssm: Any, path: str) -> dict[str, Stored]:
    """The settings stored under ``path``, by name."""
    out: dict[str, Stored] = {}
    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path=path, WithDecryption=True, Recursive=False)
    for page in pages:
        for parameter in page["Parameters"]:
            name = parameter["Name"].removeprefix(path).lstrip("/")
            out[name] = Stored(parameter["Type"], parameter["Value"])
    return out


def put_setting(ssm: Any, path: str, name: str, value: str,
                stored: Mapping[str, Stored]) -> str:
    """Store ``value`` unless it is stored already; created, updated or kept."""
    wanted = Stored(kind_of(name), value)
    if stored.get(name) == wanted:
        return KEPT
    ssm.put_parameter(Name=f"{path}{name}", Value=value, Type=wanted.kind,
                      Overwrite=name in stored)
    return UPDATED if name in stored else CREATED


def write_settings(ssm: Any, path: str, environ: Mapping[str, str],
                   generators: Mapping[str, Callable[[], str]] = GENERATORS) -> dict[str, str]:
    """Write the stored settings ``environ`` sets (an empty value counts as unset) and
    generate the missing secrets; each stored setting's name -> what happened to it."""
    stored = read_stored(ssm, path)
    outcomes: dict[str, str] = {}
    for name in STORED_SETTINGS:
        value = environ.get(name, "").strip()
        if value:
            outcomes[name] = put_setting(ssm, path, name, value, stored)
        elif name in stored:
            outcomes[name] = KEPT
        elif name in generators:
            ssm.put_parameter(Name=f"{path}{name}", Value=generators[name](),
                              Type=kind_of(name), Overwrite=False)
            outcomes[name] = GENERATED
    return outcomes


def store_public_base_url(ssm: Any, path: str, outputs: Mapping[str, str],
                          environ: Mapping[str, str]) -> str | None:
    """After the stack is deployed: ``PUBLIC_BASE_URL`` from the API's endpoint, unless the
    environment gives one or one is stored (a custom domain stays); what happened, or None."""
    url = outputs.get(ENDPOINT_OUTPUT, "").rstrip("/")
    if not url or environ.get("PUBLIC_BASE_URL", "").strip():
        return None
    if "PUBLIC_BASE_URL" in read_stored(ssm, path):
        return KEPT
    return put_setting(ssm, path, "PUBLIC_BASE_URL", url, {})


def report(path: str, outcomes: Mapping[str, str]) -> None:
    """One line per setting: its name and what happened, never its value."""
    print(f"settings under {path}:")
    for name in sorted(outcomes):
        print(f"  {name}: {outcomes[name]}")
