//! exports(5) (`/etc/exports`) into `[[export]]` tables: `ringnfs exports import`, and
//! the `--client 'HOST(OPTIONS)'` of `ringnfs ctl exports add`.
//!
//! Each line is a directory, then clients with options in parentheses (`host(opts)`), a
//! `-opts` word giving the options of the clients after it; `#` starts a comment, a
//! backslash continues a line, a directory may be quoted. The directory is also the
//! pseudo path (knfsd's NFSv4 pseudo file system shows exports at their real paths).
//! Every option that has no equivalent here is named with its line, and why.

use super::{ClientSpec, ExportSpec};

/// The result of an import: the exports, and what could not be carried over.
#[derive(Debug, Default)]
pub struct Imported {
    pub exports: Vec<ExportSpec>,
    /// "line N: ..." for each option, client or line left out or changed.
    pub notes: Vec<String>,
}

/// Options that change nothing here, and why.
const IGNORED: &[(&str, &str)] = &[
    ("sync", "ringnfs commits as each WRITE's stable flag asks"),
    (
        "async",
        "ringnfs never acknowledges an unstable write as stable",
    ),
    ("wdelay", "no write gathering"),
    ("no_wdelay", "no write gathering"),
    (
        "subtree_check",
        "handles name objects, not paths: nothing to check",
    ),
    (
        "no_subtree_check",
        "handles name objects, not paths: nothing to check",
    ),
    ("secure", "the client's source port is not checked"),
    ("insecure", "the client's source port is not checked"),
    ("hide", "exports do not nest in ringnfs"),
    ("nohide", "exports do not nest in ringnfs"),
    (
        "crossmnt",
        "a local export does not cross into file systems mounted under it",
    ),
    (
        "nocrossmnt",
        "a local export does not cross into file systems mounted under it",
    ),
    ("no_acl", "ringnfs serves no ACLs"),
    ("acl", "ringnfs serves no ACLs"),
];

/// Convert exports(5) text.
pub fn import(text: &str) -> Imported {
    let mut out = Imported::default();
    for (n, line) in logical_lines(text) {
        let words = match split_words(&line) {
            Ok(w) => w,
            Err(e) => {
                out.notes.push(format!("line {n}: {e}; line left out"));
                continue;
            }
        };
        let Some((path, rest)) = words.split_first() else {
            continue;
        };
        if !path.starts_with('/') {
            out.notes.push(format!(
                "line {n}: {path:?} is not an absolute directory; line left out"
            ));
            continue;
        }
        let mut spec = ExportSpec {
            pseudo: path.clone(),
            path: Some(path.clone()),
            ..ExportSpec::default()
        };
        let mut defaults: Vec<String> = Vec::new();
        for w in rest {
            if let Some(opts) = w.strip_prefix('-') {
                defaults = opts.split(',').map(str::to_string).collect();
                continue;
            }
            let (host, opts) = match w.split_once('(') {
                Some((h, o)) => {
                    let Some(o) = o.strip_suffix(')') else {
                        out.notes
                            .push(format!("line {n}: {w:?} lacks its `)`; client left out"));
                        continue;
                    };
                    let mut all = defaults.clone();
                    all.extend(o.split(',').filter(|s| !s.is_empty()).map(str::to_string));
                    (h, all)
                }
                None => (w.as_str(), defaults.clone()),
            };
            // `/dir (rw)`: knfsd takes a bare option list as every client.
            let host = if host.is_empty() { "*" } else { host };
            if host.starts_with('@') || host.contains('[') {
                out.notes.push(format!(
                    "line {n}: client {host:?}: netgroups and character classes in host \
                     names are not supported; client left out (name its hosts, a wildcard \
                     name with * and ?, or its network in CIDR notation instead)"
                ));
                continue;
            }
            let mut client = ClientSpec {
                host: host.to_string(),
                ..ClientSpec::default()
            };
            for o in &opts {
                apply(o, &mut client, &mut spec, n, &mut out.notes);
            }
            spec.clients.push(client);
        }
        if spec.clients.is_empty() {
            // knfsd exports a line without clients to everyone (with a warning).
            let mut client = ClientSpec {
                host: "*".into(),
                ..ClientSpec::default()
            };
            for o in &defaults {
                apply(o, &mut client, &mut spec, n, &mut out.notes);
            }
            if rest.is_empty() {
                out.notes.push(format!(
                    "line {n}: {path} names no clients: exported to every client, as knfsd does"
                ));
            }
            spec.clients.push(client);
        }
        out.exports.push(spec);
    }
    out
}

