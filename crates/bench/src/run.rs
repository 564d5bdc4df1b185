//! One benchmark run: prepare, open the sessions, drive the workers, account for what
//! succeeded, tear down. Whatever the run created on the server (clients, sessions) is
//! destroyed before it returns, also when setup fails half-way or Ctrl-C stops it.

use super::stream::Stream;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::error::{self, BenchError};
use super::report::FilesLeft;
use super::worker::{ErrorKey, IoPattern, WorkerConfig, WorkerResult, run_worker};
use super::{
    BenchOptions, BenchReport, Latency, Template, TemplateInput, Workload, interrupt, pattern,
    process_cpu_us, setup, workload_ops,
};
use ringnfs_proto::nfs4::consts::op;
use ringnfs_proto::rpc::Credential;

/// A session the run created: what teardown needs.
struct SessionInfo {
    clientid: u64,
    sessionid: ringnfs_client::SessionId,
}

/// Per session: the session (none for the NULL workload), its connections (the first
/// created the session) and its request templates.
struct Plan {
    info: Option<SessionInfo>,
    streams: Vec<Stream>,
    templates: Arc<Vec<Template>>,
    /// Which template each request uses (see [`workload_ops`]).
    pick: Arc<Vec<u8>>,
}

/// Destroy the sessions (and their clients) of `plans`, each on the first of its
/// streams that works; returns what could not be destroyed.
fn teardown(cred: &Credential, plans: &mut [(Option<SessionInfo>, Vec<Stream>)]) -> Vec<String> {
    let mut left = Vec::new();
    for (info, streams) in plans.iter_mut() {
        let Some(info) = info else { continue };
        let mut last = None;
        for s in streams.iter_mut() {
            match setup::destroy_session(s, cred, info.clientid, info.sessionid) {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            tracing::warn!(error = %e, "session teardown failed");
            left.push(format!(
                "client {:#x} and its session were not destroyed ({e}); the server drops \
                 them when the lease expires",
                info.clientid
            ));
        }
    }
    left
}

/// What the sessions' requests are made of.
struct SessionSpec<'a> {
    opts: &'a BenchOptions,
    prep: &'a setup::Prepared,
    io_size: u64,
    nonce: u32,
}

/// Connect one session's streams and create its session (unless the workload needs
/// none) and templates. `depth` is lowered to the slots granted. On failure, the session
/// is destroyed before returning.
fn open_session(spec: &SessionSpec<'_>, depth: &mut usize) -> Result<Plan, BenchError> {
    let opts = spec.opts;
    let w = opts.workload;
    let mut streams = Vec::with_capacity(opts.connections);
    for _ in 0..opts.connections {
        streams.push(setup::connect(opts.server, opts.tls.as_ref())?);
    }
    if !w.needs_session() {
        return Ok(Plan {
            info: None,
            streams,
            templates: Arc::new(vec![Template::null(&opts.cred)]),
            pick: Arc::new(vec![0]),
        });
    }
    let want = (opts.connections * *depth) as u32;
    let probe = if w == Workload::OpenReadClose {
        super::delegation_probe(&spec.prep.dir_fh, 0, opts.no_delegations)
    } else {
        Vec::new()
    };
    let (clientid, cs, probed) =
        setup::create_session_then(&mut streams[0], &opts.cred, want, &probe)?;
    let delegation = match probed.open() {
        Ok(r) if !probe.is_empty() => match r.delegation {
            ringnfs_client::Delegation::Read { stateid, .. }
            | ringnfs_client::Delegation::Write { stateid, .. } => Some(stateid),
            _ => None,
        },
        _ => None,
    };
    let info = SessionInfo {
        clientid,
        sessionid: cs.sessionid,
    };
    match session_templates(spec, &cs, clientid, delegation, depth) {
        Ok((templates, pick)) => Ok(Plan {
            info: Some(info),
            streams,
            templates: Arc::new(templates),
            pick: Arc::new(pick),
        }),
        Err(e) => {
            teardown(&opts.cred, &mut [(Some(info), streams)]);
            Err(e)
        }
    }
}

