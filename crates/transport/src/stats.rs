//! Counters kept by each worker (written only by that worker, read by anyone).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! stats {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters of one worker.
        #[derive(Debug, Default)]
        pub(crate) struct WorkerCounters { $(pub $name: AtomicU64,)* }

        /// A snapshot of one worker's counters (or their sum).
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct TransportStats { $($(#[$doc])* pub $name: u64,)* }

        impl WorkerCounters {
            pub fn snapshot(&self) -> TransportStats {
                TransportStats { $($name: self.$name.load(Relaxed),)* }
            }
        }

        impl TransportStats {
            /// Sum of several snapshots (peaks take the maximum).
            pub fn sum(all: &[TransportStats]) -> TransportStats {
                let mut t = TransportStats::default();
                for s in all {
                    $(t.$name = if stringify!($name).starts_with("peak_") {
                        t.$name.max(s.$name)
                    } else {
                        t.$name + s.$name
                    };)*
                }
                t
            }
        }
    };
}

stats! {
    /// Connections accepted.
    accepted,
    /// Connections closed (after `on_close`).
    closed,
    /// Records handed to the service.
    records,
    /// Bytes received.
    bytes_in,
    /// Bytes sent.
    bytes_out,
    /// Send operations submitted.
    sends,
    /// Receives that ended because the buffer ring ran dry.
    enobufs,
    /// Multishot receives re-armed.
    recv_rearms,
    /// Single receives straight into a large record's buffer.
    recv_direct,
    /// Times a connection stopped reading because its output backlog was too large.
    backpressure_pauses,
    /// Largest output backlog of any connection, in bytes.
    peak_out_bytes,
    /// Largest amount of received-but-deferred request bytes of any connection.
    peak_deferred_bytes,
    /// Connections closed for malformed record marking.
    record_errors,
    /// Accept operations that failed.
    accept_errors,
    /// Service calls that panicked.
    service_panics,
    /// Connections that could not flush before their deadline and were aborted.
    flush_timeouts,
    /// File READ/WRITE/FSYNC operations run for the service.
    file_ops,
    /// Connections closed at accept: `max_connections` reached.
    conns_refused_total,
    /// Connections closed at accept: `max_connections_per_peer` reached for the peer.
    conns_refused_per_peer,
    /// Unbound connections closed by the idle timeout.
    idle_closes,
    /// Record-marking errors: a record (or its fragments) over the maximum size.
    records_too_large,
    /// Record-marking errors: too many fragments in one record.
    records_too_many_fragments,
    /// Connections that began a TLS handshake (the AUTH_TLS probe was answered).
    tls_starts,
    /// TLS handshakes that finished (RPC-with-TLS up).
    tls_handshakes,
    /// TLS handshakes that failed: a TLS error or alert, ALPN other than "sunrpc", RPC records
    /// where the handshake should be.
    tls_handshake_failures,
    /// TLS handshakes not finished in time (the connection is closed).
    tls_handshake_timeouts,
    /// Connections closed for a TLS error after the handshake (a bad record, an alert).
    tls_errors,
}

impl WorkerCounters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.store(c.load(Relaxed) + n, Relaxed);
    }

    pub fn peak(c: &AtomicU64, v: u64) {
        if v > c.load(Relaxed) {
            c.store(v, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_adds_counts_and_maxes_peaks() {
        let a = TransportStats {
            accepted: 2,
            peak_out_bytes: 10,
            ..Default::default()
        };
        let b = TransportStats {
            accepted: 3,
            peak_out_bytes: 7,
            ..Default::default()
        };
        let s = TransportStats::sum(&[a, b]);
        assert_eq!(s.accepted, 5);
        assert_eq!(s.peak_out_bytes, 10);
    }

    #[test]
    fn single_writer_helpers() {
        let c = WorkerCounters::default();
        WorkerCounters::add(&c.records, 4);
        WorkerCounters::add(&c.records, 1);
        WorkerCounters::peak(&c.peak_out_bytes, 9);
        WorkerCounters::peak(&c.peak_out_bytes, 3);
        let s = c.snapshot();
        assert_eq!((s.records, s.peak_out_bytes), (5, 9));
    }
}
