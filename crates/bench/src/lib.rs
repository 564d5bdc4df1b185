//! `ringnfs bench`: an NFSv4.1 load generator with trunked connections, and `ringnfs
//! bench compare` against nfs-ganesha. Built as its own executable, `ringnfs-bench`
//! ([`main`]; `ringnfs bench` execs it), so the server binary links none of it (plots,
//! the apt installer, the progress bar).
//!
//! Each connection is driven by one thread that keeps `depth` requests in flight on a
//! raw socket, patching pre-encoded request templates in place (xid, slot, sequence id),
//! writing in batches and parsing replies in bulk. Sequenced workloads give every
//! in-flight request its own slot of the connection's session.

#[cfg(test)]
mod canned;
mod cli;
pub mod compare;
pub mod error;
mod file;
mod interrupt;
mod pattern;
mod plot;
mod report;
mod run;
mod setup;
mod stream;
mod template;
mod worker;

use std::net::SocketAddr;
use std::time::Duration;

pub use cli::{BenchArgs, BenchCli, BenchCommand, main, run_bench_cli, run_cli};
pub use error::BenchError;
pub use report::{BenchReport, FilesLeft, Latency, parse_cpu_ticks, process_cpu_us};
pub use run::run;
pub use template::Template;

use ringnfs_client::{CloseArgs, Op, ReadArgs};
use ringnfs_proto::rpc::{AuthSys, Credential};
use ringnfs_proto::stateid::Stateid;

/// What each request does. New workloads add a variant and a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// RPC NULL procedure (no session).
    Null,
    /// COMPOUND { SEQUENCE }.
    Sequence,
    /// COMPOUND { SEQUENCE, PUTFH(export dir), GETATTR(type, change, size, fileid) }.
    Getattr,
    /// COMPOUND { SEQUENCE, PUTFH(export dir), LOOKUP(bench file), GETFH }.
    Lookup,
    /// COMPOUND { SEQUENCE, PUTFH(dir), OPEN(create, unique name), CLOSE } (with
    /// `--remove`: then PUTFH(dir), REMOVE(name) in the same COMPOUND).
    Create,
    /// Sequential 1 MiB READs through a prepared file.
    Read,
    /// Sequential 1 MiB UNSTABLE WRITEs through a prepared file.
    Write,
    /// 4 KiB READs at random aligned offsets.
    Randread,
    /// 4 KiB UNSTABLE WRITEs at random aligned offsets.
    Randwrite,
    /// Per request, at random: 35% GETATTR, 35% LOOKUP, 20% 4 KiB READ, 10% 4 KiB
    /// WRITE (random offsets in the prepared file).
    Mixed,
    /// An application's open, 4 KiB read and close of the prepared file, as a client
    /// without a page cache sends it: COMPOUND { SEQUENCE, PUTFH(dir), OPEN(read),
    /// READ, CLOSE } — or, when the session's first OPEN of the file got a read
    /// delegation, { SEQUENCE, PUTFH(file), READ(delegation stateid) }, since under a
    /// delegation opens and closes are the client's own business. `--no-delegations`
    /// asks for none (OPEN4_SHARE_ACCESS_WANT_NO_DELEG): the same server, both ways.
    #[value(name = "open-read-close")]
    OpenReadClose,
}

/// The `mixed` profile: (request kind, percent).
pub const MIX: [(&str, u8); 4] = [("getattr", 35), ("lookup", 35), ("read", 20), ("write", 10)];

