//! load_master_key: the secret's value is used, never reported.

use journal_aws::{load_master_key, SecretError};

use crate::common;

#[tokio::test]
async fn master_key_loads_and_errors_name_only_the_secret() {
    let Some(c) = common::clients("secrets").await else {
        return;
    };
    let good = common::unique("dj-test-master");
    let value = r#"{"version":1,"master_key":"0123456789abcdef0123456789abcdef-SECRETVALUE"}"#;
    c.secretsmanager
        .create_secret()
        .name(&good)
        .secret_string(value)
        .send()
        .await
        .unwrap();
    let key = load_master_key(&c.secretsmanager, &good).await.unwrap();
    assert!(!format!("{key:?}").contains("SECRETVALUE"));
    // Same secret, same derived keys.
    let again = load_master_key(&c.secretsmanager, &good).await.unwrap();
    assert_eq!(
        key.tenant_keys("t").subject_ref("s"),
        again.tenant_keys("t").subject_ref("s")
    );

    let short = common::unique("dj-test-short");
    c.secretsmanager
        .create_secret()
        .name(&short)
        .secret_string(r#"{"master_key":"tooShortSECRETVALUE"}"#)
        .send()
        .await
        .unwrap();
    let err = load_master_key(&c.secretsmanager, &short)
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains(&short));
    assert!(!err.to_string().contains("SECRETVALUE"), "{err}");

    let garbage = common::unique("dj-test-garbage");
    c.secretsmanager
        .create_secret()
        .name(&garbage)
        .secret_string("not json SECRETVALUE")
        .send()
        .await
        .unwrap();
    let err = load_master_key(&c.secretsmanager, &garbage)
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Invalid { .. }), "{err}");
    assert!(!err.to_string().contains("SECRETVALUE"), "{err}");

    let missing = common::unique("dj-test-missing");
    let err = load_master_key(&c.secretsmanager, &missing)
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Fetch { .. }), "{err}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains(&missing), "{err}");
}
