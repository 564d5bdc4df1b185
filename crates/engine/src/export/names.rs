//! Client host names for wildcard rules (`*.example.com`, as exports(5)): the name of a
//! client's address, looked up off the workers. A worker never waits for DNS: the first
//! request from an address a wildcard rule must judge gets NFS4ERR_DELAY while a helper
//! thread resolves it (the client retries), later ones find it in a bounded cache.
//!
//! A name counts only if it resolves back to the address (forward-confirmed, as knfsd's
//! mountd does), so whoever controls an address's reverse zone cannot claim another
//! domain's name.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long an answer is kept.
const TTL: Duration = Duration::from_secs(300);
/// Addresses kept at most; past it the oldest answer goes.
const MAX_ENTRIES: usize = 4096;
/// A lookup not answered by then is asked again (the resolver's own timeouts are
/// shorter: this only matters if an answer was lost).
const PENDING_MAX: Duration = Duration::from_secs(60);

/// What is known of an address's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// Being looked up: ask again shortly.
    Pending,
    /// Its forward-confirmed name (lowercase), or None.
    Known(Option<String>),
}

#[derive(Debug)]
struct Entry {
    name: Name,
    at: Instant,
}

pub struct Names {
    cache: Mutex<HashMap<IpAddr, Entry>>,
    lookups: crossbeam_channel::Sender<IpAddr>,
}

impl Names {
    /// The process's cache, with its helper thread started on first use.
    pub fn get() -> &'static Names {
        static NAMES: OnceLock<Names> = OnceLock::new();
        NAMES.get_or_init(|| {
            let (tx, rx) = crossbeam_channel::unbounded::<IpAddr>();
            let spawned = std::thread::Builder::new()
                .name("ringnfs-names".into())
                .spawn(move || {
                    for ip in rx {
                        let name = confirmed_name(ip);
                        tracing::debug!(%ip, name = ?name, "client address resolved");
                        Names::get().store(ip, Name::Known(name));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start the host name thread: {e}");
            }
            Names {
                cache: Mutex::new(HashMap::new()),
                lookups: tx,
            }
        })
    }

    /// The name of `ip` if known; otherwise a lookup is started (once) and Pending.
    pub fn name_of(&self, ip: IpAddr) -> Name {
        let mut c = self.cache.lock();
        if let Some(e) = c.get(&ip) {
            let fresh = match e.name {
                Name::Pending => e.at.elapsed() < PENDING_MAX,
                Name::Known(_) => e.at.elapsed() < TTL,
            };
            if fresh {
                return e.name.clone();
            }
        }
        if c.len() >= MAX_ENTRIES
            && let Some(oldest) = c.iter().min_by_key(|(_, e)| e.at).map(|(ip, _)| *ip)
        {
            c.remove(&oldest);
        }
        c.insert(
            ip,
            Entry {
                name: Name::Pending,
                at: Instant::now(),
            },
        );
        drop(c);
        if self.lookups.send(ip).is_err() {
            // No helper thread: no names (wildcard rules match nobody).
            self.store(ip, Name::Known(None));
            return Name::Known(None);
        }
        Name::Pending
    }

    fn store(&self, ip: IpAddr, name: Name) {
        self.cache.lock().insert(
            ip,
            Entry {
                name,
                at: Instant::now(),
            },
        );
    }
}

/// The name `ip`'s reverse lookup gives, if that name resolves back to `ip`.
fn confirmed_name(ip: IpAddr) -> Option<String> {
    let name = dns_lookup::lookup_addr(&ip).ok()?.to_ascii_lowercase();
    // getnameinfo answers with the address itself when there is no name.
    if name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let back = (name.as_str(), 0).to_socket_addrs().ok()?;
    back.map(|a| plain_ip(a.ip()))
        .any(|a| a == ip)
        .then_some(name)
}

/// An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d; rules name it as
/// a.b.c.d.
pub fn plain_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// exports(5) wildcards: `*` any run of characters, `?` one; case-insensitive (the
/// pattern is lowercase already).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni].to_ascii_lowercase()) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.example.com", "a.example.com"));
        assert!(glob_match("*.example.com", "A.B.Example.COM"));
        assert!(!glob_match("*.example.com", "example.com"));
        assert!(glob_match("host?", "host1"));
        assert!(!glob_match("host?", "host12"));
        assert!(glob_match("*", ""));
        assert!(glob_match("ws*.lab.*", "ws17.lab.example"));
        assert!(!glob_match("ws*.lab", "ws17.lab.example"));
    }

    #[test]
    fn loopback_resolves_off_the_caller() {
        let names = Names::get();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut n = names.name_of(ip);
        for _ in 0..500 {
            if n != Name::Pending {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            n = names.name_of(ip);
        }
        // Whatever this system calls 127.0.0.1, the answer came (a name or none).
        assert!(matches!(n, Name::Known(_)), "{n:?}");
    }
}