/// One client in exports(5) form, `HOST(OPTIONS)` or `HOST`, for `ringnfs ctl`: an
/// option with no equivalent here is an error, not a note.
pub fn client(word: &str) -> Result<ClientSpec, String> {
    let r = import(&format!("/x {word}"));
    if let Some(n) = r.notes.first() {
        // The import's wording says what it leaves out; here nothing is sent.
        let n = n.trim_start_matches("line 1: ");
        let n = n.split("; option left out").next().unwrap_or(n);
        let n = n.split("; client left out").next().unwrap_or(n);
        return Err(n.to_string());
    }
    let mut e = r.exports.into_iter().next().ok_or("no client given")?;
    if e.fsid.is_some() {
        return Err("fsid is an export's option (--fsid), not a client's".into());
    }
    e.clients.pop().ok_or_else(|| "no client given".to_string())
}

/// One option of one client.
fn apply(o: &str, c: &mut ClientSpec, e: &mut ExportSpec, n: usize, notes: &mut Vec<String>) {
    let (name, value) = match o.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim())),
        None => (o.trim(), None),
    };
    let number = |notes: &mut Vec<String>| -> Option<u32> {
        let v = value.and_then(|v| v.parse::<u32>().ok());
        if v.is_none() {
            notes.push(format!("line {n}: {o:?} needs a number; option left out"));
        }
        v
    };
    match name {
        "rw" => c.read_only = Some(false),
        "ro" => c.read_only = Some(true),
        "root_squash" => c.root_squash = Some(true),
        "no_root_squash" => c.root_squash = Some(false),
        "all_squash" => c.all_squash = Some(true),
        "no_all_squash" => c.all_squash = Some(false),
        "anonuid" => c.anon_uid = number(notes),
        "anongid" => c.anon_gid = number(notes),
        "sec" => {
            let mut kept = Vec::new();
            for f in value.unwrap_or_default().split(':') {
                match f {
                    "sys" | "none" | "krb5" | "krb5i" | "krb5p" => kept.push(f.to_string()),
                    other => notes.push(format!(
                        "line {n}: sec={other} is not a flavor ringnfs has (sys, none, krb5, \
                         krb5i, krb5p); flavor left out"
                    )),
                }
            }
            if kept.is_empty() {
                notes.push(format!(
                    "line {n}: {o:?} leaves no flavor ringnfs has; the client keeps the default (sys, none)"
                ));
            } else {
                c.sec = Some(kept);
            }
        }
        "xprtsec" => {
            let modes: Vec<String> = value
                .unwrap_or_default()
                .split(':')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            match modes.iter().find(|m| !matches!(m.as_str(), "none" | "tls" | "mtls")) {
                Some(bad) => notes.push(format!(
                    "line {n}: {o:?}: {bad:?} is not a transport security (none, tls, mtls); option left out"
                )),
                None if modes.is_empty() => {
                    notes.push(format!("line {n}: xprtsec needs a value; option left out"))
                }
                None => c.xprtsec = Some(modes),
            }
        }
        "fsid" => match value {
            Some("0" | "root") => notes.push(format!(
                "line {n}: {o:?} (the NFSv4 root) has no meaning here: ringnfs builds the \
                 pseudo root itself; option left out"
            )),
            Some(v) => match v.parse::<u32>() {
                Ok(id) if e.fsid.is_some_and(|f| f != id) => notes.push(format!(
                    "line {n}: {o:?} differs from this export's other fsid; the first is kept"
                )),
                Ok(id) => e.fsid = Some(id),
                Err(_) => notes.push(format!(
                    "line {n}: {o:?}: only numeric fsids are supported; option left out"
                )),
            },
            None => notes.push(format!("line {n}: fsid needs a value; option left out")),
        },
        _ => match IGNORED.iter().find(|(k, _)| *k == name) {
            Some((_, why)) => notes.push(format!("line {n}: {o:?} ignored: {why}")),
            None => notes.push(format!(
                "line {n}: {o:?} has no equivalent in ringnfs; option left out"
            )),
        },
    }
}

/// Lines with comments dropped and backslash continuations joined, numbered by the
/// line they start on.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if cur.is_empty() {
            start = i + 1;
        }
        let line = strip_comment(raw);
        match line.strip_suffix('\\') {
            Some(l) => {
                cur.push_str(l);
                cur.push(' ');
            }
            None => {
                cur.push_str(line);
                if !cur.trim().is_empty() {
                    out.push((start, std::mem::take(&mut cur)));
                }
                cur.clear();
            }
        }
    }
    if !cur.trim().is_empty() {
        out.push((start, cur));
    }
    out
}

