#!/usr/bin/env python3
"""Check that a deployed Decision Journal stack has the properties the code relies on.

    deploy.py --stack S --prefix P | check_stack.py --outputs -
    check_stack.py --outputs .dj/stacks/S.json [--visibility-timeout 180]

Reads the stack outputs (JSON from deploy.py), then inspects the resources with
boto3 at $AWS_ENDPOINT_URL and prints one PASS/FAIL line per property. Exit
status 1 if anything failed. The secret's value is checked, never printed.
Side effects: a few test objects in the bucket (deleted again), one message
through the ingest queue (consumed), one KMS data key.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import string
import sys
import urllib.parse
import uuid

import boto3
from botocore.exceptions import ClientError

REQUIRED_OUTPUTS = ("BucketName", "QueueUrl", "QueueArn", "DlqUrl", "TableName", "SecretArn", "SubjectKeyId")
GSIS = {"by_subject": ("gsi1pk", "gsi1sk"), "by_model": ("gsi2pk", "gsi2sk")}

failures = 0


def check(name: str, ok: bool, detail: str = "") -> bool:
    global failures
    if not ok:
        failures += 1
    print(f"{'PASS' if ok else 'FAIL'}  {name}{'  (' + detail + ')' if detail else ''}", flush=True)
    return ok


def guarded(name: str):
    """Decorator: a section that raises counts as one failure instead of aborting."""
    def wrap(fn):
        def run(*a, **k):
            try:
                fn(*a, **k)
            except Exception as e:  # noqa: BLE001 - report and continue
                check(name, False, f"{type(e).__name__}: {e}")
        return run
    return wrap


def err_code(e: ClientError) -> str:
    return e.response.get("Error", {}).get("Code", "")


@guarded("s3")
def check_bucket(s3, bucket: str) -> None:
    s3.head_bucket(Bucket=bucket)
    check("s3 bucket exists", True, bucket)
    v = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    check("s3 versioning Enabled", v == "Enabled", f"Status={v}")
    try:
        ol = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as e:
        ol = {"error": err_code(e)}
    check("s3 Object Lock enabled", ol.get("ObjectLockEnabled") == "Enabled", json.dumps(ol))
    check("s3 Object Lock has no default retention", "Rule" not in ol)
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        algo = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
    except ClientError as e:
        algo = err_code(e)
    check("s3 default encryption", algo in ("AES256", "aws:kms", "aws:kms:dsse"), algo)
    try:
        pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        ok = all(pab.get(k) for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                                      "RestrictPublicBuckets"))
    except ClientError as e:
        pab, ok = err_code(e), False
    check("s3 public access blocked", ok, str(pab))

    # Object Lock behaviour: plain objects stay deletable (compaction), an
    # object with retention cannot be removed until it expires.
    key = f"_check/{uuid.uuid4()}"
    ver = s3.put_object(Bucket=bucket, Key=key, Body=b"plain").get("VersionId")
    check("s3 put returns a VersionId", bool(ver), str(ver))
    try:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=ver)
        check("s3 object without retention can be deleted", True)
    except ClientError as e:
        check("s3 object without retention can be deleted", False, err_code(e))
    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    locked = f"{key}-locked"
    ver = s3.put_object(Bucket=bucket, Key=locked, Body=b"locked", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=until)["VersionId"]
    try:
        s3.delete_object(Bucket=bucket, Key=locked, VersionId=ver)
        check("s3 retention blocks deleting a locked version", False, "delete succeeded")
    except ClientError as e:
        check("s3 retention blocks deleting a locked version", err_code(e) == "AccessDenied", err_code(e))
        s3.delete_object(Bucket=bucket, Key=locked, VersionId=ver, BypassGovernanceRetention=True)


@guarded("sqs")
def check_queues(sqs, out: dict, visibility: int) -> None:
    attrs = sqs.get_queue_attributes(QueueUrl=out["QueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=out["DlqUrl"], AttributeNames=["All"])["Attributes"]
    check("sqs queue ARN matches output", attrs.get("QueueArn") == out["QueueArn"], attrs.get("QueueArn", ""))
    rp = json.loads(attrs.get("RedrivePolicy", "{}"))
    check("sqs redrive to the DLQ", rp.get("deadLetterTargetArn") == dlq.get("QueueArn"), json.dumps(rp))
    check("sqs maxReceiveCount 5", str(rp.get("maxReceiveCount")) == "5")
    check(f"sqs visibility timeout {visibility}", attrs.get("VisibilityTimeout") == str(visibility),
          attrs.get("VisibilityTimeout", ""))
    check("sqs DLQ retention 14 days", dlq.get("MessageRetentionPeriod") == "1209600",
          dlq.get("MessageRetentionPeriod", ""))
    body = json.dumps({"check": str(uuid.uuid4())})
    sqs.send_message(QueueUrl=out["QueueUrl"], MessageBody=body)
    got = sqs.receive_message(QueueUrl=out["QueueUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=2)
    msgs = [m for m in got.get("Messages", []) if m["Body"] == body]
    for m in msgs:
        sqs.delete_message(QueueUrl=out["QueueUrl"], ReceiptHandle=m["ReceiptHandle"])
    check("sqs send/receive through the output QueueUrl", len(msgs) == 1)


@guarded("dynamodb")
def check_table(ddb, table: str) -> None:
    t = ddb.describe_table(TableName=table)["Table"]
    keys = {k["AttributeName"]: k["KeyType"] for k in t["KeySchema"]}
    check("dynamodb key pk HASH + sk RANGE", keys == {"pk": "HASH", "sk": "RANGE"}, str(keys))
    mode = (t.get("BillingModeSummary") or {}).get("BillingMode")
    check("dynamodb PAY_PER_REQUEST", mode == "PAY_PER_REQUEST", str(mode))
    gsis = {g["IndexName"]: g for g in t.get("GlobalSecondaryIndexes", [])}
    check("dynamodb GSIs by_subject, by_model", set(gsis) == set(GSIS), ", ".join(sorted(gsis)))
    for name, (h, r) in GSIS.items():
        g = gsis.get(name)
        ks = {k["AttributeName"]: k["KeyType"] for k in g["KeySchema"]} if g else {}
        proj = (g or {}).get("Projection", {}).get("ProjectionType")
        check(f"dynamodb {name} = {h}/{r}, ALL", ks == {h: "HASH", r: "RANGE"} and proj == "ALL",
              f"{ks} {proj}")
    types = {a["AttributeName"]: a["AttributeType"] for a in t["AttributeDefinitions"]}
    check("dynamodb key attributes are strings", all(v == "S" for v in types.values()), str(types))
    pitr = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    status = pitr.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    check("dynamodb point-in-time recovery", status == "ENABLED", str(status))


@guarded("secretsmanager")
def check_secret(sm, arn: str) -> None:
    raw = sm.get_secret_value(SecretId=arn)["SecretString"]
    try:
        doc = json.loads(raw)
    except ValueError:
        check("secret is JSON", False, "not JSON")
        return
    check("secret is JSON with keys version, master_key", sorted(doc) == ["master_key", "version"],
          ", ".join(sorted(doc)))
    check("secret version == 1", doc.get("version") == 1)
    key = doc.get("master_key", "")
    alnum = set(string.ascii_letters + string.digits)
    check("secret master_key: 64 alphanumeric characters",
          isinstance(key, str) and len(key) == 64 and set(key) <= alnum, f"length {len(key)}")


@guarded("kms")
def check_kms(kms, key_id: str, alias: str | None) -> None:
    md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    check("kms DescribeKey: symmetric ENCRYPT_DECRYPT",
          md.get("KeySpec") == "SYMMETRIC_DEFAULT" and md.get("KeyUsage") == "ENCRYPT_DECRYPT",
          f"{md.get('KeySpec')} {md.get('KeyUsage')}")
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    pt = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], KeyId=key_id)
    check("kms GenerateDataKey -> Decrypt round trip",
          len(dk["Plaintext"]) == 32 and pt["Plaintext"] == dk["Plaintext"])
    check("kms Decrypt reports the same key", pt["KeyId"] == md["Arn"], pt["KeyId"])
    pol = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    principals = json.dumps(json.loads(pol)) if isinstance(pol, str) else "not a string"
    check("kms key policy allows the account root", ":root" in principals)
    rot = kms.get_key_rotation_status(KeyId=key_id).get("KeyRotationEnabled")
    check("kms key rotation enabled", rot is True, str(rot))
    if alias:
        aliases = kms.list_aliases(KeyId=md["KeyId"])["Aliases"]
        check(f"kms alias {alias} targets the key", any(a["AliasName"] == alias for a in aliases),
              ", ".join(a["AliasName"] for a in aliases))
        dk2 = kms.generate_data_key(KeyId=alias, KeySpec="AES_256")
        check("kms GenerateDataKey through the alias",
              kms.decrypt(CiphertextBlob=dk2["CiphertextBlob"])["Plaintext"] == dk2["Plaintext"])


def policy_document(doc):
    """AWS returns a policy URL-encoded JSON (boto3 decodes it); moto's CloudFormation stores
    the Python repr of the template's mapping."""
    if not isinstance(doc, str):
        return doc
    try:
        return json.loads(urllib.parse.unquote(doc))
    except json.JSONDecodeError:
        return ast.literal_eval(doc)


