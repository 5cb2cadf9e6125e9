//! KmsSubjectKeys: create, reuse, race, and the encryption context binding.

use aws_sdk_dynamodb::types::AttributeValue;
use journal_aws::{AwsClients, KmsSubjectKeys};
use journal_core::features_crypto::{aad, open, seal, DataKey};
use journal_core::layout;
use journal_core::ports::{PortError, SubjectKeyStore};

use crate::common;

/// Whether two keys are the same: what one seals, the other opens.
fn same(a: &DataKey, b: &DataKey) -> bool {
    let ad = aad("t", "r", "h");
    open(b, &ad, &seal(a, &ad, b"features")).is_ok()
}

async fn setup(test: &str) -> Option<(AwsClients, String, String)> {
    let c = common::clients(test).await?;
    let table = common::create_table(&c).await;
    let key_id = common::create_kms_key(&c).await;
    Some((c, table, key_id))
}

fn store(c: &AwsClients, table: &str, key_id: &str) -> KmsSubjectKeys {
    KmsSubjectKeys::new(c.dynamodb.clone(), c.kms.clone(), table, key_id)
}

#[tokio::test]
async fn data_keys_are_created_once_and_unwrapped_later() {
    let Some((c, table, key_id)) = setup("subject_keys").await else {
        return;
    };
    let keys = store(&c, &table, &key_id);

    let k1 = keys.data_key("bank_1", "subj_a").await.unwrap();
    let cached = keys.data_key("bank_1", "subj_a").await.unwrap();
    assert!(same(&k1, &cached));

    // Stored wrapped only: the item holds a KMS ciphertext, not the key.
    let item = c
        .dynamodb
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            AttributeValue::S(layout::subject_key_pk("bank_1", "subj_a")),
        )
        .key("sk", AttributeValue::S(layout::SUBJECT_KEY_SK.into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let wrapped = item["wrapped"].as_b().unwrap().as_ref().to_vec();
    assert!(wrapped.len() > 32);
    assert!(!same(&k1, &DataKey::from_bytes(&wrapped[..32]).unwrap()));

    // A fresh process (empty cache) unwraps the stored key with KMS Decrypt.
    let fresh = store(&c, &table, &key_id).with_cache_capacity(0);
    assert!(same(
        &k1,
        &fresh.data_key("bank_1", "subj_a").await.unwrap()
    ));
    assert!(same(
        &k1,
        &fresh.data_key("bank_1", "subj_a").await.unwrap()
    ));

    // Other subjects and other tenants get other keys.
    let k2 = keys.data_key("bank_1", "subj_b").await.unwrap();
    let k3 = keys.data_key("bank_2", "subj_a").await.unwrap();
    assert!(!same(&k1, &k2));
    assert!(!same(&k1, &k3));

    // Readers find stored keys and never create one.
    let reader = store(&c, &table, &key_id).with_cache_capacity(0);
    let found = reader.existing_key("bank_1", "subj_a").await.unwrap();
    assert!(same(&k1, &found.expect("a stored key")));
    assert!(reader
        .existing_key("bank_1", "never_seen")
        .await
        .unwrap()
        .is_none());
    assert!(
        !reader.shred("bank_1", "never_seen").await.unwrap(),
        "no key was created"
    );

    // Erasure: after shredding, the old key is gone for good and a new one is issued.
    assert!(fresh.shred("bank_1", "subj_a").await.unwrap());
    assert!(!fresh.shred("bank_1", "subj_a").await.unwrap());
    assert!(reader
        .existing_key("bank_1", "subj_a")
        .await
        .unwrap()
        .is_none());
    keys.forget("bank_1", "subj_a");
    let renewed = keys.data_key("bank_1", "subj_a").await.unwrap();
    assert!(!same(&k1, &renewed));
}

#[tokio::test]
async fn concurrent_first_uses_agree_on_one_key() {
    let Some((c, table, key_id)) = setup("subject_keys_race").await else {
        return;
    };
    for round in 0..8 {
        let subject = format!("racer_{round}");
        // Separate stores = separate caches, as in separate Lambda instances.
        let stores: Vec<KmsSubjectKeys> = (0..4)
            .map(|_| store(&c, &table, &key_id).with_cache_capacity(0))
            .collect();
        let keys = futures::future::join_all(stores.iter().map(|s| s.data_key("bank_1", &subject)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert!(keys.iter().all(|k| same(k, &keys[0])), "round {round}");
        let later = store(&c, &table, &key_id)
            .data_key("bank_1", &subject)
            .await
            .unwrap();
        assert!(same(&later, &keys[0]));
    }
}

#[tokio::test]
async fn a_wrapped_key_moved_to_another_subject_does_not_decrypt() {
    let Some((c, table, key_id)) = setup("subject_keys_context").await else {
        return;
    };
    let keys = store(&c, &table, &key_id).with_cache_capacity(0);
    keys.data_key("bank_1", "victim").await.unwrap();
    let get = |subject: &str| {
        c.dynamodb
            .get_item()
            .table_name(&table)
            .key(
                "pk",
                AttributeValue::S(layout::subject_key_pk("bank_1", subject)),
            )
            .key("sk", AttributeValue::S(layout::SUBJECT_KEY_SK.into()))
            .send()
    };
    let mut item = get("victim").await.unwrap().item.unwrap();
    item.insert(
        "pk".into(),
        AttributeValue::S(layout::subject_key_pk("bank_1", "thief")),
    );
    c.dynamodb
        .put_item()
        .table_name(&table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    let err = keys.data_key("bank_1", "thief").await.unwrap_err();
    assert!(matches!(err, PortError::Permanent { .. }), "{err}");
    assert!(err.to_string().contains("K#bank_1#thief"), "{err}");
}
