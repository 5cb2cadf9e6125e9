//! The `dj` binary as a process: help, usage errors, an unreachable function, and a stand-in
//! for the Lambda Invoke API (a tiny HTTP server answering canned responses) to check what `dj`
//! sends, how it follows pages, what it prints and which exit code it gives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{json, Value};

/// `dj` with a clean, deterministic environment: no DJ_* settings from the caller, fixed
/// placeholder credentials, no instance metadata lookups, no colours.
fn dj() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dj"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("DJ_") || key.starts_with("AWS_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/dj-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/dj-test-credentials",
        )
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("NO_COLOR", "1");
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("dj runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "dj panicked:\n{stderr}");
}

#[test]
fn help_lists_every_command() {
    let (code, stdout, stderr) = run(dj().arg("--help"));
    assert_eq!(code, 0, "{stderr}");
    for command in [
        "replay", "query", "verify", "what-if", "access", "metrics", "report", "send",
    ] {
        assert!(
            stdout.contains(&format!("  {command}")),
            "{command} missing from\n{stdout}"
        );
    }
    assert!(stdout.contains("--purpose"), "{stdout}");
    assert!(stdout.contains("--endpoint-url"), "{stdout}");
}

#[test]
fn a_read_without_a_purpose_is_refused_with_exit_2() {
    let (code, stdout, stderr) = run(dj().args(["verify", "--tenant", "t", "--no-identity"]));
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains(
            "a stated purpose is required (--purpose or DJ_PURPOSE); it is recorded in the access journal"
        ),
        "{stderr}"
    );
    no_panic(&stderr);

    let (code, _, stderr) = run(dj()
        .args(["replay", "X", "--tenant", "t"])
        .env("DJ_PURPOSE", "  "));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("a stated purpose is required"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["query"],
        vec!["query", "--all", "--subject", "s"],
        vec!["what-if", "--decision", "d"],
        vec!["replay", "X", "--from", "not-a-time"],
        vec!["verify", "--from", "2026-13-01"],
        vec!["metrics", "--from", "2026-3-1"],
        vec![
            "metrics",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-01T12:00:00Z",
        ],
        vec!["nonsense"],
    ] {
        let (code, _, stderr) = run(dj().args(&args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        no_panic(&stderr);
    }
    let (code, _, stderr) = run(dj().args([
        "verify",
        "--purpose",
        "p",
        "--tenant",
        "t",
        "--from",
        "2026-03-02",
        "--to",
        "2026-03-01",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--from"), "{stderr}");
    // Metrics ranges are checked before anything is sent.
    for (from, to, says) in [
        ("2026-03-02", "2026-03-01", "is after to"),
        ("2026-01-01", "2027-01-02", "at most 366"),
    ] {
        let (code, _, stderr) = run(dj().args([
            "metrics",
            "--purpose",
            "p",
            "--tenant",
            "t",
            "--from",
            from,
            "--to",
            to,
            "--endpoint-url",
            "http://127.0.0.1:1",
        ]));
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("127.0.0.1"), "nothing sent: {stderr}");
    }
}

#[test]
fn an_unreachable_function_fails_cleanly_naming_endpoint_and_function() {
    let (code, stdout, stderr) = run(dj().args([
        "replay",
        "X",
        "--purpose",
        "p",
        "--tenant",
        "t",
        "--endpoint-url",
        "http://127.0.0.1:1",
        "--no-identity",
        "--principal",
        "someone",
    ]));
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("http://127.0.0.1:1"), "{stderr}");
    assert!(stderr.contains("`replay`"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    no_panic(&stderr);
}

#[test]
fn without_any_credentials_an_endpoint_override_still_gets_a_request_out() {
    let fake = Fake::start(|_| (200, vec![], records_answer(vec![], None)));
    let mut cmd = dj();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let (code, stdout, stderr) = run(cmd.args([
        "query",
        "--all",
        "--purpose",
        "p",
        "--tenant",
        "t",
        "--endpoint-url",
        &fake.url,
        "--no-identity",
        "--principal",
        "someone",
    ]));
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("no records"), "{stdout}");
    assert_eq!(fake.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// A stand-in for the Lambda Invoke API.

type Handler = dyn Fn(&Value) -> (u16, Vec<(String, String)>, Value) + Send + Sync;

struct Fake {
    url: String,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Fake {
    /// Serves `handler(invocation) -> (status, extra headers, body)` on a free local port.
    fn start(
        handler: impl Fn(&Value) -> (u16, Vec<(String, String)>, Value) + Send + Sync + 'static,
    ) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handler = handler.clone();
                let seen = seen.clone();
                thread::spawn(move || serve(stream, &*handler, &seen));
            }
        });
        Fake { url, requests }
    }

    /// (path, invocation) of every request so far.
    fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<(String, Value)>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let invocation: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        seen.lock().unwrap().push((path, invocation.clone()));
        let (status, headers, answer) = handler(&invocation);
        let payload = answer.to_string();
        let mut response = format!(
            "HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            payload.len()
        );
        for (name, value) in headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&payload);
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

static ACCESS_IDS: AtomicUsize = AtomicUsize::new(0);

fn envelope(answer: Value) -> Value {
    let n = ACCESS_IDS.fetch_add(1, Ordering::Relaxed);
    json!({
        "principal": "someone",
        "role": "auditor",
        "access_id": format!("acc-{n}"),
        "answer": answer,
    })
}

fn proof(verified: bool) -> Value {
    json!({"leaf_hash": "aa", "leaf_matches_row": verified, "leaf_index": 0, "block_size": 1,
           "audit_path": [], "merkle_root": "aa", "block_seq": 0, "linked_in_chain": true,
           "faults": [], "verified": verified})
}

fn decision(id: &str, label: &str) -> Value {
    json!({"record_id": id, "status": "found", "proof": proof(true),
           "record": {"schema_version": 1, "kind": "decision", "decision_id": id,
                      "tenant_id": "t", "occurred_at": "2026-03-01T10:00:00.000Z",
                      "model": {"name": "loan", "version": "3", "artifact_sha256": "ab"},
                      "decision": label, "confidence": 0.5, "subject_ref": "ref"}})
}

fn records_answer(records: Vec<Value>, next_cursor: Option<&str>) -> Value {
    let mut answer = json!({"answer": "records", "records": records});
    if let Some(c) = next_cursor {
        answer["next_cursor"] = json!(c);
    }
    envelope(answer)
}

fn op(invocation: &Value) -> String {
    invocation["request"]["op"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Global options pointing `dj` at `fake` as the trusted local principal `someone`.
fn local(fake: &Fake) -> Vec<String> {
    [
        "--purpose",
        "case 42",
        "--tenant",
        "t",
        "--endpoint-url",
        &fake.url,
        "--no-identity",
        "--principal",
        "someone",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn requests_carry_tenant_purpose_principal_and_op_and_pages_are_followed() {
    let fake = Fake::start(|inv| {
        let body = match inv["request"]["cursor"].as_str() {
            None => records_answer(vec![decision("d-1", "approve")], Some("page-2")),
            Some("page-2") => records_answer(vec![decision("d-2", "decline")], None),
            Some(other) => panic!("unexpected cursor {other}"),
        };
        (200, vec![], body)
    });
    let (code, stdout, stderr) = run(dj()
        .args([
            "query",
            "--model",
            "loan",
            "--version",
            "3",
            "--from",
            "2026-03-01",
        ])
        .args(local(&fake)));
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("d-1") && stdout.contains("d-2"), "{stdout}");
    assert!(stdout.contains("2 record(s)"), "{stdout}");
    assert!(stdout.contains("2 page(s)"), "{stdout}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let (path, first) = &requests[0];
    assert_eq!(path, "/2015-03-31/functions/replay/invocations");
    assert_eq!(first["principal"], "someone");
    assert!(first.get("identity").is_none(), "{first}");
    assert_eq!(first["request"]["tenant_id"], "t");
    assert_eq!(first["request"]["purpose"], "case 42");
    assert_eq!(first["request"]["op"], "query_model");
    assert_eq!(first["request"]["model_name"], "loan");
    assert_eq!(first["request"]["model_version"], "3");
    assert_eq!(first["request"]["from"], "2026-03-01T00:00:00.000Z");
    assert!(first["request"].get("cursor").is_none());
    assert_eq!(requests[1].1["request"]["cursor"], "page-2");
}

#[test]
fn query_stops_at_the_limit() {
    let fake = Fake::start(|inv| {
        let n = inv["request"]["limit"].as_u64().unwrap_or(200) as usize;
        let records = (0..n)
            .map(|i| decision(&format!("d-{i}"), "approve"))
            .collect();
        (200, vec![], records_answer(records, Some("more")))
    });
    let (code, stdout, stderr) = run(dj()
        .args(["query", "--all", "--limit", "3", "--json"])
        .args(local(&fake)));
    assert_eq!(code, 0, "{stderr}");
    let pages: Value = serde_json::from_str(&stdout).expect("JSON array of responses");
    assert_eq!(pages.as_array().map(Vec::len), Some(1));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].1["request"]["op"], "query_range");
    assert_eq!(requests[0].1["request"]["limit"], 3);
}

#[test]
fn verify_exits_1_on_faults_and_0_when_ok() {
    let faulty = Fake::start(|_| {
        (
            200,
            vec![],
            envelope(json!({"answer": "verify", "ok": false, "blocks_checked": 3,
                "records_checked": 30, "head_seq": 2, "covered_seq": 1,
                "faults": [{"kind": "altered_block", "message": "block 1 was altered", "seq": 1}]})),
        )
    });
    let (code, stdout, stderr) = run(dj().arg("verify").args(local(&faulty)));
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("FAULTS: 1 fault(s)"), "{stdout}");
    assert!(stdout.contains("altered_block"), "{stdout}");
    assert!(stdout.contains("block 1 was altered"), "{stdout}");
    assert!(stdout.contains("records_checked"), "{stdout}");

    let fine = Fake::start(|_| {
        (
            200,
            vec![],
            envelope(json!({"answer": "verify", "ok": true, "blocks_checked": 3, "faults": []})),
        )
    });
    let (code, stdout, stderr) = run(dj().arg("verify").args(local(&fine)));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("OK: no faults"), "{stdout}");
}

#[test]
fn denied_answers_exit_3_and_function_errors_exit_2() {
    let denied = Fake::start(|_| {
        (
            200,
            vec![],
            envelope(json!({"answer": "error", "code": "denied",
                            "message": "principal someone has no role"})),
        )
    });
    let (code, _, stderr) = run(dj().args(["replay", "d-1"]).args(local(&denied)));
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(
        stderr.trim(),
        "error (denied): principal someone has no role"
    );

    let crashed = Fake::start(|_| {
        (
            200,
            vec![("x-amz-function-error".into(), "Unhandled".into())],
            json!({"errorType": "Runtime.ExitError", "errorMessage": "exit status 101"}),
        )
    });
    let (code, _, stderr) = run(dj().args(["replay", "d-1"]).args(local(&crashed)));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("function `replay` failed (lookup): Runtime.ExitError: exit status 101"),
        "{stderr}"
    );
    no_panic(&stderr);
}

#[test]
fn what_if_sums_pages() {
    let fake = Fake::start(|inv| {
        let page = |flips: Vec<Value>, cursor: Option<&str>| {
            let mut a = json!({"answer": "what_if", "evaluated": 5, "flipped": flips.len(),
                "skipped": {"llm": 1}, "transitions": {"approve→refer": flips.len()},
                "flips": flips, "total_in_range": 12});
            if let Some(c) = cursor {
                a["next_cursor"] = json!(c);
            }
            envelope(a)
        };
        let flip = |id: &str| {
            json!({"decision_id": id, "occurred_at": "2026-03-01T10:00:00.000Z",
                   "original": "approve", "new": "refer", "score": 0.61})
        };
        let body = match inv["request"]["cursor"].as_str() {
            None => page(vec![flip("d-1")], Some("c2")),
            _ => page(vec![flip("d-7"), flip("d-9")], None),
        };
        (200, vec![], body)
    });
    let (code, stdout, stderr) = run(dj()
        .args([
            "what-if",
            "--model",
            "loan",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-02",
            "--threshold",
            "0.6",
            "--json",
        ])
        .args(local(&fake)));
    assert_eq!(code, 0, "{stderr}");
    let out: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(out["totals"]["evaluated"], 10);
    assert_eq!(out["totals"]["flipped"], 3);
    assert_eq!(out["totals"]["skipped"]["llm"], 2);
    assert_eq!(out["totals"]["transitions"]["approve→refer"], 3);
    assert_eq!(out["totals"]["flips"].as_array().map(Vec::len), Some(3));
    assert_eq!(out["responses"].as_array().map(Vec::len), Some(2));
    let requests = fake.requests();
    assert_eq!(requests[0].1["request"]["op"], "what_if");
    assert_eq!(requests[0].1["request"]["threshold"], 0.6);
    assert_eq!(requests[0].1["request"]["to"], "2026-03-02T00:00:00.000Z");
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dj-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn report_fetches_verifies_journals_the_export_and_writes_three_files() {
    let fake = Fake::start(|inv| {
        let body = match op(inv).as_str() {
            "query_range" => records_answer(
                vec![
                    decision("d-1", "approve"),
                    decision("d-2", "<img src=x onerror=alert(1)>"),
                ],
                None,
            ),
            "verify" => envelope(json!({"answer": "verify", "ok": true, "blocks_checked": 1,
                                        "records_checked": 2, "faults": []})),
            "access_log" => envelope(json!({"answer": "access", "events": [
                {"access_id": "acc-old", "at": "2026-03-01T12:00:00.000Z",
                 "principal": "someone", "role": "auditor", "purpose": "earlier look",
                 "operation": "lookup", "target": {}, "read": ["d-1"], "read_count": 1,
                 "result": "ok"}]})),
            "export" => envelope(json!({"answer": "exported",
                                        "records": inv["request"]["records"]})),
            "metrics" => envelope(json!({"answer": "metrics", "missing_dates": [],
                "rows": [metrics_row("2026-03-01", "loan", 2)]})),
            other => panic!("unexpected op {other}"),
        };
        (200, vec![], body)
    });
    let dir = temp_dir("report");
    let (code, stdout, stderr) = run(dj()
        .args([
            "report",
            "--from",
            "2026-03-01",
            "--to",
            "2026-04-01",
            "--out",
        ])
        .arg(&dir)
        .args(local(&fake)));
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    for name in ["report.html", "report.json", "records.csv"] {
        assert!(
            stdout.contains(&dir.join(name).display().to_string()),
            "{stdout}"
        );
    }

    let ops: Vec<String> = fake.requests().iter().map(|(_, inv)| op(inv)).collect();
    assert_eq!(
        ops,
        ["query_range", "verify", "metrics", "access_log", "export"]
    );
    let metrics = &fake.requests()[2].1["request"];
    assert_eq!(
        (&metrics["from"], &metrics["to"]),
        (&json!("2026-03-01"), &json!("2026-03-31")),
        "the period's days, the last one included"
    );
    let export = &fake.requests()[4].1["request"];
    assert_eq!(export["format"], "html+json+csv");
    assert_eq!(export["records"], 2);
    assert_eq!(export["from"], "2026-03-01T00:00:00.000Z");
    assert_eq!(export["to"], "2026-04-01T00:00:00.000Z");

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "escaped"
    );
    assert!(!html.contains("<img"), "no markup from the journal");
    assert!(html.contains("earlier look"));
    assert!(html.contains("Verified: the chain"));
    assert!(html.contains("<h2>Daily metrics</h2>"));
    assert!(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    let csv = std::fs::read_to_string(dir.join("records.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["summary"]["records"], 2);
    assert_eq!(json["reads"].as_array().map(Vec::len), Some(5));
    assert_eq!(json["reads"][4]["operation"], "export");
    assert_eq!(json["metrics"][0]["decisions"], 2);
    let _ = std::fs::remove_dir_all(&dir);
}

fn metrics_row(date: &str, model: &str, decisions: u64) -> Value {
    json!({"tenant_id": "t", "date": date, "model_name": model,
        "model_version": if model.is_empty() { "" } else { "3" },
        "decisions": decisions, "decisions_by_label": {"approve": decisions},
        "confidence_count": decisions, "confidence_mean": 0.8125, "confidence_p50": 0.8,
        "confidence_p90": 0.9, "confidence_p99": 0.99, "reviews": 1, "overrides": 0,
        "review_share": 0.5, "override_share": 0.0, "outcomes": 1,
        "outcomes_by_label": {"repaid": 1}, "outcome_rate": 0.5,
        "outcome_rate_by_label": {"repaid": 0.5}})
}

#[test]
fn metrics_prints_a_row_per_day_and_model_and_names_the_days_without() {
    let fake = Fake::start(|inv| {
        assert_eq!(op(inv), "metrics");
        let mut unattributed = metrics_row("2026-03-02", "", 0);
        unattributed["decisions_by_label"] = json!({});
        (
            200,
            vec![],
            envelope(json!({"answer": "metrics",
                "rows": [metrics_row("2026-03-01", "loan", 2), unattributed],
                "missing_dates": ["2026-03-03", "2026-03-04", "2026-03-06"]})),
        )
    });
    let (code, stdout, stderr) = run(dj()
        .args([
            "metrics",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-06",
            "--model",
            "loan",
        ])
        .args(local(&fake)));
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    for needle in [
        "2026-03-01",
        "loan",
        "approve 100.0%",
        "0.81",
        "(unattributed)",
        "1 (50.0%)",
        "no metrics for 3 day(s): 2026-03-03..2026-03-04, 2026-03-06",
        "2 row(s), 2026-03-01 to 2026-03-06",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing from\n{stdout}");
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0].1["request"];
    assert_eq!(request["op"], "metrics");
    assert_eq!(request["from"], "2026-03-01");
    assert_eq!(request["to"], "2026-03-06");
    assert_eq!(request["model_name"], "loan");

    // One day by default; --json prints the answer as it came.
    let (code, stdout, stderr) = run(dj()
        .args(["metrics", "--from", "2026-03-01", "--json"])
        .args(local(&fake)));
    assert_eq!(code, 0, "{stderr}");
    let raw: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(raw["answer"]["rows"][0]["decisions"], 2);
    let request = &fake.requests()[1].1["request"];
    assert_eq!(
        (&request["from"], &request["to"]),
        (&json!("2026-03-01"), &json!("2026-03-01"))
    );
    assert!(request.get("model_name").is_none());
}

#[test]
fn replay_shows_the_record_and_the_reexecution() {
    let fake = Fake::start(|inv| {
        let body = match op(inv).as_str() {
            "lookup" => records_answer(vec![decision("d-1", "approve")], None),
            "reexecute" => envelope(json!({"answer": "reexecution",
                "decision": decision("d-1", "approve"), "features_source": "supplied",
                "model_name": "loan", "model_version": "3", "artifact_sha256": "ab",
                "artifact_kind": "scorecard",
                "original": {"outputs": [{"label": "approve", "score": 0.5}],
                             "decision": "approve", "confidence": 0.5, "threshold": 0.4},
                "replayed": {"outputs": [{"label": "approve", "score": 0.5}],
                             "decision": "approve", "confidence": 0.5, "threshold": 0.4},
                "comparison": {"matches_exactly": true, "differences": []}})),
            other => panic!("unexpected op {other}"),
        };
        (200, vec![], body)
    });
    let dir = temp_dir("features");
    std::fs::create_dir_all(&dir).unwrap();
    let features = dir.join("features.json");
    std::fs::write(&features, r#"{"income": 52000, "age": 41}"#).unwrap();
    let (code, stdout, stderr) = run(dj()
        .args(["replay", "d-1", "--reexecute", "--features"])
        .arg(&features)
        .args(local(&fake)));
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("record d-1"), "{stdout}");
    assert!(stdout.contains("proof: verified"), "{stdout}");
    assert!(stdout.contains("matches exactly: yes"), "{stdout}");
    let requests = fake.requests();
    assert_eq!(requests[1].1["request"]["op"], "reexecute");
    assert_eq!(requests[1].1["request"]["decision_id"], "d-1");
    assert_eq!(requests[1].1["request"]["features"]["income"], 52000);

    // A features file that is not an object is refused before anything is sent.
    std::fs::write(&features, "[1, 2]").unwrap();
    let (code, _, stderr) = run(dj()
        .args(["replay", "d-1", "--reexecute", "--features"])
        .arg(&features)
        .args(local(&fake)));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("expected a JSON object"), "{stderr}");
    assert_eq!(fake.requests().len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn identity_proofs_are_signed_for_the_chosen_sts_endpoint() {
    let fake = Fake::start(|_| (200, vec![], records_answer(vec![], None)));
    let base = [
        "query",
        "--all",
        "--purpose",
        "p",
        "--tenant",
        "t",
        "--endpoint-url",
        &fake.url,
    ];
    let (code, _, stderr) = run(dj().args(base).args(["--sts-url", "http://127.0.0.1:4566"]));
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run(dj()
        .args(base)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"));
    assert_eq!(code, 0, "{stderr}");

    let requests = fake.requests();
    let urls: Vec<&str> = requests
        .iter()
        .map(|(_, inv)| inv["identity"]["url"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(urls.len(), 2);
    assert!(urls[0].starts_with("http://127.0.0.1:4566"), "{urls:?}");
    assert!(urls[1].starts_with("http://127.0.0.1:5000"), "{urls:?}");
    for (_, inv) in &requests {
        assert!(inv.get("principal").is_none(), "{inv}");
        assert_eq!(inv["identity"]["method"], "POST");
        let authorization = inv["identity"]["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|h| h[0] == "authorization")
            .and_then(|h| h[1].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=test/"),
            "{authorization}"
        );
    }
}

#[test]
fn send_batches_ten_per_call_and_reports_refused_entries() {
    let fake = Fake::start(|body| {
        let entries = body["Entries"].as_array().cloned().unwrap_or_default();
        let mut successful = Vec::new();
        let mut failed = Vec::new();
        for e in &entries {
            // The queue `refuse-first` refuses the first entry of every batch.
            if body["QueueUrl"] == "http://q/refuse-first" && e["Id"] == "m0" {
                failed.push(json!({"Id": e["Id"], "SenderFault": true,
                                   "Code": "InvalidMessageContents", "Message": "nope"}));
            } else {
                successful.push(json!({"Id": e["Id"], "MessageId": "mid",
                                       "MD5OfMessageBody": "00000000000000000000000000000000"}));
            }
        }
        (
            200,
            vec![],
            json!({"Successful": successful, "Failed": failed}),
        )
    });
    let (code, stdout, stderr) = run(dj().args([
        "send",
        "--generate",
        "25",
        "--seed",
        "5",
        "--tenant",
        "bank_456",
        "--queue-url",
        "http://q/ok",
        "--aws-endpoint-url",
        &fake.url,
    ]));
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("sent 25 of 25 message(s)"), "{stdout}");
    let calls = fake.requests();
    let sizes: Vec<usize> = calls
        .iter()
        .map(|(_, b)| b["Entries"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [10, 10, 5]);
    for (_, b) in &calls {
        for e in b["Entries"].as_array().into_iter().flatten() {
            let record: Value = serde_json::from_str(e["MessageBody"].as_str().unwrap()).unwrap();
            assert_eq!(record["tenant_id"], "bank_456");
        }
    }

    let dir = temp_dir("send");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("records.jsonl");
    std::fs::write(
        &file,
        "{\"kind\":\"decision\",\"decision_id\":\"d1\",\"tenant_id\":\"bank_456\"}\n\n{\"kind\":\"decision\",\"decision_id\":\"d2\"}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run(dj().args(["send", "--file"]).arg(&file).args([
        "--queue-url",
        "http://q/refuse-first",
        "--aws-endpoint-url",
        &fake.url,
    ]));
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("sent 1 of 2 message(s)"), "{stdout}");
    assert!(stdout.contains("line 1 (d1)"), "{stdout}");
    assert!(stdout.contains("InvalidMessageContents"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);

    // A queue that cannot be reached is an error naming it.
    let (code, _, stderr) = run(dj().args([
        "send",
        "--generate",
        "3",
        "--queue-url",
        "http://q/x",
        "--aws-endpoint-url",
        "http://127.0.0.1:1",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("sending to queue http://q/x failed"),
        "{stderr}"
    );
    no_panic(&stderr);
}
