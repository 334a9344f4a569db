"""Deploy a packaged stage (``make package``) to AWS with CloudFormation.

What ``aws cloudformation package`` + ``deploy`` do, with boto3 alone: upload
``deployment.zip`` and the template to an S3 bucket (created on first use),
point every function's ``CodeUri`` at the upload, then create and execute a
change set (the template is SAM: it needs ``CAPABILITY_AUTO_EXPAND``).

Before the stack, the stage's stored settings go to SSM Parameter Store
(``infra/stored_settings.py``): each of ``STORED_SETTINGS`` the environment
sets (``make deploy PROVIDER=aws-sms AWS_SMS_ORIGINATION_IDENTITY=...``), and
the signing secrets generated once; after it, ``PUBLIC_BASE_URL`` from the
API's endpoint unless one is given or stored. Names are printed, never values.

    python -m infra.deploy --stage prod --build build/prod [--bucket NAME] [--stack NAME]

Credentials and region come from the usual AWS environment (``AWS_PROFILE``,
``AWS_REGION``...). ``AWS_ENDPOINT_URL`` must not point at the local emulator.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError, WaiterError

from chalicelib.resources import artifacts_bucket, resource_names
from chalicelib.settings import stage_environment
from infra.stored_settings import report, store_public_base_url, write_settings

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
WAIT = {"Delay": 10, "MaxAttempts": 360}  # an hour: a first deploy creates tables and an API


ROOT = Path(__file__).resolve().parent.parent


def stack_name(stage: str) -> str:
    return resource_names(stage).prefix


def settings_path(stage: str) -> str | None:
    """Where the stage's functions read stored settings (None: they read none); it must
    be the path their policies grant."""
    configured = stage_environment(stage, str(ROOT)).get("SETTINGS_PATH", "").strip()
    expected = resource_names(stage).settings_path
    if configured and configured != expected:
        raise SystemExit(f"stage {stage}: SETTINGS_PATH is {configured!r} in .chalice/config.json; "
                         f"the functions may read only {expected!r}")
    return configured or None


def default_bucket(account: str, region: str) -> str:
    return artifacts_bucket(account, region)


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    """Create the private artifacts bucket unless it exists."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":  # S3 refuses a location constraint naming us-east-1
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})


def upload(s3: Any, bucket: str, prefix: str, body: bytes, suffix: str) -> str:
    """Store ``body`` under its content hash (a new key exactly when it changed)."""
    key = f"{prefix}/{hashlib.sha256(body).hexdigest()}{suffix}"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return key


def with_code_location(template: dict[str, Any], bucket: str, key: str) -> dict[str, Any]:
    """The template with each function's local ``CodeUri`` replaced by the upload."""
    out = json.loads(json.dumps(template))
    for res in out["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": key}
    return out


def change_set_type(cfn: Any, stack: str) -> str:
    """CREATE for a new stack (or one a failed first change set left behind), else UPDATE."""
    try:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except ClientError:
        return "CREATE"
    if status == "ROLLBACK_COMPLETE":
        raise SystemExit(f"{stack} is ROLLBACK_COMPLETE: delete it, then deploy again")
    return "CREATE" if status == "REVIEW_IN_PROGRESS" else "UPDATE"


def apply_change_set(cfn: Any, stack: str, template_url: str, stage: str) -> bool:
    """Create the change set and execute it; False when there was nothing to change."""
    kind = change_set_type(cfn, stack)
    name = f"deploy-{int(time.time())}"
    cfn.create_change_set(StackName=stack, ChangeSetName=name, TemplateURL=template_url,
                          Capabilities=CAPABILITIES, ChangeSetType=kind,
                          Tags=[{"Key": "app", "Value": "sms-gateway"},
                                {"Key": "stage", "Value": stage}])
    try:
        cfn.get_waiter("change_set_create_complete").wait(
            StackName=stack, ChangeSetName=name, WaiterConfig=WAIT)
    except WaiterError:
        reason = cfn.describe_change_set(StackName=stack, ChangeSetName=name).get("StatusReason", "")
        if any(text in reason for text in NO_CHANGES):
            cfn.delete_change_set(StackName=stack, ChangeSetName=name)
            return False
        raise
    cfn.execute_change_set(StackName=stack, ChangeSetName=name)
    waiter = "stack_create_complete" if kind == "CREATE" else "stack_update_complete"
    cfn.get_waiter(waiter).wait(StackName=stack, WaiterConfig=WAIT)
    return True


def deploy(session: Any, stage: str, build: Path, bucket: str | None = None,
           stack: str | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Store the stage's settings, upload ``build`` and deploy it as ``stack``; return the
    stack's outputs. ``environ`` (default: ``os.environ``) gives the settings to store."""
    environ = os.environ if environ is None else environ
    region = session.region_name
    if not region:
        raise SystemExit("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)")
    account = session.client("sts").get_caller_identity()["Account"]
    bucket = bucket or default_bucket(account, region)
    stack = stack or stack_name(stage)
    s3, cfn, ssm = session.client("s3"), session.client("cloudformation"), session.client("ssm")
    path = settings_path(stage)
    if path is None:
        print(f"stage {stage} sets no SETTINGS_PATH: no settings stored")
    else:
        outcomes = write_settings(ssm, path, environ)
        report(path, outcomes)
        warning = provider_warning(outcomes)
        if warning:
            print(warning)
    ensure_bucket(s3, bucket, region)
    code_key = upload(s3, bucket, stage, (build / "deployment.zip").read_bytes(), ".zip")
    template = with_code_location(json.loads((build / "sam.json").read_text()), bucket, code_key)
    # Over 51,200 bytes, CloudFormation takes a template only from S3.
    template_key = upload(s3, bucket, stage, json.dumps(template).encode(), ".template.json")
    url = f"{s3.meta.endpoint_url}/{bucket}/{template_key}"  # as `aws cloudformation deploy`
    changed = apply_change_set(cfn, stack, url, stage)
    print(f"{stack}: " + ("deployed" if changed else "no changes"))
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described}
    if path is not None:
        outcome = store_public_base_url(ssm, path, outputs, environ)
        if outcome is not None:
            report(path, {"PUBLIC_BASE_URL": outcome})
    return outputs


def provider_warning(outcomes: Mapping[str, str]) -> str | None:
    """What to say when the stage will have no provider (nothing given, nothing stored)."""
    if "PROVIDER" in outcomes:
        return None
    return ("warning: no PROVIDER given or stored: the stage sends nothing, its /readyz answers "
            "503 and POST /v1/messages 503 until one is (make deploy PROVIDER=aws-sms or "
            "twilio ...; for a sandbox PROVIDER=mock MOCK_PROVIDER_SANDBOX=true)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--build", type=Path, default=None, help="default: build/<stage>")
    parser.add_argument("--bucket", help="artifacts bucket "
                        "(default: sms-gateway-artifacts-<account>-<region>, created if missing)")
    parser.add_argument("--stack", help="stack name (default: sms-gateway-<stage>)")
    args = parser.parse_args(argv)
    build = args.build or ROOT / "build" / args.stage
    if not (build / "sam.json").exists():
        raise SystemExit(f"{build}/sam.json is missing: run `make package STAGE={args.stage}` first")
    outputs = deploy(boto3.session.Session(), args.stage, build, args.bucket, args.stack)
    for key in sorted(outputs):
        print(f"  {key}: {outputs[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
