//! Where a cluster keeps what in etcd: everything under `/ringnfs/<cluster name>/`.
//!
//! | key | value | lifetime |
//! |---|---|---|
//! | `identity` | the server scope and the file-handle key all nodes share | created by the first node, forever |
//! | `nodes/<id>` | a live node: its addresses, host, pid, start time | on the node's lease: gone when it stops renewing |
//! | `grace` | the grace epoch: its number, whether it is in force, which nodes' clients reclaim, its deadline | rewritten when grace starts or ends |
//! | `records/<id>/<owner in hex>` | a client that holds state on node `id`: the epoch it was written in and whether its reclaim is done | from before its first OPEN or LOCK to its end |
//! | `config/<name>` | a document every node serves alike: `exports` (the `[[export]]` tables), `settings` (the live settings an operator changed) | written by the first node, then by any node's control plane |
//! | `claims/<file in hex>/<id>` | node `id`'s share reservations and delegation on a file (`claims.rs`), pending or granted | from before the first OPEN with deny bits (or delegation) to the node's last one there, or the node's end |
//! | `claim_acks/<file>/<claimer>/<acker>` | `acker`'s answer to `claimer`'s pending claim | until the claim is settled |
//! | `recalls/<file>/<holder>` | another node's OPEN waits for `holder`'s delegations of the file to be returned | until the holder's delegation claim goes |

/// The keys of one cluster.
#[derive(Debug, Clone)]
pub struct Keys {
    root: String,
}

/// What a key under the cluster's root names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Identity,
    Node(u32),
    Grace,
    Record {
        node: u32,
        owner: Vec<u8>,
    },
    /// A shared document (`config/<name>`).
    Config(String),
    Claim {
        file: Vec<u8>,
        node: u32,
    },
    Ack {
        file: Vec<u8>,
        claimer: u32,
        acker: u32,
    },
    Recall {
        file: Vec<u8>,
        holder: u32,
    },
    /// Something this version does not know (a newer node's key): left alone.
    Other,
}

impl Keys {
    pub fn new(cluster: &str) -> Keys {
        Keys {
            root: format!("/ringnfs/{cluster}/"),
        }
    }

    /// The prefix of everything the cluster keeps.
    pub fn root(&self) -> Vec<u8> {
        self.root.as_bytes().to_vec()
    }

    pub fn identity(&self) -> Vec<u8> {
        format!("{}identity", self.root).into_bytes()
    }

    pub fn node(&self, id: u32) -> Vec<u8> {
        format!("{}nodes/{id}", self.root).into_bytes()
    }

    pub fn grace(&self) -> Vec<u8> {
        format!("{}grace", self.root).into_bytes()
    }

    pub fn record(&self, node: u32, owner: &[u8]) -> Vec<u8> {
        format!("{}records/{node}/{}", self.root, hex(owner)).into_bytes()
    }

    pub fn config(&self, name: &str) -> Vec<u8> {
        format!("{}config/{name}", self.root).into_bytes()
    }

    pub fn claim(&self, file: &[u8], node: u32) -> Vec<u8> {
        format!("{}claims/{}/{node}", self.root, hex(file)).into_bytes()
    }

    pub fn ack(&self, file: &[u8], claimer: u32, acker: u32) -> Vec<u8> {
        format!("{}claim_acks/{}/{claimer}/{acker}", self.root, hex(file)).into_bytes()
    }

    pub fn recall(&self, file: &[u8], holder: u32) -> Vec<u8> {
        format!("{}recalls/{}/{holder}", self.root, hex(file)).into_bytes()
    }

    /// What `key` names (None: not under this cluster's root).
    pub fn parse(&self, key: &[u8]) -> Option<Key> {
        let rest = std::str::from_utf8(key).ok()?.strip_prefix(&self.root)?;
        let mut parts = rest.split('/');
        Some(
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("identity"), None, ..) => Key::Identity,
                (Some("grace"), None, ..) => Key::Grace,
                (Some("nodes"), Some(id), None, _) => id.parse().map_or(Key::Other, Key::Node),
                (Some("config"), Some(name), None, _) if !name.is_empty() => {
                    Key::Config(name.into())
                }
                (Some("records"), Some(node), Some(owner), None) => {
                    match (node.parse(), unhex(owner)) {
                        (Ok(node), Some(owner)) => Key::Record { node, owner },
                        _ => Key::Other,
                    }
                }
                (Some("claims"), Some(file), Some(node), None) => {
                    match (unhex(file), node.parse()) {
                        (Some(file), Ok(node)) => Key::Claim { file, node },
                        _ => Key::Other,
                    }
                }
                (Some("recalls"), Some(file), Some(holder), None) => {
                    match (unhex(file), holder.parse()) {
                        (Some(file), Ok(holder)) => Key::Recall { file, holder },
                        _ => Key::Other,
                    }
                }
                (Some("claim_acks"), Some(file), Some(claimer), Some(acker))
                    if parts.next().is_none() =>
                {
                    match (unhex(file), claimer.parse(), acker.parse()) {
                        (Some(file), Ok(claimer), Ok(acker)) => Key::Ack {
                            file,
                            claimer,
                            acker,
                        },
                        _ => Key::Other,
                    }
                }
                _ => Key::Other,
            },
        )
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_what_they_hold_and_parse_back() {
        let k = Keys::new("lab");
        assert_eq!(k.node(3), b"/ringnfs/lab/nodes/3");
        assert_eq!(k.parse(&k.node(3)), Some(Key::Node(3)));
        assert_eq!(k.parse(&k.grace()), Some(Key::Grace));
        assert_eq!(k.parse(&k.identity()), Some(Key::Identity));
        assert_eq!(
            k.parse(&k.config("exports")),
            Some(Key::Config("exports".into()))
        );
        let owner = b"Linux NFSv4.1 guest\x00\xff".to_vec();
        assert_eq!(
            k.parse(&k.record(2, &owner)),
            Some(Key::Record { node: 2, owner })
        );
        assert_eq!(k.parse(b"/ringnfs/lab/records/2/zz"), Some(Key::Other));
        assert_eq!(k.parse(b"/ringnfs/lab/nodes/x"), Some(Key::Other));
        assert_eq!(k.parse(b"/ringnfs/other/grace"), None);
        let file = vec![0xab, 0x01];
        assert_eq!(k.claim(&file, 2), b"/ringnfs/lab/claims/ab01/2");
        assert_eq!(
            k.parse(&k.claim(&file, 2)),
            Some(Key::Claim {
                file: file.clone(),
                node: 2
            })
        );
        assert_eq!(
            k.parse(&k.ack(&file, 2, 3)),
            Some(Key::Ack {
                file: file.clone(),
                claimer: 2,
                acker: 3
            })
        );
        assert_eq!(
            k.parse(&k.recall(&file, 1)),
            Some(Key::Recall { file, holder: 1 })
        );
        assert_eq!(
            k.parse(b"/ringnfs/lab/claim_acks/ab/1/2/3"),
            Some(Key::Other)
        );
    }
}
