//! Transactions: compares, then the success branch's operations if all hold, else the
//! failure branch's, atomically in one revision.

use serde_json::{Value, json};

use super::json::{TxnResponse, b64, int, prefix_end};
use super::{Etcd, EtcdError, KeyValue};

/// How a compare relates the key's attribute to the given value (`attribute OP value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Equal,
    Greater,
    Less,
    NotEqual,
}

/// One condition of a [`Txn`]. A key that does not exist has version, create revision
/// and mod revision 0, so `CreateRevision(key, Equal, 0)` means "absent".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    Version(Vec<u8>, CmpOp, i64),
    CreateRevision(Vec<u8>, CmpOp, i64),
    ModRevision(Vec<u8>, CmpOp, i64),
    Value(Vec<u8>, CmpOp, Vec<u8>),
}

/// One operation of a branch of a [`Txn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: Option<i64>,
    },
    Delete(Vec<u8>),
    DeletePrefix(Vec<u8>),
    Get(Vec<u8>),
    GetPrefix(Vec<u8>),
}

/// A transaction, built with [`Txn::when`], [`Txn::and_then`] and [`Txn::or_else`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    compares: Vec<Compare>,
    success: Vec<TxnOp>,
    failure: Vec<TxnOp>,
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether every compare held (the success branch ran).
    pub succeeded: bool,
    /// The revision after the transaction.
    pub revision: i64,
    /// What each Get or GetPrefix of the branch that ran read, in order.
    pub gets: Vec<Vec<KeyValue>>,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }

    /// Adds conditions (all must hold).
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Txn {
        self.compares.extend(compares);
        self
    }

    /// Adds operations to run when every condition holds.
    pub fn and_then(mut self, ops: impl IntoIterator<Item = TxnOp>) -> Txn {
        self.success.extend(ops);
        self
    }

    /// Adds operations to run otherwise.
    pub fn or_else(mut self, ops: impl IntoIterator<Item = TxnOp>) -> Txn {
        self.failure.extend(ops);
        self
    }

    /// The gateway's TxnRequest.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "compare": self.compares.iter().map(compare_json).collect::<Vec<_>>(),
            "success": self.success.iter().map(op_json).collect::<Vec<_>>(),
            "failure": self.failure.iter().map(op_json).collect::<Vec<_>>(),
        })
    }
}

fn compare_json(c: &Compare) -> Value {
    let (key, op, target, field, value) = match c {
        Compare::Version(k, op, n) => (k, op, "VERSION", "version", int(*n)),
        Compare::CreateRevision(k, op, n) => (k, op, "CREATE", "create_revision", int(*n)),
        Compare::ModRevision(k, op, n) => (k, op, "MOD", "mod_revision", int(*n)),
        Compare::Value(k, op, v) => (k, op, "VALUE", "value", b64(v)),
    };
    let result = match op {
        CmpOp::Equal => "EQUAL",
        CmpOp::Greater => "GREATER",
        CmpOp::Less => "LESS",
        CmpOp::NotEqual => "NOT_EQUAL",
    };
    let mut out = json!({ "key": b64(key), "target": target, "result": result });
    out[field] = value.into();
    out
}

fn op_json(op: &TxnOp) -> Value {
    let range = |key: &[u8]| json!({ "key": b64(key), "range_end": b64(&prefix_end(key)) });
    match op {
        TxnOp::Put { key, value, lease } => {
            let mut put = json!({ "key": b64(key), "value": b64(value) });
            if let Some(lease) = lease {
                put["lease"] = int(*lease).into();
            }
            json!({ "request_put": put })
        }
        TxnOp::Delete(key) => json!({ "request_delete_range": { "key": b64(key) } }),
        TxnOp::DeletePrefix(prefix) => json!({ "request_delete_range": range(prefix) }),
        TxnOp::Get(key) => json!({ "request_range": { "key": b64(key) } }),
        TxnOp::GetPrefix(prefix) => json!({ "request_range": range(prefix) }),
    }
}

impl Etcd {
    /// Runs the transaction.
    pub fn txn(&self, txn: &Txn) -> Result<TxnResult, EtcdError> {
        let r: TxnResponse = self.call("/v3/kv/txn", &txn.to_json())?;
        Ok(TxnResult {
            succeeded: r.succeeded,
            revision: r.header.revision,
            gets: r
                .responses
                .into_iter()
                .filter_map(|op| op.response_range)
                .map(|range| range.kvs.into_iter().map(KeyValue::from).collect())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_if_absent_txn_in_json() {
        let txn = Txn::new()
            .when([Compare::CreateRevision(b"k".to_vec(), CmpOp::Equal, 0)])
            .and_then([TxnOp::Put {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                lease: Some(7),
            }])
            .or_else([
                TxnOp::Get(b"k".to_vec()),
                TxnOp::DeletePrefix(b"p/".to_vec()),
            ]);
        let expected = json!({
            "compare": [{"key": "aw==", "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": "aw==", "value": "dg==", "lease": "7"}}],
            "failure": [
                {"request_range": {"key": "aw=="}},
                {"request_delete_range": {"key": "cC8=", "range_end": "cDA="}},
            ],
        });
        assert_eq!(txn.to_json(), expected);
    }

    #[test]
    fn compares_in_json() {
        let v = compare_json(&Compare::Value(
            b"k".to_vec(),
            CmpOp::NotEqual,
            b"v".to_vec(),
        ));
        assert_eq!(
            v,
            json!({"key": "aw==", "target": "VALUE", "result": "NOT_EQUAL", "value": "dg=="})
        );
        let m = compare_json(&Compare::ModRevision(b"k".to_vec(), CmpOp::Less, 12));
        assert_eq!(
            m,
            json!({"key": "aw==", "target": "MOD", "result": "LESS", "mod_revision": "12"})
        );
        let n = compare_json(&Compare::Version(b"k".to_vec(), CmpOp::Greater, 1));
        assert_eq!(
            n,
            json!({"key": "aw==", "target": "VERSION", "result": "GREATER", "version": "1"})
        );
    }

    #[test]
    fn a_failed_txn_reply_maps_its_gets() {
        let body = br#"{"header":{"revision":"4"},"responses":[{"response_range":{"header":{"revision":"4"},"kvs":[{"key":"YS8y","create_revision":"4","mod_revision":"4","version":"1","value":"eA=="}],"count":"1"}},{"response_delete_range":{"header":{}}}]}"#;
        let r: TxnResponse = super::super::json::parse_reply(body).unwrap();
        assert!(!r.succeeded);
        let gets: Vec<_> = r
            .responses
            .into_iter()
            .filter_map(|o| o.response_range)
            .collect();
        assert_eq!(gets.len(), 1);
        assert_eq!(gets[0].kvs.len(), 1);
    }
}
