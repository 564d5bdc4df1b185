//! Received bytes to records to the service, and what the service hands back: a reply
//! appended to the connection's output, and maybe a suspended request whose file
//! operation starts at once on this core ([`FileIoSink`]). Resuming a suspended request
//! goes through the same path.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use ringnfs_proto::rpc::record::{Record, RecordAssembler, RecordError};
use ringnfs_service::{ConnMeta, Continuation, FileIoDone, Outcome, Service};

use super::conn::{Closing, Conn, Intake};
use super::fileio::{FileIoSink, Owner};
use super::output::ReplyError;
use super::recpool;
use super::stats::WorkerCounters;
use super::tls::{TlsAcceptor, TlsConn, TlsEvent, TlsFailure, TlsStep};

/// How long a connection closed for malformed input may take to flush.
pub(crate) const FLUSH_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a connection is closed after a service call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandleError {
    #[error("bad reply: {0}")]
    Reply(#[from] ReplyError),
    #[error("the service panicked")]
    Panicked,
}

/// One service call that may append a reply to connection `key`'s output: the reply's
/// record mark is reserved before and patched (or removed, if there is no reply) after;
/// a suspended request's file operation is started.
fn call(
    c: &mut Conn,
    key: usize,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
    f: impl FnOnce(&ConnMeta, &mut Vec<u8>) -> Outcome,
) -> Result<(), HandleError> {
    let (out, start) = c.out.begin_reply();
    let meta = &c.meta;
    let r = catch_unwind(AssertUnwindSafe(|| f(meta, out)));
    let reply = c.out.end_reply(start);
    match r {
        Ok(Outcome::Done) => {}
        Ok(Outcome::Suspend(s)) => {
            // Even if the reply so far was bad: the request must finish.
            let owner = Owner { key, id: c.meta.id };
            io.start(owner, s);
        }
        Err(_) => {
            WorkerCounters::add(&counters.service_panics, 1);
            return Err(HandleError::Panicked);
        }
    }
    reply?;
    Ok(())
}

/// Hand one record to the service: a record in its own buffer as shared bytes, so the
/// request may keep parts of it (a WRITE's data) without a copy.
pub(crate) fn handle_record(
    service: &dyn Service,
    c: &mut Conn,
    key: usize,
    record: Record<'_>,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
) -> Result<(), HandleError> {
    WorkerCounters::add(&counters.records, 1);
    call(c, key, counters, io, |meta, out| match record {
        Record::InPlace(b) => service.on_record(meta, b, out),
        Record::Gathered(v) => service.on_owned_record(meta, recpool::shared(v), out),
    })
}

/// Resume a request of open connection `c` whose file operation finished.
pub(crate) fn resume(
    then: Box<dyn Continuation>,
    done: FileIoDone,
    c: &mut Conn,
    key: usize,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
) -> Result<(), HandleError> {
    if then.wants_fresh_reply() {
        c.out.seal();
    }
    call(c, key, counters, io, |_, out| then.resume(done, out))
}

/// Resume a request whose connection closed: it runs to its end (further file
/// operations included), and its reply goes nowhere.
pub(crate) fn resume_orphan(
    then: Box<dyn Continuation>,
    done: FileIoDone,
    owner: Owner,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
) {
    let mut scratch = Vec::new();
    match catch_unwind(AssertUnwindSafe(|| then.resume(done, &mut scratch))) {
        Ok(Outcome::Done) => {}
        Ok(Outcome::Suspend(s)) => io.start(owner, s),
        Err(_) => {
            WorkerCounters::add(&counters.service_panics, 1);
            tracing::warn!(
                conn = owner.id,
                "a resumed request panicked after its close"
            );
        }
    }
}

/// Feed received bytes to the connection's assembler and the records to the service
/// (or to the deferred queue while the connection is over its output bound). When the
/// service answered an AUTH_TLS probe with STARTTLS, what follows the probe is TLS:
/// the connection switches ([`start_tls`]) and gets the rest of `data`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn feed(
    service: &dyn Service,
    c: &mut Conn,
    key: usize,
    data: &[u8],
    max_out: usize,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
    tls: Option<&TlsAcceptor>,
) {
    let rest = assemble(service, c, key, max_out, counters, io, |asm, on_record| {
        asm.feed_records_rest(data, on_record)
    });
    if let Some(rest) = rest {
        start_tls(
            service,
            c,
            key,
            &data[data.len() - rest..],
            max_out,
            counters,
            io,
            tls,
        );
    }
}