impl Workload {
    pub const ALL: [Workload; 11] = [
        Workload::Null,
        Workload::Sequence,
        Workload::Getattr,
        Workload::Lookup,
        Workload::Create,
        Workload::Read,
        Workload::Write,
        Workload::Randread,
        Workload::Randwrite,
        Workload::Mixed,
        Workload::OpenReadClose,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Null => "null",
            Workload::Sequence => "sequence",
            Workload::Getattr => "getattr",
            Workload::Lookup => "lookup",
            Workload::Create => "create",
            Workload::Read => "read",
            Workload::Write => "write",
            Workload::Randread => "randread",
            Workload::Randwrite => "randwrite",
            Workload::Mixed => "mixed",
            Workload::OpenReadClose => "open-read-close",
        }
    }

    /// Bytes one READ/WRITE moves (0 for metadata workloads; 4 KiB for `mixed`).
    pub fn io_size(self) -> u64 {
        match self {
            Workload::Read | Workload::Write => 1 << 20,
            Workload::Randread
            | Workload::Randwrite
            | Workload::Mixed
            | Workload::OpenReadClose => 4096,
            _ => 0,
        }
    }

    fn random_io(self) -> bool {
        matches!(
            self,
            Workload::Randread | Workload::Randwrite | Workload::Mixed
        )
    }

    fn is_write(self) -> bool {
        matches!(self, Workload::Write | Workload::Randwrite)
    }

    fn needs_session(self) -> bool {
        !matches!(self, Workload::Null)
    }

    /// Whether the workload reads or looks up the prepared file.
    fn needs_file(self) -> bool {
        self.io_size() > 0 || self == Workload::Lookup
    }
}

/// What a session's templates are built from.
struct TemplateInput<'a> {
    prep: &'a setup::Prepared,
    io_size: u32,
    clientid: u64,
    /// Unique per run: created names never collide with an earlier run's.
    nonce: u32,
    remove: bool,
    /// open-read-close: the read delegation the session's first OPEN got.
    delegation: Option<Stateid>,
    /// open-read-close: OPENs say OPEN4_SHARE_ACCESS_WANT_NO_DELEG.
    no_delegations: bool,
}

/// OPEN4_SHARE_ACCESS_WANT_NO_DELEG.
const WANT_NO_DELEG: u32 = 0x0400;

/// The OPEN (for reading, no create) of the prepared file the open-read-close workload
/// sends, by `owner`.
fn open_for_reading(clientid: u64, owner: Vec<u8>, no_delegations: bool) -> Op {
    Op::Open(ringnfs_client::OpenArgs {
        seqid: 0,
        share_access: 1 | if no_delegations { WANT_NO_DELEG } else { 0 },
        share_deny: 0,
        clientid,
        owner,
        how: ringnfs_client::OpenHow::NoCreate,
        claim: ringnfs_client::OpenClaim::Null(setup::BENCH_FILE.to_vec()),
    })
}

/// What open-read-close sends once per session, after RECLAIM_COMPLETE: an OPEN of the
/// file (which may bring a read delegation) and its CLOSE (the delegation stays).
pub fn delegation_probe(dir_fh: &[u8], clientid: u64, no_delegations: bool) -> Vec<Op> {
    vec![
        Op::PutFh(dir_fh.to_vec()),
        open_for_reading(clientid, b"ringnfs-bench-probe".to_vec(), no_delegations),
        Op::Close(CloseArgs {
            seqid: 0,
            stateid: Stateid::CURRENT,
        }),
    ]
}