/// The templates (and pick table) of a session the server granted `cs`; lowers `depth`
/// to its slots.
fn session_templates(
    spec: &SessionSpec<'_>,
    cs: &ringnfs_client::CreateSessionResOk,
    clientid: u64,
    delegation: Option<ringnfs_client::Stateid>,
    depth: &mut usize,
) -> Result<(Vec<Template>, Vec<u8>), BenchError> {
    let opts = spec.opts;
    let w = opts.workload;
    let got = cs.fore.maxrequests as usize;
    if got < opts.connections * *depth {
        let d = got / opts.connections;
        if d == 0 {
            return Err(BenchError::Limits(format!(
                "the server granted {got} slots, fewer than the {} connections per session",
                opts.connections
            )));
        }
        tracing::warn!(
            granted = got,
            depth = d,
            "server granted fewer slots: lowering depth"
        );
        *depth = (*depth).min(d);
    }
    let highest = (got.max(1) - 1) as u32;
    let (kinds, pick) = workload_ops(
        w,
        &TemplateInput {
            prep: spec.prep,
            io_size: spec.io_size as u32,
            clientid,
            nonce: spec.nonce,
            remove: opts.remove,
            delegation,
            no_delegations: opts.no_delegations,
        },
    );
    let mut tmpls = Vec::with_capacity(kinds.len());
    for ops in &kinds {
        if ops.len() + 1 > cs.fore.maxoperations as usize {
            return Err(BenchError::Limits(format!(
                "{} needs {} operations per COMPOUND; the server allows {}",
                w.name(),
                ops.len() + 1,
                cs.fore.maxoperations
            )));
        }
        let t = Template::sequenced(&opts.cred, cs.sessionid, highest, ops);
        if t.bytes.len() - 4 > cs.fore.maxrequestsize as usize {
            return Err(BenchError::Limits(format!(
                "a {} request is {} bytes; the server accepts {}",
                w.name(),
                t.bytes.len() - 4,
                cs.fore.maxrequestsize
            )));
        }
        tmpls.push(t);
    }
    Ok((tmpls, pick))
}

/// The I/O size after the server's limits (0 for metadata workloads).
fn granted_io_size(opts: &BenchOptions, prep: &setup::Prepared) -> Result<u64, BenchError> {
    let io_size = opts.workload.io_size();
    if io_size == 0 {
        return Ok(0);
    }
    // Never assume our limits: the I/O size follows what the server granted.
    // 1 KiB leaves room for the RPC header, credential, SEQUENCE and PUTFH.
    let limit = u64::from(prep.max_request.min(prep.max_response)).saturating_sub(1024)
        / pattern::BLOCK as u64
        * pattern::BLOCK as u64;
    if limit == 0 {
        return Err(BenchError::Limits(
            "the server's maximum request/response size is too small".into(),
        ));
    }
    let io_size = if io_size > limit {
        tracing::warn!(io_size, limit, "server limits I/O size: lowering it");
        limit
    } else {
        io_size
    };
    if opts.file_size < io_size {
        return Err(BenchError::Usage(
            "--file-size-mib is smaller than one I/O".into(),
        ));
    }
    Ok(io_size)
}

