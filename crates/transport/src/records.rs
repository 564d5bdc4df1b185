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
/// (or to the deferred queue while the connection is over its output bound).
pub(crate) fn feed(
    service: &dyn Service,
    c: &mut Conn,
    key: usize,
    data: &[u8],
    max_out: usize,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
) {
    assemble(service, c, key, max_out, counters, io, |asm, on_record| {
        asm.feed_records(data, on_record)
    });
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
        asm.return_direct(buf, on_record)
    });
}

/// Run `step` on the connection's assembler with the callback that hands complete
/// records on; close the connection on a service failure or a framing error.
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
    ) -> Result<(), RecordError>,
) {
    let mut failed = None;
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
    }
}

/// Replay deferred records while the backlog allows (after it drained).
pub(crate) fn replay_deferred(
    service: &dyn Service,
    c: &mut Conn,
    key: usize,
    max_out: usize,
    counters: &WorkerCounters,
    io: &mut FileIoSink<'_>,
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
        if c.update_pause(max_out) {
            WorkerCounters::add(&counters.backpressure_pauses, 1);
        }
    }
}
