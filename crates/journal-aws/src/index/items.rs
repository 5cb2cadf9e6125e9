//! The DynamoDB item shapes of the single table, and their conversion to and from the core types.
//!
//! Every item has the table key `pk`/`sk` (see `journal_core::layout`). Timestamps are stored as
//! RFC 3339 strings (what humans and the timeline sort keys read) plus a `*_ms` number where
//! range filters or TTLs may want one.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use journal_core::integrity::{BlockHeader, ChainHead};
use journal_core::layout;
use journal_core::ports::{
    Claim, ExistingPointer, FileState, IndexEntry, ManifestEntry, Pointer, PointerState, PortError,
};
use journal_core::timestamp::Timestamp;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const STATE: &str = "state";

pub(crate) const GSI1PK: &str = "gsi1pk";
pub(crate) const GSI1SK: &str = "gsi1sk";
pub(crate) const GSI2PK: &str = "gsi2pk";
pub(crate) const GSI2SK: &str = "gsi2sk";

pub(crate) const STATE_CLAIMED: &str = "claimed";
pub(crate) const STATE_INDEXED: &str = "indexed";

/// Prefix of the block items' sort keys (`layout::block_sk`).
pub(crate) const BLOCK_SK_PREFIX: &str = "B#";

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

/// A stored item that does not have the shape we wrote: tampering, a foreign writer or a bug.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ItemError {
    #[error("attribute `{0}` is missing")]
    Missing(&'static str),
    #[error("attribute `{0}` is not of type {1}")]
    Type(&'static str, &'static str),
    #[error("attribute `{name}` is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
}

impl ItemError {
    /// As a port error of `op` on the item `pk`/`sk`.
    pub(crate) fn at(self, op: &str, item: &Item) -> PortError {
        let pk = item.get(PK).and_then(|v| v.as_s().ok()).map_or("?", |v| v);
        let sk = item.get(SK).and_then(|v| v.as_s().ok()).map_or("?", |v| v);
        PortError::permanent(
            op,
            format!("stored item pk={pk:?} sk={sk:?} is malformed: {self}"),
        )
    }
}

/// Typed reads of one item's attributes.
pub(crate) struct Attrs<'a>(pub &'a Item);