/// Request kinds of a workload (operations after SEQUENCE) and the pick table: each
/// request uses kind `pick[r % pick.len()]`. I/O uses the anonymous stateid (the file
/// is mode 0666), so no session needs an OPEN.
fn workload_ops(w: Workload, t: &TemplateInput<'_>) -> (Vec<Vec<Op>>, Vec<u8>) {
    let dir = &t.prep.dir_fh;
    let file = &t.prep.file_fh;
    // FATTR4_TYPE (1), CHANGE (3), SIZE (4), FILEID (20).
    let getattr = || {
        vec![
            Op::PutFh(dir.clone()),
            Op::GetAttr(vec![(1 << 1) | (1 << 3) | (1 << 4) | (1 << 20)]),
        ]
    };
    let lookup = || {
        vec![
            Op::PutFh(dir.clone()),
            Op::Lookup(setup::BENCH_FILE.to_vec()),
            Op::GetFh,
        ]
    };
    let read = |count: u32| {
        vec![
            Op::PutFh(file.clone()),
            Op::Read(ReadArgs {
                stateid: Stateid::ANONYMOUS,
                offset: 0,
                count,
            }),
        ]
    };
    let write = |count: u32| {
        let mut data = vec![0u8; count as usize];
        pattern::generate(0, &mut data);
        vec![
            Op::PutFh(file.clone()),
            Op::Write {
                stateid: Stateid::ANONYMOUS,
                offset: 0,
                stable: 0,
                data,
            },
        ]
    };
    let one = |ops| (vec![ops], vec![0]);
    match w {
        Workload::Null | Workload::Sequence => one(Vec::new()),
        Workload::Getattr => one(getattr()),
        Workload::Lookup => one(lookup()),
        Workload::Create => {
            let mut name = format!("rb-{:08x}-", t.nonce).into_bytes();
            name.extend_from_slice(template::NAME_COUNTER);
            let mut ops = vec![
                Op::PutFh(dir.clone()),
                Op::Open(ringnfs_client::OpenArgs {
                    seqid: 0,
                    share_access: 2,
                    share_deny: 0,
                    clientid: t.clientid,
                    owner: b"ringnfs-bench-create".to_vec(),
                    how: ringnfs_client::OpenHow::Unchecked(
                        ringnfs_client::Fattr::new().mode(0o666),
                    ),
                    claim: ringnfs_client::OpenClaim::Null(name.clone()),
                }),
                Op::Close(CloseArgs {
                    seqid: 0,
                    stateid: Stateid::CURRENT,
                }),
            ];
            if t.remove {
                ops.push(Op::PutFh(dir.clone()));
                ops.push(Op::Remove(name));
            }
            one(ops)
        }
        Workload::OpenReadClose => match t.delegation {
            Some(deleg) => one(vec![
                Op::PutFh(file.clone()),
                Op::Read(ReadArgs {
                    stateid: deleg,
                    offset: 0,
                    count: t.io_size,
                }),
            ]),
            None => {
                // One open owner per request: requests in flight together never share
                // (and close) one another's open.
                let mut owner = b"rb-orc-".to_vec();
                owner.extend_from_slice(template::NAME_COUNTER);
                one(vec![
                    Op::PutFh(dir.clone()),
                    open_for_reading(t.clientid, owner, t.no_delegations),
                    Op::Read(ReadArgs {
                        stateid: Stateid::CURRENT,
                        offset: 0,
                        count: t.io_size,
                    }),
                    Op::Close(CloseArgs {
                        seqid: 0,
                        stateid: Stateid::CURRENT,
                    }),
                ])
            }
        },
        Workload::Read | Workload::Randread => one(read(t.io_size)),
        Workload::Write | Workload::Randwrite => one(write(t.io_size)),
        Workload::Mixed => {
            let kinds = vec![getattr(), lookup(), read(t.io_size), write(t.io_size)];
            let mut pick = Vec::with_capacity(100);
            for (i, (_, pct)) in MIX.iter().enumerate() {
                pick.extend(std::iter::repeat_n(i as u8, *pct as usize));
            }
            (kinds, pick)
        }
    }
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub server: SocketAddr,
    pub workload: Workload,
    pub connections: usize,
    pub sessions: usize,
    pub depth: usize,
    pub duration: Duration,
    pub ops: Option<u64>,
    pub warmup: Duration,
    pub server_pid: Option<u32>,
    pub cred: Credential,
    pub progress: bool,
    pub file_size: u64,
    pub verify: bool,
    /// LOOKUP components from the root filehandle to the export directory.
    pub export_path: Vec<Vec<u8>>,
    pub remove: bool,
    /// open-read-close: ask for no delegations.
    pub no_delegations: bool,
    /// RPC-with-TLS on every connection.
    pub tls: Option<ringnfs_client::ClientTls>,
}

impl BenchOptions {
    /// Defaults for `workload` against `server` (what the command line gives).
    pub fn new(server: SocketAddr, workload: Workload) -> Self {
        BenchOptions {
            server,
            workload,
            connections: 4,
            sessions: 1,
            depth: 8,
            duration: Duration::from_secs(10),
            ops: None,
            warmup: Duration::from_secs(1),
            server_pid: None,
            cred: Credential::None,
            progress: false,
            file_size: 256 << 20,
            verify: false,
            export_path: Vec::new(),
            remove: false,
            no_delegations: false,
            tls: None,
        }
    }

    /// AUTH_SYS as root (uid 0, gid 0), which nfs-ganesha's `SecType = sys` needs.
    pub fn root_cred() -> Credential {
        Self::sys_cred(0, 0)
    }