@guarded("scheduler")
def check_schedule(session, name: str, function: str, task: str) -> None:
    """A schedule that sends {"task": task} to the `function` function, with retries, through a
    role that may invoke that function and nothing else."""
    sched = session.client("scheduler").get_schedule(Name=name)
    target = sched["Target"]
    check(f"{function} schedule exists", True, f"{name}: {sched['ScheduleExpression']}")
    check(f"{function} schedule enabled", sched.get("State") == "ENABLED", sched.get("State", ""))
    check(f"{function} schedule input is the {task} task",
          json.loads(target.get("Input") or "null") == {"task": task}, target.get("Input", ""))
    check(f"{function} schedule targets a Lambda function", ":lambda:" in target["Arn"], target["Arn"])
    retry = target.get("RetryPolicy") or {}
    check(f"{function} schedule retries", retry.get("MaximumRetryAttempts", 0) >= 1, str(retry))
    role = target["RoleArn"].rsplit("/", 1)[-1]
    iam = session.client("iam")
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    principals = [st.get("Principal", {}).get("Service") for st in trust.get("Statement", [])]
    check(f"{function} scheduler role trusts scheduler.amazonaws.com only",
          principals == ["scheduler.amazonaws.com"], str(principals))
    actions = set()
    resources = set()
    for pname in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = policy_document(iam.get_role_policy(RoleName=role, PolicyName=pname)["PolicyDocument"])
        for st in doc.get("Statement", []):
            acts = st.get("Action")
            actions.update([acts] if isinstance(acts, str) else acts)
            res = st.get("Resource")
            resources.update([res] if isinstance(res, str) else res)
    check(f"scheduler role may only invoke the {function} function",
          actions == {"lambda:InvokeFunction"}
          and all(r.startswith(target["Arn"]) for r in resources),
          f"{sorted(actions)} on {sorted(resources)}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--outputs", required=True, help="outputs JSON file from deploy.py, or - for stdin")
    p.add_argument("--visibility-timeout", type=int, default=180, help="expected ingest visibility timeout")
    args = p.parse_args(argv)
    text = sys.stdin.read() if args.outputs == "-" else open(args.outputs).read()
    out = json.loads(text)

    missing = [k for k in REQUIRED_OUTPUTS if not out.get(k)]
    check("outputs present: " + ", ".join(REQUIRED_OUTPUTS), not missing,
          "missing " + ", ".join(missing) if missing else "")
    session = boto3.session.Session()
    if out.get("BucketName"):
        check_bucket(session.client("s3"), out["BucketName"])
    if out.get("QueueUrl") and out.get("DlqUrl"):
        check_queues(session.client("sqs"), out, args.visibility_timeout)
    if out.get("TableName"):
        check_table(session.client("dynamodb"), out["TableName"])
    if out.get("SecretArn"):
        check_secret(session.client("secretsmanager"), out["SecretArn"])
    if out.get("SubjectKeyId"):
        check_kms(session.client("kms"), out["SubjectKeyId"], out.get("SubjectKeyAlias"))
    if out.get("CompactScheduleName"):
        check_schedule(session, out["CompactScheduleName"], "compact", "compact")
    if out.get("RetentionScheduleName"):
        check_schedule(session, out["RetentionScheduleName"], "retention", "run")
    print(f"{'OK' if not failures else 'FAILED'}: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