/// The connection's next bytes are a TLS handshake (the reply to the AUTH_TLS probe,
/// already queued, still goes out in plain text first); `rest` is what arrived after
/// the probe. A client that sent more records after its probe, before the reply, does
/// not speak RFC 9289 and is closed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_tls(
    service: &dyn Service,
    c: &mut Conn,
    key: usize,
    rest: &[u8],
    max_out: usize,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
    tls: Option<&TlsAcceptor>,
) {
    WorkerCounters::add(&counters.tls_starts, 1);
    let now = Instant::now();
    let Some(acceptor) = tls else {
        // Cannot happen: TLS is offered only with an acceptor.
        tracing::error!(
            conn = c.meta.id,
            "TLS requested on a connection without TLS"
        );
        c.close(Closing::Flush, now + FLUSH_GRACE);
        return;
    };
    if !c.deferred.is_empty() || !c.asm.is_idle() {
        WorkerCounters::add(&counters.tls_handshake_failures, 1);
        tracing::debug!(conn = c.meta.id, peer = %c.meta.peer, "RPC records after the AUTH_TLS probe: closing");
        c.deferred.clear();
        c.close(Closing::Flush, now + FLUSH_GRACE);
        return;
    }
    let wire = std::mem::take(&mut c.out);
    match TlsConn::start(acceptor, wire, now) {
        Ok(t) => c.tls = Some(Box::new(t)),
        Err(e) => {
            tracing::warn!(conn = c.meta.id, "cannot start TLS: {e}");
            WorkerCounters::add(&counters.tls_handshake_failures, 1);
            c.close(Closing::Flush, now + FLUSH_GRACE);
            return;
        }
    }
    if !rest.is_empty() {
        feed_tls(service, c, key, rest, max_out, counters, io);
    }
}

/// TLS records arrived on connection `c`: decrypt them and feed the plaintext on, as
/// rustls holds it (no copy of ours). The connection's TLS state is taken out meanwhile,
/// so the records can go to the service with the connection; a close decided while
/// feeding reaches it when it is put back.
pub(crate) fn feed_tls(
    service: &dyn Service,
    c: &mut Conn,
    key: usize,
    data: &[u8],
    max_out: usize,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
) {
    let Some(mut t) = c.tls.take() else { return };
    let r = t.received(data, |event| match event {
        TlsEvent::Established { mutual } => {
            WorkerCounters::add(&counters.tls_handshakes, 1);
            c.meta.shared.tls_established(mutual);
            tracing::debug!(conn = c.meta.id, peer = %c.meta.peer, mutual, "TLS established");
        }
        TlsEvent::Plaintext(plain) => {
            if c.closing().is_none() {
                assemble(service, c, key, max_out, counters, io, |asm, on_record| {
                    asm.feed_records(plain, on_record).map(|()| 0)
                });
            }
        }
    });
    let now = Instant::now();
    match r {
        Ok(TlsStep::Going) => {}
        Ok(TlsStep::Closed) => {
            tracing::trace!(conn = c.meta.id, "TLS close_notify");
            c.close(Closing::Flush, now + FLUSH_GRACE);
        }
        Err(f) => {
            WorkerCounters::add(
                match f {
                    TlsFailure::Handshake(_) | TlsFailure::OtherAlpn => {
                        &counters.tls_handshake_failures
                    }
                    TlsFailure::Record(_) => &counters.tls_errors,
                },
                1,
            );
            tracing::info!(conn = c.meta.id, peer = %c.meta.peer, "closing: {f}");
            // The alert rustls queued goes out while the connection flushes.
            c.deferred.clear();
            c.close(Closing::Flush, now + FLUSH_GRACE);
        }
    }
    match c.closing() {
        Some(Closing::Abort) => t.wire.abort(),
        Some(Closing::Flush) => t.close_notify(),
        None => {}
    }
    c.tls = Some(t);
}

