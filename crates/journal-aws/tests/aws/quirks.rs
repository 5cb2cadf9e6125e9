//! The fallbacks for endpoints that return neither the existing item on a failed condition
//! (`ReturnValuesOnConditionCheckFailure`) nor per-item transaction cancellation reasons.
//! An interceptor strips both from the answers of the real endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::HashMap;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
    FinalizerInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use journal_aws::{AwsClients, Backoff, DynamoIndex, KmsSubjectKeys};
use journal_core::features_crypto::{aad, open, seal};
use journal_core::integrity::GENESIS_PREV_HASH;
use journal_core::ports::{
    AbandonOutcome, AppendOutcome, Claim, ClaimResult, FileState, JournalIndex, PortError,
    SubjectKeyStore,
};

use crate::common::{self, file_key, header, pending_entry, ts};

/// Counts of answers stripped: (condition failures, transaction cancellations).
static STRIPPED: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

#[derive(Debug)]
struct StripConditionDetails;

impl Intercept for StripConditionDetails {
    fn name(&self) -> &'static str {
        "StripConditionDetails"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let response = context.response_mut();
        let kind = response
            .headers()
            .get("x-amzn-errortype")
            .unwrap_or_default();
        let body = if kind.starts_with("ConditionalCheckFailedException") {
            STRIPPED[0].fetch_add(1, Ordering::SeqCst);
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#
        } else if kind.starts_with("TransactionCanceledException") {
            STRIPPED[1].fetch_add(1, Ordering::SeqCst);
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled"}"#
        } else {
            return Ok(());
        };
        response.headers_mut().remove("x-amz-crc32");
        response.headers_mut().remove("content-length");
        *response.body_mut() = SdkBody::from(body);
        Ok(())
    }
}

async fn plain_dynamodb(test: &str) -> Option<(AwsClients, aws_sdk_dynamodb::Client, String)> {
    let c = common::clients(test).await?;
    let table = common::create_table(&c).await;
    let conf = aws_sdk_dynamodb::config::Builder::from(&c.sdk_config)
        .interceptor(StripConditionDetails)
        .build();
    Some((c, aws_sdk_dynamodb::Client::from_conf(conf), table))
}

