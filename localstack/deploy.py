#!/usr/bin/env python3
"""Create or update a Decision Journal stack through the CloudFormation API.

    deploy.py --stack NAME --prefix PREFIX [--template infra/template.yaml]
              [--param KEY=VALUE ...] [--outputs-file PATH] [--timeout SECONDS]
              [--moto-fixups auto|on|off]

The endpoint and credentials come from the environment (AWS_ENDPOINT_URL,
AWS_REGION, ... - see localstack/start.sh). On success the stack outputs are
printed on stdout as one JSON object; on failure the stack events are printed
on stderr and the exit status is 1.

Parameter values are checked against the template's constraints first
(AllowedPattern, AllowedValues, lengths, MinValue/MaxValue), as CloudFormation
does and moto does not.

Emulator gaps (only when DJ_ENDPOINT_KIND=moto, or --moto-fixups=on): moto's
CloudFormation silently skips some resource types and properties (the secret,
bucket versioning / Object Lock / public access block / ownership, table PITR).
They are applied here through the service APIs from the template's own
settings, and the outputs are completed. Nothing is done for real AWS or
LocalStack. See localstack/README.md ("moto gaps").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "infra" / "template.yaml"

TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
IN_PROGRESS_SUFFIX = "_IN_PROGRESS"


def log(msg: str) -> None:
    print(f"deploy.py: {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stack", required=True, help="CloudFormation stack name")
    p.add_argument("--prefix", required=True, help="value of the template's Prefix parameter")
    p.add_argument("--template", default=str(DEFAULT_TEMPLATE), help="template file (default: infra/template.yaml)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="extra template parameter (repeatable)")
    p.add_argument("--outputs-file", metavar="PATH", help="also write the outputs JSON to this file")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the stack (default 600)")
    p.add_argument("--moto-fixups", choices=["auto", "on", "off"], default="auto",
                   help="create what moto's CloudFormation skips (default: auto = when DJ_ENDPOINT_KIND=moto)")
    return p.parse_args(argv)


def stack_or_none(cfn, name: str) -> dict | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise
    return stacks[0] if stacks else None


def wait_for(cfn, name: str, timeout: float, gone_ok: bool = False) -> dict | None:
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        stack = stack_or_none(cfn, name)
        if stack is None:
            if gone_ok:
                return None
            raise SystemExit(f"deploy.py: error: stack {name} disappeared while waiting")
        if not stack["StackStatus"].endswith(IN_PROGRESS_SUFFIX):
            return stack
        if time.monotonic() > deadline:
            raise SystemExit(f"deploy.py: error: stack {name} still {stack['StackStatus']} after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 5)


def print_events(cfn, name: str) -> None:
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except ClientError as e:
        log(f"could not read stack events: {e}")
        return
    print(f"--- events of stack {name} (oldest first) ---", file=sys.stderr)
    for ev in reversed(events):
        reason = ev.get("ResourceStatusReason") or ""
        print(f"{ev.get('Timestamp')}  {ev.get('LogicalResourceId')}  {ev.get('ResourceType')}  "
              f"{ev.get('ResourceStatus')}  {reason}", file=sys.stderr)


def outputs_of(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs", [])}


def check_parameters(template: dict, params: list[dict]) -> list[str]:
    """Validate parameter values as CloudFormation would (moto does not check
    AllowedPattern, AllowedValues, lengths or numeric bounds)."""
    problems = []
    declared = template.get("Parameters") or {}
    for p in params:
        key, value = p["ParameterKey"], str(p["ParameterValue"])
        spec = declared.get(key)
        if spec is None:
            problems.append(f"parameter {key} is not declared in the template")
            continue
        why = spec.get("ConstraintDescription", "")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(pattern, value):
            problems.append(f"parameter {key}={value!r} does not match {pattern} {why}".rstrip())
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            problems.append(f"parameter {key}={value!r} is not one of {allowed}")
        if "MinLength" in spec and len(value) < int(spec["MinLength"]):
            problems.append(f"parameter {key} is shorter than {spec['MinLength']}")
        if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            problems.append(f"parameter {key} is longer than {spec['MaxLength']}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                problems.append(f"parameter {key}={value!r} is not a number")
                continue
            if "MinValue" in spec and number < float(spec["MinValue"]):
                problems.append(f"parameter {key}={value} is below {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                problems.append(f"parameter {key}={value} is above {spec['MaxValue']}")
    return problems


def deploy(cfn, args: argparse.Namespace, body: str, params: list[dict],
           template_params: set[str]) -> dict:
    name = args.stack
    existing = stack_or_none(cfn, name)
    if existing and existing["StackStatus"].endswith(IN_PROGRESS_SUFFIX):
        log(f"stack {name} is {existing['StackStatus']}; waiting for it first")
        existing = wait_for(cfn, name, args.timeout)
    if existing and existing["StackStatus"] in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_COMPLETE"):
        if existing["StackStatus"] != "DELETE_COMPLETE":
            log(f"stack {name} is {existing['StackStatus']} (failed create); deleting it before creating again")
            cfn.delete_stack(StackName=name)
            gone = wait_for(cfn, name, args.timeout, gone_ok=True)
            if gone is not None and gone["StackStatus"] != "DELETE_COMPLETE":
                raise SystemExit(f"deploy.py: error: could not delete stack {name}: {gone['StackStatus']}")
        existing = None

    common = dict(
        StackName=name,
        TemplateBody=body,
        Parameters=params,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    if existing is None:
        log(f"creating stack {name}")
        cfn.create_stack(**common, Tags=[{"Key": "dj:prefix", "Value": args.prefix}])
    else:
        log(f"updating stack {name} ({existing['StackStatus']})")
        # Parameters not given now keep their previous values (like the console).
        given = {p["ParameterKey"] for p in params}
        common["Parameters"] = params + [
            {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
            for p in existing.get("Parameters", [])
            if p["ParameterKey"] not in given and p["ParameterKey"] in template_params]
        try:
            cfn.update_stack(**common)
        except ClientError as e:
            if "No updates are to be performed" in str(e):
                log("no changes")
                return existing
            raise
    return wait_for(cfn, name, args.timeout)


# ------------------------------------------------------------ moto fixups ---
# moto 5.2 CloudFormation (see README.md, "moto gaps"):
#  - AWS::SecretsManager::Secret and AWS::S3::BucketPolicy are skipped silently
#    (the stack still ends CREATE_COMPLETE and the outputs that Ref them vanish);
#  - AWS::S3::Bucket applies only BucketName, BucketEncryption and Tags;
#  - AWS::DynamoDB::Table ignores PointInTimeRecoverySpecification.
# The fixups below apply those template properties through the service APIs.
# They read the template, so they follow it when it changes; they are
# idempotent, so they also run after updates.


def load_template(body: str) -> dict:
    """YAML/JSON CloudFormation template -> dict, short-form tags expanded."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, tag_suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if tag_suffix == "Ref":
            return {"Ref": value}
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{tag_suffix}": value}

    Loader.add_multi_constructor("!", construct)
    return yaml.load(body, Loader=Loader)  # noqa: S506 - SafeLoader subclass


