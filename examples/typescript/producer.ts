// A card-payment screening service recording its decisions in the Decision Journal, with the AWS
// SDK for JavaScript v3.
//
// It screens a few payments (one decision record each), then records the outcome of one decision
// and a human review of another. Low- and medium-risk decisions can be sampled the way the Rust
// producer client samples them (docs/producer.md); the records are packed into JSON-array message
// bodies of at most 25 KiB, sent ten bodies per SendMessageBatch, and the entries SQS did not
// take are retried with backoff. At the end it prints what it sent, as JSON.
//
//   node dist/producer.js --queue-url "$QUEUE_URL" --count 20 --low-rate 0.25
//
// The SDK takes the region, the credentials and the endpoint (AWS_ENDPOINT_URL, for a local
// endpoint) from the environment, as every AWS SDK does.

import { createHash, randomBytes, randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import {
  SQSClient,
  SendMessageBatchCommand,
  type BatchResultErrorEntry,
} from "@aws-sdk/client-sqs";

const MAX_MESSAGE_BYTES = 25 * 1024; // ten bodies fill one 256 KiB SendMessageBatch
const BATCH_ENTRIES = 10; // SQS's limit per SendMessageBatch
const MAX_ATTEMPTS = 5;

// What the service's model is, as the journal identifies it: the SHA-256 of the artifact file
// the service loaded (here a stand-in, as there is no real model to load).
const MODEL = {
  name: "card-fraud",
  version: "2.1.0",
  artifact_sha256: createHash("sha256").update("card-fraud 2.1.0 example artifact").digest("hex"),
};
const THRESHOLD = 0.7;

type RiskTier = "low" | "medium" | "high";

interface Decision {
  schema_version: 1;
  kind: "decision";
  decision_id: string;
  tenant_id: string;
  occurred_at: string;
  caller: { principal: string; service: string };
  subject: { id: string };
  model: typeof MODEL;
  features: { amount: number; new_device: boolean; country_mismatch: boolean; payments_last_hour: number };
  outputs: { label: string; score: number }[];
  decision: "block" | "allow";
  confidence: number;
  threshold: number;
  rationale: string;
  action: { type: "automated"; detail: string };
  risk_tier: RiskTier;
  context: { request_id: string };
  sampling_rate?: number;
}

interface Outcome {
  schema_version: 1;
  kind: "outcome";
  outcome_id: string;
  decision_id: string;
  tenant_id: string;
  occurred_at: string;
  outcome: { label: string; value: number };
}

interface Review {
  schema_version: 1;
  kind: "review";
  review_id: string;
  decision_id: string;
  tenant_id: string;
  occurred_at: string;
  review:
    | { reviewer: string; verdict: "confirm" }
    | { reviewer: string; verdict: "override"; override_label: string; notes: string };
}

type JournalRecord = Decision | Outcome | Review;

/** A time-ordered id (UUIDv7, RFC 9562): Unix milliseconds, then random bits. */
function uuid7(): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(Date.now(), 0, 6);
  bytes[6] = (bytes[6] & 0x0f) | 0x70; // version 7
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
  const hex = bytes.toString("hex");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
}

/** RFC 3339 UTC with milliseconds, as the journal stores it. */
const now = (): string => new Date().toISOString();

const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

/** One payment screened by the (stand-in) fraud model: a decision record. */
function screenPayment(tenant: string): Decision {
  const amount = Math.round(Math.exp(Math.log(5) + Math.random() * Math.log(1000)) * 100) / 100;
  const features = {
    amount,
    new_device: Math.random() < 0.2,
    country_mismatch: Math.random() < 0.1,
    payments_last_hour: Math.floor(Math.random() * 7),
  };
  const score = round4(
    Math.min(
      0.99,
      0.05 +
        0.3 * Number(features.new_device) +
        0.35 * Number(features.country_mismatch) +
        0.04 * features.payments_last_hour +
        amount / 20_000,
    ),
  );
  const decision = score >= THRESHOLD ? "block" : "allow";
  return {
    schema_version: 1,
    kind: "decision",
    decision_id: uuid7(),
    tenant_id: tenant,
    occurred_at: now(),
    caller: { principal: "arn:aws:iam::123456789012:role/card-screening", service: "card-screening" },
    subject: { id: `card_${String(Math.floor(Math.random() * 100_000)).padStart(5, "0")}` },
    model: MODEL,
    features,
    outputs: [
      { label: "block", score },
      { label: "allow", score: round4(1 - score) },
    ],
    decision,
    confidence: Math.max(score, round4(1 - score)),
    threshold: THRESHOLD,
    rationale: `fraud score ${score} against threshold ${THRESHOLD}`,
    action: { type: "automated", detail: `payment ${decision}ed` },
    // The risk of a wrong decision grows with the amount at stake.
    risk_tier: amount < 100 ? "low" : amount < 1000 ? "medium" : "high",
    context: { request_id: randomUUID() },
  };
}

