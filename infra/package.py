"""Package a stage into one CloudFormation (SAM) template and its deployment.zip.

``chalice package --merge-template`` merges, into what Chalice makes of
``app.py``, the stage's tables and queues (``infra/template.py``) and what
Chalice has no option for: ``ReportBatchItemFailures`` and the queue's
``Fn::GetAtt`` on each SQS event source, each function's least-privilege
policy (``infra/policies.py``), name and log group, and the alarms. The
functions are read from the app, so a new one is covered without an edit
here (``infra/policies.py`` refuses it until its grants are written).

    python -m infra.package --stage prod --out build/prod
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from chalice.config import Config

from chalicelib.resources import ResourceNames, resource_names
from infra.functions import ROOT, LambdaFunction, functions, load_app, load_config
from infra.policies import policy_document, policy_files, stack_arn, write_policy_files
from infra.template import build

# Lambda's advice for SQS event sources (see infra/template.py).
VISIBILITY_PER_TIMEOUT = 6
LOG_RETENTION_DAYS = 30
ALARM_PERIOD_S = 300
# The AWS SDK comes with Lambda's Python runtime; pynamodb pulls botocore in
# anyway. These distributions (and what only they need) leave the zip.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "urllib3", "python-dateutil", "six"})


class PackagingError(RuntimeError):
    """The template would be incomplete or wrong; nothing should be deployed."""


def queue_ids(infra: dict[str, Any]) -> dict[str, str]:
    """Queue name -> logical id, from the resources template."""
    return {
        res["Properties"]["QueueName"]: logical
        for logical, res in infra["Resources"].items()
        if res["Type"] == "AWS::SQS::Queue"
    }


def check_visibility(infra: dict[str, Any], fns: list[LambdaFunction]) -> None:
    """Each consumed queue hides a record for at least six of its consumer's timeouts."""
    ids = queue_ids(infra)
    for fn in fns:
        if fn.queue is None:
            continue
        if fn.queue not in ids:
            raise PackagingError(f"{fn.name} consumes {fn.queue}, which infra/template.py lacks")
        visibility = infra["Resources"][ids[fn.queue]]["Properties"]["VisibilityTimeout"]
        if visibility < VISIBILITY_PER_TIMEOUT * fn.timeout_s:
            raise PackagingError(
                f"{fn.queue}: VisibilityTimeout {visibility} s is under {VISIBILITY_PER_TIMEOUT} x "
                f"the {fn.timeout_s} s timeout of {fn.name} (infra/template.py)")


def function_overrides(fn: LambdaFunction, names: ResourceNames,
                       queue_id: str | None) -> dict[str, Any]:
    """Merged into Chalice's function, role and a log group of its own."""
    name = names.function(fn.name)
    # The log group first, so Lambda never creates it without a retention; the
    # queue first, since Chalice names it by ARN: the event source needs it.
    depends_on = [fn.log_group_id] + ([queue_id] if queue_id else [])
    function: dict[str, Any] = {"DependsOn": depends_on, "Properties": {"FunctionName": name}}
    if queue_id is not None:
        function["Properties"]["Events"] = {fn.sqs_event_id: {"Properties": {
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        }}}
    return {
        fn.logical_id: function,
        fn.role_id: {"Properties": {"Policies": [{
            "PolicyName": f"{fn.role_id}Policy",
            "PolicyDocument": policy_document(fn, names, stack_arn),
        }]}},
        fn.log_group_id: {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": f"/aws/lambda/{name}",
                           "RetentionInDays": LOG_RETENTION_DAYS},
        },
    }


def alarm(description: str, namespace: str, metric: str, dimension: tuple[str, str],
          statistic: str) -> dict[str, Any]:
    """Alarm on one datapoint >= 1 in five minutes; missing data is fine."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": f"{dimension[1]}-{metric}",
            "AlarmDescription": description,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
            "Statistic": statistic,
            "Period": ALARM_PERIOD_S,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
            "OKActions": [{"Ref": "AlarmTopic"}],
        },
    }


def alarms(fns: list[LambdaFunction], names: ResourceNames, infra: dict[str, Any]) -> dict[str, Any]:
    """Dead-letter queue depth, and each function's errors and throttles."""
    ids = queue_ids(infra)
    out: dict[str, Any] = {"AlarmTopic": {
        "Type": "AWS::SNS::Topic", "Properties": {"TopicName": names.alarm_topic}}}
    for dlq in names.queues().values():
        out[f"{ids[dlq]}DepthAlarm"] = alarm(
            f"Records are dead-lettered in {dlq}", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
            ("QueueName", dlq), "Maximum")
    for fn in fns:
        for metric in ("Errors", "Throttles"):
            out[f"{fn.logical_id}{metric}Alarm"] = alarm(
                f"{names.function(fn.name)} {metric.lower()}", "AWS/Lambda", metric,
                ("FunctionName", names.function(fn.name)), "Sum")
    return out