#[tokio::test]
async fn conditions_are_resolved_by_reading_back() {
    let Some((_, dynamodb, table)) = plain_dynamodb("quirks_index").await else {
        return;
    };
    let ix = DynamoIndex::new(dynamodb, table);
    let t = "bank_1";

    let claim = Claim {
        tenant_id: t.into(),
        record_id: "r1".into(),
        content_mac: "mac1".into(),
        block_id: "A".into(),
        file_key: file_key(t, "A"),
        claimed_at: ts("2026-03-15T10:00:00Z"),
    };
    assert_eq!(
        ix.claim(std::slice::from_ref(&claim)).await.unwrap(),
        vec![ClaimResult::Won]
    );
    let again = Claim {
        block_id: "B".into(),
        ..claim.clone()
    };
    match &ix.claim(&[again]).await.unwrap()[0] {
        ClaimResult::Existing(e) => {
            assert_eq!((e.block_id.as_str(), e.content_mac.as_str()), ("A", "mac1"))
        }
        other => panic!("unexpected {other:?}"),
    }

    // Chain: genesis, then stale, fenced, and a repeat of a landed append.
    let a = pending_entry(t, "A");
    assert!(ix.put_manifest_pending(&a).await.unwrap());
    let h0 = header(t, 0, GENESIS_PREV_HASH, "A");
    assert_eq!(ix.append_block(&h0).await.unwrap(), AppendOutcome::Appended);
    assert_eq!(ix.append_block(&h0).await.unwrap(), AppendOutcome::Appended);

    assert!(ix
        .put_manifest_pending(&pending_entry(t, "S"))
        .await
        .unwrap());
    assert_eq!(
        ix.append_block(&header(t, 0, GENESIS_PREV_HASH, "S"))
            .await
            .unwrap(),
        AppendOutcome::HeadMoved
    );
    assert_eq!(
        ix.append_block(&header(t, 1, &h0.block_hash(), "F"))
            .await
            .unwrap(),
        AppendOutcome::Fenced
    );
    let h1 = header(t, 1, &h0.block_hash(), "S");
    assert_eq!(ix.append_block(&h1).await.unwrap(), AppendOutcome::Appended);

    // Abandon of a chained entry reads the entry back.
    match ix
        .abandon_manifest(t, &a.file_key, "A", ts("2026-03-15T11:00:00Z"))
        .await
        .unwrap()
    {
        AbandonOutcome::AlreadyChained(e) => assert_eq!(e.state, FileState::Chained),
        other => panic!("unexpected {other:?}"),
    }
    let err = ix
        .mark_manifest_live(t, &file_key(t, "F"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("missing or in another state"),
        "{err}"
    );
    assert!(
        STRIPPED[0].load(Ordering::SeqCst) >= 2,
        "the interceptor did not fire"
    );
    assert!(
        STRIPPED[1].load(Ordering::SeqCst) >= 3,
        "the interceptor did not fire"
    );
}

#[tokio::test]
async fn subject_key_races_read_the_winner_back() {
    let Some((c, dynamodb, table)) = plain_dynamodb("quirks_keys").await else {
        return;
    };
    let key_id = common::create_kms_key(&c).await;
    let stores: Vec<KmsSubjectKeys> = (0..4)
        .map(|_| {
            KmsSubjectKeys::new(dynamodb.clone(), c.kms.clone(), &table, &key_id)
                .with_cache_capacity(0)
        })
        .collect();
    for round in 0..4 {
        let subject = format!("s{round}");
        let keys = futures::future::join_all(stores.iter().map(|s| s.data_key("t", &subject)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let ad = aad("t", "r", "h");
        let sealed = seal(&keys[0], &ad, b"x");
        assert!(
            keys.iter().all(|k| open(k, &ad, &sealed).is_ok()),
            "round {round}"
        );
    }
}

/// The request body of the current BatchWriteItem attempt, kept for its response.
#[derive(Clone, Debug)]
struct BatchRequest(serde_json::Value);

impl Storable for BatchRequest {
    type Storer = StoreReplace<Self>;
}

/// Answers the first `failures` BatchWriteItem calls as if DynamoDB had processed only the
/// first half of their items (the real endpoint did write them all; puts are idempotent).
#[derive(Debug)]
struct Unprocessed {
    failures: Arc<AtomicUsize>,
    sizes: Arc<Mutex<Vec<usize>>>,
}

impl Unprocessed {
    /// Whether this answer is to be doctored (the first `failures` ones are).
    fn doctor(&self) -> bool {
        self.failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl Intercept for Unprocessed {
    fn name(&self) -> &'static str {
        "Unprocessed"
    }

    /// BatchGetItem: keeps the items of the first half of the keys and answers the second
    /// half's keys as unprocessed.
    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Some(BatchRequest(body)) = cfg.load::<BatchRequest>().cloned() else {
            return Ok(());
        };
        let Some(Ok(output)) = context.output_or_error_mut() else {
            return Ok(());
        };
        let Some(out) = output.downcast_mut::<BatchGetItemOutput>() else {
            return Ok(());
        };
        let (table, keys) = body["RequestItems"]
            .as_object()
            .and_then(|m| m.iter().next())
            .map(|(t, r)| (t.clone(), r["Keys"].as_array().cloned().unwrap_or_default()))
            .expect("one table");
        self.sizes.lock().unwrap().push(keys.len());
        if !self.doctor() {
            return Ok(());
        }
        let string = |v: &serde_json::Value| v["S"].as_str().unwrap_or_default().to_string();
        let unprocessed: Vec<(String, String)> = keys[keys.len() / 2..]
            .iter()
            .map(|k| (string(&k["pk"]), string(&k["sk"])))
            .collect();
        let text = |item: &HashMap<String, AttributeValue>, name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        if let Some(items) = out.responses.as_mut().and_then(|r| r.get_mut(&table)) {
            items.retain(|item| !unprocessed.contains(&(text(item, "pk"), text(item, "sk"))));
        }
        let left = unprocessed
            .iter()
            .map(|(pk, sk)| {
                HashMap::from([
                    ("pk".to_string(), AttributeValue::S(pk.clone())),
                    ("sk".to_string(), AttributeValue::S(sk.clone())),
                ])
            })
            .collect();
        let left = KeysAndAttributes::builder()
            .set_keys(Some(left))
            .consistent_read(true)
            .build()?;
        out.unprocessed_keys = Some(HashMap::from([(table, left)]));
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        let target = request.headers().get("x-amz-target");
        if target == Some("DynamoDB_20120810.BatchWriteItem")
            || target == Some("DynamoDB_20120810.BatchGetItem")
        {
            let body: serde_json::Value =
                serde_json::from_slice(request.body().bytes().expect("in-memory body"))?;
            cfg.interceptor_state().store_put(BatchRequest(body));
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Some(BatchRequest(body)) = cfg.load::<BatchRequest>().cloned() else {
            return Ok(());
        };
        let (table, requests) = body["RequestItems"]
            .as_object()
            .and_then(|m| m.iter().next())
            .map(|(t, r)| (t.clone(), r.clone()))
            .expect("one table");
        // BatchGetItem answers are doctored once deserialized (modify_before_attempt_completion).
        if requests.is_object() {
            return Ok(());
        }
        let requests = requests.as_array().cloned().unwrap_or_default();
        self.sizes.lock().unwrap().push(requests.len());
        if !self.doctor() || context.response().status().as_u16() != 200 {
            return Ok(());
        }
        let unprocessed = requests[requests.len() / 2..].to_vec();
        let answer = serde_json::json!({ "UnprocessedItems": { table: unprocessed } });
        let response = context.response_mut();
        response.headers_mut().remove("x-amz-crc32");
        response.headers_mut().remove("content-length");
        *response.body_mut() = SdkBody::from(answer.to_string());
        Ok(())
    }
}

async fn index_with_unprocessed(
    test: &str,
    failures: usize,
) -> Option<(DynamoIndex, Arc<Mutex<Vec<usize>>>, Arc<AtomicUsize>)> {
    let c = common::clients(test).await?;
    let table = common::create_table(&c).await;
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(AtomicUsize::new(failures));
    let conf = aws_sdk_dynamodb::config::Builder::from(&c.sdk_config)
        .interceptor(Unprocessed {
            failures: failures.clone(),
            sizes: sizes.clone(),
        })
        .build();
    let backoff = Backoff {
        max_attempts: 4,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(10),
    };
    let ix =
        DynamoIndex::new(aws_sdk_dynamodb::Client::from_conf(conf), table).with_backoff(backoff);
    Some((ix, sizes, failures))
}

#[tokio::test]
async fn unprocessed_pointers_are_sent_again() {
    let Some((ix, sizes, _)) = index_with_unprocessed("quirks_unprocessed", 2).await else {
        return;
    };
    // Decisions only: an outcome adds its link item to the batch.
    let pointers: Vec<_> = (0..)
        .filter(|i| i % 5 != 4)
        .take(25)
        .map(|i| crate::pointers::pointer(i, "bank_1"))
        .collect();
    ix.write_pointers(&pointers).await.unwrap();
    // 25 sent, 13 left over, resent; 7 left over, resent; done.
    assert_eq!(*sizes.lock().unwrap(), vec![25, 13, 7]);
    for p in &pointers {
        assert!(ix
            .get_pointer("bank_1", &p.record_id)
            .await
            .unwrap()
            .is_some());
    }
}

#[tokio::test]
async fn pointers_that_stay_unprocessed_are_a_transient_error() {
    let Some((ix, sizes, _)) =
        index_with_unprocessed("quirks_unprocessed_forever", usize::MAX).await
    else {
        return;
    };
    let pointers: Vec<_> = (0..10)
        .map(|i| crate::pointers::pointer(i, "bank_1"))
        .collect();
    let err = ix.write_pointers(&pointers).await.unwrap_err();
    assert!(matches!(err, PortError::Transient { .. }), "{err}");
    assert!(
        err.to_string().contains("unprocessed after 4 attempts"),
        "{err}"
    );
    assert_eq!(sizes.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn unprocessed_pointer_reads_are_asked_again() {
    let Some((ix, sizes, failures)) = index_with_unprocessed("quirks_unprocessed_gets", 0).await
    else {
        return;
    };
    let pointers: Vec<_> = (0..)
        .filter(|i| i % 5 != 4)
        .take(40)
        .map(|i| crate::pointers::pointer(i, "bank_1"))
        .collect();
    ix.write_pointers(&pointers).await.unwrap();
    sizes.lock().unwrap().clear();
    failures.store(2, Ordering::SeqCst);
    let ids: Vec<String> = pointers.iter().map(|p| p.record_id.clone()).collect();
    let mut got = ix.get_pointers("bank_1", &ids).await.unwrap();
    got.sort_by_key(|p| p.leaf_index);
    assert_eq!(got, pointers);
    // One batch of 40 keys: 20 answered, 20 asked again, 10 of them answered, 10 again.
    assert_eq!(*sizes.lock().unwrap(), vec![40, 20, 10]);
}