/** What later happened to a payment: a chargeback or a settlement. */
function outcomeOf(d: Decision): Outcome {
  return {
    schema_version: 1,
    kind: "outcome",
    outcome_id: uuid7(),
    decision_id: d.decision_id,
    tenant_id: d.tenant_id,
    occurred_at: now(),
    outcome: { label: "settled", value: d.features.amount },
  };
}

/** An analyst looking at a decision: blocked payments are released, others confirmed. */
function reviewOf(d: Decision): Review {
  return {
    schema_version: 1,
    kind: "review",
    review_id: uuid7(),
    decision_id: d.decision_id,
    tenant_id: d.tenant_id,
    occurred_at: now(),
    review:
      d.decision === "block"
        ? {
            reviewer: "analyst_017",
            verdict: "override",
            override_label: "allow",
            notes: "Cardholder confirmed the purchase by phone.",
          }
        : { reviewer: "analyst_017", verdict: "confirm" },
  };
}

/** The share of records like this one to keep: all high-risk decisions, outcomes, reviews. */
function samplingRate(r: JournalRecord, rates: Partial<Record<RiskTier, number>>): number {
  if (r.kind !== "decision" || r.risk_tier === "high") return 1;
  return rates[r.risk_tier] ?? 1;
}

/**
 * The producer client's rule, the same in every language: keep a decision when the first 8 bytes
 * of the SHA-256 of its id, read big-endian, as a double, are below rate × 2^64.
 */
function keeps(decisionId: string, rate: number): boolean {
  if (rate >= 1) return true;
  const head = createHash("sha256").update(decisionId, "utf8").digest().readBigUInt64BE(0);
  // Number() rounds to the nearest double, as Rust's `as f64` does.
  return Number(head) < rate * 2 ** 64;
}

/** A record's own id, whatever its kind. */
function recordId(r: JournalRecord): string {
  switch (r.kind) {
    case "decision":
      return r.decision_id;
    case "outcome":
      return r.outcome_id;
    case "review":
      return r.review_id;
  }
}

interface Message {
  body: string;
  records: JournalRecord[];
}

