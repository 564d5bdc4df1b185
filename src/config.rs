//! The TOML configuration file of `ringnfs serve --config FILE`: every serve option,
//! under its name with underscores (`pin = false` is `--no-pin`, `root_squash = false`
//! `--no-root-squash`, `sqpoll_idle_ms` `--sqpoll`). It deserializes into the
//! [`ServeOptions`] the command line fills, with the same checks; unknown keys and
//! out-of-range values are errors naming the key. Options given on the command line win.
//!
//! ```toml
//! listen = ["127.0.0.1:2049", "127.0.0.2:2049"]
//! threads = 2
//! pin = true                 # false: do not pin workers to CPUs (--no-pin)
//! backend = "local"          # or "memory"
//! export = "/srv/nfs"
//! io_mode = "buffered"       # "dontcache": drop pages once read or written back;
//!                            # "direct": O_DIRECT for aligned I/O
//! read_only = false
//! delegations = false        # true: grant read and write delegations (live setting)
//! root_squash = true         # false: --no-root-squash
//! anon_uid = 65534
//! anon_gid = 65534
//! allow = ["127.0.0.0/8", "10.0.0.0/8"]
//! max_connections_per_session = 16
//! exclusive_binding = false
//! over_limit = "serve"       # or "delay": SEQUENCE on a connection over the limit
//! lease_time = 90
//! max_slots = 64
//! state_dir = "ringnfs-state"
//! grace = 0                  # seconds of grace after start for reclaims
//! control = "127.0.0.1:9049" # control plane (HTTP API, metrics), or "off"
//! control_token_file = "ringnfs-state/control-token"
//! max_connections = 8192     # hardening limits (0 = unlimited / off)
//! max_connections_per_peer = 1024
//! idle_timeout = 60          # seconds; unbound connections with no record
//! session_idle_timeout = 360 # the same once a connection had a session
//! max_record_size = 1114112
//! max_reply_queue = 8388608
//! max_sessions_per_client = 16
//! max_delegations = 65536    # delegations held in all; past it OPEN grants none
//! max_delegations_per_client = 8192
//! ring_entries = 1024        # io_uring submission queue entries per worker
//! recv_buffers = 256         # provided receive buffers per worker
//! recv_buffer_kib = 64       # size of each receive buffer
//! # sqpoll_idle_ms = 10      # --sqpoll: SQPOLL with this idle time (absent: none)
//! # tls_cert = "/etc/ringnfs/server.pem"     # RPC-with-TLS: certificate chain (absent: no TLS)
//! # tls_key = "/etc/ringnfs/server-key.pem"  # ... and its key
//! # tls_client_ca = "/etc/ringnfs/clients-ca.pem"  # client certificates (mutual TLS)
//! # krb5_keytab = "/etc/krb5.keytab"  # Kerberos (RPCSEC_GSS) service keys
//! krb5_realm = []            # realms of local users (default: krb5.conf's default_realm)
//! # cluster = "etcd=http://10.0.0.5:2379,http://10.0.0.6:2379"  # a node of a cluster on etcd
//! # node_id = 1               # ... this node's number (unique among live nodes)
//! cluster_name = "ringnfs"   # its keys in etcd are under /ringnfs/NAME/
//! node_ttl = 10              # seconds before a silent node is seen gone
//! ```

pub use ringnfs_proto::addr::resolve_addr;
use std::path::Path;

use crate::options::ServeOptions;

