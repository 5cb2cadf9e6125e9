//! `dj retention`: invokes the retention function (plan, run, policy, hold, release, erase)
//! and prints what it did or would do.

use serde_json::{json, Value};

use super::Ctx;
use crate::cli::{EraseArgs, HoldArgs, PolicyArgs, RetentionCommand, RetentionScope};
use crate::error::DjError;
use crate::invoke::invoke_json;
use crate::out;

pub async fn run(ctx: &Ctx, cmd: RetentionCommand) -> Result<u8, DjError> {
    match cmd {
        RetentionCommand::Plan(scope) => runs(ctx, "plan", scope).await,
        RetentionCommand::Run(scope) => runs(ctx, "run", scope).await,
        RetentionCommand::Policy(args) => policy(ctx, args).await,
        RetentionCommand::Hold(args) => hold(ctx, args).await,
        RetentionCommand::Erase(args) => erase(ctx, args).await,
        RetentionCommand::Release(args) => {
            let answer = invoke_json(
                &ctx.global,
                &args.function.name,
                "release",
                &json!({"task": "release", "hold_id": args.id}),
            )
            .await?;
            print_version(ctx, &answer, &format!("hold {} released", args.id));
            Ok(0)
        }
    }
}

async fn runs(ctx: &Ctx, task: &'static str, scope: RetentionScope) -> Result<u8, DjError> {
    let mut payload = json!({ "task": task });
    if let Some(t) = scope.only.as_ref().or(ctx.global.tenant.as_ref()) {
        payload["tenant_id"] = json!(t);
    }
    let answer = invoke_json(&ctx.global, &scope.function.name, task, &payload).await?;
    if ctx.global.json {
        out::json(&answer);
        return Ok(0);
    }
    let tenants = answer["tenants"].as_array().cloned().unwrap_or_default();
    if tenants.is_empty() {
        out::line("no tenants with a journal");
    }
    for t in &tenants {
        let tenant = t["tenant_id"].as_str().unwrap_or("?");
        let counts = t["counts"]
            .as_object()
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let mut head = format!("{tenant}: {counts}");
        if t["busy"] == json!(true) {
            head.push_str(" — another run holds this tenant");
        }
        if t["deferred"] == json!(true) {
            head.push_str(" — out of time, the next run continues");
        }
        out::line(ctx.style.bold(&head));
        for f in t["files"]
            .as_array()
            .into_iter()
            .flatten()
            .take(scope.limit)
        {
            out::line(format!("  {}", file_line(f)));
        }
        let listed = t["files"].as_array().map_or(0, Vec::len).min(scope.limit);
        let more = t["files"].as_array().map_or(0, Vec::len) - listed
            + t["files_not_listed"].as_u64().unwrap_or(0) as usize;
        if more > 0 {
            out::line(ctx.style.dim(&format!("  … {more} more")));
        }
        if let Some(key) = t["report_key"].as_str() {
            out::line(ctx.style.dim(&format!("  signed report: {key}")));
        }
    }
    if task == "plan" {
        out::line(ctx.style.dim("dry run: nothing was changed"));
    }
    Ok(0)
}