/// Run one benchmark.
pub fn run(opts: BenchOptions) -> Result<BenchReport, BenchError> {
    if opts.connections == 0 || opts.sessions == 0 || opts.depth == 0 {
        return Err(BenchError::Usage(
            "--connections, --sessions and --depth must be at least 1".into(),
        ));
    }
    if opts.depth > 0xffff {
        return Err(BenchError::Usage("--depth must be below 65536".into()));
    }
    let w = opts.workload;
    let mut depth = opts.depth;
    let prep = if !matches!(w, Workload::Null | Workload::Sequence) {
        let file = w.needs_file().then(|| setup::FileSpec {
            size: if w.io_size() > 0 { opts.file_size } else { 0 },
            fill: w.io_size() > 0 && !w.is_write(),
        });
        setup::prepare(
            (opts.server, opts.tls.as_ref()),
            &opts.cred,
            &opts.export_path,
            file,
        )?
    } else {
        setup::Prepared::default()
    };
    let io_size = granted_io_size(&opts, &prep)?;
    let nonce: u32 = rand::random();
    let spec = SessionSpec {
        opts: &opts,
        prep: &prep,
        io_size,
        nonce,
    };
    let mut plans: Vec<Plan> = Vec::new();
    for _ in 0..opts.sessions {
        let opened = if interrupt::requested() {
            Err(BenchError::Interrupted)
        } else {
            open_session(&spec, &mut depth)
        };
        match opened {
            Ok(p) => plans.push(p),
            Err(e) => {
                let mut created: Vec<_> = plans.into_iter().map(|p| (p.info, p.streams)).collect();
                teardown(&opts.cred, &mut created);
                return Err(e);
            }
        }
    }

    let start = Instant::now();
    let measure_start = start + opts.warmup;
    let measure_end = opts.ops.is_none().then(|| measure_start + opts.duration);
    let nworkers = opts.sessions * opts.connections;
    let quota = |i: usize| {
        opts.ops
            .map(|n| n / nworkers as u64 + u64::from((i as u64) < n % nworkers as u64))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut progress = Vec::new();
    let mut handles = Vec::new();
    let mut infos = Vec::new();
    for (si, plan) in plans.into_iter().enumerate() {
        infos.push(plan.info);
        for (ci, s) in plan.streams.into_iter().enumerate() {
            let p = Arc::new(AtomicU64::new(0));
            progress.push(p.clone());
            let worker = si * opts.connections + ci;
            let io = (io_size > 0).then(|| {
                let random = w.random_io();
                // Spread sequential streams over the file; seed random ones apart.
                let mut start = if random {
                    worker as u64 * 0x9e37_79b9 + 1
                } else {
                    opts.file_size / nworkers as u64 * worker as u64
                };
                if !random {
                    start %= opts.file_size.max(io_size);
                    start -= start % io_size;
                }
                IoPattern {
                    file_size: opts.file_size,
                    io_size,
                    random,
                    start,
                }
            });
            let cfg = WorkerConfig {
                templates: plan.templates.clone(),
                pick: plan.pick.clone(),
                verify: opts.verify,
                name_base: (worker as u64) << 40,
                io,
                depth,
                slot_base: (ci * depth) as u32,
                first_seqid: 1,
                measure_start,
                measure_end,
                quota: quota(worker),
                progress: p,
                stop: stop.clone(),
            };
            handles.push(
                std::thread::Builder::new()
                    .name(format!("bench-{si}-{ci}"))
                    .spawn(move || run_worker(s, cfg))
                    .map_err(|e| BenchError::Local(format!("starting a worker thread: {e}")))?,
            );
        }
    }

    // Progress, CPU sampling and Ctrl-C on this thread.
    let pid = opts.server_pid.map(|p| p.to_string());
    let mut cpu_start = None;
    let mut interrupted_at = None;
    let mut last = (Instant::now(), 0u64);
    let bar = opts.progress.then(|| {
        let b = match measure_end {
            Some(_) => {
                indicatif::ProgressBar::new((opts.warmup + opts.duration).as_millis() as u64)
            }
            None => indicatif::ProgressBar::new(opts.ops.unwrap_or(0)),
        };
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {msg}",
            )
            .expect("progress template"),
        );
        b.set_prefix(w.name());
        b
    });
    while !handles.iter().all(|h| h.is_finished()) {
        let now = Instant::now();
        let nap = if cpu_start.is_none() && now < measure_start {
            (measure_start - now).min(Duration::from_millis(50))
        } else {
            Duration::from_millis(50)
        };
        std::thread::sleep(nap);
        let now = Instant::now();
        if interrupted_at.is_none() && interrupt::requested() {
            // Workers stop sending, drain what is in flight and return.
            interrupted_at = Some(now);
            stop.store(true, Ordering::SeqCst);
        }
        if cpu_start.is_none() && now >= measure_start {
            cpu_start = Some((
                pid.as_deref().and_then(process_cpu_us),
                process_cpu_us("self"),
            ));
        }
        if let Some(b) = &bar
            && now.duration_since(last.0) >= Duration::from_millis(500)
        {
            let total: u64 = progress.iter().map(|p| p.load(Ordering::Relaxed)).sum();
            let rate = (total - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            let phase = if now < measure_start {
                "warm-up"
            } else {
                "measuring"
            };
            b.set_message(format!("{phase} {rate:.0} replies/s"));
            match measure_end {
                Some(_) => b.set_position(now.duration_since(start).as_millis() as u64),
                None => b.set_position(total),
            }
            last = (now, total);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // Server CPU up to the end of the measured window (an interrupt ends it).
    let cpu_end = (
        pid.as_deref().and_then(process_cpu_us),
        process_cpu_us("self"),
    );

    let mut results: Vec<WorkerResult> = Vec::with_capacity(handles.len());
    for h in handles {
        results.push(
            h.join()
                .map_err(|_| BenchError::Local("a bench worker panicked".into()))?,
        );
    }

    let new_hist = || {
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
            .map_err(|e| BenchError::Local(format!("latency histogram: {e}")))
    };
    let mut hist = new_hist()?;
    let (mut ops, mut replies, mut bytes, mut verified_bytes, mut files_left) = (0, 0, 0, 0, 0);
    let mut errors = BTreeMap::new();
    let mut error_hints = BTreeMap::new();
    // The create workload's errors are mostly its OPEN's; the hints of other
    // workloads' errors do not depend on the operation.
    let hint_op = if w == Workload::Create {
        op::OPEN
    } else {
        op::SEQUENCE
    };
    let mut failures = Vec::new();
    let mut last_completion = None;
    for r in &results {
        hist.add(&r.hist)
            .map_err(|e| BenchError::Local(format!("latency histogram: {e}")))?;
        ops += r.ops;
        replies += r.replies;
        bytes += r.bytes;
        verified_bytes += r.verified_bytes;
        files_left += r.files_left;
        for (k, v) in &r.errors {
            *errors.entry(k.to_string()).or_insert(0) += v;
            if let ErrorKey::Nfs(st) = k
                && let Some(h) = error::hint(hint_op, *st, None)
            {
                error_hints.insert(k.to_string(), h);
            }
        }
        if let Some(f) = &r.failure {
            failures.push(format!(
                "{}: {f}",
                r.stream
                    .tcp()
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            ));
        }
        last_completion = last_completion.max(r.last_completion);
    }
    let window_end = match (measure_end, interrupted_at) {
        (Some(end), Some(i)) => Some(end.min(i)),
        (Some(end), None) => Some(end.min(Instant::now())),
        (None, Some(i)) => Some(i),
        (None, None) => last_completion,
    };
    let elapsed = window_end
        .map(|e| e.saturating_duration_since(measure_start))
        .unwrap_or_default()
        .as_secs_f64();

    // Teardown: each session on the first of its connections that still works (the
    // session's first connection created it; all are bound to it).
    let mut streams = results.into_iter().map(|r| (r.failure.is_none(), r.stream));
    let mut created = Vec::new();
    for info in infos {
        let mut own: Vec<(bool, Stream)> = streams.by_ref().take(opts.connections).collect();
        own.sort_by_key(|(healthy, _)| !healthy);
        created.push((info, own.into_iter().map(|(_, s)| s).collect()));
    }
    let teardown_errors = teardown(&opts.cred, &mut created);

    let per_op = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if ops > 0 => Some(b.saturating_sub(a) as f64 / ops as f64),
        _ => None,
    };
    let (srv0, self0) = cpu_start.unwrap_or((None, None));
    let error_total = errors.values().sum();
    let rate = |v: f64| if elapsed > 0.0 { v / elapsed } else { 0.0 };
    Ok(BenchReport {
        workload: w.name().to_string(),
        server: opts.server.to_string(),
        sessions: opts.sessions,
        connections_per_session: opts.connections,
        depth,
        warmup_s: opts.warmup.as_secs_f64(),
        elapsed_s: elapsed,
        ops,
        replies,
        ops_per_sec: rate(ops as f64),
        mib_per_sec: rate(bytes as f64) / (1 << 20) as f64,
        io_size,
        verify: opts.verify,
        verified_bytes,
        latency_us: Latency::from_hist(&hist),
        errors,
        error_hints,
        error_total,
        server_cpu_us_per_op: per_op(srv0, cpu_end.0),
        client_cpu_us_per_op: per_op(self0, cpu_end.1),
        connection_failures: failures,
        interrupted: interrupted_at.is_some(),
        files_left: (w == Workload::Create).then(|| FilesLeft {
            count: files_left,
            directory: super::setup::display_path(&opts.export_path),
            names: format!("rb-{nonce:08x}-*"),
        }),
        teardown_errors,
    })
}
