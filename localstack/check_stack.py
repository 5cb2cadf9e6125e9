#!/usr/bin/env python3
"""Check that a deployed Decision Journal stack has the properties the code relies on.

    deploy.py --stack S --prefix P | check_stack.py --outputs -
    check_stack.py --outputs .dj/stacks/S.json [--visibility-timeout 180]

Reads the stack outputs (JSON from deploy.py), then inspects the resources with
boto3 at $AWS_ENDPOINT_URL and prints one PASS/FAIL line per property (SKIP for
what the endpoint cannot report). Exit status 1 if anything failed. The
secret's value is checked, never printed; of the functions' environments only
variable names are printed. When the outputs name the functions (a stack
deployed with CodeBucket), also the functions, the event source mapping, every
role's IAM actions against IAM_MATRIX, the alarms and the checkpoint schedule.
Side effects: a few test objects in the bucket (deleted again), one message
through the ingest queue (consumed; not with functions deployed, whose event
source mapping owns the queue), one KMS data key.
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
FUNCTION_OUTPUTS = tuple(f"{f}{k}" for f in ("Ingest", "Compact", "Retention", "Replay")
                         for k in ("FunctionName", "FunctionArn", "RoleArn", "ErrorsAlarmName")) + (
    "IngestEventSourceMappingId", "IngestBatchSize", "IngestBatchingWindowSeconds", "ProducerPolicyArn",
    "ProducerRoleArn", "AuditorPolicyArn", "AuditorRoleArn", "DeadLetterAlarmName", "IngestBacklogAlarmName",
    "IngestThrottlesAlarmName", "CheckpointScheduleName", "CheckpointKeyId", "LedgerTableName")
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
    if out.get("IngestFunctionName"):
        # The event source mapping consumes the queue: a probe message would be ingest's to
        # reject into the DLQ (and set off the DLQ alarm).
        print("SKIP  sqs send/receive through the output QueueUrl  (the ingest function consumes the queue)")
        return
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
def check_schedule(session, name: str, function: str, task: str, function_arn: str | None = None) -> None:
    """A schedule that sends {"task": task} to the `function` function (`function_arn` when the
    stack deploys it), with retries, through a role that may invoke that function and nothing
    else."""
    sched = session.client("scheduler").get_schedule(Name=name)
    target = sched["Target"]
    check(f"{function} schedule exists", True, f"{name}: {sched['ScheduleExpression']}")
    if function_arn:
        check(f"{function} schedule targets the stack's {function} function", target["Arn"] == function_arn,
              target["Arn"])
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


# ------------------------------------------------------------- functions ---
# What each function's config.rs requires (Config::from_map fails at start without them), and the
# stack output each one must name.
FUNCTIONS = ("ingest", "compact", "retention", "replay")
REQUIRED_ENV = {
    "ingest": ("DJ_TABLE", "DJ_LEDGER_TABLE", "DJ_BUCKET", "DJ_DLQ_URL", "DJ_MASTER_KEY_SECRET_ID",
               "DJ_SUBJECT_KEY_ID"),
    "compact": ("DJ_TABLE", "DJ_LEDGER_TABLE", "DJ_BUCKET", "DJ_MASTER_KEY_SECRET_ID"),
    "retention": ("DJ_TABLE", "DJ_LEDGER_TABLE", "DJ_BUCKET", "DJ_MASTER_KEY_SECRET_ID",
                  "DJ_CHECKPOINT_KEY_ID", "DJ_SUBJECT_KEY_ID"),
    # DJ_CHECKPOINT_KEY_ID is optional in config.rs, but the scheduled checkpoint task needs it.
    "replay": ("DJ_TABLE", "DJ_LEDGER_TABLE", "DJ_BUCKET", "DJ_MASTER_KEY_SECRET_ID",
               "DJ_SUBJECT_KEY_ID", "DJ_ACCESS_POLICY", "DJ_CHECKPOINT_KEY_ID"),
}
ENV_OUTPUT = {"DJ_TABLE": "TableName", "DJ_LEDGER_TABLE": "LedgerTableName", "DJ_BUCKET": "BucketName",
              "DJ_DLQ_URL": "DlqUrl", "DJ_MASTER_KEY_SECRET_ID": "SecretArn",
              "DJ_SUBJECT_KEY_ID": "SubjectKeyId", "DJ_CHECKPOINT_KEY_ID": "CheckpointKeyId"}


def cap(fn: str) -> str:
    return fn[:1].upper() + fn[1:]


@guarded("functions")
def check_functions(session, out: dict) -> None:
    lam = session.client("lambda")
    logs = session.client("logs")
    timeouts = {}
    for fn in FUNCTIONS:
        name = out[f"{cap(fn)}FunctionName"]
        c = lam.get_function(FunctionName=name)["Configuration"]
        timeouts[fn] = c.get("Timeout")
        check(f"{fn} function runtime provided.al2023, handler bootstrap",
              c.get("Runtime") == "provided.al2023" and c.get("Handler") == "bootstrap",
              f"{c.get('Runtime')} {c.get('Handler')}")
        archs = c.get("Architectures") or []
        check(f"{fn} function architecture", archs in (["x86_64"], ["arm64"]), ",".join(archs))
        check(f"{fn} function code uploaded", (c.get("CodeSize") or 0) > 0, f"{c.get('CodeSize')} bytes")
        check(f"{fn} function runs as its own role", c.get("Role") == out.get(f"{cap(fn)}RoleArn"),
              c.get("Role", ""))
        env = (c.get("Environment") or {}).get("Variables") or {}
        missing = [k for k in REQUIRED_ENV[fn] if not env.get(k, "").strip()]
        # Names only, never values.
        check(f"{fn} function environment has every variable config.rs requires", not missing,
              "missing " + ", ".join(missing) if missing else ", ".join(REQUIRED_ENV[fn]))
        wrong = [k for k in REQUIRED_ENV[fn] if k in ENV_OUTPUT and env.get(k) != out.get(ENV_OUTPUT[k])]
        check(f"{fn} function environment names this stack's resources", not wrong,
              "not the stack's: " + ", ".join(wrong) if wrong else "")
        check(f"{fn} function does not trust payload principals",
              "DJ_TRUST_PAYLOAD_PRINCIPAL" not in env)
        check(f"{fn} function RUST_LOG set", bool(env.get("RUST_LOG")))
        group = f"/aws/lambda/{name}"
        logging = c.get("LoggingConfig")
        if logging is None:
            # moto's Lambda implements no LoggingConfig at all (neither CloudFormation nor API).
            print(f"SKIP  {fn} function log format JSON  (the endpoint reports no LoggingConfig)")
        else:
            check(f"{fn} function log format JSON into {group}",
                  logging.get("LogFormat") == "JSON" and logging.get("LogGroup") == group, json.dumps(logging))
        groups = [g for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
                  if g["logGroupName"] == group]
        check(f"{fn} function log group with retention", bool(groups) and bool(groups[0].get("retentionInDays")),
              f"{group}: {groups[0].get('retentionInDays') if groups else 'missing'} days")
        if fn == "replay" and env.get("DJ_ACCESS_POLICY"):
            try:
                policy = json.loads(env["DJ_ACCESS_POLICY"])
                roles = policy.get("roles") or {}
                ok = policy.get("version") == 1 and bool(roles.get("auditor") or roles.get("operator"))
                detail = ", ".join(f"{r}: {len(p)}" for r, p in sorted(roles.items()))
            except (ValueError, AttributeError) as e:
                ok, detail = False, f"not JSON: {e}"
            check("replay access policy: version 1 with principals", ok, detail)
            if out.get("AuditorRoleArn") and ok and "roles" in policy:
                check("replay access policy names the stack's auditor role",
                      out["AuditorRoleArn"] in (roles.get("auditor") or []))
    for fn in ("compact", "retention"):
        check(f"{fn} function timeout 900 s (its reserve stops work before)", timeouts[fn] == 900,
              str(timeouts[fn]))

    # The queue side of the trigger: AWS asks for a visibility timeout of at least six times the
    # function timeout plus the batching window, so a batch in flight is not redelivered.
    sqs = session.client("sqs")
    vis = int(sqs.get_queue_attributes(QueueUrl=out["QueueUrl"], AttributeNames=["VisibilityTimeout"])
              ["Attributes"]["VisibilityTimeout"])
    window = int(out.get("IngestBatchingWindowSeconds") or 0)
    check("sqs visibility timeout >= 6 x ingest timeout + batching window",
          vis >= 6 * int(timeouts["ingest"]) + window, f"{vis} vs 6 x {timeouts['ingest']} + {window}")


@guarded("event source mapping")
def check_event_source_mapping(session, out: dict) -> None:
    lam = session.client("lambda")
    maps = lam.list_event_source_mappings(FunctionName=out["IngestFunctionName"])["EventSourceMappings"]
    check("esm exactly one mapping into ingest", len(maps) == 1, str(len(maps)))
    if not maps:
        return
    m = maps[0]
    check("esm source is the ingest queue", m.get("EventSourceArn") == out["QueueArn"], m.get("EventSourceArn", ""))
    check("esm target is the ingest function", m.get("FunctionArn") == out["IngestFunctionArn"],
          m.get("FunctionArn", ""))
    check("esm ReportBatchItemFailures", m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"],
          str(m.get("FunctionResponseTypes")))
    want_size = int(out["IngestBatchSize"])
    check(f"esm batch size {want_size}", m.get("BatchSize") == want_size, str(m.get("BatchSize")))
    want_window = int(out["IngestBatchingWindowSeconds"])
    check(f"esm batching window {want_window} s", int(m.get("MaximumBatchingWindowInSeconds") or 0) == want_window,
          str(m.get("MaximumBatchingWindowInSeconds")))
    check("esm enabled", m.get("State") in ("Enabled", "Creating", "Enabling"), m.get("State", ""))
    check("esm UUID matches output", m.get("UUID") == out.get("IngestEventSourceMappingId"), m.get("UUID", ""))


# -------------------------------------------------------------------- IAM ---
# The reviewed matrix: every action each role may take, on which of the stack's resources.
# Derived from the calls each function's deps make (crates/journal-aws, functions/*/src/lib.rs);
# infra/template.yaml says why for each statement. A change of either shows up here.
#   ingest:    SQS in, DLQ out; PutObject its block file, GetObject only to re-index it after a
#              crash; claims, pointers, subject keys; manifest + chain append; data keys.
#   compact:   read/write/delete journal files, metrics; pointer switch; manifest, leases.
#   retention: tier/expire/rewrite files and versions, restores, Object-Locked evidence;
#              pointers, GSI queries, shredding (DeleteItem of the wrapped key); signing.
#   replay:    reads everything; writes access-journal blocks, checkpoints (locked), restore
#              markers; kms:Decrypt for re-execution, Sign for checkpoints.
# Resource tokens: bucket, bucket/<prefix>*, table, table/index/*, ledger, queue, dlq,
# subject-key, checkpoint-key, secret, logs, replay-fn.
def _rows(*rows):
    m: dict[str, set[str]] = {}
    for actions, resources in rows:
        for a in actions.split():
            m.setdefault(a, set()).update(resources.split())
    return m


COMMON = (("secretsmanager:GetSecretValue", "secret"), ("logs:CreateLogStream logs:PutLogEvents", "logs"))
IAM_MATRIX = {
    "ingest": _rows(
        ("sqs:ReceiveMessage sqs:DeleteMessage sqs:GetQueueAttributes", "queue"),
        ("sqs:SendMessage", "dlq"),
        ("s3:PutObject s3:GetObject", "bucket/decisions/*"),
        ("dynamodb:GetItem dynamodb:PutItem", "table ledger"),
        ("dynamodb:BatchWriteItem", "table"),
        ("dynamodb:UpdateItem dynamodb:Query", "ledger"),
        ("kms:GenerateDataKey kms:Decrypt", "subject-key"),
        *COMMON),
    "compact": _rows(
        ("s3:GetObject s3:PutObject", "bucket/decisions/* bucket/metrics/*"),
        ("s3:DeleteObject", "bucket/decisions/*"),
        ("s3:ListBucket", "bucket"),
        ("dynamodb:GetItem dynamodb:BatchGetItem dynamodb:BatchWriteItem", "table"),
        ("dynamodb:PutItem dynamodb:UpdateItem dynamodb:DeleteItem dynamodb:Query dynamodb:Scan", "ledger"),
        *COMMON),
    "retention": _rows(
        ("s3:GetObject s3:PutObject s3:DeleteObject s3:DeleteObjectVersion",
         "bucket/decisions/* bucket/retention/* bucket/tombstones/* bucket/erasures/*"),
        ("s3:RestoreObject", "bucket/decisions/*"),
        ("s3:PutObjectRetention", "bucket/retention/* bucket/tombstones/* bucket/erasures/*"),
        ("s3:ListBucket s3:ListBucketVersions", "bucket"),
        ("dynamodb:DeleteItem dynamodb:Query", "table ledger"),
        ("dynamodb:BatchGetItem dynamodb:BatchWriteItem", "table"),
        ("dynamodb:Query", "table/index/*"),
        ("dynamodb:GetItem dynamodb:PutItem dynamodb:Scan", "ledger"),
        ("kms:Sign kms:GetPublicKey kms:DescribeKey", "checkpoint-key"),
        *COMMON),
    "replay": _rows(
        ("s3:GetObject", "bucket/*"),
        ("s3:ListBucket", "bucket"),
        ("s3:PutObject", "bucket/decisions/* bucket/checkpoints/* bucket/retention/restores/*"),
        ("s3:RestoreObject", "bucket/decisions/*"),
        ("s3:PutObjectRetention", "bucket/checkpoints/*"),
        ("dynamodb:GetItem dynamodb:PutItem dynamodb:Query", "table ledger"),
        ("dynamodb:BatchWriteItem", "table"),
        ("dynamodb:Query", "table/index/*"),
        ("dynamodb:UpdateItem dynamodb:Scan", "ledger"),
        ("kms:Decrypt", "subject-key"),
        ("kms:Sign kms:GetPublicKey kms:DescribeKey", "checkpoint-key"),
        *COMMON),
    "producer": _rows(("sqs:SendMessage", "queue")),
    "auditor": _rows(("lambda:InvokeFunction", "replay-fn")),
}


def role_statements(iam, role: str) -> list[dict]:
    """Every statement of a role: inline policies and attached managed policies."""
    statements = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = policy_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
        statements += doc.get("Statement", [])
    for att in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        pol = iam.get_policy(PolicyArn=att["PolicyArn"])["Policy"]
        doc = iam.get_policy_version(PolicyArn=pol["Arn"], VersionId=pol["DefaultVersionId"])["PolicyVersion"]["Document"]
        statements += policy_document(doc).get("Statement", [])
    return statements


def as_list(v) -> list:
    return [] if v is None else [v] if isinstance(v, str) else list(v)


@guarded("iam")
def check_iam(session, out: dict) -> None:
    iam = session.client("iam")
    region = session.region_name
    account = out["QueueArn"].split(":")[4]
    bucket = f"arn:aws:s3:::{out['BucketName']}"
    ddb = session.client("dynamodb")
    table = ddb.describe_table(TableName=out["TableName"])["Table"]["TableArn"]
    ledger = ddb.describe_table(TableName=out["LedgerTableName"])["Table"]["TableArn"]
    dlq = session.client("sqs").get_queue_attributes(QueueUrl=out["DlqUrl"], AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    fixed = {table: "table", f"{table}/index/*": "table/index/*", ledger: "ledger", out["QueueArn"]: "queue",
             dlq: "dlq", out["SubjectKeyId"]: "subject-key", out["CheckpointKeyId"]: "checkpoint-key",
             out["SecretArn"]: "secret", out["ReplayFunctionArn"]: "replay-fn", bucket: "bucket"}

    def token(fn: str, arn: str) -> str:
        if arn in fixed:
            return fixed[arn]
        if arn.startswith(bucket + "/"):
            return "bucket" + arn[len(bucket):]
        if arn == f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{out.get(cap(fn) + 'FunctionName')}:*":
            return "logs"
        return f"NOT-THIS-STACK({arn})"

    roles = {fn: out[f"{cap(fn)}RoleArn"] for fn in FUNCTIONS}
    roles["producer"] = out["ProducerRoleArn"]
    roles["auditor"] = out["AuditorRoleArn"]
    granted: dict[str, dict[str, set[str]]] = {}
    conditions: dict[str, list[tuple[set, set, dict]]] = {}
    loose = []
    for who, arn in roles.items():
        statements = role_statements(iam, arn.rsplit("/", 1)[-1])
        m: dict[str, set[str]] = {}
        for st in statements:
            actions, resources = set(as_list(st.get("Action"))), as_list(st.get("Resource"))
            if st.get("Effect") != "Allow" or "NotAction" in st or "NotResource" in st:
                loose.append(f"{who}: {st.get('Effect')} with NotAction/NotResource")
            loose += [f"{who}: {a}" for a in actions if "*" in a]
            loose += [f"{who}: Resource {r}" for r in resources if r == "*"]
            toks = {token(who, r) for r in resources}
            for a in actions:
                m.setdefault(a, set()).update(toks)
            conditions.setdefault(who, []).append((actions, toks, st.get("Condition") or {}))
        granted[who] = m
    check("iam no wildcard actions, no Resource *, Allow statements only", not loose, "; ".join(loose))
    for who, want in IAM_MATRIX.items():
        have = granted.get(who, {})
        diff = []
        for a in sorted(set(want) | set(have)):
            extra, lacking = have.get(a, set()) - want.get(a, set()), want.get(a, set()) - have.get(a, set())
            if extra:
                diff.append(f"+{a} on {sorted(extra)}")
            if lacking:
                diff.append(f"-{a} on {sorted(lacking)}")
        check(f"iam {who} role: exactly the reviewed actions and resources", not diff, "; ".join(diff))

    def holders(action: str, resource: str) -> list[str]:
        return sorted(w for w, m in granted.items() if resource in m.get(action, set()))

    check("iam kms:Decrypt of the subject key: ingest (sealing) and replay only",
          holders("kms:Decrypt", "subject-key") == ["ingest", "replay"], str(holders("kms:Decrypt", "subject-key")))
    check("iam kms:GenerateDataKey of the subject key: ingest only",
          holders("kms:GenerateDataKey", "subject-key") == ["ingest"])
    key_users = sorted(w for w, m in granted.items() if any("subject-key" in r for r in m.values()))
    check("iam compact and retention hold no subject-key permission",
          "compact" not in key_users and "retention" not in key_users, str(key_users))
    check("iam kms:Sign with the checkpoint key: retention and replay only",
          holders("kms:Sign", "checkpoint-key") == ["replay", "retention"], str(holders("kms:Sign", "checkpoint-key")))
    readers = [w for w, m in granted.items() if m.get("s3:GetObject")]
    people = holders("lambda:InvokeFunction", "replay-fn")
    check("iam only replay reads the whole bucket, and people reach it only through the auditor policy",
          holders("s3:GetObject", "bucket/*") == ["replay"] and people == ["auditor"],
          f"GetObject: {sorted(readers)}; invoke replay: {people}")
    unbound = [f"{w}: {sorted(a)}" for w, sts in conditions.items() for a, toks, cond in sts
               if "subject-key" in toks and sorted(
                   (cond.get("ForAllValues:StringEquals") or {}).get("kms:EncryptionContextKeys") or []) !=
               ["subject_ref", "tenant_id"]]
    check("iam subject-key use is bound to a tenant_id + subject_ref encryption context", not unbound,
          "; ".join(unbound))
    unsigned = [w for w, sts in conditions.items() for a, toks, cond in sts
                if "kms:Sign" in a and (cond.get("StringEquals") or {}).get("kms:SigningAlgorithm") != "ECDSA_SHA_256"]
    check("iam signing is ECDSA_SHA_256 only", not unsigned, str(unsigned))

    for fn in FUNCTIONS:
        trust = iam.get_role(RoleName=roles[fn].rsplit("/", 1)[-1])["Role"]["AssumeRolePolicyDocument"]
        trust = policy_document(trust)
        principals = [st.get("Principal") for st in trust.get("Statement", [])]
        check(f"iam {fn} role trusted by lambda.amazonaws.com only",
              principals == [{"Service": "lambda.amazonaws.com"}], str(principals))
    for who in ("producer", "auditor"):
        name = roles[who].rsplit("/", 1)[-1]
        inline = iam.list_role_policies(RoleName=name)["PolicyNames"]
        attached = [a["PolicyArn"] for a in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
        want = out[f"{cap(who)}PolicyArn"]
        check(f"iam {who} role carries the {who} policy and nothing else", not inline and attached == [want],
              f"inline {inline}, attached {attached}")


# ----------------------------------------------------------------- alarms ---
@guarded("alarms")
def check_alarms(session, out: dict) -> None:
    cw = session.client("cloudwatch")
    dlq_name = out["DlqUrl"].rstrip("/").rsplit("/", 1)[-1]
    queue_name = out["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
    expected = {
        "DeadLetterAlarmName": ("dlq depth", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq_name, 0),
        "IngestBacklogAlarmName": ("ingest backlog", "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName",
                                   queue_name, None),
        "IngestThrottlesAlarmName": ("ingest throttles", "AWS/Lambda", "Throttles", "FunctionName",
                                     out["IngestFunctionName"], 0),
    }
    for fn in FUNCTIONS:
        expected[f"{cap(fn)}ErrorsAlarmName"] = (f"{fn} errors", "AWS/Lambda", "Errors", "FunctionName",
                                                 out[f"{cap(fn)}FunctionName"], 0)
    for key, (what, ns, metric, dim, value, threshold) in expected.items():
        name = out.get(key)
        found = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] if name else []
        if not check(f"alarm {what} exists", len(found) == 1, name or f"no output {key}"):
            continue
        a = found[0]
        dims = {d["Name"]: d["Value"] for d in a.get("Dimensions", [])}
        ok = (a.get("Namespace") == ns and a.get("MetricName") == metric and dims == {dim: value}
              and a.get("ComparisonOperator") == "GreaterThanThreshold"
              and (threshold is None or float(a.get("Threshold")) == threshold))
        check(f"alarm {what}: {ns} {metric} of {dim}={value} > {threshold if threshold is not None else 'threshold'}",
              ok, f"{a.get('Namespace')} {a.get('MetricName')} {dims} {a.get('ComparisonOperator')} "
                  f"{a.get('Threshold')}")


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
        check_schedule(session, out["CompactScheduleName"], "compact", "compact", out.get("CompactFunctionArn"))
    if out.get("RetentionScheduleName"):
        check_schedule(session, out["RetentionScheduleName"], "retention", "run", out.get("RetentionFunctionArn"))
    # The whole stack (deployed with CodeBucket): functions, trigger, roles, alarms, checkpoints.
    if out.get("IngestFunctionName"):
        missing = [k for k in FUNCTION_OUTPUTS if not out.get(k)]
        check("function outputs present", not missing, "missing " + ", ".join(missing) if missing else "")
        if not missing:
            check_functions(session, out)
            check_event_source_mapping(session, out)
            check_iam(session, out)
            check_alarms(session, out)
            check_schedule(session, out["CheckpointScheduleName"], "replay", "checkpoint", out["ReplayFunctionArn"])
    print(f"{'OK' if not failures else 'FAILED'}: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