/// One file of a report: action, outcome, key and the why.
fn file_line(f: &Value) -> String {
    let action = f["action"].as_str().unwrap_or("?");
    let outcome = match &f["outcome"] {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().map_or(v.to_string(), str::to_string)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    let why = match action {
        "archive" => format!(
            "to {} (due {}, {})",
            f["class"].as_str().unwrap_or("?"),
            f["due_at"].as_str().unwrap_or("?"),
            f["rule"].as_str().unwrap_or("?")
        ),
        "expire" => format!(
            "after {} years (due {}, {})",
            f["expire_after_years"],
            f["due_at"].as_str().unwrap_or("?"),
            f["rule"].as_str().unwrap_or("?")
        ),
        "held" => format!("by {}", f["holds"]),
        "too_small" => format!("{} bytes: under 128 KiB, stays hot", f["size"]),
        _ => String::new(),
    };
    format!(
        "{action:<9} {outcome:<8} {} {why}",
        f["file_key"].as_str().unwrap_or("?")
    )
}

async fn policy(ctx: &Ctx, args: PolicyArgs) -> Result<u8, DjError> {
    let Some(path) = args.set else {
        let answer = invoke_json(
            &ctx.global,
            &args.function.name,
            "policy",
            &json!({"task": "policy"}),
        )
        .await?;
        out::json(&answer["policy"]);
        return Ok(0);
    };
    let text = std::fs::read(&path).map_err(|source| DjError::File {
        what: "reading policy",
        path: path.clone(),
        source,
    })?;
    let document: Value = serde_json::from_slice(&text)
        .map_err(|e| DjError::usage(format!("{}: not JSON: {e}", path.display())))?;
    let answer = invoke_json(
        &ctx.global,
        &args.function.name,
        "set_policy",
        &json!({"task": "set_policy", "policy": document}),
    )
    .await?;
    print_version(ctx, &answer, "policy published");
    Ok(0)
}

async fn hold(ctx: &Ctx, args: HoldArgs) -> Result<u8, DjError> {
    let tenant = ctx
        .global
        .tenant
        .clone()
        .ok_or_else(|| DjError::usage("a hold needs --tenant"))?;
    let mut payload = json!({"task": "hold", "hold_id": args.id, "tenant_id": tenant,
        "reason": args.reason});
    if let Some(s) = &args.subject {
        payload["subject_id"] = json!(s);
    }
    if let (Some(m), Some(v)) = (&args.model, &args.model_version) {
        payload["model_name"] = json!(m);
        payload["model_version"] = json!(v);
    }
    if let Some(t) = args.from {
        payload["from"] = json!(t);
    }
    if let Some(t) = args.to {
        payload["to"] = json!(t);
    }
    let answer = invoke_json(&ctx.global, &args.function.name, "hold", &payload).await?;
    print_version(ctx, &answer, &format!("hold {} placed", args.id));
    Ok(0)
}

async fn erase(ctx: &Ctx, args: EraseArgs) -> Result<u8, DjError> {
    let tenant = ctx
        .global
        .tenant
        .clone()
        .ok_or_else(|| DjError::usage("an erasure needs --tenant"))?;
    let payload = json!({"task": "erase", "tenant_id": tenant, "subject_id": args.subject,
        "dry_run": args.dry_run});
    let answer = invoke_json(&ctx.global, &args.function.name, "erase", &payload).await?;
    if ctx.global.json {
        out::json(&answer);
        return Ok(0);
    }
    let e = &answer["erasure"];
    let records: Vec<String> = e["records"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{v} {k}")).collect())
        .unwrap_or_default();
    let found = if records.is_empty() {
        "no records".to_string()
    } else {
        records.join(", ")
    };
    out::line(format!(
        "{} {}: {found}",
        if args.dry_run {
            "would erase"
        } else {
            "erased"
        },
        "the subject"
    ));
    for f in e["files"].as_array().into_iter().flatten() {
        let what = match f["state"].as_str() {
            Some("planned") if f["archived"] == json!(true) => {
                "rewrite (archived: restored first)".to_string()
            }
            Some("planned") => "rewrite".to_string(),
            Some("rewritten") => format!(
                "rewritten to {} ({} rows removed)",
                f["into"].as_str().unwrap_or("?"),
                f["rows_removed"]
            ),
            Some("waiting") => format!("waiting: {}", f["reason"].as_str().unwrap_or("")),
            Some("gone") => "already gone".to_string(),
            _ => f.to_string(),
        };
        out::line(format!(
            "  {}  {} records  {what}",
            f["file_key"].as_str().unwrap_or("?"),
            f["records"]
        ));
    }
    if !args.dry_run {
        if let Some(shredded) = e["key_shredded"].as_bool() {
            out::line(format!(
                "subject key: {}",
                if shredded {
                    "shredded"
                } else {
                    "none was stored"
                }
            ));
        }
        match (e["done"].as_bool(), e["receipt_key"].as_str()) {
            (Some(true), Some(receipt)) => out::line(format!("signed receipt: {receipt}")),
            _ => out::line(
                "not finished: the index entries are gone; files still wait (see above), and \
                 retention runs finish them",
            ),
        }
    }
    Ok(0)
}

fn print_version(ctx: &Ctx, answer: &Value, what: &str) {
    if ctx.global.json {
        out::json(answer);
        return;
    }
    out::line(format!(
        "{what}: policy version {} ({})",
        answer["version"],
        answer["key"].as_str().unwrap_or("?")
    ));
}
