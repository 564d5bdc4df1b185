//! Many exports in one pseudo file system, over real sockets: client rules told apart by
//! the client's address (127.0.0.1 and 127.0.0.2), the pseudo tree, fsids and
//! mounted_on_fileid, cross-export RENAME/LINK, security flavors, live changes under
//! load from another export's client, and exports(5) import.

pub mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::TestServer;
use ringnfs::client::{Client, ClientError, ClientOptions, Files, Op};
use ringnfs::control::exports::{ClientSpec, ExportAdmin, ExportSpec};
use ringnfs::nfs4::consts::{op, seq4_status, status};
use ringnfs::rpc::AuthSys;
use ringnfs::rpc::Credential;
use ringnfs::rpc::auth::{AUTH_NONE, AUTH_SYS};

/// fsid (8), fileid (20), mounted_on_fileid (55).
const PLACE_ATTRS: [u32; 2] = [(1 << 8) | (1 << 20), 1 << 23];

fn sys(uid: u32) -> Credential {
    Credential::Sys(AuthSys {
        stamp: 0,
        machine_name: b"test".to_vec(),
        uid,
        gid: uid,
        gids: Vec::new(),
    })
}

fn spec(pseudo: &str) -> ExportSpec {
    ExportSpec {
        pseudo: pseudo.into(),
        backend: Some("memory".into()),
        ..ExportSpec::default()
    }
}

fn rule(host: &str, read_only: bool) -> ClientSpec {
    ClientSpec {
        host: host.into(),
        read_only: Some(read_only),
        ..ClientSpec::default()
    }
}

/// /home: read-write for 127.0.0.1, read-only for 127.0.0.2. /data: 127.0.0.2 only.
/// /pub: everyone, AUTH_SYS only, all squashed.
fn three_exports() -> Vec<ExportSpec> {
    let mut home = spec("/home");
    home.clients = vec![rule("127.0.0.1", false), rule("127.0.0.2", true)];
    let mut data = spec("/srv/data");
    data.fsid = Some(77);
    data.clients = vec![rule("127.0.0.2", false)];
    let mut public = spec("/pub");
    public.sec = Some(vec!["sys".into()]);
    public.all_squash = Some(true);
    vec![home, data, public]
}

fn server(specs: Vec<ExportSpec>) -> TestServer {
    TestServer::with(|c| {
        c.exports = specs;
        c.exports_given = true;
    })
}

fn client_from(srv: &TestServer, source: &str, cred: Credential) -> Files {
    let (_, s) = Client::connect(
        &srv.addrs,
        ClientOptions {
            cred,
            source: Some(source.parse::<IpAddr>().unwrap()),
            timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        },
    )
    .expect("session");
    Files::new(s)
}

fn st(e: ClientError) -> ringnfs::nfs4::consts::NfsStatus {
    e.nfs_status()
        .unwrap_or_else(|| panic!("not an NFS status: {e}"))
}

fn place(f: &Files, fh: &[u8]) -> (u64, u64, u64) {
    let a = f
        .call(&[Op::PutFh(fh.to_vec()), Op::GetAttr(PLACE_ATTRS.to_vec())])
        .unwrap()
        .attrs()
        .unwrap();
    (
        a.fsid.unwrap().0,
        a.fileid.unwrap(),
        a.mounted_on_fileid.unwrap(),
    )
}