/// A direct receive into the current record's buffer ended: give the buffer (grown by
/// what arrived) back to the assembler, and a record it completes to the service.
pub(crate) fn direct_received(
    service: &dyn Service,
    c: &mut Conn,
    key: usize,
    buf: Vec<u8>,
    max_out: usize,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
) {
    assemble(service, c, key, max_out, counters, io, |asm, on_record| {
        asm.return_direct(buf, on_record).map(|()| 0)
    });
}

/// Run `step` on the connection's assembler with the callback that hands complete
/// records on; close the connection on a service failure or a framing error. Returns
/// the bytes `step` left unread when the service asked for TLS (the assembler stops
/// right after the probe's record).
fn assemble(
    service: &dyn Service,
    c: &mut Conn,
    key: usize,
    max_out: usize,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
    step: impl FnOnce(
        &mut RecordAssembler,
        &mut dyn FnMut(Record<'_>) -> bool,
    ) -> Result<usize, RecordError>,
) -> Option<usize> {
    let mut failed = None;
    let mut tls = false;
    let mut asm = std::mem::replace(&mut c.asm, RecordAssembler::new(0));
    let r = step(&mut asm, &mut |rec| {
        c.last_record = Instant::now();
        if c.must_defer() {
            c.deferred.push(rec);
            WorkerCounters::peak(&counters.peak_deferred_bytes, c.deferred.bytes() as u64);
            return true;
        }
        if let Err(e) = handle_record(service, c, key, rec, counters, io) {
            failed = Some(e);
            return false;
        }
        if c.meta.shared.take_tls_request() {
            tls = true;
            return false;
        }
        if c.update_pause(max_out) {
            WorkerCounters::add(&counters.backpressure_pauses, 1);
        }
        true
    });
    c.asm = asm;
    if let Some(e) = failed {
        tracing::warn!(conn = c.meta.id, "closing: {e}");
        c.close(Closing::Abort, Instant::now());
    } else if let Err(e) = r {
        tracing::debug!(conn = c.meta.id, "closing: {e}");
        WorkerCounters::add(&counters.record_errors, 1);
        WorkerCounters::add(
            match e {
                RecordError::TooLarge(_) => &counters.records_too_large,
                RecordError::TooManyFragments(_) => &counters.records_too_many_fragments,
            },
            1,
        );
        c.deferred.clear();
        c.close(Closing::Flush, Instant::now() + FLUSH_GRACE);
    } else if tls {
        return r.ok();
    }
    None
}

/// Replay deferred records while the backlog allows (after it drained).
pub(crate) fn replay_deferred(
    service: &dyn Service,
    c: &mut Conn,
    key: usize,
    max_out: usize,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
    tls: Option<&TlsAcceptor>,
) {
    if c.closing() == Some(Closing::Abort) {
        return;
    }
    c.update_pause(max_out);
    while c.intake == Intake::Open {
        let Some(rec) = c.deferred.pop() else { break };
        if let Err(e) = handle_record(service, c, key, Record::Gathered(rec), counters, io) {
            tracing::warn!(conn = c.meta.id, "closing: {e}");
            c.close(Closing::Abort, Instant::now());
            break;
        }
        if c.meta.shared.take_tls_request() {
            start_tls(service, c, key, &[], max_out, counters, io, tls);
            break;
        }
        if c.update_pause(max_out) {
            WorkerCounters::add(&counters.backpressure_pauses, 1);
        }
    }
}
