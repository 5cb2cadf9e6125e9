//! What-if: re-decide one decision, or a page of a model's decisions, with another threshold
//! and/or another registered model version, and list what would flip.

use super::api::{Answer, Flip, Operation, Request, WhatIfPage};
use super::lookup::{Finder, Lookup, RowReader};
use super::reexec::{features_of, Registry};
use super::service::{page_size, Done, Failure, ReplayService};
use super::views::{page_after, Cursor};
use crate::access::Role;
use crate::checkpoint::CheckpointStore;
use crate::models::{evaluate, redecide};
use crate::ports::{JournalIndex, Pointer, RangedObjectStore, SubjectKeyStore};
use crate::record::Kind;
use crate::timestamp::Timestamp;

pub(super) async fn what_if<S, I, K, C>(
    svc: &ReplayService<S, I, K, C>,
    role: Role,
    request: &Request,
    now: Timestamp,
) -> Result<Done, Failure>
where
    S: RangedObjectStore,
    C: CheckpointStore,
    I: JournalIndex,
    K: SubjectKeyStore,
{
    let Operation::WhatIf {
        decision_id,
        model_name,
        model_version,
        range,
        threshold,
        model_sha256,
        limit,
        cursor,
    } = &request.op
    else {
        return Err(Failure::bad_request("not a what-if"));
    };
    let tenant = request.tenant_id.as_str();
    if threshold.is_none() && model_sha256.is_none() {
        return Err(Failure::bad_request(
            "threshold or model_sha256: a what-if needs another threshold or another model",
        ));
    }
    if let Some(t) = threshold {
        if !t.is_finite() {
            return Err(Failure::bad_request("threshold: must be a finite number"));
        }
    }
    if model_sha256.is_some() && role != Role::Auditor {
        return Err(Failure::denied(
            "another model runs on raw features: auditor role required",
        ));
    }
    let witness = svc.witness();
    let finder = Finder::new(svc.store(), svc.index()).with_witness(&witness);
    let mut reader = RowReader::new(svc.store());
    let mut registry = Registry::default();
    let mut page = WhatIfPage::default();
    let mut read = Vec::new();

    let pointers: Vec<Pointer>;
    let selected: Vec<&Pointer>;
    let single;
    match (decision_id, model_name, model_version) {
        (Some(id), None, None) => {
            single = finder.by_id(&mut reader, tenant, id, now).await?;
            page.total_in_range = 1;
            let mut skipped = |why: &str| *page.skipped.entry(why.to_string()).or_default() += 1;
            match &single {
                Lookup::Found(_) => {}
                Lookup::NotFound { .. } => {
                    return Err(Failure::not_found(format!("{id}: no such record")))
                }
                Lookup::Pending { .. } => skipped("pending"),
                Lookup::Archived(_) => skipped("archived"),
            }
            pointers = Vec::new();
            selected = Vec::new();
        }
        (None, Some(name), Some(version)) => {
            let (from, to) = range.bounds();
            pointers = svc
                .index()
                .query_model(tenant, name, version, from, to)
                .await?
                .into_iter()
                .filter(|p| p.kind == Kind::Decision.as_str())
                .collect();
            page.total_in_range = pointers.len() as u64;
            let after = cursor.as_deref().map(Cursor::parse).transpose()?;
            let (slice, next) = page_after(&pointers, after.as_ref(), page_size(*limit)?);
            page.next_cursor = next.map(|c| c.to_string());
            selected = slice.iter().collect();
            single = Lookup::NotFound {
                record_id: String::new(),
            };
        }
        _ => {
            return Err(Failure::bad_request(
                "decision_id, or model_name with model_version (and a time range): one of the two",
            ))
        }
    }

    let mut founds = Vec::new();
    if let Lookup::Found(f) = single {
        founds.push(Lookup::Found(f));
    }
    for p in selected {
        founds.push(finder.at_pointer(&mut reader, p, now).await?);
    }
    for found in founds {
        let f = match found {
            Lookup::Found(f) => f,
            Lookup::Archived(_) => {
                *page.skipped.entry("archived".into()).or_default() += 1;
                continue;
            }
            _ => {
                *page.skipped.entry("pending".into()).or_default() += 1;
                continue;
            }
        };
        let r = &f.record;
        read.push(r.decision_id.clone());
        let (Some(outputs), Some(original)) = (r.outputs.as_deref(), r.decision.as_deref()) else {
            *page
                .skipped
                .entry("no recorded decision".into())
                .or_default() += 1;
            continue;
        };
        if r.llm.is_some() {
            *page.skipped.entry("llm: not re-run".into()).or_default() += 1;
            continue;
        }
        let Some(model) = r.model.as_ref() else {
            *page.skipped.entry("no model".into()).or_default() += 1;
            continue;
        };
        let evaluation = match model_sha256 {
            Some(sha) => {
                let artifact = registry.load(svc.store(), sha).await?;
                let features = match features_of(svc, &f, None).await {
                    Ok((features, _)) => features,
                    Err(_) => {
                        *page
                            .skipped
                            .entry("features unavailable".into())
                            .or_default() += 1;
                        continue;
                    }
                };
                evaluate(&artifact, &features, *threshold)
            }
            None => {
                let artifact = match registry.load(svc.store(), &model.artifact_sha256).await {
                    Ok(a) => a,
                    Err(_) => {
                        *page
                            .skipped
                            .entry("artifact not in registry".into())
                            .or_default() += 1;
                        continue;
                    }
                };
                redecide(&artifact, outputs, threshold.unwrap_or_default())
            }
        };
        let evaluation = evaluation
            .map_err(|e| Failure::bad_request(format!("re-deciding {}: {e}", r.decision_id)))?;
        page.evaluated += 1;
        *page
            .transitions
            .entry(format!("{original}→{}", evaluation.decision))
            .or_default() += 1;
        if evaluation.decision != original {
            page.flipped += 1;
            page.flips.push(Flip {
                decision_id: r.decision_id.clone(),
                occurred_at: r.occurred_at,
                original: original.to_string(),
                new: evaluation.decision.clone(),
                score: evaluation.outputs.first().map(|o| o.score),
            });
        }
    }
    drop(pointers);
    Ok(Done::new(Answer::WhatIf(page), read))
}