fn names(f: &Files, dir: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = f
        .readdir_all(dir)
        .unwrap()
        .into_iter()
        .map(|(n, _)| String::from_utf8(n).unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn pseudo_tree_rules_and_boundaries() {
    let srv = server(three_exports());
    let one = client_from(&srv, "127.0.0.1", sys(1000));
    let two = client_from(&srv, "127.0.0.2", sys(1000));

    // The pseudo root shows the exports a client may use, and the directories above.
    let root = one.root_fh().unwrap();
    assert_eq!(names(&one, &root), ["home", "pub", "srv"]);
    let srv_dir = one.lookup(&root, b"srv").unwrap();
    assert!(
        names(&one, &srv_dir).is_empty(),
        "127.0.0.1 does not see /srv/data"
    );
    assert_eq!(names(&two, &two.lookup_path("srv").unwrap()), ["data"]);
    // The pseudo root is read-only.
    let e = one.mkdir(&root, b"x", 0o755).unwrap_err();
    assert_eq!(st(e), status::NFS4ERR_ROFS);

    // Each export is a file system of its own, mounted on its pseudo directory.
    let (root_fsid, _, _) = place(&one, &root);
    let home = one.lookup(&root, b"home").unwrap();
    let (home_fsid, home_fileid, home_mounted_on) = place(&one, &home);
    assert_ne!(home_fsid, root_fsid);
    assert_ne!(
        home_mounted_on, home_fileid,
        "mounted_on_fileid is the pseudo directory's"
    );
    let data = two.lookup_path("srv/data").unwrap();
    assert_eq!(place(&two, &data).0, 77, "the configured fsid");
    // READDIR of the pseudo root shows the export's root: its fsid.
    let page = one
        .readdir_page(&root, 0, [0; 8], 4096, &PLACE_ATTRS)
        .unwrap();
    let home_entry = page.entries.iter().find(|e| e.name == b"home").unwrap();
    let a = home_entry.decode_attrs().unwrap();
    assert_eq!(a.fsid.unwrap().0, home_fsid);
    assert_eq!(a.mounted_on_fileid, Some(home_mounted_on));
    // LOOKUPP from an export's root is back in the pseudo file system.
    let up = one
        .call(&[Op::PutFh(home.clone()), Op::LookupP, Op::GetFh])
        .unwrap()
        .getfh()
        .unwrap();
    assert_eq!(up, root);

    // Rules by address: 127.0.0.1 writes /home, 127.0.0.2 reads it only.
    let (_, f) = one.create_new(&home, b"notes", 0o644).unwrap();
    one.write(&f, 0, b"from one", 2).unwrap();
    one.close(f).unwrap();
    let notes = two
        .lookup(&two.lookup_path("home").unwrap(), b"notes")
        .unwrap();
    let g = two.open_fh(&notes, 1, 0).unwrap();
    assert_eq!(two.read(&g, 0, 100).unwrap().0, b"from one");
    two.close(g).unwrap();
    let e = two
        .create_new(&two.lookup_path("home").unwrap(), b"no", 0o644)
        .unwrap_err();
    assert_eq!(st(e), status::NFS4ERR_ROFS);
    // 127.0.0.1 may not use /srv/data: not by name, not by a handle it got elsewhere.
    assert_eq!(
        st(one.lookup(&srv_dir, b"data").unwrap_err()),
        status::NFS4ERR_ACCESS
    );
    let e = one
        .call(&[Op::PutFh(data.clone()), Op::GetAttr(PLACE_ATTRS.to_vec())])
        .unwrap_err();
    assert_eq!(st(e), status::NFS4ERR_ACCESS);

    // RENAME and LINK between exports: NFS4ERR_XDEV.
    let public = one.lookup_path("pub").unwrap();
    let e = one.rename(&home, b"notes", &public, b"moved").unwrap_err();
    assert_eq!(st(e), status::NFS4ERR_XDEV);
    let e = one.link(&notes, &public, b"linked").unwrap_err();
    assert_eq!(st(e), status::NFS4ERR_XDEV);
    one.rename(&home, b"notes", &home, b"renamed").unwrap();

    // /pub admits AUTH_SYS only: SECINFO says so, AUTH_NONE gets WRONGSEC.
    let flavors = one
        .call(&[Op::PutRootFh, Op::Secinfo(b"pub".to_vec())])
        .unwrap()
        .secinfo(op::SECINFO)
        .unwrap();
    assert_eq!(flavors, [AUTH_SYS]);
    let flavors = one
        .call(&[Op::PutRootFh, Op::Secinfo(b"home".to_vec())])
        .unwrap()
        .secinfo(op::SECINFO)
        .unwrap();
    assert_eq!(flavors, [AUTH_SYS, AUTH_NONE]);
    let anon = client_from(&srv, "127.0.0.1", Credential::None);
    let e = anon
        .call(&[Op::PutRootFh, Op::Lookup(b"pub".to_vec())])
        .unwrap_err();
    assert_eq!(st(e), status::NFS4ERR_WRONGSEC);
    let e = anon
        .call(&[Op::PutFh(public.clone()), Op::GetAttr(PLACE_ATTRS.to_vec())])
        .unwrap_err();
    assert_eq!(st(e), status::NFS4ERR_WRONGSEC);
    // all_squash: a file root creates in /pub belongs to the anonymous uid.
    let root_user = client_from(&srv, "127.0.0.1", sys(0));
    let (_, f) = root_user.create_new(&public, b"squashed", 0o644).unwrap();
    let fh = f.fh.clone();
    root_user.close(f).unwrap();
    let owner = root_user.getattr(&fh).unwrap().owner.unwrap();
    assert_eq!(owner, "65534");
}

#[test]
fn live_changes_leave_other_exports_alone() {
    let srv = server(vec![spec("/a"), spec("/b")]);
    let admin = srv.server().exports().clone();
    let a = client_from(&srv, "127.0.0.1", sys(1000));
    let b = client_from(&srv, "127.0.0.1", sys(1000));
    let a_dir = a.lookup_path("a").unwrap();
    let b_dir = b.lookup_path("b").unwrap();
    let (_, f) = b.create_new(&b_dir, b"kept", 0o644).unwrap();
    b.write(&f, 0, b"b data", 2).unwrap();
    b.close(f).unwrap();
    let kept = b.lookup(&b_dir, b"kept").unwrap();

    // A writer on /a the whole time: every write lands, none fails.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, a, dir) = (stop.clone(), a, a_dir.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) || n < 50 {
                let name = format!("f{n}");
                let (_, f) = a.create_new(&dir, name.as_bytes(), 0o644).expect("create");
                a.write(&f, 0, name.as_bytes(), 2).expect("write");
                a.close(f).expect("close");
                n += 1;
            }
            (a, n)
        })
    };
    let id_of = |pseudo: &str| {
        admin
            .list()
            .into_iter()
            .find(|v| v.export.pseudo == pseudo)
            .unwrap()
            .id
    };
    // Add /c, change /b's options (its client keeps its state and handles), change /c
    // to another place, remove it; a refused change changes nothing.
    admin.add(spec("/c")).unwrap();
    let mut b_ro = spec("/b");
    b_ro.read_only = Some(true);
    admin.update(id_of("/b"), b_ro).unwrap();
    let held = b.open_fh(&kept, 1, 0).unwrap();
    assert_eq!(b.read(&held, 0, 100).unwrap().0, b"b data");
    assert_eq!(
        st(b.create_new(&b_dir, b"new", 0o644).unwrap_err()),
        status::NFS4ERR_ROFS
    );
    admin.update(id_of("/c"), spec("/c2")).unwrap();
    assert!(admin.add(spec("/a")).is_err(), "a second /a is refused");
    admin.remove(id_of("/c2")).unwrap();
    // Removing /b: its handles are stale, the open its client held there is revoked
    // (RFC 8881 §8.5) until freed; /a's writer saw nothing.
    admin.remove(id_of("/b")).unwrap();
    let e = b
        .call(&[Op::PutFh(kept.clone()), Op::GetAttr(PLACE_ATTRS.to_vec())])
        .unwrap_err();
    assert_eq!(st(e), status::NFS4ERR_STALE);
    let flags = |f: &Files| {
        let r = f.session().call(0, &[], false).unwrap();
        r.sequence().unwrap().status_flags
    };
    assert_ne!(flags(&b) & seq4_status::ADMIN_STATE_REVOKED, 0);
    assert_eq!(
        b.test_stateids(&[held.stateid]).unwrap(),
        [status::NFS4ERR_ADMIN_REVOKED]
    );
    b.free_stateid(held.stateid).unwrap();
    assert_eq!(flags(&b) & seq4_status::ADMIN_STATE_REVOKED, 0);
    stop.store(true, Ordering::Relaxed);
    let (a, n) = writer.join().expect("the writer saw no error");
    // Every write is there.
    let a_dir = a.lookup_path("a").unwrap();
    for i in 0..n {
        let name = format!("f{i}");
        let fh = a.lookup(&a_dir, name.as_bytes()).unwrap();
        let f = a.open_fh(&fh, 1, 0).unwrap();
        assert_eq!(a.read(&f, 0, 100).unwrap().0, name.as_bytes());
        a.close(f).unwrap();
    }
    let pseudo: Vec<String> = admin.list().into_iter().map(|v| v.export.pseudo).collect();
    assert_eq!(pseudo, ["/a"]);
    assert!(admin.list()[0].ops > 0);
    assert!(admin.list()[0].bytes_written >= u64::from(n));
}