def merge_template(stage: str, fns: list[LambdaFunction]) -> dict[str, Any]:
    """Everything ``chalice package`` merges into its own template."""
    names = resource_names(stage)
    infra = build(stage)
    check_visibility(infra, fns)
    ids = queue_ids(infra)
    resources: dict[str, Any] = dict(infra["Resources"])
    for fn in fns:
        resources.update(function_overrides(fn, names, ids.get(fn.queue or "")))
    resources.update(alarms(fns, names, infra))
    outputs = dict(infra["Outputs"])
    outputs["AlarmTopic"] = {"Value": {"Ref": "AlarmTopic"}}
    return {"Resources": resources, "Outputs": outputs}


def run_chalice_package(stage: str, merge_file: Path, out: Path) -> None:
    """``chalice package`` in a process of its own (it imports ``app.py`` for the stage)."""
    env = dict(os.environ)
    # Chalice insists on a region; none ends up in the template (it uses AWS::Region).
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    chalice = Path(sys.executable).parent / "chalice"
    subprocess.run(
        [str(chalice), "package", "--stage", stage, "--merge-template", str(merge_file), str(out)],
        cwd=ROOT, env=env, check=True,
    )


def check_packaged(template: dict[str, Any], fns: list[LambdaFunction]) -> None:
    """Every override landed on what Chalice generated, not on a new resource."""
    res = template["Resources"]
    for fn in fns:
        props = res.get(fn.logical_id, {}).get("Properties", {})
        if res.get(fn.logical_id, {}).get("Type") != "AWS::Serverless::Function" \
                or "Handler" not in props:
            raise PackagingError(f"chalice package has no function {fn.logical_id} ({fn.name})")
        if props["Role"] != {"Fn::GetAtt": [fn.role_id, "Arn"]}:
            raise PackagingError(f"{fn.logical_id} does not use role {fn.role_id}")
        if fn.queue is not None and props["Events"][fn.sqs_event_id]["Type"] != "SQS":
            raise PackagingError(f"{fn.logical_id} has no SQS event {fn.sqs_event_id}")


def slim_zip(path: Path, drop: frozenset[str] = RUNTIME_PROVIDED) -> None:
    """Remove the distributions in ``drop`` (by the files their RECORD lists)."""
    with zipfile.ZipFile(path) as zin:
        dropped = _files_of(zin, drop)
        kept = [info for info in zin.infolist() if info.filename not in dropped]
        slim = path.with_suffix(".slim.zip")
        with zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in kept:
                zout.writestr(info, zin.read(info))
    slim.replace(path)


def _files_of(archive: zipfile.ZipFile, distributions: frozenset[str]) -> set[str]:
    files: set[str] = set()
    for record in (n for n in archive.namelist() if n.endswith(".dist-info/RECORD")):
        dist_info = record.rsplit("/", 1)[0]
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        name = next(line.split(":", 1)[1].strip() for line in metadata.splitlines()
                    if line.startswith("Name:"))
        if name.lower().replace("_", "-") in distributions:
            rows = archive.read(record).decode().splitlines()
            files.update(row.split(",", 1)[0] for row in rows if row)
    return files


def package(stage: str, out: Path) -> Path:
    """Write ``out/sam.json`` and ``out/deployment.zip``; return the template's path.

    One packaging at a time per checkout: Chalice caches the dependency zip under
    ``.chalice/deployments`` and this writes the policy files there, so two at once (two
    test workers) could read each other's half-written files."""
    import fcntl

    lock_path = ROOT / ".chalice" / ".package.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _package(stage, out)


def _package(stage: str, out: Path) -> Path:
    names = resource_names(stage)
    fns = functions(load_app(stage), stage, set(names.queues()))
    if not Config(chalice_stage=stage, config_from_disk=load_config()).autogen_policy:
        # Chalice reads these; the template gets the same grants pinned to the stack.
        write_policy_files(policy_files(fns, names), ROOT / ".chalice")
    out.mkdir(parents=True, exist_ok=True)
    merge_file = out / "merge-template.json"
    merge_file.write_text(json.dumps(merge_template(stage, fns), indent=2) + "\n")
    run_chalice_package(stage, merge_file.resolve(), out.resolve())
    template_path = out / "sam.json"
    check_packaged(json.loads(template_path.read_text()), fns)
    slim_zip(out / "deployment.zip")
    return template_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--out", type=Path, default=None, help="default: build/<stage>")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "build" / args.stage
    template = package(args.stage, out)
    size = (out / "deployment.zip").stat().st_size
    print(f"{template}: {len(json.loads(template.read_text())['Resources'])} resources; "
          f"deployment.zip {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