def resolve_sub(value, params: dict[str, str]):
    """Resolve a literal or a Fn::Sub string over parameters and pseudo parameters."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in params:
        return params[value["Ref"]]
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        def repl(m):
            name = m.group(1)
            if name not in params:
                raise KeyError(name)
            return params[name]

        return re.sub(r"\$\{([A-Za-z0-9:]+)\}", repl, value["Fn::Sub"])
    raise KeyError(repr(value))


def moto_fixups(session, stack: dict, template: dict, params: dict[str, str]) -> dict[str, str]:
    """Apply what moto's CloudFormation skipped; returns the corrected outputs."""
    outputs = outputs_of(stack)
    cfn = session.client("cloudformation")
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=stack["StackName"])["StackResourceSummaries"]
        if r.get("LogicalResourceId")
    }
    account = session.client("sts").get_caller_identity()["Account"]
    params = {**params, "AWS::Region": session.region_name, "AWS::AccountId": account,
              "AWS::Partition": "aws", "AWS::StackName": stack["StackName"],
              "AWS::URLSuffix": "amazonaws.com"}
    refs: dict[str, str] = {}  # logical id -> what Ref returns, for skipped resources
    arns: dict[str, str] = {}  # logical id -> what GetAtt Arn returns, for replaced resources

    for logical, res in (template.get("Resources") or {}).items():
        rtype = res.get("Type")
        props = res.get("Properties") or {}
        if rtype == "AWS::S3::Bucket" and logical in physical:
            fix_bucket(session.client("s3"), physical[logical], props)
        elif rtype == "AWS::DynamoDB::Table" and logical in physical:
            pitr = (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
            if pitr in (True, "true", "True"):
                session.client("dynamodb").update_continuous_backups(
                    TableName=physical[logical],
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        elif rtype == "AWS::KMS::Key" and logical in physical:
            replaced = fix_kms_key(session.client("kms"), physical[logical], props)
            if replaced:
                refs[logical], arns[logical] = replaced
        elif rtype == "AWS::SecretsManager::Secret" and logical not in physical:
            refs[logical] = fix_secret(session.client("secretsmanager"), stack["StackName"], logical,
                                       props, params)
        elif (rtype == "AWS::Scheduler::Schedule" and logical not in physical
              and condition_holds(template, res.get("Condition"), params)):
            refs[logical] = fix_schedule(session, props, params, physical)

    for key, out in (template.get("Outputs") or {}).items():
        value = out.get("Value")
        if isinstance(value, dict) and value.get("Ref") in refs:
            outputs[key] = refs[value["Ref"]]
        get_att = value.get("Fn::GetAtt") if isinstance(value, dict) else None
        if isinstance(get_att, list) and get_att[1:] == ["Arn"] and get_att[0] in arns:
            outputs[key] = arns[get_att[0]]
    return outputs


def condition_holds(template: dict, name: str | None, params: dict[str, str]) -> bool:
    """Evaluates a template condition built from Fn::Not, Fn::Equals, Fn::And, Fn::Or and Ref."""
    if name is None:
        return True

    def ev(node):
        if isinstance(node, dict) and "Ref" in node:
            return params[node["Ref"]]
        if isinstance(node, dict) and "Condition" in node:
            return ev(template["Conditions"][node["Condition"]])
        if isinstance(node, dict) and len(node) == 1:
            (fn, args), = node.items()
            if fn == "Fn::Not":
                return not ev(args[0])
            if fn == "Fn::Equals":
                return ev(args[0]) == ev(args[1])
            if fn == "Fn::And":
                return all(ev(a) for a in args)
            if fn == "Fn::Or":
                return any(ev(a) for a in args)
        if isinstance(node, str):
            return node
        raise KeyError(f"condition form {node!r}")

    return bool(ev(template["Conditions"][name]))


def fix_schedule(session, props: dict, params: dict[str, str], physical: dict[str, str]) -> str:
    """moto's CloudFormation reports an AWS::Scheduler::Schedule created but never creates it."""
    target = dict(props["Target"])
    role = target["RoleArn"]
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        role_name = physical[role["Fn::GetAtt"][0]]
        target["RoleArn"] = session.client("iam").get_role(RoleName=role_name)["Role"]["Arn"]
    target["Arn"] = resolve_sub(target["Arn"], params)
    name = resolve_sub(props["Name"], params)
    scheduler = session.client("scheduler")
    args = {
        "Name": name,
        "ScheduleExpression": resolve_sub(props["ScheduleExpression"], params),
        "FlexibleTimeWindow": props["FlexibleTimeWindow"],
        "State": props.get("State", "ENABLED"),
        "Description": props.get("Description", ""),
        "Target": target,
    }
    try:
        scheduler.create_schedule(**args)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ConflictException":
            raise
        scheduler.update_schedule(**args)
    log(f"moto fixup: created schedule {name} (moto's CloudFormation skips AWS::Scheduler::Schedule)")
    return name


def fix_kms_key(kms, key_id: str, props: dict) -> tuple[str, str] | None:
    """moto's CloudFormation creates every key symmetric: replace an asymmetric one by a key of
    the template's spec and usage, and re-point the aliases that named it. Returns the new
    (key id, ARN), or None when the key is already right."""
    spec = props.get("KeySpec") or "SYMMETRIC_DEFAULT"
    usage = props.get("KeyUsage") or "ENCRYPT_DECRYPT"
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    if meta.get("KeySpec", meta.get("CustomerMasterKeySpec")) == spec and meta.get("KeyUsage") == usage:
        return None
    description = props.get("Description") or ""
    new = kms.create_key(KeySpec=spec, KeyUsage=usage,
                         Description=description if isinstance(description, str) else "")["KeyMetadata"]
    for page in kms.get_paginator("list_aliases").paginate(KeyId=meta["KeyId"]):
        for alias in page["Aliases"]:
            if alias.get("TargetKeyId") == meta["KeyId"]:
                kms.update_alias(AliasName=alias["AliasName"], TargetKeyId=new["KeyId"])
    log(f"moto fixup: key {key_id} is {meta.get('KeySpec')}; replaced by {spec} key {new['KeyId']}")
    return new["KeyId"], new["Arn"]


def fix_bucket(s3, bucket: str, props: dict) -> None:
    if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if props.get("ObjectLockEnabled") in (True, "true", "True"):
        try:
            enabled = s3.get_object_lock_configuration(Bucket=bucket)[
                "ObjectLockConfiguration"].get("ObjectLockEnabled") == "Enabled"
        except ClientError:
            enabled = False
        if not enabled:
            # Same as the template: Object Lock on, no default retention rule.
            conf: dict = {"ObjectLockEnabled": "Enabled"}
            rule = (props.get("ObjectLockConfiguration") or {}).get("Rule")
            if rule:
                conf["Rule"] = rule
            s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=conf)
            log(f"moto fixup: enabled Object Lock on {bucket}")
    pab = props.get("PublicAccessBlockConfiguration")
    if pab:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=pab)
    own = props.get("OwnershipControls")
    if own:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=own)
    # Not applied: LifecycleConfiguration (moto never runs lifecycle rules) and
    # AWS::S3::BucketPolicy (moto does not evaluate it on this endpoint).


