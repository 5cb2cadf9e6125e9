//! Where checkpoints are kept: a write-once object store (S3 with Object Lock in
//! `journal-aws`; [`MemoryStore`] for tests).

use std::future::Future;

use bytes::Bytes;

use crate::memory::MemoryStore;
use crate::ports::PortError;

pub trait CheckpointStore: Send + Sync {
    /// Stores `body` at `key` unless an object already exists there; never overwrites.
    /// `Ok(false)` when the key was taken (another writer got there first).
    fn put_if_absent(
        &self,
        key: &str,
        body: Bytes,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Every key under `prefix`, in lexicographic order.
    fn list_keys(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
    /// The first key under `prefix` that sorts after `start_after` (one list request).
    fn first_key_after(
        &self,
        prefix: &str,
        start_after: &str,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
    /// `Ok(None)` when the object does not exist.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>, PortError>> + Send;
}

fn objects(
    store: &MemoryStore,
) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Bytes>> {
    store.objects.lock().unwrap_or_else(|e| e.into_inner())
}

impl CheckpointStore for MemoryStore {
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, PortError> {
        let mut objects = objects(self);
        if objects.contains_key(key) {
            return Ok(false);
        }
        objects.insert(key.to_string(), body);
        Ok(true)
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        Ok(objects(self)
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }

    async fn first_key_after(
        &self,
        prefix: &str,
        start_after: &str,
    ) -> Result<Option<String>, PortError> {
        use std::ops::Bound::{Excluded, Unbounded};
        Ok(objects(self)
            .range::<str, _>((Excluded(start_after), Unbounded))
            .map(|(k, _)| k)
            .find(|k| k.as_str() >= prefix)
            .filter(|k| k.starts_with(prefix))
            .cloned())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, PortError> {
        Ok(objects(self).get(key).cloned())
    }
}