#[test]
fn config_tables_and_exports5_import() {
    let dir = common::TempDir::new("exports-import");
    let exports = dir.0.join("exports");
    std::fs::write(
        &exports,
        "# exports(5)\n\
         /srv/home  10.0.0.0/8(rw,sync,no_subtree_check) 127.0.0.2(ro,all_squash,anonuid=1000)\n\
         /srv/data  -ro *(sec=sys:krb5,fsid=12) @lab(rw) *.example.com(rw)\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .args(["exports", "import"])
        .arg(&exports)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    for says in ["\"sync\" ignored", "\"@lab\""] {
        assert!(stderr.contains(says), "{says} missing in:\n{stderr}");
    }
    // Kerberos flavors carry over.
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(stdout.contains("\"krb5\""), "{stdout}");
    // The output is a config file `serve --config` takes.
    let config = dir.0.join("ringnfs.toml");
    std::fs::write(&config, &out.stdout).unwrap();
    let o = ringnfs::config::load(&config).unwrap();
    let cfg = o.server_config();
    assert!(cfg.exports_given);
    let pseudo: Vec<&str> = cfg.exports.iter().map(|e| e.pseudo.as_str()).collect();
    assert_eq!(pseudo, ["/srv/home", "/srv/data"]);
    assert_eq!(cfg.exports[1].fsid, Some(12));
    assert_eq!(cfg.exports[0].clients[1].anon_uid, Some(1000));
    // A missing file is a sentence and a failure.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .args(["exports", "import", "/nonexistent/exports"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /nonexistent/exports"));
}

/// A wildcard rule (`loc*`) matches a client by its forward-confirmed host name, looked
/// up off the workers: the first request from an address waits (NFS4ERR_DELAY), the
/// retries get the answer. A client whose address has no name matches no wildcard.
#[test]
fn wildcard_host_rules() {
    use ringnfs::nfs4::export::names::{Name, Names};
    // What this system calls 127.0.0.1 (Debian: "localhost").
    let one: IpAddr = "127.0.0.1".parse().unwrap();
    let mut name = Names::get().name_of(one);
    for _ in 0..500 {
        if name != Name::Pending {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        name = Names::get().name_of(one);
    }
    let Name::Known(Some(name)) = name else {
        panic!("this system has no name for 127.0.0.1 ({name:?}): /etc/hosts lacks localhost");
    };
    let pattern = format!("{}*", &name[..name.len().min(3)]);
    let mut w = spec("/w");
    w.clients = vec![ClientSpec {
        host: pattern.clone(),
        read_only: Some(false),
        ..ClientSpec::default()
    }];
    let srv = server(vec![w, spec("/other")]);
    let lookup_w = |f: &Files| {
        let mut delays = 0;
        loop {
            match f.lookup_path("w") {
                Err(e) if e.nfs_status() == Some(status::NFS4ERR_DELAY) && delays < 3000 => {
                    delays += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                r => return (r, delays),
            }
        }
    };
    let (r, _) = lookup_w(&client_from(&srv, "127.0.0.1", sys(1000)));
    let w_fh = r.unwrap_or_else(|e| panic!("{name} matches {pattern}: {e}"));
    assert!(!w_fh.is_empty());
    // 127.0.0.3 has no name here: it waits for the lookup once, then is refused.
    let (r, delays) = lookup_w(&client_from(&srv, "127.0.0.3", sys(1000)));
    assert!(delays >= 1, "the first request waits for the name");
    assert_eq!(st(r.unwrap_err()), status::NFS4ERR_ACCESS);
}
