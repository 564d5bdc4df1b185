//! The JSON of etcd's gateway: what its protobuf messages look like after grpc-gateway's
//! mapping. Keys and values are base64; 64-bit integers are JSON strings (JSON numbers
//! lose precision past 2^53, and lease and member ids use all 64 bits); a field at its
//! zero value (0, false, empty) is left out, so every field here has a default.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer};

use super::{EtcdError, KeyValue};

/// Bytes as the gateway wants them.
pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A 64-bit integer as a JSON string, as the gateway writes them (it reads numbers too,
/// but a string is exact whatever the reader).
pub(crate) fn int(n: i64) -> String {
    n.to_string()
}

/// The end of the range of keys starting with `prefix`: the prefix with its last byte
/// below 0xff incremented and what follows dropped. With no such byte (empty, or all
/// 0xff) every key from `prefix` on is in range, which etcd spells "\0".
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// An integer the gateway wrote as a string (or, to be lenient, as a number).
fn de_num<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr + TryFrom<u64> + TryFrom<i64>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Text(String),
        Unsigned(u64),
        Signed(i64),
    }
    let bad = || serde::de::Error::custom("integer out of range");
    match Num::deserialize(d)? {
        Num::Text(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("not an integer: {s:?}"))),
        Num::Unsigned(n) => T::try_from(n).map_err(|_| bad()),
        Num::Signed(n) => T::try_from(n).map_err(|_| bad()),
    }
}

