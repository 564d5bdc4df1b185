//! Client rules: which clients an export admits and with what options, first match
//! wins, as in exports(5).

use std::net::{IpAddr, ToSocketAddrs};

use ipnet::IpNet;

use super::Access;

/// Who a rule is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMatch {
    /// `*`: every client.
    Any,
    /// An address or a network in CIDR notation.
    Net(IpNet),
    /// A host name, by the addresses it resolved to when the rule was made (an
    /// export change or a reload resolves it again).
    Host { name: String, addrs: Vec<IpAddr> },
    /// A wildcard host name (`*.example.com`, `ws??`): matched against the client's
    /// forward-confirmed name ([`super::names`]). Lowercase.
    Wildcard(String),
}

/// Whether a rule names a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    Yes,
    No,
    /// The client's name is being looked up (a wildcard rule): ask again shortly.
    Pending,
}

impl ClientMatch {
    /// `*`, an address, a CIDR network, a host name (resolved now) or a wildcard host
    /// name (`*.example.com`: matched against each client's name). Netgroups are
    /// refused with a message that says what to write instead.
    pub fn parse(s: &str) -> Result<ClientMatch, String> {
        let s = s.trim();
        if s == "*" {
            return Ok(ClientMatch::Any);
        }
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(ClientMatch::Net(net.trunc()));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(ClientMatch::Net(IpNet::from(plain_ip(ip))));
        }
        if s.starts_with('@') {
            return Err(format!(
                "client {s:?}: netgroups are not supported; name the hosts or networks"
            ));
        }
        if s.contains('[') {
            return Err(format!(
                "client {s:?}: character classes ([...]) are not supported in host names; \
                 use * and ?"
            ));
        }
        if s.contains(['*', '?']) {
            let ok = s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.*?".contains(&b));
            if !ok {
                return Err(format!("client {s:?} is not a wildcard host name"));
            }
            return Ok(ClientMatch::Wildcard(s.to_ascii_lowercase()));
        }
        let valid = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(format!(
                "client {s:?} is not `*`, an IP address, a CIDR network or a host name"
            ));
        }
        let mut addrs: Vec<IpAddr> = (s, 0)
            .to_socket_addrs()
            .map_err(|e| format!("client {s:?}: the host name does not resolve: {e}"))?
            .map(|a| plain_ip(a.ip()))
            .collect();
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() {
            return Err(format!("client {s:?}: the host name has no addresses"));
        }
        Ok(ClientMatch::Host {
            name: s.to_string(),
            addrs,
        })
    }

    /// Whether the client at `peer` (an IPv4-mapped IPv6 address already made IPv4)
    /// is one this names.
    pub fn matches(&self, peer: IpAddr) -> Matched {
        let yes = |b: bool| if b { Matched::Yes } else { Matched::No };
        match self {
            ClientMatch::Any => Matched::Yes,
            ClientMatch::Net(n) => yes(n.contains(&peer)),
            ClientMatch::Host { addrs, .. } => yes(addrs.contains(&peer)),
            ClientMatch::Wildcard(p) => match super::names::Names::get().name_of(peer) {
                super::names::Name::Pending => Matched::Pending,
                super::names::Name::Known(Some(n)) => yes(super::names::glob_match(p, &n)),
                super::names::Name::Known(None) => Matched::No,
            },
        }
    }
}

impl std::fmt::Display for ClientMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientMatch::Any => f.write_str("*"),
            ClientMatch::Net(n) if n.prefix_len() == n.max_prefix_len() => {
                write!(f, "{}", n.addr())
            }
            ClientMatch::Net(n) => write!(f, "{n}"),
            ClientMatch::Host { name, .. } | ClientMatch::Wildcard(name) => f.write_str(name),
        }
    }
}

/// One client rule: the clients and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRule {
    pub client: ClientMatch,
    pub access: Access,
}

/// Rules name clients by plain addresses.
pub use super::names::plain_ip;

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_match() {
        let yes = |m: &ClientMatch, a: &str| m.matches(ip(a)) == Matched::Yes;
        assert!(yes(&ClientMatch::parse("*").unwrap(), "10.1.2.3"));
        let net = ClientMatch::parse("10.0.0.0/8").unwrap();
        assert!(yes(&net, "10.1.2.3"));
        assert!(!yes(&net, "11.0.0.1"));
        // Host bits are dropped, as exports(5) does.
        assert_eq!(
            ClientMatch::parse("192.168.1.7/24").unwrap().to_string(),
            "192.168.1.0/24"
        );
        let one = ClientMatch::parse("127.0.0.2").unwrap();
        assert!(yes(&one, "127.0.0.2") && !yes(&one, "127.0.0.1"));
        assert_eq!(one.to_string(), "127.0.0.2");
        assert!(yes(
            &ClientMatch::parse("::ffff:127.0.0.2").unwrap(),
            "127.0.0.2"
        ));
        let host = ClientMatch::parse("localhost").unwrap();
        assert!(yes(&host, "127.0.0.1"));
        assert_eq!(host.to_string(), "localhost");
        assert_eq!(
            ClientMatch::parse("*.Example.com").unwrap(),
            ClientMatch::Wildcard("*.example.com".into())
        );
    }

    #[test]
    fn refusals_say_why() {
        for (s, says) in [
            ("ws[0-9].lab", "character classes"),
            ("*.exa_mple.com", "not a wildcard"),
            ("@trusted", "netgroups"),
            ("bad host!", "is not"),
            ("", "is not"),
            ("no-such-host.invalid", "does not resolve"),
        ] {
            let e = ClientMatch::parse(s).unwrap_err();
            assert!(e.contains(says), "{s}: {e}");
        }
    }

    #[test]
    fn mapped_addresses_are_plain() {
        assert_eq!(plain_ip(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(plain_ip(ip("::1")), ip("::1"));
    }
}
