//! Reads, puts and deletes.

use serde_json::json;

use super::json::{DeleteRangeResponse, PutResponse, RangeResponse, b64, int, prefix_end};
use super::{Etcd, EtcdError, KeyValue};

impl Etcd {
    /// The key's value, None when it does not exist. A linearizable read (etcd's
    /// default): it sees every write that finished before it started.
    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, EtcdError> {
        let r: RangeResponse = self.call("/v3/kv/range", &json!({ "key": b64(key) }))?;
        Ok(r.kvs.into_iter().next().map(KeyValue::from))
    }

    /// Every key starting with `prefix`, in key order, and the revision they were read
    /// at (watch from the one after it to see every later change).
    pub fn get_prefix(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let r: RangeResponse = self.call(
            "/v3/kv/range",
            &json!({ "key": b64(prefix), "range_end": b64(&prefix_end(prefix)) }),
        )?;
        let kvs = r.kvs.into_iter().map(KeyValue::from).collect();
        Ok((kvs, r.header.revision))
    }

    /// Sets the key, attached to `lease` if given (the key goes when the lease does);
    /// the revision of the change.
    pub fn put(&self, key: &[u8], value: &[u8], lease: Option<i64>) -> Result<i64, EtcdError> {
        let mut body = json!({ "key": b64(key), "value": b64(value) });
        if let Some(lease) = lease {
            body["lease"] = int(lease).into();
        }
        let r: PutResponse = self.call("/v3/kv/put", &body)?;
        Ok(r.header.revision)
    }

    /// Deletes the key; how many keys went (0 or 1).
    pub fn delete(&self, key: &[u8]) -> Result<u64, EtcdError> {
        let r: DeleteRangeResponse =
            self.call("/v3/kv/deleterange", &json!({ "key": b64(key) }))?;
        Ok(r.deleted)
    }

    /// Deletes every key starting with `prefix`; how many went.
    pub fn delete_prefix(&self, prefix: &[u8]) -> Result<u64, EtcdError> {
        let r: DeleteRangeResponse = self.call(
            "/v3/kv/deleterange",
            &json!({ "key": b64(prefix), "range_end": b64(&prefix_end(prefix)) }),
        )?;
        Ok(r.deleted)
    }
}

impl Etcd {
    /// Drops the history before `revision` (the values keys had then, and the events a
    /// watch from an earlier revision would need); a watch from before it gets
    /// [`EtcdError::Compacted`] or, while running, [`super::WatchEvent::Resync`].
    pub fn compact(&self, revision: i64) -> Result<(), EtcdError> {
        let _: serde_json::Value =
            self.call("/v3/kv/compaction", &json!({ "revision": int(revision) }))?;
        Ok(())
    }
}