/// The line up to a `#` outside quotes.
fn strip_comment(l: &str) -> &str {
    let mut quoted = false;
    for (i, ch) in l.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '#' if !quoted => return l[..i].trim_end(),
            _ => {}
        }
    }
    l.trim_end()
}

/// Words split on blanks; a quoted word keeps its blanks.
fn split_words(l: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in l.chars() {
        match ch {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("unbalanced quote".into());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REALISTIC: &str = r#"
# /etc/exports: the access control list for filesystems which may be exported
#               to NFS clients.  See exports(5).
/srv/home      10.0.0.0/8(rw,sync,no_subtree_check,root_squash) \
               192.168.1.7(rw,no_root_squash)
/srv/data      -ro,all_squash,anonuid=1000,anongid=1000 *(sec=sys,fsid=17) 127.0.0.2(rw)
"/srv/with space"  *.example.com(rw) @trusted(ro) localhost(ro,sec=krb5p:lkey:sys)
/srv/pub                                # no clients: everyone
/srv/root      *(rw,fsid=0,crossmnt)
relative       *(rw)
"#;

    #[test]
    fn a_realistic_file() {
        let r = import(REALISTIC);
        let pseudo: Vec<&str> = r.exports.iter().map(|e| e.pseudo.as_str()).collect();
        assert_eq!(
            pseudo,
            [
                "/srv/home",
                "/srv/data",
                "/srv/with space",
                "/srv/pub",
                "/srv/root"
            ]
        );
        let home = &r.exports[0];
        assert_eq!(home.clients.len(), 2);
        assert_eq!(home.clients[0].host, "10.0.0.0/8");
        assert_eq!(home.clients[0].read_only, Some(false));
        assert_eq!(home.clients[0].root_squash, Some(true));
        assert_eq!(home.clients[1].root_squash, Some(false));
        let data = &r.exports[1];
        assert_eq!(data.fsid, Some(17));
        let world = &data.clients[0];
        assert_eq!(
            (
                world.read_only,
                world.all_squash,
                world.anon_uid,
                world.anon_gid
            ),
            (Some(true), Some(true), Some(1000), Some(1000))
        );
        assert_eq!(world.sec, Some(vec!["sys".to_string()]));
        // The `-` defaults apply to later clients, which may override them.
        assert_eq!(data.clients[1].read_only, Some(false));
        assert_eq!(data.clients[1].all_squash, Some(true));
        let spaced = &r.exports[2];
        let hosts: Vec<&str> = spaced.clients.iter().map(|c| c.host.as_str()).collect();
        assert_eq!(
            hosts,
            ["*.example.com", "localhost"],
            "netgroups are left out"
        );
        assert_eq!(
            spaced.clients[1].sec,
            Some(vec!["krb5p".to_string(), "sys".to_string()])
        );
        assert_eq!(r.exports[3].clients[0].host, "*");
        let notes = r.notes.join("\n");
        for says in [
            "line 4: \"sync\" ignored",
            "\"no_subtree_check\" ignored",
            "client \"@trusted\"",
            "sec=lkey is not a flavor",
            "line 8: /srv/pub names no clients",
            "\"fsid=0\" (the NFSv4 root)",
            "\"crossmnt\" ignored",
            "line 10: \"relative\" is not an absolute directory",
        ] {
            assert!(notes.contains(says), "missing {says:?} in:\n{notes}");
        }
    }

    #[test]
    fn one_client_for_ctl() {
        let c = client("10.0.0.0/8(rw,no_root_squash)").unwrap();
        assert_eq!(
            (c.host.as_str(), c.read_only, c.root_squash),
            ("10.0.0.0/8", Some(false), Some(false))
        );
        assert_eq!(client("127.0.0.2").unwrap().host, "127.0.0.2");
        assert!(client("*(sync)").unwrap_err().contains("ignored"));
        assert!(client("*(fsid=3)").unwrap_err().contains("export's option"));
    }

    #[test]
    fn broken_lines_are_named() {
        let r = import("/a \"b\n/c host(rw\n/d *(anonuid=x,frobnicate)\n");
        let notes = r.notes.join("\n");
        assert!(notes.contains("line 1: unbalanced quote"), "{notes}");
        assert!(
            notes.contains("line 2: \"host(rw\" lacks its `)`"),
            "{notes}"
        );
        assert!(notes.contains("\"anonuid=x\" needs a number"), "{notes}");
        assert!(
            notes.contains("\"frobnicate\" has no equivalent"),
            "{notes}"
        );
    }
}
