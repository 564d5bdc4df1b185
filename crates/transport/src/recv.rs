//! Multishot receive into the provided-buffer ring, record reassembly and the calls
//! into the service.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use io_uring::{cqueue, opcode, types};
use std::os::fd::AsRawFd;

use ringnfs_proto::rpc::record::RecordError;
use ringnfs_service::Service;

use super::conn::{Closing, Conn};
use super::output::ReplyError;
use super::stats::WorkerCounters;
use super::token::{Kind, Token};
use super::worker::Worker;

/// Why a connection is closed after a record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandleError {
    #[error("bad reply: {0}")]
    Reply(#[from] ReplyError),
    #[error("Service::on_record panicked")]
    Panicked,
}

/// Hand one record to the service, with the reply's record mark reserved before and
/// patched (or removed, if there is no reply) after.
pub(crate) fn handle_record(
    service: &dyn Service,
    conn: &mut Conn,
    record: &[u8],
    counters: &WorkerCounters,
) -> Result<(), HandleError> {
    WorkerCounters::add(&counters.records, 1);
    let (out, start) = conn.out.begin_reply();
    let meta = &conn.meta;
    let r = catch_unwind(AssertUnwindSafe(|| service.on_record(meta, record, out)));
    let reply = conn.out.end_reply(start);
    if r.is_err() {
        WorkerCounters::add(&counters.service_panics, 1);
        return Err(HandleError::Panicked);
    }
    reply?;
    Ok(())
}

impl Worker {
    pub(crate) fn arm_recv(&mut self, key: usize) {
        let c = &self.conns[key];
        let e = opcode::RecvMulti::new(types::Fd(c.fd.as_raw_fd()), super::worker::BGID)
            .build()
            .user_data(Token::new(Kind::Recv, c.generation as u64, key).encode());
        WorkerCounters::add(&self.counters.recv_rearms, 1);
        self.push(e);
    }

    pub(crate) fn on_recv(&mut self, t: Token, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        let bid = cqueue::buffer_select(flags);
        let key = t.key as usize;
        let max_out = self.cfg.max_out_bytes;
        let Worker {
            conns,
            bufs,
            service,
            counters,
            ..
        } = self;
        let conn = conns.get_mut(key).filter(|c| c.generation == t.generation);
        let Some(c) = conn else {
            // Cannot happen (state outlives its operations), but never leak a buffer.
            tracing::warn!(?t, "receive completion for a stale connection");
            if let Some(bid) = bid
                && bufs.take(bid, 0).is_ok()
            {
                let _ = bufs.recycle(bid);
            }
            return;
        };
        if !more {
            c.recv_armed = false;
            c.recv_cancelled = false;
        }
        if res > 0 {
            WorkerCounters::add(&counters.bytes_in, res as u64);
            let Some(bid) = bid else {
                tracing::error!(conn = c.meta.id, "receive completion without a buffer");
                c.close(Closing::Abort, Instant::now());
                self.mark_dirty(key);
                return;
            };
            match bufs.take(bid, res as usize) {
                Ok(data) => {
                    if c.closing.is_none() {
                        feed(&**service, c, data, counters, max_out);
                    }
                    let _ = bufs.recycle(bid);
                }
                Err(e) => {
                    tracing::error!(conn = c.meta.id, "bad receive buffer: {e}");
                    c.close(Closing::Abort, Instant::now());
                }
            }
        } else if res == 0 {
            tracing::trace!(conn = c.meta.id, "EOF");
            c.close(Closing::Flush, Instant::now() + super::worker::FLUSH_GRACE);
        } else if res == -libc::ENOBUFS {
            // The buffer ring ran dry; buffers come back as this batch is processed,
            // and the receive is re-armed after that.
            WorkerCounters::add(&counters.enobufs, 1);
        } else if res != -libc::ECANCELED {
            tracing::debug!(
                conn = c.meta.id,
                "receive failed: {}",
                std::io::Error::from_raw_os_error(-res)
            );
            c.close(Closing::Abort, Instant::now());
        }
        self.mark_dirty(key);
    }
}

/// Feed received bytes to the connection's assembler and the records to the service
/// (or to the deferred queue while the connection is over its output bound).
fn feed(
    service: &dyn Service,
    c: &mut Conn,
    data: &[u8],
    counters: &WorkerCounters,
    max_out: usize,
) {
    let mut failed = None;
    let mut asm = std::mem::replace(
        &mut c.asm,
        ringnfs_proto::rpc::record::RecordAssembler::new(0),
    );
    let r = asm.feed(data, |rec| {
        c.last_record = Instant::now();
        if c.must_defer() {
            c.deferred.push(rec);
            WorkerCounters::peak(&counters.peak_deferred_bytes, c.deferred.bytes() as u64);
            return true;
        }
        if let Err(e) = handle_record(service, c, rec, counters) {
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
        c.close(Closing::Flush, Instant::now() + super::worker::FLUSH_GRACE);
    }
}
