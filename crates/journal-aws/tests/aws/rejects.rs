//! SqsRejectSink: bodies and attributes on the dead-letter queue.

use std::collections::HashMap;

use journal_aws::{
    SqsRejectSink, ATTR_BODY_ENCODING, ATTR_FIELD, ATTR_REASON, ATTR_RECORD_INDEX,
    ATTR_SOURCE_MESSAGE_ID,
};
use journal_core::ports::{RejectSink, RejectedMessage};
use journal_core::validate::Rejection;

use crate::common;

fn reject(i: usize, body: &str, record_index: Option<usize>, body_base64: bool) -> RejectedMessage {
    RejectedMessage {
        message_id: format!("msg-{i}"),
        body: body.into(),
        body_base64,
        rejection: Rejection {
            record_index,
            field: format!("field_{i}"),
            reason: format!("reason {i}"),
        },
    }
}

#[tokio::test]
async fn rejects_arrive_with_their_reasons() {
    let Some(c) = common::clients("rejects").await else {
        return;
    };
    let queue_url = common::create_queue(&c).await;
    let sink = SqsRejectSink::new(c.sqs.clone(), &queue_url);

    let mut rejects: Vec<RejectedMessage> = (0..9)
        .map(|i| reject(i, &format!("{{\"n\":{i}}}"), None, false))
        .collect();
    rejects.push(reject(9, "{\"packed\":1}", Some(3), false));
    rejects.push(reject(10, "/w==", None, true));
    rejects.push(reject(11, "bad\u{0}char", Some(0), false));
    rejects.push(reject(12, "", None, false));
    sink.send_rejects(&rejects).await.unwrap();
    sink.send_rejects(&[]).await.unwrap();

    let mut got: HashMap<String, (String, HashMap<String, String>)> = HashMap::new();
    for _ in 0..20 {
        let out = c
            .sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let attrs: HashMap<String, String> = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_string()))
                .collect();
            got.insert(
                attrs[ATTR_SOURCE_MESSAGE_ID].clone(),
                (m.body().unwrap().to_string(), attrs),
            );
        }
        if got.len() == rejects.len() {
            break;
        }
    }
    assert_eq!(got.len(), rejects.len());

    let (body, attrs) = &got["msg-0"];
    assert_eq!(body, "{\"n\":0}");
    assert_eq!(attrs[ATTR_FIELD], "field_0");
    assert_eq!(attrs[ATTR_REASON], "reason 0");
    assert!(!attrs.contains_key(ATTR_RECORD_INDEX));
    assert!(!attrs.contains_key(ATTR_BODY_ENCODING));

    let (body, attrs) = &got["msg-9"];
    assert_eq!(body, "{\"packed\":1}");
    assert_eq!(attrs[ATTR_RECORD_INDEX], "3");

    let (body, attrs) = &got["msg-10"];
    assert_eq!(
        (body.as_str(), attrs[ATTR_BODY_ENCODING].as_str()),
        ("/w==", "base64")
    );

    // A body SQS cannot carry as text goes base64-encoded.
    let (body, attrs) = &got["msg-11"];
    assert_eq!(attrs[ATTR_BODY_ENCODING], "base64");
    assert_eq!(attrs[ATTR_RECORD_INDEX], "0");
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap(),
        b"bad\0char"
    );

    assert_eq!(got["msg-12"].1[ATTR_BODY_ENCODING], "empty");
}

#[tokio::test]
async fn a_missing_queue_is_an_error_naming_it() {
    let Some(c) = common::clients("rejects_missing").await else {
        return;
    };
    let queue_url = common::create_queue(&c).await;
    let missing = format!("{queue_url}-missing");
    let sink = SqsRejectSink::new(c.sqs.clone(), &missing);
    let err = sink
        .send_rejects(&[reject(0, "{}", None, false)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&missing), "{err}");
}
