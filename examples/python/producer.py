#!/usr/bin/env python3
"""A card-payment screening service recording its decisions in the Decision Journal, with boto3.

It screens a few payments (one decision record each), then records the outcome of one decision
and a human review of another. Low- and medium-risk decisions can be sampled the way the Rust
producer client samples them (docs/producer.md); the records are packed into JSON-array message
bodies of at most 25 KiB, sent ten bodies per SendMessageBatch, and the entries SQS did not take
are retried with backoff. At the end it prints what it sent, as JSON.

    python producer.py --queue-url "$QUEUE_URL" --count 20 --low-rate 0.25

boto3 takes the region, the credentials and the endpoint (AWS_ENDPOINT_URL, for a local
endpoint) from the environment, as every AWS SDK does.
"""

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
import uuid
from datetime import datetime, timezone

import boto3
from botocore.exceptions import BotoCoreError, ClientError

MAX_MESSAGE_BYTES = 25 * 1024  # ten bodies fill one 256 KiB SendMessageBatch
BATCH_ENTRIES = 10  # SQS's limit per SendMessageBatch
MAX_ATTEMPTS = 5

# What the service's model is, as the journal identifies it: the SHA-256 of the artifact file
# the service loaded (here a stand-in, as there is no real model to load).
MODEL = {
    "name": "card-fraud",
    "version": "2.1.0",
    "artifact_sha256": hashlib.sha256(b"card-fraud 2.1.0 example artifact").hexdigest(),
}
THRESHOLD = 0.7


def uuid7():
    """A time-ordered id (UUIDv7, RFC 9562): Unix milliseconds, then random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    return str(uuid.UUID(int=value))


def now():
    """RFC 3339 UTC with milliseconds, as the journal stores it."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def screen_payment(tenant, rng):
    """One payment screened by the (stand-in) fraud model: a decision record."""
    amount = round(math.exp(rng.uniform(math.log(5), math.log(5000))), 2)
    features = {
        "amount": amount,
        "new_device": rng.random() < 0.2,
        "country_mismatch": rng.random() < 0.1,
        "payments_last_hour": rng.randint(0, 6),
    }
    score = min(
        0.99,
        0.05
        + 0.3 * features["new_device"]
        + 0.35 * features["country_mismatch"]
        + 0.04 * features["payments_last_hour"]
        + amount / 20_000,
    )
    score = round(score, 4)
    decision = "block" if score >= THRESHOLD else "allow"
    return {
        "schema_version": 1,
        "kind": "decision",
        "decision_id": uuid7(),
        "tenant_id": tenant,
        "occurred_at": now(),
        "caller": {
            "principal": "arn:aws:iam::123456789012:role/card-screening",
            "service": "card-screening",
        },
        "subject": {"id": f"card_{rng.randint(0, 99_999):05d}"},
        "model": MODEL,
        "features": features,
        "outputs": [
            {"label": "block", "score": score},
            {"label": "allow", "score": round(1 - score, 4)},
        ],
        "decision": decision,
        "confidence": max(score, round(1 - score, 4)),
        "threshold": THRESHOLD,
        "rationale": f"fraud score {score} against threshold {THRESHOLD}",
        "action": {"type": "automated", "detail": f"payment {decision}ed"},
        # The risk of a wrong decision grows with the amount at stake.
        "risk_tier": "low" if amount < 100 else "medium" if amount < 1000 else "high",
        "context": {"request_id": str(uuid.uuid4())},
    }


def outcome_of(decision):
    """What later happened to a payment: a chargeback or a settlement."""
    return {
        "schema_version": 1,
        "kind": "outcome",
        "outcome_id": uuid7(),
        "decision_id": decision["decision_id"],
        "tenant_id": decision["tenant_id"],
        "occurred_at": now(),
        "outcome": {"label": "settled", "value": decision["features"]["amount"]},
    }


def review_of(decision):
    """An analyst looking at a decision: blocked payments are released, others confirmed."""
    review = {"reviewer": "analyst_017", "verdict": "confirm"}
    if decision["decision"] == "block":
        review = {
            "reviewer": "analyst_017",
            "verdict": "override",
            "override_label": "allow",
            "notes": "Cardholder confirmed the purchase by phone.",
        }
    return {
        "schema_version": 1,
        "kind": "review",
        "review_id": uuid7(),
        "decision_id": decision["decision_id"],
        "tenant_id": decision["tenant_id"],
        "occurred_at": now(),
        "review": review,
    }


def sampling_rate(record, rates):
    """The share of records like this one to keep: all high-risk decisions, outcomes, reviews."""
    if record["kind"] != "decision" or record.get("risk_tier") == "high":
        return 1.0
    return rates.get(record.get("risk_tier"), 1.0)


def keeps(decision_id, rate):
    """The producer client's rule, the same in every language: keep a decision when the first
    8 bytes of the SHA-256 of its id, read big-endian, as a double, are below rate × 2^64."""
    if rate >= 1.0:
        return True
    head = int.from_bytes(hashlib.sha256(decision_id.encode()).digest()[:8], "big")
    return float(head) < rate * 2.0**64