/// Base64 bytes.
fn de_b64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    STANDARD
        .decode(text.as_bytes())
        .map_err(|e| serde::de::Error::custom(format!("bad base64 {text:?}: {e}")))
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct Header {
    #[serde(deserialize_with = "de_num")]
    pub revision: i64,
    #[serde(deserialize_with = "de_num")]
    pub member_id: u64,
    #[serde(deserialize_with = "de_num")]
    pub raft_term: u64,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct Kv {
    #[serde(deserialize_with = "de_b64")]
    key: Vec<u8>,
    #[serde(deserialize_with = "de_b64")]
    value: Vec<u8>,
    #[serde(deserialize_with = "de_num")]
    create_revision: i64,
    #[serde(deserialize_with = "de_num")]
    mod_revision: i64,
    #[serde(deserialize_with = "de_num")]
    version: i64,
    #[serde(deserialize_with = "de_num")]
    lease: i64,
}

impl From<Kv> for KeyValue {
    fn from(kv: Kv) -> KeyValue {
        KeyValue {
            key: kv.key,
            value: kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct RangeResponse {
    pub header: Header,
    pub kvs: Vec<Kv>,
    #[serde(deserialize_with = "de_num")]
    pub count: i64,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct PutResponse {
    pub header: Header,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct DeleteRangeResponse {
    pub header: Header,
    #[serde(deserialize_with = "de_num")]
    pub deleted: u64,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct ResponseOp {
    pub response_range: Option<RangeResponse>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct TxnResponse {
    pub header: Header,
    pub succeeded: bool,
    pub responses: Vec<ResponseOp>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct LeaseResponse {
    pub header: Header,
    #[serde(rename = "ID", deserialize_with = "de_num")]
    pub id: i64,
    #[serde(rename = "TTL", deserialize_with = "de_num")]
    pub ttl: i64,
    /// LeaseGrantResponse's own error text (etcd leaves it empty when the grant worked).
    pub error: String,
}

/// Maintenance status; this message alone is in camelCase in the gateway.
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct StatusResponse {
    pub header: Header,
    pub version: String,
    #[serde(rename = "dbSize", deserialize_with = "de_num")]
    pub db_size: i64,
    #[serde(deserialize_with = "de_num")]
    pub leader: u64,
    #[serde(rename = "raftIndex", deserialize_with = "de_num")]
    pub raft_index: u64,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct Event {
    /// "PUT" is the zero value, so a put has no "type".
    #[serde(rename = "type")]
    pub kind: String,
    pub kv: Kv,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct WatchResponse {
    pub header: Header,
    pub created: bool,
    pub canceled: bool,
    #[serde(deserialize_with = "de_num")]
    pub compact_revision: i64,
    pub cancel_reason: String,
    pub events: Vec<Event>,
}

/// A message of a streaming call (watch, lease keepalive): `{"result": ...}`, or
/// `{"error": {"grpc_code": .., "message": ..}}` when the call failed.
#[derive(Deserialize, Debug)]
pub(crate) struct Streamed<T> {
    pub result: Option<T>,
    pub error: Option<StreamError>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct StreamError {
    pub grpc_code: i32,
    pub message: String,
}

/// The gateway's reply to a failed unary call: `{"error": text, "message": text,
/// "code": gRPC code}`.
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct UnaryError {
    code: i32,
    message: String,
    error: serde_json::Value,
}

/// A unary call's reply: the message, or the gRPC error it carries.
pub(crate) fn parse_reply<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, EtcdError> {
    if let Ok(err) = serde_json::from_slice::<UnaryError>(body)
        && err.code != 0
    {
        let message = if err.message.is_empty() {
            err.error.as_str().unwrap_or_default().to_string()
        } else {
            err.message
        };
        return Err(EtcdError::Status {
            code: err.code,
            message,
        });
    }
    serde_json::from_slice(body).map_err(|e| bad_reply(body, e))
}

/// One message of a stream: its result, or the gRPC error it carries.
pub(crate) fn parse_streamed<T: serde::de::DeserializeOwned>(line: &[u8]) -> Result<T, EtcdError> {
    let msg: Streamed<T> = serde_json::from_slice(line).map_err(|e| bad_reply(line, e))?;
    match (msg.result, msg.error) {
        (_, Some(err)) => Err(EtcdError::Status {
            code: err.grpc_code,
            message: err.message,
        }),
        (Some(result), None) => Ok(result),
        (None, None) => Err(bad_reply(line, "neither a result nor an error")),
    }
}

pub(crate) fn bad_reply(body: &[u8], why: impl std::fmt::Display) -> EtcdError {
    let text = String::from_utf8_lossy(body);
    let shown: String = text.chars().take(300).collect();
    EtcdError::BadReply(format!("{why}: {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_reply_maps_base64_string_integers_and_missing_fields() {
        // As etcd 3.4's gateway wrote it: "lease" left out (0), value "djE=" = "v1".
        let body = br#"{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"2","raft_term":"2"},"kvs":[{"key":"YS8x","create_revision":"2","mod_revision":"2","version":"1","value":"djE="}],"count":"1"}"#;
        let r: RangeResponse = parse_reply(body).unwrap();
        assert_eq!(r.header.revision, 2);
        assert_eq!(r.header.member_id, 13668033151171901709);
        assert_eq!(r.count, 1);
        let kv: KeyValue = r.kvs.into_iter().next().unwrap().into();
        assert_eq!(kv.key, b"a/1");
        assert_eq!(kv.value, b"v1");
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 2, 1));
        assert_eq!(kv.lease, 0);
    }

    #[test]
    fn an_empty_range_has_no_kvs_and_no_count() {
        let body = br#"{"header":{"revision":"1"}}"#;
        let r: RangeResponse = parse_reply(body).unwrap();
        assert!(r.kvs.is_empty());
        assert_eq!(r.count, 0);
    }

    #[test]
    fn a_key_with_an_empty_value_has_no_value_field() {
        let body =
            br#"{"kv":{"key":"YS80","create_revision":"9","mod_revision":"9","version":"1"}}"#;
        let e: Event = serde_json::from_slice(body).unwrap();
        let kv: KeyValue = e.kv.into();
        assert_eq!(kv.key, b"a/4");
        assert!(kv.value.is_empty());
        assert_eq!(e.kind, "");
    }

    #[test]
    fn numbers_are_read_as_numbers_too_and_garbage_is_refused() {
        let h: Header = serde_json::from_slice(br#"{"revision":7}"#).unwrap();
        assert_eq!(h.revision, 7);
        assert!(serde_json::from_slice::<Header>(br#"{"revision":"7x"}"#).is_err());
        assert!(serde_json::from_slice::<Kv>(br#"{"key":"not base64!"}"#).is_err());
        assert!(parse_reply::<RangeResponse>(b"Not Found").is_err());
    }

    #[test]
    fn a_unary_error_is_a_status() {
        let body = br#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#;
        match parse_reply::<LeaseResponse>(body) {
            Err(EtcdError::Status { code, message }) => {
                assert_eq!(code, 5);
                assert_eq!(message, "etcdserver: requested lease not found");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lease_grant_reply_has_big_ids() {
        let body = br#"{"header":{"revision":"2"},"ID":"4111120485961610504","TTL":"5"}"#;
        let r: LeaseResponse = parse_reply(body).unwrap();
        assert_eq!((r.id, r.ttl), (4111120485961610504, 5));
    }

    #[test]
    fn a_keepalive_of_an_unknown_lease_has_no_ttl() {
        let body = br#"{"result":{"header":{"revision":"2"},"ID":"12345"}}"#;
        let r: LeaseResponse = parse_streamed(body).unwrap();
        assert_eq!((r.id, r.ttl), (12345, 0));
    }

    #[test]
    fn watch_messages() {
        let created: WatchResponse =
            parse_streamed(br#"{"result":{"header":{"revision":"6"},"created":true}}"#).unwrap();
        assert!(created.created && created.events.is_empty());
        let del: WatchResponse = parse_streamed(
            br#"{"result":{"header":{"revision":"8"},"events":[{"type":"DELETE","kv":{"key":"YS8z","mod_revision":"8"}}]}}"#,
        )
        .unwrap();
        assert_eq!(del.events[0].kind, "DELETE");
        assert_eq!(del.events[0].kv.mod_revision, 8);
        let compacted: WatchResponse = parse_streamed(
            br#"{"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"4"}}"#,
        )
        .unwrap();
        assert!(compacted.canceled);
        assert_eq!(compacted.compact_revision, 4);
        let err = parse_streamed::<WatchResponse>(
            br#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#,
        );
        assert!(matches!(err, Err(EtcdError::Status { code: 14, .. })));
    }

    #[test]
    fn status_is_camel_case() {
        let body = br#"{"header":{"member_id":"13668033151171901709","revision":"2"},"version":"3.4.23","dbSize":"20480","leader":"13668033151171901709","raftIndex":"7","raftTerm":"2"}"#;
        let s: StatusResponse = parse_reply(body).unwrap();
        assert_eq!(s.version, "3.4.23");
        assert_eq!(s.leader, 13668033151171901709);
        assert_eq!(s.db_size, 20480);
        assert_eq!(s.raft_index, 7);
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"a/"), b"a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(b64(b"a/1"), "YS8x");
        assert_eq!(int(-3), "-3");
    }
}