/// Read and check a config file.
pub fn load(path: &Path) -> anyhow::Result<ServeOptions> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlAddr;

    /// The example above, without its comment markers.
    fn example() -> String {
        include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_documented_example_parses_and_names_every_key() {
        let doc = example();
        let c: ServeOptions = toml::from_str(&doc).unwrap();
        assert_eq!(c.listen.as_ref().map(Vec::len), Some(2));
        assert_eq!(c.backend, Some(crate::server::BackendKind::Local));
        assert_eq!(c.ring_entries, Some(1024));
        assert_eq!(c.recv_buffers, Some(256));
        assert_eq!(c.recv_buffer_kib, Some(64));
        assert_eq!(c.allow.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            c.control,
            Some(ControlAddr(Some("127.0.0.1:9049".parse().unwrap())))
        );
        assert_eq!(
            c.control_token_file.as_deref(),
            Some(Path::new("ringnfs-state/control-token"))
        );
        // Every key is in the example (commented out when it has no default), once.
        let keys: Vec<&str> = doc
            .lines()
            .map(|l| l.trim_start_matches("# "))
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
            .collect();
        let mut want = ServeOptions::KEYS.to_vec();
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want);
        // A commented-out key parses too.
        let uncommented = doc.replace("# sqpoll_idle_ms", "sqpoll_idle_ms");
        let c: ServeOptions = toml::from_str(&uncommented).unwrap();
        assert_eq!(c.sqpoll_idle_ms, Some(10));
    }

    /// The package's default config parses, and so does its commented-out `[[export]]`
    /// example once uncommented (in place of the `export` line).
    #[test]
    fn the_packaged_config_and_its_exports_example_parse() {
        let text = include_str!("../packaging/ringnfs.toml");
        let c: ServeOptions = toml::from_str(text).unwrap();
        assert!(matches!(c.export, Some(crate::options::ExportArg::Dir(_))));
        // The example: the commented lines from the first `# [[export]]` to the next
        // line that is not a comment.
        let mut plain = Vec::new();
        let mut tables = Vec::new();
        let mut in_example = false;
        for l in text.lines() {
            if l.starts_with("export = ") {
                continue;
            }
            in_example = (in_example && l.starts_with('#')) || l == "# [[export]]";
            match l.strip_prefix("# ") {
                Some(t) if in_example => tables.push(t.split(" #").next().unwrap_or(t).to_string()),
                _ if in_example => {}
                _ => plain.push(l.to_string()),
            }
        }
        let edited = format!("{}\n{}\n", plain.join("\n"), tables.join("\n"));
        let c: ServeOptions = toml::from_str(&edited).unwrap_or_else(|e| panic!("{e}\n{edited}"));
        let cfg = c.server_config();
        let pseudo: Vec<&str> = cfg.exports.iter().map(|e| e.pseudo.as_str()).collect();
        assert_eq!(pseudo, ["/home", "/data"]);
        assert_eq!(cfg.exports[0].clients.len(), 2);
    }

    #[test]
    fn listen_addresses_in_the_file_resolve() {
        let c: ServeOptions = toml::from_str("listen = [\"localhost:2049\"]").unwrap();
        assert!(c.listen.unwrap()[0].ip().is_loopback());
        let e = toml::from_str::<ServeOptions>("listen = [\"127.0.0.1:99999\"]").unwrap_err();
        assert!(e.to_string().contains("port out of range"), "{e}");
    }

    #[test]
    fn tuning_profiles_parse() {
        let d: ServeOptions = toml::from_str(include_str!("../tuning/default.toml")).unwrap();
        assert_eq!(d.ring_entries, Some(1024));
        assert_eq!(d.sqpoll_idle_ms, None);
        // default.toml spells out the defaults: it changes nothing.
        assert_eq!(
            format!("{:?}", d.server_config()),
            format!("{:?}", ServeOptions::default().server_config())
        );
        let t: ServeOptions = toml::from_str(include_str!("../tuning/tuned.toml")).unwrap();
        assert_eq!(t.ring_entries, Some(4096));
    }

    #[test]
    fn control_key_takes_an_address_or_off() {
        let c: ServeOptions = toml::from_str("control = \"off\"").unwrap();
        assert_eq!(c.control, Some(ControlAddr(None)));
        let c: ServeOptions = toml::from_str("control = \"OFF\"").unwrap();
        assert_eq!(c.control, Some(ControlAddr(None)));
        let c: ServeOptions = toml::from_str("control = \"[::1]:9050\"").unwrap();
        assert_eq!(
            c.control,
            Some(ControlAddr(Some("[::1]:9050".parse().unwrap())))
        );
        assert_eq!(ServeOptions::default().control, None);
        for bad in [
            "control = \"on\"",
            "control = \"127.0.0.1\"",
            "control = 9049",
            "control_token = \"x\"",
        ] {
            assert!(toml::from_str::<ServeOptions>(bad).is_err(), "{bad}");
        }
        let e = toml::from_str::<ServeOptions>("control = \"nowhere\"").unwrap_err();
        assert!(e.to_string().contains("ADDR:PORT or \"off\""), "{e}");
    }
}
