//! Endpoints, and unary calls to the gateway with failover from one member to the next.

use std::sync::atomic::Ordering;

use serde::de::DeserializeOwned;

use super::json::{bad_reply, parse_reply};
use super::{Etcd, EtcdError};

/// `http://host:port`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// As in a URL: a name, an IPv4 address or a bracketed IPv6 address.
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub(crate) fn parse(text: &str) -> Result<Endpoint, EtcdError> {
        let invalid = |why: &str| EtcdError::InvalidEndpoint(format!("{text:?}: {why}"));
        let trimmed = text.trim();
        if trimmed.starts_with("https://") {
            return Err(invalid(
                "TLS to etcd is not supported yet; give its plain http:// client URL",
            ));
        }
        let rest = trimmed
            .strip_prefix("http://")
            .ok_or_else(|| invalid("expected http://host:port"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(invalid("expected http://host:port, with no path"));
        }
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| invalid("the port is missing (etcd's client port is usually 2379)"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("the port is not a number from 1 to 65535"))?;
        let bracketed = host.starts_with('[') && host.ends_with(']');
        if host.is_empty() || (host.contains(':') && !bracketed) {
            return Err(invalid("bad host (an IPv6 address goes in brackets)"));
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// host and port for `ToSocketAddrs` (without IPv6's brackets).
    pub(crate) fn socket_host(&self) -> (&str, u16) {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
    }
}

/// Replies bigger than this are refused (a prefix's keys and values come in one reply).
const MAX_REPLY: u64 = 256 << 20;

impl Etcd {
    /// POST `body` to `path` on the first member that answers; the reply parsed.
    pub(crate) fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, EtcdError> {
        self.call_on(path, body).map(|(_, reply)| reply)
    }

    /// [`Etcd::call`], and the index of the endpoint that answered.
    pub(crate) fn call_on<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(usize, T), EtcdError> {
        let inner = &self.inner;
        let n = inner.endpoints.len();
        let first = inner.preferred.load(Ordering::Relaxed) % n;
        let body = body.to_string();
        let mut last = None;
        let mut failures = Vec::new();
        for k in 0..n {
            let i = (first + k) % n;
            let endpoint = &inner.endpoints[i];
            match self.post(endpoint, path, &body) {
                Ok(bytes) => match parse_reply::<T>(&bytes) {
                    Err(err) if err.try_another_member() => {
                        tracing::debug!(endpoint = %endpoint.url(), %err, "etcd member cannot serve; trying the next");
                        failures.push(format!("{}: {err}", endpoint.url()));
                        last = Some(err);
                    }
                    reply => {
                        inner.preferred.store(i, Ordering::Relaxed);
                        return reply.map(|r| (i, r));
                    }
                },
                Err(why) => {
                    tracing::debug!(endpoint = %endpoint.url(), %why, "etcd member unreachable; trying the next");
                    failures.push(format!("{}: {why}", endpoint.url()));
                }
            }
        }
        // A member that answered "no leader" is more telling than one that did not answer.
        if let Some(err) = last {
            return Err(err);
        }
        Err(EtcdError::Unreachable {
            endpoints: inner
                .endpoints
                .iter()
                .map(Endpoint::url)
                .collect::<Vec<_>>()
                .join(", "),
            last: failures.pop().unwrap_or_default(),
        })
    }

    /// One POST; Err is the text of a transport failure (no answer from this member).
    fn post(&self, endpoint: &Endpoint, path: &str, body: &str) -> Result<Vec<u8>, String> {
        let url = format!("{}{path}", endpoint.url());
        let mut reply = self
            .inner
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body)
            .map_err(|e| e.to_string())?;
        let status = reply.status();
        let bytes = reply
            .body_mut()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        // An HTTP error without a gRPC error in it (404 for a path this etcd lacks, a
        // proxy's error page) is no answer from etcd.
        if !status.is_success() && !bytes.starts_with(b"{") {
            return Err(bad_reply(&bytes, format!("HTTP {status} from {url}")).to_string());
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        let e = Endpoint::parse("http://127.0.0.1:2379").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 2379));
        assert_eq!(e.url(), "http://127.0.0.1:2379");
        assert_eq!(
            Endpoint::parse("http://etcd1:2379/").unwrap().url(),
            "http://etcd1:2379"
        );
        let v6 = Endpoint::parse("http://[::1]:2379").unwrap();
        assert_eq!(v6.socket_host(), ("::1", 2379));
        for bad in [
            "127.0.0.1:2379",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "http://127.0.0.1:99999",
            "http://:2379",
            "http://h:2379/v3",
            "http://::1:2379",
            "unix:///run/etcd.sock",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(EtcdError::InvalidEndpoint(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn https_is_refused_with_a_reason() {
        let err = Endpoint::parse("https://127.0.0.1:2379").unwrap_err();
        assert!(
            err.to_string().contains("TLS to etcd is not supported yet"),
            "{err}"
        );
    }

    #[test]
    fn new_needs_an_endpoint() {
        let t = std::time::Duration::from_secs(1);
        assert!(Etcd::new(&[], t).is_err());
        assert!(Etcd::new(&["http://127.0.0.1:1".to_string(), "x".to_string()], t).is_err());
    }

    #[test]
    fn a_closed_port_is_unreachable_naming_every_endpoint() {
        // Ports nothing listens on: bound, then closed.
        let ports: Vec<u16> = (0..2)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            })
            .collect();
        let endpoints: Vec<String> = ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        let etcd = Etcd::new(&endpoints, std::time::Duration::from_secs(2)).unwrap();
        match etcd.get(b"k") {
            Err(EtcdError::Unreachable {
                endpoints: named, ..
            }) => {
                for e in &endpoints {
                    assert!(named.contains(e.as_str()), "{named}");
                }
            }
            other => panic!("{other:?}"),
        }
    }
}
