#!/usr/bin/env python3
"""Create or update a Decision Journal stack through the CloudFormation API.

    deploy.py --stack NAME --prefix PREFIX [--template infra/template.yaml]
              [--param KEY=VALUE ...] [--outputs-file PATH] [--timeout SECONDS]
              [--code-dir DIR [--code-bucket BUCKET]] [--moto-fixups auto|on|off]

The endpoint and credentials come from the environment (AWS_ENDPOINT_URL,
AWS_REGION, ... - see localstack/start.sh). On success the stack outputs are
printed on stdout as one JSON object; on failure the stack events are printed
on stderr and the exit status is 1.

With --code-dir, DIR/<function>/bootstrap (ingest, compact, retention,
replay: what `cargo lambda build` leaves in target/lambda/) are zipped, uploaded
to an artifacts bucket (--code-bucket, default <prefix>-artifacts, created if
missing) under functions/<content hash>/, and the stack gets CodeBucket and
CodeKeyPrefix: the whole stack, functions included. Without it, storage only.

Parameter values are checked against the template's constraints first
(AllowedPattern, AllowedValues, lengths, MinValue/MaxValue), as CloudFormation
does and moto does not.

Emulator gaps (only when DJ_ENDPOINT_KIND=moto, or --moto-fixups=on): moto's
CloudFormation silently skips some resource types and properties (the secret,
bucket versioning / Object Lock / public access block / ownership, table PITR,
alarms, schedules), and resolves references to what it skipped wrongly in
function environments and IAM policies. They are applied here through the
service APIs from the template's own settings, and the outputs are completed.
Nothing is done for real AWS or LocalStack. See localstack/README.md ("moto
gaps").
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import re
import sys
import time
import urllib.parse
import zipfile
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "infra" / "template.yaml"

FUNCTIONS = ("ingest", "compact", "retention", "replay")

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
    p.add_argument("--code-dir", metavar="DIR",
                   help="deploy the functions too: DIR/<function>/bootstrap for " + ", ".join(FUNCTIONS))
    p.add_argument("--code-bucket", metavar="BUCKET",
                   help="artifacts bucket for the zips (default: <prefix>-artifacts; created if missing)")
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


# ------------------------------------------------------- function code ---


def zip_bootstrap(path: Path) -> bytes:
    """A Lambda zip of one cargo-lambda bootstrap: the executable at the root, mode 0755, and a
    fixed timestamp so the same binary always gives the same bytes (and the same key)."""
    info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16  # regular file, rwxr-xr-x
    info.compress_type = zipfile.ZIP_DEFLATED
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(info, path.read_bytes())
    return out.getvalue()


def package_functions(code_dir: Path) -> dict[str, bytes]:
    missing = [str(code_dir / f / "bootstrap") for f in FUNCTIONS if not (code_dir / f / "bootstrap").is_file()]
    if missing:
        raise SystemExit("deploy.py: error: --code-dir needs a bootstrap per function; missing: "
                         + ", ".join(missing) + " (scripts/build-functions.sh builds target/lambda/)")
    return {f: zip_bootstrap(code_dir / f / "bootstrap") for f in FUNCTIONS}


def ensure_bucket(s3, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise SystemExit(f"deploy.py: error: artifacts bucket {bucket}: {e} "
                             "(name taken by another account? choose one with --code-bucket)")
    create: dict = {"Bucket": bucket}
    if region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**create)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    log(f"created artifacts bucket {bucket}")


def upload_functions(session, zips: dict[str, bytes], bucket: str) -> str:
    """Uploads the zips under functions/<hash of all of them>/ (new code, new keys: CloudFormation
    updates a function's code only when its key changes) and returns that key prefix."""
    digest = hashlib.sha256()
    for name in sorted(zips):
        digest.update(name.encode() + b"\0" + hashlib.sha256(zips[name]).digest())
    prefix = f"functions/{digest.hexdigest()[:16]}/"
    s3 = session.client("s3")
    ensure_bucket(s3, bucket, session.region_name)
    for name, body in zips.items():
        key = f"{prefix}{name}.zip"
        try:
            s3.head_object(Bucket=bucket, Key=key)
            continue  # same content already uploaded
        except ClientError:
            pass
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        log(f"uploaded s3://{bucket}/{key} ({len(body) / 1e6:.1f} MB)")
    return prefix


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
           template_params: set[str], moto: bool = False) -> dict:
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
        # moto fails such an update (HTTP 500) for a parameter the stack took from the template's
        # default, so there the previous value is passed as a value - the same thing, except
        # for NoEcho parameters, whose values DescribeStacks masks.
        given = {p["ParameterKey"] for p in params}

        def previous(p: dict) -> dict:
            if moto and p.get("ParameterValue") not in (None, "****"):
                return {"ParameterKey": p["ParameterKey"], "ParameterValue": p["ParameterValue"]}
            return {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}

        common["Parameters"] = params + [
            previous(p) for p in existing.get("Parameters", [])
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
#  - AWS::SecretsManager::Secret, AWS::S3::BucketPolicy, AWS::CloudWatch::Alarm and
#    AWS::Scheduler::Schedule are skipped silently (the stack still ends CREATE_COMPLETE and
#    the outputs that Ref them vanish);
#  - AWS::S3::Bucket applies only BucketName, BucketEncryption and Tags;
#  - AWS::DynamoDB::Table ignores PointInTimeRecoverySpecification;
#  - AWS::KMS::Key is always symmetric;
#  - a Ref to a skipped resource resolves to nothing, so function environment variables and
#    IAM policy Resources that name the secret vanish (and name the old key once the
#    asymmetric key is replaced).
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
        if tag_suffix in ("Ref", "Condition"):
            return {tag_suffix: value}
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{tag_suffix}": value}

    Loader.add_multi_constructor("!", construct)
    return yaml.load(body, Loader=Loader)  # noqa: S506 - SafeLoader subclass


NO_VALUE = object()  # what Ref AWS::NoValue evaluates to: the property is left out
# Types whose Ref is the name the template gives them.
NAME_PROPERTY = {"AWS::Logs::LogGroup": "LogGroupName", "AWS::Lambda::Function": "FunctionName",
                 "AWS::IAM::Role": "RoleName", "AWS::DynamoDB::Table": "TableName",
                 "AWS::S3::Bucket": "BucketName"}


class Resolver:
    """Evaluates template values as CloudFormation does, against the deployed stack: parameters,
    pseudo parameters, conditions, Ref / Fn::GetAtt / Fn::Sub / Fn::If / Fn::Join of deployed
    resources, with the corrections of the fixups (`refs`, `arns`: resources deploy.py created or
    replaced) taking precedence over what moto recorded."""

    def __init__(self, session, template: dict, params: dict[str, str], physical: dict[str, str]):
        self.session = session
        self.template = template
        self.params = params
        self.physical = physical
        self.refs: dict[str, str] = {}
        self.arns: dict[str, str] = {}
        self._atts: dict[tuple[str, str], str] = {}

    def __call__(self, node):
        if isinstance(node, list):
            return [v for v in (self(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attr)
            if fn == "Fn::Sub":
                return self.sub(arg)
            if fn == "Fn::If":
                name, when_true, when_false = arg
                return self(when_true if self.condition(name) else when_false)
            if fn == "Fn::Join":
                sep, items = arg
                return sep.join(str(v) for v in self(items))
            if fn.startswith("Fn::"):
                raise KeyError(f"{fn} is not supported by deploy.py's resolver")
        out = {}
        for key, value in node.items():
            value = self(value)
            if value is not NO_VALUE:
                out[key] = value
        return out

    def condition(self, name: str | None) -> bool:
        return condition_holds(self.template, name, self.params)

    def resource_type(self, logical: str) -> str:
        return (self.template.get("Resources") or {})[logical]["Type"]

    def ref(self, name: str):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            return self.params[name]
        if name in self.refs:
            return self.refs[name]
        if name in self.physical:
            return self.physical[name]
        # After an update that turns conditional resources on, moto creates some of them (log
        # groups seen) without listing them; their Ref is their name, as on AWS.
        res = (self.template.get("Resources") or {}).get(name) or {}
        prop = NAME_PROPERTY.get(res.get("Type"))
        if prop and prop in (res.get("Properties") or {}) and self.condition(res.get("Condition")):
            return self(res["Properties"][prop])
        raise KeyError(f"Ref {name}: neither a parameter nor a deployed resource")

    def get_att(self, logical: str, attr: str) -> str:
        if attr == "Arn" and logical in self.arns:
            return self.arns[logical]
        if (logical, attr) not in self._atts:
            self._atts[(logical, attr)] = self._fetch_att(logical, attr)
        return self._atts[(logical, attr)]

    def _fetch_att(self, logical: str, attr: str) -> str:
        rtype, ref, s = self.resource_type(logical), self.ref(logical), self.session
        if rtype == "AWS::SQS::Queue" and attr == "QueueName":
            return ref.rstrip("/").rsplit("/", 1)[-1]
        if rtype == "AWS::SQS::Queue" and attr == "Arn":
            return s.client("sqs").get_queue_attributes(
                QueueUrl=ref, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        if rtype == "AWS::Lambda::Function" and attr == "Arn":
            return s.client("lambda").get_function(FunctionName=ref)["Configuration"]["FunctionArn"]
        if rtype == "AWS::IAM::Role" and attr == "Arn":
            return s.client("iam").get_role(RoleName=ref)["Role"]["Arn"]
        if rtype == "AWS::KMS::Key" and attr == "Arn":
            return s.client("kms").describe_key(KeyId=ref)["KeyMetadata"]["Arn"]
        if rtype == "AWS::DynamoDB::Table" and attr == "Arn":
            return s.client("dynamodb").describe_table(TableName=ref)["Table"]["TableArn"]
        if rtype == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:{self.params['AWS::Partition']}:s3:::{ref}"
        raise KeyError(f"Fn::GetAtt {logical}.{attr} ({rtype}) is not supported by deploy.py's resolver")

    def sub(self, arg) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
        resources = self.template.get("Resources") or {}

        def repl(m):
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            logical, _, attr = name.partition(".")
            if attr and logical in resources:
                return str(self.get_att(logical, attr))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", repl, text)

    def mentions(self, node, names) -> bool:
        """Whether `node` refers to any of the logical ids in `names`."""
        if isinstance(node, list):
            return any(self.mentions(n, names) for n in node)
        if isinstance(node, dict):
            if node.get("Ref") in names:
                return True
            att = node.get("Fn::GetAtt")
            if att is not None:
                return (att if isinstance(att, list) else att.split("."))[0] in names
            sub = node.get("Fn::Sub")
            if sub is not None:
                text = sub if isinstance(sub, str) else sub[0]
                found = {m.split(".")[0] for m in re.findall(r"\$\{([^}!][^}]*)\}", text)}
                if found & set(names):
                    return True
            return any(self.mentions(v, names) for v in node.values())
        return False


def moto_fixups(session, stack: dict, template: dict, params: dict[str, str]) -> dict[str, str]:
    """Apply what moto's CloudFormation skipped or got wrong; returns the corrected outputs."""
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
    r = Resolver(session, template, params, physical)
    resources = template.get("Resources") or {}

    # 1. What moto creates incompletely or wrongly, or skips, and other resources refer to.
    for logical, res in resources.items():
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
            aliases = [physical[a] for a, ares in resources.items()
                       if ares.get("Type") == "AWS::KMS::Alias" and a in physical
                       and (ares.get("Properties") or {}).get("TargetKeyId") == {"Ref": logical}]
            replaced = fix_kms_key(session.client("kms"), physical[logical], props, aliases)
            if replaced:
                r.refs[logical], r.arns[logical] = replaced
        elif rtype == "AWS::SecretsManager::Secret" and logical not in physical and r.condition(res.get("Condition")):
            r.refs[logical] = fix_secret(session.client("secretsmanager"), stack["StackName"], logical,
                                         props, r)

    # 2. Properties moto resolved while those were missing or wrong: a Ref of a skipped resource
    #    became nothing (the variable or the policy's Resource vanished), a replaced key's ARN is
    #    the old key's. Re-evaluated from the template and applied where they differ.
    for logical, res in resources.items():
        rtype = res.get("Type")
        props = res.get("Properties") or {}
        if logical not in physical:
            continue
        if rtype == "AWS::Lambda::Function":
            fix_function_environment(session.client("lambda"), physical[logical],
                                     r(props.get("Environment") or {}))
        elif rtype == "AWS::IAM::Role":
            fix_role_policies(session.client("iam"), physical[logical], r(props.get("Policies") or []))
        elif rtype == "AWS::IAM::ManagedPolicy":
            fix_managed_policy(session.client("iam"), physical[logical], r(props["PolicyDocument"]))

    # 3. Types moto's CloudFormation reports created but never creates: made from the template.
    for logical, res in resources.items():
        rtype = res.get("Type")
        if logical in physical or not r.condition(res.get("Condition")):
            continue
        if rtype == "AWS::Scheduler::Schedule":
            r.refs[logical] = fix_schedule(session.client("scheduler"), r(res.get("Properties") or {}))
        elif rtype == "AWS::CloudWatch::Alarm":
            r.refs[logical] = fix_alarm(session.client("cloudwatch"), r(res.get("Properties") or {}))

    corrected = set(r.refs) | set(r.arns)
    for key, out in (template.get("Outputs") or {}).items():
        if r.condition(out.get("Condition")) and r.mentions(out.get("Value"), corrected):
            outputs[key] = str(r(out["Value"]))
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
                return str(ev(args[0])) == str(ev(args[1]))
            if fn == "Fn::And":
                return all(ev(a) for a in args)
            if fn == "Fn::Or":
                return any(ev(a) for a in args)
        if isinstance(node, (str, int, float)):
            return node
        raise KeyError(f"condition form {node!r}")

    return bool(ev(template["Conditions"][name]))


def policy_document(doc) -> dict:
    """A policy as IAM returns it: JSON (URL-decoded by boto3), or - for what moto's
    CloudFormation put - the Python repr of the template's mapping."""
    if not isinstance(doc, str):
        return doc
    try:
        return json.loads(urllib.parse.unquote(doc))
    except json.JSONDecodeError:
        return ast.literal_eval(doc)


def same_policy(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def fix_function_environment(lam, name: str, env: dict) -> None:
    want = {k: str(v) for k, v in (env.get("Variables") or {}).items()}
    have = (lam.get_function_configuration(FunctionName=name).get("Environment") or {}).get("Variables") or {}
    if want == have:
        return
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": want})
    changed = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    # Names only: values may be configuration nobody should find in a log.
    log(f"moto fixup: function {name}: set {', '.join(changed)} from the template")


def fix_role_policies(iam, role: str, policies: list) -> None:
    for policy in policies:
        name, want = policy["PolicyName"], policy["PolicyDocument"]
        try:
            have = policy_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
        except ClientError:
            have = None
        if not same_policy(want, have):
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(want))
            log(f"moto fixup: role {role}: policy {name} set from the template")


def fix_managed_policy(iam, arn: str, want: dict) -> None:
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    have = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    if same_policy(want, policy_document(have)):
        return
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    if len(versions) >= 5:  # IAM keeps five
        oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
        iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(want), SetAsDefault=True)
    log(f"moto fixup: managed policy {arn}: document set from the template")


def ints(d: dict | None, *keys: str) -> dict | None:
    """Template numbers arrive as strings when they come from parameters; the APIs want ints."""
    if d is not None:
        for k in keys:
            if k in d:
                d[k] = int(d[k])
    return d


def fix_schedule(scheduler, props: dict) -> str:
    """moto's CloudFormation reports an AWS::Scheduler::Schedule created but never creates it."""
    target = dict(props["Target"])
    ints(target.get("RetryPolicy"), "MaximumRetryAttempts", "MaximumEventAgeInSeconds")
    args = {
        "Name": props["Name"],
        "ScheduleExpression": props["ScheduleExpression"],
        "FlexibleTimeWindow": ints(dict(props["FlexibleTimeWindow"]), "MaximumWindowInMinutes"),
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
    log(f"moto fixup: created schedule {args['Name']} (moto's CloudFormation skips AWS::Scheduler::Schedule)")
    return args["Name"]


ALARM_KEYS = ("AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
              "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "ExtendedStatistic",
              "Dimensions", "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
              "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics",
              "ThresholdMetricId")


def fix_alarm(cloudwatch, props: dict) -> str:
    """moto's CloudFormation skips AWS::CloudWatch::Alarm (blank entry, outputs vanish)."""
    args = {k: props[k] for k in ALARM_KEYS if k in props}
    ints(args, "Period", "EvaluationPeriods", "DatapointsToAlarm")
    if "Threshold" in args:
        args["Threshold"] = float(args["Threshold"])
    if "ActionsEnabled" in args:
        args["ActionsEnabled"] = args["ActionsEnabled"] in (True, "true", "True")
    cloudwatch.put_metric_alarm(**args)
    log(f"moto fixup: created alarm {args['AlarmName']} (moto's CloudFormation skips AWS::CloudWatch::Alarm)")
    return args["AlarmName"]


def fix_kms_key(kms, key_id: str, props: dict, aliases: list[str]) -> tuple[str, str] | None:
    """moto's CloudFormation creates every key symmetric: replace an asymmetric one by a key of
    the template's spec and usage, and re-point the aliases that named it. Returns the new
    (key id, ARN), or None when the key is already right. `aliases`: the template's aliases of
    this key; after an earlier run they name the replacement, which is then kept (a stack
    update must not change the signing key)."""
    spec = props.get("KeySpec") or "SYMMETRIC_DEFAULT"
    usage = props.get("KeyUsage") or "ENCRYPT_DECRYPT"

    def right(meta: dict) -> bool:
        return (meta.get("KeySpec", meta.get("CustomerMasterKeySpec")) == spec
                and meta.get("KeyUsage") == usage and meta.get("KeyState") == "Enabled")

    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    if right(meta):
        return None
    for alias in aliases:
        try:
            earlier = kms.describe_key(KeyId=alias)["KeyMetadata"]
        except ClientError:
            continue
        if earlier["KeyId"] != meta["KeyId"] and right(earlier):
            return earlier["KeyId"], earlier["Arn"]
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


def fix_secret(sm, stack_name: str, logical: str, props: dict, resolve: "Resolver") -> str:
    name = resolve(props["Name"])
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
        create["SecretString"] = resolve(props["SecretString"])
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

    if args.code_dir:
        given = {p["ParameterKey"] for p in params}
        if given & {"CodeBucket", "CodeKeyPrefix"}:
            log("error: --code-dir sets CodeBucket and CodeKeyPrefix; do not pass them as --param")
            return 2
        bucket = args.code_bucket or f"{args.prefix}-artifacts"
        prefix = upload_functions(session, package_functions(Path(args.code_dir)), bucket)
        code_params = [{"ParameterKey": "CodeBucket", "ParameterValue": bucket},
                       {"ParameterKey": "CodeKeyPrefix", "ParameterValue": prefix}]
        problems = check_parameters(parsed, code_params)
        if problems:
            for problem in problems:
                log(f"error: {problem}")
            return 2
        params += code_params
    elif args.code_bucket:
        log("error: --code-bucket needs --code-dir")
        return 2

    fix = args.moto_fixups == "on" or (
        args.moto_fixups == "auto" and os.environ.get("DJ_ENDPOINT_KIND") == "moto")
    try:
        stack = deploy(cfn, args, body, params, template_params, moto=fix)
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