    /// AUTH_SYS with these ids (no supplementary groups).
    pub fn sys_cred(uid: u32, gid: u32) -> Credential {
        Credential::Sys(AuthSys {
            stamp: 0,
            machine_name: b"ringnfs-bench".to_vec(),
            uid,
            gid,
            gids: vec![],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnfs_client::mock::MockServer;
    use std::sync::atomic::Ordering;

    fn opts(server: SocketAddr, workload: Workload) -> BenchOptions {
        BenchOptions {
            connections: 2,
            depth: 4,
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(100),
            server_pid: Some(std::process::id()),
            file_size: 4 << 20,
            ..BenchOptions::new(server, workload)
        }
    }

    fn args(extra: &[&str]) -> anyhow::Result<BenchOptions> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            a: BenchArgs,
        }
        let mut v = vec!["bench"];
        v.extend_from_slice(extra);
        let cli = <Cli as clap::Parser>::try_parse_from(v)?;
        Ok(BenchOptions::from_args(&cli.a)?)
    }

    #[test]
    fn argument_handling() {
        let o = args(&[]).unwrap();
        assert_eq!(o.workload, Workload::Sequence);
        assert_eq!((o.connections, o.sessions, o.depth), (4, 1, 8));
        assert_eq!(o.file_size, 256 << 20);
        assert!(o.export_path.is_empty() && !o.verify && !o.remove);
        assert_eq!(o.cred, Credential::None);
        let o = args(&[
            "--workload",
            "mixed",
            "--server",
            "127.0.0.1:20490",
            "--export-path",
            "/export/x",
            "--verify",
            "--auth-sys",
            "--file-size-mib",
            "1",
            "--ops",
            "10",
        ])
        .unwrap();
        assert_eq!(o.workload, Workload::Mixed);
        assert_eq!(o.server.port(), 20490);
        assert_eq!(o.export_path, vec![b"export".to_vec(), b"x".to_vec()]);
        assert!(o.verify);
        assert_eq!(o.cred, BenchOptions::root_cred(), "bare --auth-sys is root");
        let uid = |a: &[&str]| match args(a).unwrap().cred {
            Credential::Sys(s) => (s.uid, s.gid),
            c => panic!("{c:?}"),
        };
        assert_eq!(uid(&["--auth-sys", "1000:100"]), (1000, 100));
        assert_eq!(uid(&["--auth-sys=1000"]), (1000, 1000));
        assert_eq!(uid(&["--auth-sys", "--verify"]), (0, 0));
        assert_eq!(o.file_size, 1 << 20);
        assert_eq!(o.ops, Some(10));
        for bad in [
            &["--connections", "0"][..],
            &["--depth", "0"],
            &["--duration", "0"],
            &["--warmup", "-1"],
            &["--ops", "0"],
            &["--workload", "nope"],
            &["--server", "no-such-host.invalid:1"],
            &["--auth-sys", "root"],
            &["--file-size-mib", "0"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
        for w in Workload::ALL {
            assert_eq!(
                <Workload as clap::ValueEnum>::from_str(w.name(), false).unwrap(),
                w
            );
        }
        // The mixed profile adds up to 100 %.
        assert_eq!(MIX.iter().map(|m| m.1 as u32).sum::<u32>(), 100);
    }

    #[test]
    fn sequence_workload_against_mock() {
        let m = MockServer::start();
        let r = run(opts(m.addr, Workload::Sequence)).unwrap();
        assert!(r.ops > 0, "{r:?}");
        assert_eq!(r.error_total, 0, "{:?}", r.errors);
        assert!(
            r.connection_failures.is_empty(),
            "{:?}",
            r.connection_failures
        );
        assert!(r.latency_us.p50 > 0.0);
        assert!(r.server_cpu_us_per_op.is_some());
        // A duration run measures at least the asked time (never a speed claim).
        assert!(r.elapsed_s >= 0.29, "{}", r.elapsed_s);
        // Every executed request advanced its slot: no replays, no misordering.
        assert_eq!(m.state.replays.load(Ordering::Relaxed), 0);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"ops_per_sec\""));
    }

    #[test]
    fn null_workload_with_op_count_and_sessions() {
        let m = MockServer::start();
        let mut o = opts(m.addr, Workload::Null);
        o.ops = Some(1001);
        o.sessions = 2;
        let r = run(o).unwrap();
        assert_eq!(r.ops, 1001);
        assert_eq!(r.error_total, 0);
    }

    #[test]
    fn depth_is_clamped_to_granted_slots() {
        let m = MockServer::start();
        let mut o = opts(m.addr, Workload::Sequence);
        // The mock grants at most 128 slots: 2 x 100 does not fit.
        o.depth = 100;
        o.ops = Some(500);
        let r = run(o).unwrap();
        assert_eq!(r.depth, 64);
        assert_eq!(r.ops, 500);
        assert_eq!(r.error_total, 0, "{:?}", r.errors);
    }

    #[test]
    fn failed_replies_are_errors_not_ops() {
        let m = MockServer::start();
        let mut o = opts(m.addr, Workload::Getattr);
        // A fixed count of replies, not a duration: the outcome must not depend on how
        // busy the machine is.
        o.ops = Some(500);
        let r = run(o).unwrap();
        // The mock does not implement GETATTR: every reply is NFS4ERR_OP_ILLEGAL, so
        // nothing was done: no ops, no rate, no CPU per op; 500 errors by name.
        assert_eq!(r.ops, 0, "{r:?}");
        assert_eq!(r.ops_per_sec, 0.0);
        assert_eq!(r.server_cpu_us_per_op, None);
        assert_eq!(r.latency_us, Latency::default(), "no latency of failures");
        assert_eq!(r.error_total, 500);
        assert_eq!(
            r.errors.get("NFS4ERR_OP_ILLEGAL").copied(),
            Some(500),
            "{:?}",
            r.errors
        );
        let s = r.summary();
        assert!(s.contains("0 ops in "), "{s}");
        assert!(s.contains("NFS4ERR_OP_ILLEGAL 500"), "{s}");
    }

    #[test]
    fn summary_states_the_warm_up() {
        let m = MockServer::start();
        let mut o = opts(m.addr, Workload::Sequence);
        o.ops = Some(100);
        let s = run(o).unwrap().summary();
        assert!(
            s.contains("100 ops in ") && s.contains(" s after a 0.1 s warm-up"),
            "{s}"
        );
    }
}

/// Throughput of the load generator itself against a trivial in-process server that
/// answers every request with one pre-encoded SEQUENCE reply. Run with
/// `cargo test --release -- --ignored --nocapture generator_throughput`.
#[cfg(test)]
mod perf {
    use super::worker::{WorkerConfig, run_worker};
    use super::*;
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::time::Instant;

