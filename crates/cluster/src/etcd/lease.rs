//! Leases: keys attached to one go when it expires or is revoked.

use serde_json::json;

use super::json::{LeaseResponse, int, parse_streamed};
use super::{Etcd, EtcdError};

/// A lease etcd granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    /// Seconds etcd gave it (it may raise a short TTL to its minimum).
    pub ttl: i64,
}

impl Etcd {
    /// A new lease of `ttl_secs` seconds; keep it with [`Etcd::lease_keepalive`].
    pub fn lease_grant(&self, ttl_secs: i64) -> Result<Lease, EtcdError> {
        let r: LeaseResponse = self.call("/v3/lease/grant", &json!({ "TTL": int(ttl_secs) }))?;
        if !r.error.is_empty() {
            return Err(EtcdError::Status {
                code: 0,
                message: r.error,
            });
        }
        Ok(Lease {
            id: r.id,
            ttl: r.ttl,
        })
    }

    /// Renews the lease to its full TTL; the seconds it has now. A lease that expired or
    /// was revoked is [`EtcdError::LeaseExpired`].
    pub fn lease_keepalive(&self, id: i64) -> Result<i64, EtcdError> {
        // A streaming call in gRPC: the gateway sends our one request, relays the one
        // reply as {"result": ...} and ends the stream when our body ends.
        let reply: serde_json::Value =
            self.call("/v3/lease/keepalive", &json!({ "ID": int(id) }))?;
        let line = reply.to_string();
        let r: LeaseResponse = parse_streamed(line.as_bytes())?;
        // etcd answers an unknown lease with TTL 0 rather than an error.
        if r.ttl <= 0 {
            return Err(EtcdError::LeaseExpired(id));
        }
        Ok(r.ttl)
    }

    /// Ends the lease now, deleting its keys. A lease etcd does not know (expired, or
    /// revoked already) is a [`EtcdError::Status`] with code 5 (not found).
    pub fn lease_revoke(&self, id: i64) -> Result<(), EtcdError> {
        let _: serde_json::Value = self.call("/v3/lease/revoke", &json!({ "ID": int(id) }))?;
        Ok(())
    }
}
