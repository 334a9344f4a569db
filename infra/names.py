"""Names ``chalicelib.resources`` does not give yet, built from what it does give.

Until ``ResourceNames`` has them (proposed: a ``prefix`` property, a
``resources_stack`` property and an ``artifacts_bucket(account, region)``
function), this is the one place outside ``chalicelib/resources.py`` that
spells a name; everything else asks ``resource_names(stage)``.
"""

from __future__ import annotations

from chalicelib.resources import PROJECT, ResourceNames


def prefix(names: ResourceNames) -> str:
    """``sms-gateway-<stage>``: what every name of the stage starts with.

    Also the name of the stage's deployed CloudFormation stack (``make deploy``)
    and of the Docker Compose project of its LocalStack mode.
    """
    return f"{PROJECT}-{names.stage}"


def resources_stack(names: ResourceNames) -> str:
    """The CloudFormation stack that provisions the stage's tables and queues in the emulator."""
    return f"{prefix(names)}-resources"


def artifacts_bucket(account: str, region: str) -> str:
    """The S3 bucket ``make deploy`` uploads packages to, one per account and region."""
    return f"{PROJECT}-artifacts-{account}-{region}"