    fn blast_server() -> SocketAddr {
        canned::canned_server(canned::sequence_reply(0, |_| {}))
    }

    #[test]
    #[ignore]
    fn generator_throughput() {
        let addr = blast_server();
        let r = run(BenchOptions {
            duration: Duration::from_secs(3),
            warmup: Duration::from_millis(500),
            ..BenchOptions::new(addr, Workload::Null)
        })
        .unwrap();
        print!("{}", r.summary());
        // SEQUENCE: drive workers directly (the blast server cannot create sessions).
        let tmpl = Arc::new(Template::sequenced(
            &Credential::None,
            ringnfs_client::SessionId([7; 16]),
            31,
            &[],
        ));
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let hs: Vec<_> = (0..4)
            .map(|c| {
                let s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let cfg = WorkerConfig {
                    templates: Arc::new(vec![(*tmpl).clone()]),
                    pick: Arc::new(vec![0]),
                    verify: false,
                    name_base: 0,
                    io: None,
                    depth: 8,
                    slot_base: c * 8,
                    first_seqid: 1,
                    measure_start: start + Duration::from_millis(500),
                    measure_end: Some(start + Duration::from_millis(3500)),
                    quota: None,
                    progress: Arc::new(AtomicU64::new(0)),
                    stop: stop.clone(),
                };
                std::thread::spawn(move || run_worker(crate::stream::Stream::Plain(s), cfg))
            })
            .collect();
        let mut ops = 0;
        for h in hs {
            let r = h.join().unwrap();
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            ops += r.ops;
        }
        println!("sequence: {:.0} ops/s", ops as f64 / 3.0);
    }
}