def pack(records):
    """Records into message bodies: JSON arrays of at most MAX_MESSAGE_BYTES, as ingest reads
    them. Returns (body, records) pairs."""
    messages, texts, group = [], [], []
    size = 0  # of the open body once closed: brackets, records and the commas between them
    for record in records:
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        n = len(text.encode())
        if n + 2 > MAX_MESSAGE_BYTES:
            raise ValueError(f"record {record_id(record)} is {n} bytes, too large for a message")
        if group and size + 1 + n > MAX_MESSAGE_BYTES:
            messages.append(("[" + ",".join(texts) + "]", group))
            texts, group = [], []
        size = size + 1 + n if group else 2 + n
        texts.append(text)
        group.append(record)
    if group:
        messages.append(("[" + ",".join(texts) + "]", group))
    return messages


def send(sqs, queue_url, messages):
    """Sends the bodies ten per call; retries the entries SQS did not take, with exponential
    backoff and full jitter. Returns (calls, messages that could not be sent)."""
    calls, failed = 0, []
    for start in range(0, len(messages), BATCH_ENTRIES):
        todo = {str(i): m for i, m in enumerate(messages[start : start + BATCH_ENTRIES])}
        for attempt in range(1, MAX_ATTEMPTS + 1):
            entries = [{"Id": i, "MessageBody": body} for i, (body, _) in todo.items()]
            calls += 1
            try:
                response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
                refused = response.get("Failed", [])
            except (BotoCoreError, ClientError) as e:
                # boto3 has already retried what it considers transient; try the call again.
                refused = [{"Id": i, "SenderFault": False, "Message": str(e)} for i in todo]
            for entry in refused:
                if entry.get("SenderFault"):
                    # A malformed entry cannot succeed later: report it, do not retry.
                    print(f"SQS refused a message: {entry.get('Message')}", file=sys.stderr)
                    failed.append(todo.pop(entry["Id"]))
            todo = {e["Id"]: todo[e["Id"]] for e in refused if e["Id"] in todo}
            if not todo:
                break
            if attempt < MAX_ATTEMPTS:
                time.sleep(random.uniform(0, min(2.0, 0.05 * 2 ** (attempt - 1))))
        failed.extend(todo.values())
    return calls, failed


def record_id(record):
    """A record's own id, whatever its kind."""
    return record.get(f"{record['kind']}_id", record["decision_id"])


def rate_arg(text):
    rate = float(text)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError("a rate is between 0 and 1")
    return rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue-url", default=os.environ.get("DJ_QUEUE_URL"))
    parser.add_argument("--count", type=int, default=int(os.environ.get("DJ_COUNT", "20")))
    parser.add_argument("--tenant", default="acme_payments")
    parser.add_argument("--low-rate", type=rate_arg, default=1.0, help="share of low-risk decisions kept")
    parser.add_argument("--medium-rate", type=rate_arg, default=1.0, help="share of medium-risk decisions kept")
    args = parser.parse_args()
    if not args.queue_url:
        parser.error("give --queue-url or set DJ_QUEUE_URL")

    rng = random.Random()
    rates = {"low": args.low_rate, "medium": args.medium_rate}
    kept, sampled_out = [], []
    for _ in range(args.count):
        decision = screen_payment(args.tenant, rng)
        rate = sampling_rate(decision, rates)
        if not keeps(decision["decision_id"], rate):
            sampled_out.append(decision)
            continue
        # Multiplied into a rate set upstream, so that analytics can weight by 1/rate.
        decision["sampling_rate"] = decision.get("sampling_rate", 1.0) * rate
        kept.append(decision)
    # Follow-ups refer to decisions that are in the journal; they are never sampled.
    records = list(kept)
    if kept:
        records.append(outcome_of(kept[0]))
        records.append(review_of(kept[-1]))

    messages = pack(records)
    calls, failed = send(boto3.client("sqs"), args.queue_url, messages)
    failed_ids = {record_id(r) for _, group in failed for r in group}
    report = {
        "sent": [
            {
                "record_id": record_id(r),
                "kind": r["kind"],
                "tenant_id": r["tenant_id"],
                "decision_id": r["decision_id"],
                "risk_tier": r.get("risk_tier"),
                "sampling_rate": r.get("sampling_rate"),
            }
            for r in records
            if record_id(r) not in failed_ids
        ],
        "sampled_out": [
            {"decision_id": d["decision_id"], "risk_tier": d["risk_tier"], "rate": sampling_rate(d, rates)}
            for d in sampled_out
        ],
        "failed": sorted(failed_ids),
        "messages": len(messages),
        "calls": calls,
    }
    print(json.dumps(report, indent=2))
    return 1 if failed_ids else 0


if __name__ == "__main__":
    sys.exit(main())