/** Records into message bodies: JSON arrays of at most MAX_MESSAGE_BYTES, as ingest reads them. */
function pack(records: JournalRecord[]): Message[] {
  const messages: Message[] = [];
  let texts: string[] = [];
  let group: JournalRecord[] = [];
  let size = 0; // of the open body once closed: brackets, records and the commas between them
  const close = () => {
    messages.push({ body: `[${texts.join(",")}]`, records: group });
    texts = [];
    group = [];
  };
  for (const r of records) {
    const text = JSON.stringify(r);
    const n = Buffer.byteLength(text, "utf8");
    if (n + 2 > MAX_MESSAGE_BYTES) {
      throw new Error(`record ${recordId(r)} is ${n} bytes, too large for a message`);
    }
    if (group.length > 0 && size + 1 + n > MAX_MESSAGE_BYTES) close();
    size = group.length > 0 ? size + 1 + n : 2 + n;
    texts.push(text);
    group.push(r);
  }
  if (group.length > 0) close();
  return messages;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends the bodies ten per call; retries the entries SQS did not take, with exponential backoff
 * and full jitter. Returns the number of calls and the messages that could not be sent.
 */
async function send(sqs: SQSClient, queueUrl: string, messages: Message[]) {
  let calls = 0;
  const failed: Message[] = [];
  for (let start = 0; start < messages.length; start += BATCH_ENTRIES) {
    let todo = new Map(messages.slice(start, start + BATCH_ENTRIES).map((m, i) => [String(i), m]));
    for (let attempt = 1; attempt <= MAX_ATTEMPTS && todo.size > 0; attempt++) {
      if (attempt > 1) await sleep(Math.random() * Math.min(2000, 50 * 2 ** (attempt - 2)));
      calls++;
      let refused: BatchResultErrorEntry[];
      try {
        const out = await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: [...todo].map(([Id, m]) => ({ Id, MessageBody: m.body })),
          }),
        );
        refused = out.Failed ?? [];
      } catch (e) {
        // The SDK has already retried what it considers transient; try the call again.
        refused = [...todo.keys()].map((Id) => ({ Id, SenderFault: false, Code: String(e) }));
      }
      const retry = new Map<string, Message>();
      for (const entry of refused) {
        const m = todo.get(entry.Id ?? "");
        if (!m) continue;
        if (entry.SenderFault) {
          // A malformed entry cannot succeed later: report it, do not retry.
          console.error(`SQS refused a message: ${entry.Code} ${entry.Message ?? ""}`);
          failed.push(m);
        } else {
          retry.set(entry.Id!, m);
        }
      }
      todo = retry;
    }
    failed.push(...todo.values());
  }
  return { calls, failed };
}

function rateArg(name: string, text: string | undefined): number {
  const rate = text === undefined ? 1 : Number(text);
  if (!(rate >= 0 && rate <= 1)) throw new Error(`--${name}: a rate is between 0 and 1`);
  return rate;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      "queue-url": { type: "string", default: process.env.DJ_QUEUE_URL },
      count: { type: "string", default: process.env.DJ_COUNT ?? "20" },
      tenant: { type: "string", default: "acme_payments" },
      "low-rate": { type: "string" },
      "medium-rate": { type: "string" },
    },
  });
  const queueUrl = values["queue-url"];
  if (!queueUrl) throw new Error("give --queue-url or set DJ_QUEUE_URL");
  const count = Number(values.count);
  const rates = {
    low: rateArg("low-rate", values["low-rate"]),
    medium: rateArg("medium-rate", values["medium-rate"]),
  };

  const kept: Decision[] = [];
  const sampledOut: Decision[] = [];
  for (let i = 0; i < count; i++) {
    const d = screenPayment(values.tenant!);
    const rate = samplingRate(d, rates);
    if (!keeps(d.decision_id, rate)) {
      sampledOut.push(d);
      continue;
    }
    // Multiplied into a rate set upstream, so that analytics can weight by 1/rate.
    d.sampling_rate = (d.sampling_rate ?? 1) * rate;
    kept.push(d);
  }
  // Follow-ups refer to decisions that are in the journal; they are never sampled.
  const records: JournalRecord[] = [...kept];
  if (kept.length > 0) records.push(outcomeOf(kept[0]), reviewOf(kept[kept.length - 1]));

  const messages = pack(records);
  // Calls go where the SDK resolves SQS to (the region, or AWS_ENDPOINT_URL), as in boto3 and
  // the Rust SDK. By default SDK v3 would follow the queue URL's host instead, and a local
  // endpoint may hand out queue URLs naming the real AWS host.
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  const { calls, failed } = await send(sqs, queueUrl, messages);
  const failedIds = new Set(failed.flatMap((m) => m.records.map(recordId)));
  const report = {
    sent: records
      .filter((r) => !failedIds.has(recordId(r)))
      .map((r) => ({
        record_id: recordId(r),
        kind: r.kind,
        tenant_id: r.tenant_id,
        decision_id: r.decision_id,
        risk_tier: r.kind === "decision" ? r.risk_tier : null,
        sampling_rate: r.kind === "decision" ? r.sampling_rate : null,
      })),
    sampled_out: sampledOut.map((d) => ({
      decision_id: d.decision_id,
      risk_tier: d.risk_tier,
      rate: samplingRate(d, rates),
    })),
    failed: [...failedIds].sort(),
    messages: messages.length,
    calls,
  };
  console.log(JSON.stringify(report, null, 2));
  return failedIds.size > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 2;
  },
);