GENERATE_KEYS = ("PasswordLength", "ExcludeCharacters", "ExcludeNumbers", "ExcludePunctuation",
                 "ExcludeUppercase", "ExcludeLowercase", "IncludeSpace", "RequireEachIncludedType")


def fix_secret(sm, stack_name: str, logical: str, props: dict, params: dict[str, str]) -> str:
    name = resolve_sub(props["Name"], params)
    try:
        return sm.describe_secret(SecretId=name)["ARN"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    create = {"Name": name, "Description": str(props.get("Description", "")).strip(),
              "Tags": [{"Key": "aws:cloudformation:stack-name", "Value": stack_name},
                       {"Key": "aws:cloudformation:logical-id", "Value": logical}]}
    gen = props.get("GenerateSecretString")
    if gen:
        # Like GenerateSecretString: the service generates the value; it is
        # never printed or written anywhere.
        opts = {k: gen[k] for k in GENERATE_KEYS if k in gen}
        for k, v in list(opts.items()):
            if k == "PasswordLength":
                opts[k] = int(v)
            elif k != "ExcludeCharacters":
                opts[k] = v in (True, "true", "True")
        generated = sm.get_random_password(**opts)["RandomPassword"]
        if "SecretStringTemplate" in gen:
            doc = json.loads(gen["SecretStringTemplate"])
            doc[gen["GenerateStringKey"]] = generated
            create["SecretString"] = json.dumps(doc, separators=(",", ":"))
        else:
            create["SecretString"] = generated
        del generated
    elif "SecretString" in props:
        create["SecretString"] = resolve_sub(props["SecretString"], params)
    arn = sm.create_secret(**create)["ARN"]
    log(f"moto fixup: created secret {name} (moto's CloudFormation skips AWS::SecretsManager::Secret)")
    return arn


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    template = Path(args.template)
    if not template.is_file():
        log(f"error: template {template} not found")
        return 2
    body = template.read_text()
    try:
        parsed = load_template(body)
    except Exception as e:  # noqa: BLE001 - any parse error is fatal here
        log(f"error: cannot parse {template}: {e}")
        return 2
    template_params = set((parsed.get("Parameters") or {}).keys())

    params = [{"ParameterKey": "Prefix", "ParameterValue": args.prefix}]
    for kv in args.param:
        if "=" not in kv:
            log(f"error: --param expects KEY=VALUE, got {kv!r}")
            return 2
        k, v = kv.split("=", 1)
        params.append({"ParameterKey": k, "ParameterValue": v})

    if not os.environ.get("AWS_ENDPOINT_URL"):
        log("warning: AWS_ENDPOINT_URL is not set - this talks to real AWS "
            "(source .dj/endpoint.env for the local endpoint)")
    session = boto3.session.Session()
    if not session.region_name:
        log("error: no region (set AWS_REGION, e.g. by sourcing .dj/endpoint.env)")
        return 2
    cfn = session.client("cloudformation")

    problems = check_parameters(parsed, params)
    if problems:
        for problem in problems:
            log(f"error: {problem}")
        return 2

    try:
        stack = deploy(cfn, args, body, params, template_params)
    except ClientError as e:
        log(f"error: {e}")
        try:
            if stack_or_none(cfn, args.stack):
                print_events(cfn, args.stack)
        except Exception as e2:  # noqa: BLE001 - moto may 500 on a half-created stack
            log(f"(could not read the stack's events: {type(e2).__name__})")
        return 1
    except Exception as e:  # noqa: BLE001 - e.g. an emulator answering garbage
        log(f"error: {type(e).__name__}: {e}")
        return 1

    status = stack["StackStatus"]
    if status not in TERMINAL_OK:
        log(f"error: stack {args.stack} ended in {status}: {stack.get('StackStatusReason', '')}")
        print_events(cfn, args.stack)
        return 1

    fix = args.moto_fixups == "on" or (
        args.moto_fixups == "auto" and os.environ.get("DJ_ENDPOINT_KIND") == "moto")
    if fix:
        try:
            values = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
            values.update({p["ParameterKey"]: p["ParameterValue"] for p in params})
            outputs = moto_fixups(session, stack, parsed, values)
        except (ClientError, KeyError, ValueError) as e:
            log(f"error: moto fixups failed: {e!r}")
            return 1
    else:
        outputs = outputs_of(stack)

    log(f"stack {args.stack}: {status}")
    text = json.dumps(outputs, indent=2, sort_keys=True) + "\n"
    if args.outputs_file:
        out = Path(args.outputs_file)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
