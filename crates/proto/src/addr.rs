//! `ADDR:PORT` as every command reads it (`serve --listen`, `--control`, `ctl --addr`,
//! `bench --server`, the config file): one parser, so they accept the same forms and say
//! the same things about bad ones.

use std::net::{SocketAddr, ToSocketAddrs};

/// `ADDR:PORT`, `[V6ADDR]:PORT` or `HOST:PORT`; a host name gives the first address it
/// resolves to. Errors are sentences (e.g. "port out of range (0–65535)").
pub fn resolve_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid address {s:?}: expected ADDR:PORT (no port)"))?;
    let port = match port.parse::<u64>() {
        Ok(p) => u16::try_from(p)
            .map_err(|_| format!("invalid address {s:?}: port out of range (0–65535)"))?,
        Err(_) if port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() => {
            return Err(format!(
                "invalid address {s:?}: port out of range (0–65535)"
            ));
        }
        Err(_) => {
            return Err(format!(
                "invalid address {s:?}: the port {port:?} is not a number"
            ));
        }
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(format!("invalid address {s:?}: no host before the port"));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("invalid address {s:?}: cannot resolve {host:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("invalid address {s:?}: {host:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_resolve_and_bad_ports_say_so() {
        assert_eq!(
            resolve_addr("127.0.0.1:2049"),
            Ok("127.0.0.1:2049".parse().unwrap())
        );
        assert_eq!(resolve_addr("[::1]:9"), Ok("[::1]:9".parse().unwrap()));
        let local = resolve_addr("localhost:2049").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 2049, "{local}");
        for bad in [
            "127.0.0.1:99999",
            "localhost:65536",
            "x:123456789012345678901",
        ] {
            let e = resolve_addr(bad).unwrap_err();
            assert!(e.contains("port out of range (0–65535)"), "{bad}: {e}");
        }
        assert!(resolve_addr("127.0.0.1").unwrap_err().contains("no port"));
        assert!(
            resolve_addr("127.0.0.1:http")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(resolve_addr(":80").unwrap_err().contains("no host"));
    }
}