impl<'a> Attrs<'a> {
    pub(crate) fn opt_s(&self, name: &'static str) -> Result<Option<&'a str>, ItemError> {
        match self.0.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v)),
            Some(_) => Err(ItemError::Type(name, "S")),
        }
    }

    pub(crate) fn s(&self, name: &'static str) -> Result<&'a str, ItemError> {
        self.opt_s(name)?.ok_or(ItemError::Missing(name))
    }

    pub(crate) fn opt_string(&self, name: &'static str) -> Result<Option<String>, ItemError> {
        Ok(self.opt_s(name)?.map(str::to_string))
    }

    pub(crate) fn opt_n<T: FromStr>(&self, name: &'static str) -> Result<Option<T>, ItemError>
    where
        T::Err: std::fmt::Display,
    {
        match self.0.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => {
                v.parse::<T>().map(Some).map_err(|e| ItemError::Malformed {
                    name,
                    reason: e.to_string(),
                })
            }
            Some(_) => Err(ItemError::Type(name, "N")),
        }
    }

    pub(crate) fn n<T: FromStr>(&self, name: &'static str) -> Result<T, ItemError>
    where
        T::Err: std::fmt::Display,
    {
        self.opt_n(name)?.ok_or(ItemError::Missing(name))
    }

    pub(crate) fn opt_ts(&self, name: &'static str) -> Result<Option<Timestamp>, ItemError> {
        self.opt_s(name)?
            .map(|v| {
                Timestamp::parse(v).map_err(|e| ItemError::Malformed {
                    name,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    pub(crate) fn ts(&self, name: &'static str) -> Result<Timestamp, ItemError> {
        self.opt_ts(name)?.ok_or(ItemError::Missing(name))
    }

    pub(crate) fn file_state(&self, name: &'static str) -> Result<FileState, ItemError> {
        let v = self.s(name)?;
        FileState::parse(v).ok_or_else(|| ItemError::Malformed {
            name,
            reason: format!("unknown file state {v:?}"),
        })
    }

    /// A list of strings; absent is empty.
    pub(crate) fn strings(&self, name: &'static str) -> Result<Vec<String>, ItemError> {
        match self.0.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(Vec::new()),
            Some(AttributeValue::L(values)) => values
                .iter()
                .map(|v| match v {
                    AttributeValue::S(text) => Ok(text.clone()),
                    _ => Err(ItemError::Type(name, "L of S")),
                })
                .collect(),
            Some(_) => Err(ItemError::Type(name, "L")),
        }
    }

    pub(crate) fn blob(&self, name: &'static str) -> Result<&'a [u8], ItemError> {
        match self.0.get(name) {
            None => Err(ItemError::Missing(name)),
            Some(AttributeValue::B(b)) => Ok(b.as_ref()),
            Some(_) => Err(ItemError::Type(name, "B")),
        }
    }
}

// ---- record pointers and claims -------------------------------------------------------------

pub(crate) fn pointer_key(tenant_id: &str, record_id: &str) -> Item {
    key(layout::pointer_pk(tenant_id, record_id), layout::POINTER_SK)
}

/// The claim item: which block is about to chain the record, and a fingerprint of its content.
pub(crate) fn claim_item(c: &Claim) -> Item {
    let mut item = pointer_key(&c.tenant_id, &c.record_id);
    item.extend([
        (STATE.to_string(), s(STATE_CLAIMED)),
        ("tenant_id".to_string(), s(&c.tenant_id)),
        ("record_id".to_string(), s(&c.record_id)),
        ("block_id".to_string(), s(&c.block_id)),
        ("file_key".to_string(), s(&c.file_key)),
        ("content_mac".to_string(), s(&c.content_mac)),
        ("claimed_at".to_string(), s(c.claimed_at.to_string())),
        ("claimed_at_ms".to_string(), n(c.claimed_at.millis())),
    ]);
    item
}

/// The final pointer item, with the GSI attributes of the timelines it belongs to.
pub(crate) fn pointer_item(p: &Pointer) -> Item {
    let mut item = pointer_key(&p.tenant_id, &p.record_id);
    item.extend(pointer_attrs(p));
    // GSI key attributes may not be empty strings; an empty reference indexes nothing.
    let timeline = || s(layout::timeline_sk(p.occurred_at, &p.record_id));
    if let Some(subject) = present(&p.subject_ref) {
        item.insert(GSI1PK.into(), s(layout::subject_pk(&p.tenant_id, subject)));
        item.insert(GSI1SK.into(), timeline());
    }
    if p.kind == "access" {
        item.insert(GSI2PK.into(), s(layout::access_pk(&p.tenant_id)));
        item.insert(GSI2SK.into(), timeline());
    } else if let (Some(name), Some(version)) = (present(&p.model_name), present(&p.model_version))
    {
        item.insert(
            GSI2PK.into(),
            s(layout::model_pk(&p.tenant_id, name, version)),
        );
        item.insert(GSI2SK.into(), timeline());
    }
    item
}

/// The link item of an outcome or review: a copy of its pointer in the partition of the
/// decision it refers to (no GSI keys), so the decision's lookup reads both at once.
pub(crate) fn link_item(p: &Pointer) -> Option<Item> {
    let decision_id = present(&p.refers_to)?;
    let mut item = key(
        layout::pointer_pk(&p.tenant_id, decision_id),
        layout::link_sk(p.occurred_at, &p.record_id),
    );
    item.extend(pointer_attrs(p));
    Some(item)
}

fn pointer_attrs(p: &Pointer) -> Vec<(String, AttributeValue)> {
    let mut attrs = vec![
        (STATE.to_string(), s(STATE_INDEXED)),
        ("tenant_id".to_string(), s(&p.tenant_id)),
        ("record_id".to_string(), s(&p.record_id)),
        ("kind".to_string(), s(&p.kind)),
        ("block_id".to_string(), s(&p.block_id)),
        ("seq".to_string(), n(p.seq)),
        ("file_key".to_string(), s(&p.file_key)),
        ("row_group".to_string(), n(p.row_group)),
        ("row".to_string(), n(p.row)),
        ("leaf_index".to_string(), n(p.leaf_index)),
        ("occurred_at".to_string(), s(p.occurred_at.to_string())),
        ("occurred_at_ms".to_string(), n(p.occurred_at.millis())),
        ("received_at".to_string(), s(p.received_at.to_string())),
        ("content_mac".to_string(), s(&p.content_mac)),
        ("storage_state".to_string(), s(p.storage_state.as_str())),
        (
            BLOCK.to_string(),
            AttributeValue::B(header_blob(&p.block, p).into()),
        ),
    ];
    if p.block.chain_id != p.tenant_id {
        attrs.push((BLOCK_CHAIN.to_string(), s(&p.block.chain_id)));
    }
    if p.block.file_key != p.file_key {
        attrs.push((BLOCK_FILE.to_string(), s(&p.block.file_key)));
    }
    let optional = [
        ("subject_ref", &p.subject_ref),
        ("model_name", &p.model_name),
        ("model_version", &p.model_version),
        ("decision", &p.decision),
        ("risk_tier", &p.risk_tier),
        ("refers_to", &p.refers_to),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            attrs.push((name.to_string(), s(v)));
        }
    }
    attrs
}

/// The block header inside a pointer: binary, 133 bytes, since it is stored once per record.
/// Layout v1: `1u8`, header version (u32), prev hash, Merkle root, file SHA-256 (32 bytes
/// each), count (u64), first / last occurred and sealed (i64 ms), all big-endian. The chain id
/// and the header's file key are the pointer's tenant and file key unless `block_chain` /
/// `block_file` say otherwise (compaction moves rows; the header keeps the ingest file).
fn header_blob(h: &BlockHeader, p: &Pointer) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BLOB_LEN);
    out.push(HEADER_BLOB_V1);
    out.extend_from_slice(&h.version.to_be_bytes());
    for hash in [&h.prev_hash, &h.merkle_root, &h.file_sha256] {
        match hex::decode(hash).ok().filter(|b| b.len() == 32) {
            Some(raw) => out.extend_from_slice(&raw),
            // Never produced by ingest; stored as-is below so the copy stays faithful.
            None => return header_json_blob(h, p),
        }
    }
    out.extend_from_slice(&h.count.to_be_bytes());
    for t in [h.first_occurred_at, h.last_occurred_at, h.sealed_at] {
        out.extend_from_slice(&t.millis().to_be_bytes());
    }
    out
}

/// Fallback form: `2u8` then the header's canonical JSON.
fn header_json_blob(h: &BlockHeader, _p: &Pointer) -> Vec<u8> {
    let mut out = vec![HEADER_BLOB_JSON];
    out.extend_from_slice(&h.canonical_bytes());
    out
}

const HEADER_BLOB_V1: u8 = 1;
const HEADER_BLOB_JSON: u8 = 2;
const HEADER_BLOB_LEN: usize = 1 + 4 + 3 * 32 + 8 + 3 * 8;
const BLOCK: &str = "block";
const BLOCK_CHAIN: &str = "block_chain";
const BLOCK_FILE: &str = "block_file";

fn pointer_block_header(a: &Attrs<'_>) -> Result<BlockHeader, ItemError> {
    let blob = a.blob(BLOCK)?;
    let bad = |reason: &str| ItemError::Malformed {
        name: BLOCK,
        reason: reason.to_string(),
    };
    match blob.first() {
        Some(&HEADER_BLOB_JSON) => {
            return serde_json::from_slice(&blob[1..]).map_err(|e| bad(&e.to_string()))
        }
        Some(&HEADER_BLOB_V1) if blob.len() == HEADER_BLOB_LEN => {}
        _ => return Err(bad("not a block header (unknown layout or length)")),
    }
    let at = |i: usize, n: usize| &blob[i..i + n];
    let u64_at = |i: usize| u64::from_be_bytes(at(i, 8).try_into().expect("8 bytes"));
    let ts_at =
        |i: usize| Timestamp::from_millis(u64_at(i) as i64).map_err(|e| bad(&e.to_string()));
    let tenant_id = a.s("tenant_id")?.to_string();
    Ok(BlockHeader {
        version: u32::from_be_bytes(at(1, 4).try_into().expect("4 bytes")),
        chain_id: a
            .opt_string(BLOCK_CHAIN)?
            .unwrap_or_else(|| tenant_id.clone()),
        tenant_id,
        seq: a.n("seq")?,
        block_id: a.s("block_id")?.to_string(),
        prev_hash: hex::encode(at(5, 32)),
        merkle_root: hex::encode(at(37, 32)),
        count: u64_at(101),
        first_occurred_at: ts_at(109)?,
        last_occurred_at: ts_at(117)?,
        sealed_at: ts_at(125)?,
        file_key: match a.opt_string(BLOCK_FILE)? {
            Some(k) => k,
            None => a.s("file_key")?.to_string(),
        },
        file_sha256: hex::encode(at(69, 32)),
    })
}

/// A GSI key part, unless absent or empty.
fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|v| !v.is_empty())
}

pub(crate) fn pointer_state(a: &Attrs<'_>) -> Result<PointerState, ItemError> {
    match a.s(STATE)? {
        STATE_CLAIMED => Ok(PointerState::Claimed),
        STATE_INDEXED => Ok(PointerState::Indexed),
        other => Err(ItemError::Malformed {
            name: STATE,
            reason: format!("unknown pointer state {other:?}"),
        }),
    }
}

/// What a claim attempt found under the record id (a claim or a final pointer).
pub(crate) fn existing_pointer(item: &Item) -> Result<ExistingPointer, ItemError> {
    let a = Attrs(item);
    let state = pointer_state(&a)?;
    // A final pointer replaced the claim and does not keep its time; the receive time is the
    // same instant to within one invocation.
    let claimed_at = match a.opt_ts("claimed_at")? {
        Some(t) => t,
        None => a.ts("received_at")?,
    };
    Ok(ExistingPointer {
        state,
        block_id: a.s("block_id")?.to_string(),
        file_key: a.s("file_key")?.to_string(),
        content_mac: a.s("content_mac")?.to_string(),
        claimed_at,
    })
}

pub(crate) fn pointer(item: &Item) -> Result<Pointer, ItemError> {
    let a = Attrs(item);
    if pointer_state(&a)? != PointerState::Indexed {
        return Err(ItemError::Malformed {
            name: STATE,
            reason: "expected an indexed pointer".into(),
        });
    }
    Ok(Pointer {
        tenant_id: a.s("tenant_id")?.to_string(),
        record_id: a.s("record_id")?.to_string(),
        kind: a.s("kind")?.to_string(),
        block_id: a.s("block_id")?.to_string(),
        seq: a.n("seq")?,
        file_key: a.s("file_key")?.to_string(),
        row_group: a.n("row_group")?,
        row: a.n("row")?,
        leaf_index: a.n("leaf_index")?,
        occurred_at: a.ts("occurred_at")?,
        received_at: a.ts("received_at")?,
        subject_ref: a.opt_string("subject_ref")?,
        model_name: a.opt_string("model_name")?,
        model_version: a.opt_string("model_version")?,
        decision: a.opt_string("decision")?,
        risk_tier: a.opt_string("risk_tier")?,
        refers_to: a.opt_string("refers_to")?,
        content_mac: a.s("content_mac")?.to_string(),
        storage_state: a.file_state("storage_state")?,
        block: pointer_block_header(&a)?,
    })
}

pub(crate) fn index_entry(item: &Item) -> Result<IndexEntry, ItemError> {
    match pointer_state(&Attrs(item))? {
        PointerState::Claimed => existing_pointer(item).map(IndexEntry::Claimed),
        PointerState::Indexed => pointer(item).map(IndexEntry::Indexed),
    }
}

// ---- file manifest --------------------------------------------------------------------------

/// Key of the manifest entry of `file_key`, partitioned by the date in the key.
pub(crate) fn manifest_key(op: &str, tenant_id: &str, file_key: &str) -> Result<Item, PortError> {
    let date = layout::date_of_file_key(file_key).ok_or_else(|| {
        PortError::permanent(
            op,
            format!("file key {file_key:?} has no `/date=YYYY-MM-DD` partition"),
        )
    })?;
    Ok(key(layout::manifest_pk(tenant_id, date), file_key))
}

pub(crate) fn manifest_item(op: &str, e: &ManifestEntry) -> Result<Item, PortError> {
    let mut item = manifest_key(op, &e.tenant_id, &e.file_key)?;
    item.extend([
        ("tenant_id".to_string(), s(&e.tenant_id)),
        ("file_key".to_string(), s(&e.file_key)),
        ("block_id".to_string(), s(&e.block_id)),
        (STATE.to_string(), s(e.state.as_str())),
        ("rows".to_string(), n(e.rows)),
        ("size".to_string(), n(e.size)),
        ("sha256".to_string(), s(&e.sha256)),
        (
            "first_occurred_at".to_string(),
            s(e.first_occurred_at.to_string()),
        ),
        (
            "last_occurred_at".to_string(),
            s(e.last_occurred_at.to_string()),
        ),
        ("created_at".to_string(), s(e.created_at.to_string())),
        ("created_at_ms".to_string(), n(e.created_at.millis())),
    ]);
    if let Some(seq) = e.seq {
        item.insert("seq".into(), n(seq));
    }
    if let Some(last) = e.last_seq {
        item.insert("last_seq".into(), n(last));
    }
    if !e.merged_from.is_empty() {
        item.insert(
            "merged_from".into(),
            AttributeValue::L(e.merged_from.iter().map(s).collect()),
        );
    }
    if let Some(into) = &e.compacted_into {
        item.insert("compacted_into".into(), s(into));
    }
    if let Some(t) = e.delete_after {
        item.insert("delete_after".into(), s(t.to_string()));
    }
    if !e.risk_tiers.is_empty() {
        item.insert(
            "risk_tiers".into(),
            AttributeValue::L(e.risk_tiers.iter().map(s).collect()),
        );
    }
    if let Some(class) = &e.storage_class {
        item.insert("storage_class".into(), s(class));
    }
    if let Some(key) = &e.tombstone {
        item.insert("tombstone".into(), s(key));
    }
    if !e.erasure_receipts.is_empty() {
        item.insert(
            "erasure_receipts".into(),
            AttributeValue::L(e.erasure_receipts.iter().map(s).collect()),
        );
    }
    Ok(item)
}

pub(crate) fn manifest_entry(item: &Item) -> Result<ManifestEntry, ItemError> {
    let a = Attrs(item);
    Ok(ManifestEntry {
        tenant_id: a.s("tenant_id")?.to_string(),
        file_key: a.s("file_key")?.to_string(),
        block_id: a.s("block_id")?.to_string(),
        state: a.file_state(STATE)?,
        seq: a.opt_n("seq")?,
        rows: a.n("rows")?,
        size: a.n("size")?,
        sha256: a.s("sha256")?.to_string(),
        first_occurred_at: a.ts("first_occurred_at")?,
        last_occurred_at: a.ts("last_occurred_at")?,
        created_at: a.ts("created_at")?,
        last_seq: a.opt_n("last_seq")?,
        merged_from: a.strings("merged_from")?,
        compacted_into: a.opt_string("compacted_into")?,
        delete_after: a.opt_ts("delete_after")?,
        risk_tiers: a.strings("risk_tiers")?,
        storage_class: a.opt_string("storage_class")?,
        tombstone: a.opt_string("tombstone")?,
        erasure_receipts: a.strings("erasure_receipts")?,
    })
}

// ---- chain ----------------------------------------------------------------------------------

pub(crate) fn head_key(chain_id: &str) -> Item {
    key(layout::chain_pk(chain_id), layout::HEAD_SK)
}

pub(crate) fn head_item(head: &ChainHead) -> Item {
    let mut item = head_key(&head.chain_id);
    item.extend([
        ("chain_id".to_string(), s(&head.chain_id)),
        ("seq".to_string(), n(head.seq)),
        ("block_hash".to_string(), s(&head.block_hash)),
        ("block_id".to_string(), s(&head.block_id)),
    ]);
    item
}

pub(crate) fn chain_head(chain_id: &str, item: &Item) -> Result<ChainHead, ItemError> {
    let a = Attrs(item);
    Ok(ChainHead {
        chain_id: chain_id.to_string(),
        seq: a.n("seq")?,
        block_hash: a.s("block_hash")?.to_string(),
        block_id: a.s("block_id")?.to_string(),
    })
}

/// The block item: the canonical header is the record of truth; the other attributes are
/// copies for people browsing the table.
pub(crate) fn block_item(header: &BlockHeader, block_hash: &str) -> Item {
    let mut item = key(
        layout::chain_pk(&header.chain_id),
        layout::block_sk(header.seq),
    );
    let canonical = String::from_utf8_lossy(&header.canonical_bytes()).into_owned();
    item.extend([
        ("header".to_string(), s(canonical)),
        ("seq".to_string(), n(header.seq)),
        ("block_hash".to_string(), s(block_hash)),
        ("block_id".to_string(), s(&header.block_id)),
        ("tenant_id".to_string(), s(&header.tenant_id)),
        ("file_key".to_string(), s(&header.file_key)),
    ]);
    item
}

pub(crate) fn block_header(item: &Item) -> Result<BlockHeader, ItemError> {
    let text = Attrs(item).s("header")?;
    serde_json::from_str(text).map_err(|e| ItemError::Malformed {
        name: "header",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn sample_pointer() -> Pointer {
        Pointer {
            tenant_id: "t1".into(),
            record_id: "r1".into(),
            kind: "decision".into(),
            block_id: "b1".into(),
            seq: 7,
            file_key: "decisions/tenant=t1/date=2026-03-15/hour=10/b1.parquet".into(),
            row_group: 1,
            row: 2,
            leaf_index: 3,
            occurred_at: ts("2026-03-15T10:00:00.001Z"),
            received_at: ts("2026-03-15T10:00:01Z"),
            subject_ref: Some("s1".into()),
            model_name: Some("m".into()),
            model_version: Some("1".into()),
            decision: Some("approve".into()),
            risk_tier: None,
            refers_to: None,
            content_mac: "mac".into(),
            storage_state: FileState::Chained,
            block: BlockHeader {
                version: 1,
                chain_id: "t1".into(),
                tenant_id: "t1".into(),
                seq: 7,
                block_id: "b1".into(),
                prev_hash: "01".repeat(32),
                merkle_root: "02".repeat(32),
                count: 3,
                first_occurred_at: ts("2026-03-15T09:59:00.001Z"),
                last_occurred_at: ts("2026-03-15T10:00:00.001Z"),
                sealed_at: ts("2026-03-15T10:00:02Z"),
                file_key: "decisions/tenant=t1/date=2026-03-15/hour=10/b1.parquet".into(),
                file_sha256: "03".repeat(32),
            },
        }
    }

    #[test]
    fn pointer_round_trips_and_sets_gsi_keys() {
        let p = sample_pointer();
        let item = pointer_item(&p);
        assert_eq!(pointer(&item).unwrap(), p);
        assert_eq!(item[GSI1PK], s("S#t1#s1"));
        assert_eq!(item[GSI1SK], s("2026-03-15T10:00:00.001Z#r1"));
        assert_eq!(item[GSI2PK], s("M#t1#m#1"));
        assert!(!item.contains_key("risk_tier"));
        // The header costs 133 bytes, and nothing for the fields the pointer already holds.
        assert_eq!(item[BLOCK].as_b().unwrap().as_ref().len(), 133);
        assert!(!item.contains_key(BLOCK_CHAIN) && !item.contains_key(BLOCK_FILE));
        assert!(link_item(&p).is_none());
        let existing = existing_pointer(&item).unwrap();
        assert_eq!(existing.state, PointerState::Indexed);
        assert_eq!(existing.claimed_at, p.received_at);
    }

    #[test]
    fn headers_that_differ_from_the_pointer_and_odd_hashes_round_trip() {
        let mut p = sample_pointer();
        p.block.chain_id = "t1#2".into();
        p.block.file_key = "decisions/tenant=t1/date=2026-03-15/hour=10/b0.parquet".into();
        let item = pointer_item(&p);
        assert_eq!(pointer(&item).unwrap(), p);
        // A hash that is not 32 bytes of hex is kept verbatim, not mangled.
        p.block.prev_hash = "not hex".into();
        assert_eq!(pointer(&pointer_item(&p)).unwrap(), p);
    }

    #[test]
    fn an_outcome_gets_a_link_item_under_its_decision() {
        let mut p = sample_pointer();
        p.kind = "outcome".into();
        p.refers_to = Some("d1".into());
        let link = link_item(&p).unwrap();
        assert_eq!(link[PK], s(layout::pointer_pk("t1", "d1")));
        assert_eq!(link[SK], s("L#2026-03-15T10:00:00.001Z#r1"));
        assert!(!link.contains_key(GSI1PK) && !link.contains_key(GSI2PK));
        assert_eq!(pointer(&link).unwrap(), p);
    }

    #[test]
    fn claim_round_trips() {
        let c = Claim {
            tenant_id: "t1".into(),
            record_id: "r1".into(),
            content_mac: "mac".into(),
            block_id: "b1".into(),
            file_key: "f".into(),
            claimed_at: ts("2026-03-15T10:00:00Z"),
        };
        let e = existing_pointer(&claim_item(&c)).unwrap();
        assert_eq!(e.state, PointerState::Claimed);
        assert_eq!(e.claimed_at, c.claimed_at);
        assert!(matches!(
            index_entry(&claim_item(&c)).unwrap(),
            IndexEntry::Claimed(_)
        ));
    }

    #[test]
    fn malformed_items_name_the_attribute() {
        let mut item = pointer_item(&sample_pointer());
        item.insert("seq".into(), s("seven"));
        assert_eq!(pointer(&item), Err(ItemError::Type("seq", "N")));
        item.remove("seq");
        assert_eq!(pointer(&item), Err(ItemError::Missing("seq")));
        let err = ItemError::Missing("seq").at("get", &item);
        assert!(err.to_string().contains("D#t1#r1"));
    }

    #[test]
    fn a_manifest_entry_round_trips_with_every_optional_field() {
        let t = ts("2026-03-15T10:00:00Z");
        let e = ManifestEntry {
            tenant_id: "t".into(),
            file_key: "decisions/tenant=t/date=2026-03-15/hour=10/erased-01J-000.parquet".into(),
            block_id: "b1".into(),
            state: FileState::Archived,
            seq: Some(3),
            rows: 9,
            size: 1234,
            sha256: "ab".repeat(32),
            first_occurred_at: t,
            last_occurred_at: t,
            created_at: t,
            last_seq: Some(5),
            merged_from: vec!["a".into(), "b".into()],
            compacted_into: Some("c".into()),
            delete_after: Some(t),
            risk_tiers: vec!["high".into()],
            storage_class: Some("GLACIER".into()),
            tombstone: Some("tombstones/x.json".into()),
            erasure_receipts: vec![
                "erasures/tenant=t/1.json".into(),
                "erasures/tenant=t/2.json".into(),
            ],
        };
        let item = manifest_item("op", &e).unwrap();
        assert_eq!(manifest_entry(&item).unwrap(), e);
    }

    #[test]
    fn manifest_key_needs_a_date() {
        assert!(manifest_key("op", "t", "no-date").is_err());
        let k = manifest_key(
            "op",
            "t",
            "decisions/tenant=t/date=2026-01-02/hour=01/x.parquet",
        )
        .unwrap();
        assert_eq!(k[PK], s("F#t#2026-01-02"));
    }
}
