//! `GET /metrics`: Prometheus/OpenMetrics text built at scrape time with
//! `prometheus-client` from the per-core counters (summed by
//! [`StateManager::metrics_snapshot`]), the state counts and the transport counters.
//! No label names a session or a client. Operation errors are counted per operation
//! and status (`ringnfs_op_errors_total{op,status}`, status as the numeric nfsstat4).
//!
//! Label values come in the same order on every scrape: the order written here for fixed
//! label sets (e.g. `direction` fore, back, both), operation number for `op`, then status
//! for `op,status`. (`prometheus_client`'s `Family` keeps its members in a hash map, whose
//! order changes from one scrape to the next, so labelled counters are `Ordered` instead.)

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Ctx;
use ringnfs_state::gss_stats::GssStats;

/// Content type of the scrape (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabel {
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct XprtsecLabel {
    xprtsec: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientLabel {
    /// The client ID as logs print it (0x and 16 hex digits).
    client: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExportLabel {
    /// The export's pseudo path.
    export: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpStatusLabel {
    op: String,
    /// nfsstat4 as a number (e.g. 10052 = NFS4ERR_BADSESSION).
    status: String,
}

/// Latency histograms by operation, in seconds.
#[derive(Debug)]
struct Histograms(Vec<ringnfs_state::latency::OpLatency>);

impl EncodeMetric for Histograms {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        use ringnfs_state::latency::BUCKETS_US;
        for h in &self.0 {
            // The last bucket is +Inf.
            let bounds = BUCKETS_US
                .iter()
                .map(|us| *us as f64 / 1e6)
                .chain([f64::INFINITY]);
            let buckets: Vec<(f64, u64)> = bounds.zip(h.buckets.iter().copied()).collect();
            encoder
                .encode_family(&OpLabel { op: h.op.clone() })?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                h.sum_us as f64 / 1e6,
                h.count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn counter(v: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(v);
    c
}

fn gauge(v: usize) -> Gauge {
    let g = Gauge::default();
    g.set(v as i64);
    g
}

/// A labelled counter whose members are encoded in the order given (a `Family` that
/// keeps its order). With no members it is not listed, like an empty `Family`.
#[derive(Debug)]
struct Ordered<L>(Vec<(L, u64)>);

impl<L: EncodeLabelSet> EncodeMetric for Ordered<L> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, v) in &self.0 {
            ConstCounter::new(*v).encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn family<L>(items: impl IntoIterator<Item = (L, u64)>) -> Ordered<L> {
    Ordered(items.into_iter().collect())
}

/// The scrape text.
pub fn render(ctx: &Ctx) -> String {
    let st = &ctx.state;
    let m = st.metrics_snapshot();
    let t = (ctx.transport_stats)();
    let mut r = Registry::with_prefix("ringnfs");

    let binds = family([
        (
            DirectionLabel {
                direction: "fore".into(),
            },
            m.binds_fore,
        ),
        (
            DirectionLabel {
                direction: "back".into(),
            },
            m.binds_back,
        ),
        (
            DirectionLabel {
                direction: "both".into(),
            },
            m.binds_both,
        ),
    ]);
    r.register(
        "connection_binds",
        "Connections bound to a session, by direction",
        binds,
    );
    let unbinds = family(
        [
            ("explicit", m.unbinds_explicit),
            ("disconnect", m.unbinds_disconnect),
            ("session_destroy", m.unbinds_session_destroy),
            ("reaper", m.unbinds_reaper),
            ("drain", m.unbinds_drain),
            ("rebind", m.unbinds_rebind),
        ]
        .map(|(k, v)| (ReasonLabel { reason: k.into() }, v)),
    );
    r.register(
        "connection_unbinds",
        "Bindings that ended, by reason",
        unbinds,
    );
    let refusals = family(
        [
            ("limit", m.refusals_limit),
            ("fore_required", m.refusals_fore_required),
            ("bad_session", m.refusals_bad_session),
        ]
        .map(|(k, v)| (CauseLabel { cause: k.into() }, v)),
    );
    r.register("bind_refusals", "Binds refused, by cause", refusals);
    r.register(
        "bound_connections",
        "Current (connection, session) bindings",
        gauge(st.bound_connection_count()),
    );
    r.register(
        "connections",
        "Open connections",
        gauge(st.connection_count()),
    );
    let by_security = Family::<XprtsecLabel, Gauge>::default();
    for name in ["none", "tls", "mtls"] {
        // Each series exists from the start, 0 until a connection has it.
        let _ = by_security.get_or_create(&XprtsecLabel {
            xprtsec: name.into(),
        });
    }
    for c in st.connections() {
        by_security
            .get_or_create(&XprtsecLabel {
                xprtsec: c.xprtsec.into(),
            })
            .inc();
    }
    r.register(
        "connections_by_xprtsec",
        "Open connections by transport security: none (plain TCP), tls, mtls (TLS with a verified client certificate)",
        by_security,
    );
    r.register("sessions", "Sessions", gauge(st.session_count()));
    r.register("clients", "Client records", gauge(st.client_count()));
    let ops = family(m.ops.iter().map(|(op, n)| (OpLabel { op: op.clone() }, *n)));
    r.register(
        "compound_ops",
        "Operations executed in COMPOUNDs, by operation",
        ops,
    );
    let errs = family(m.op_status_errors.iter().map(|(op, st, n)| {
        (
            OpStatusLabel {
                op: op.clone(),
                status: st.to_string(),
            },
            *n,
        )
    }));
    r.register(
        "op_errors",
        "Operations that failed, by operation and nfsstat4 (numeric)",
        errs,
    );
    r.register("compounds", "COMPOUND requests", counter(m.compounds));
    r.register("rpc_calls", "RPC calls", counter(m.rpc_calls));
    r.register(
        "rpc_garbage",
        "RPC calls that could not be decoded",
        counter(m.rpc_garbage),
    );
    r.register(
        "connections_accepted",
        "Connections accepted",
        counter(m.connections_accepted),
    );
    r.register(
        "connections_closed",
        "Connections closed",
        counter(m.connections_closed),
    );
    r.register(
        "received_bytes",
        "Bytes read from clients (transport)",
        counter(t.bytes_in),
    );
    r.register(
        "sent_bytes",
        "Bytes written to clients (transport)",
        counter(t.bytes_out),
    );

    register_hardening(&mut r, &m, &t, &st.gss);
    register_delegations(&mut r, &st.files.delegation_stats());
    register_recovery(&mut r, &st.grace);

    r.register(
        "compound_duration_seconds",
        "Time from a COMPOUND's decoding to its reply (file I/O included), by its main \
         operation (the first after SEQUENCE and filehandle ops); one COMPOUND in 16 per \
         core is timed",
        Histograms(m.latency.clone()),
    );
    register_exports(&mut r, ctx);
    register_clients(&mut r, ctx);
    let mut out = String::new();
    encode(&mut out, &r).expect("writing to a String cannot fail");
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

/// Delegations (RFC 8881 §10.2): granted by type, recalled, returned, revoked, held.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// Reclaims, and a cluster node's view (`ringnfs_cluster_*`, only on a node).
fn register_recovery(r: &mut Registry, g: &ringnfs_state::grace::Grace) {
    r.register(
        "reclaims",
        "Reclaims admitted in a grace period (OPEN CLAIM_PREVIOUS, the delegation it reclaims, LOCK reclaim), by kind",
        family(
            g.reclaims()
                .map(|(k, n)| (KindLabel { kind: k.label().into() }, n)),
        ),
    );
    let Some(c) = g.cluster() else {
        return;
    };
    let st = c.status();
    let flag = |b: bool| gauge(usize::from(b));
    r.register(
        "cluster_in_grace",
        "1 while the cluster-wide grace period is in force (new state waits with NFS4ERR_GRACE)",
        flag(st.in_grace),
    );
    r.register(
        "cluster_granting",
        "1 while this node renews its cluster membership and may grant new state; 0 when etcd is out of reach (NFS4ERR_DELAY) or its membership expired",
        flag(st.granting),
    );
    r.register(
        "cluster_grace_epoch",
        "The cluster's grace epoch (moves each time a grace period begins)",
        gauge(st.grace_epoch as usize),
    );
    r.register(
        "cluster_nodes",
        "Live nodes of the cluster",
        gauge(st.nodes.len()),
    );
    r.register(
        "cluster_pending_reclaims",
        "Clients that may still reclaim in the grace in force",
        gauge(st.pending_reclaims),
    );
    r.register(
        "cluster_records",
        "Client recovery records this node holds in etcd",
        gauge(st.records),
    );
    r.register(
        "cluster_records_written",
        "Client recovery records written (before a client's first OPEN or LOCK)",
        counter(st.records_written),
    );
    r.register(
        "cluster_record_failures",
        "Client recovery records that could not be written (the OPEN or LOCK got NFS4ERR_DELAY)",
        counter(st.record_failures),
    );
    r.register(
        "cluster_graces_started",
        "Grace periods this node began (a node with clients failed or restarted)",
        counter(st.graces_started),
    );
    r.register(
        "cluster_graces_ended",
        "Grace periods this node ended",
        counter(st.graces_ended),
    );
    r.register(
        "cluster_keepalive_failures",
        "Renewals of this node's membership that failed (etcd out of reach)",
        counter(st.keepalive_failures),
    );
    r.register(
        "cluster_claims",
        "Claims of share reservations (OPEN deny modes) and delegations this node put, by how they ended: granted, refused (another node's clients conflict: NFS4ERR_SHARE_DENIED or no delegation), retried (a delegation being recalled or no answer in time: NFS4ERR_DELAY)",
        family(
            [
                ("granted", st.claims_granted),
                ("refused", st.claims_refused),
                ("retried", st.claims_retried),
            ]
            .map(|(k, v)| (OutcomeLabel { outcome: k.into() }, v)),
        ),
    );
    r.register(
        "cluster_claim_recalls_asked",
        "Recalls of delegations this node asked of other nodes (a client's OPEN conflicted with them)",
        counter(st.claim_recalls_asked),
    );
}

fn register_delegations(r: &mut Registry, d: &ringnfs_state::files::DelegStats) {
    r.register(
        "delegations_granted",
        "Delegations granted on OPEN, by type",
        family(
            [("read", d.granted_read), ("write", d.granted_write)]
                .map(|(k, v)| (TypeLabel { r#type: k.into() }, v)),
        ),
    );
    r.register(
        "delegations_recalled",
        "Delegations recalled (CB_RECALL) because another client's access conflicted",
        counter(d.recalled),
    );
    r.register(
        "delegations_returned",
        "Delegations returned by their holders (DELEGRETURN)",
        counter(d.returned),
    );
    r.register(
        "delegations_revoked",
        "Delegations revoked: not returned within a lease of their recall",
        counter(d.revoked),
    );
    r.register("delegations", "Delegations held now", gauge(d.current));
    r.register(
        "delegations_revoked_unfreed",
        "Revoked delegations their clients have not freed (FREE_STATEID) yet",
        gauge(d.revoked_unfreed),
    );
}

/// Counters of the hardening limits (transport and state).
fn register_hardening(
    r: &mut Registry,
    m: &ringnfs_state::metrics::MetricsSnapshot,
    t: &ringnfs_transport::TransportStats,
    g: &GssStats,
) {
    let cause = |pairs: &[(&str, u64)]| {
        family(
            pairs
                .iter()
                .map(|(k, v)| (CauseLabel { cause: (*k).into() }, *v)),
        )
    };
    r.register(
        "connections_refused",
        "Connections closed at accept because a connection limit was reached, by limit",
        cause(&[
            ("total", t.conns_refused_total),
            ("per_peer", t.conns_refused_per_peer),
        ]),
    );
    r.register(
        "idle_closes",
        "Connections bound to no session closed by the idle timeout",
        counter(t.idle_closes),
    );
    r.register(
        "record_errors",
        "Connections closed for bad record marking, by cause",
        cause(&[
            ("too_large", t.records_too_large),
            ("too_many_fragments", t.records_too_many_fragments),
        ]),
    );
    let by_result = |pairs: &[(&str, u64)]| {
        family(pairs.iter().map(|(k, v)| {
            (
                ResultLabel {
                    result: (*k).into(),
                },
                *v,
            )
        }))
    };
    r.register(
        "tls_handshakes",
        "RPC-with-TLS handshakes by result: ok, failed (a TLS error or alert, an untrusted client certificate, RPC records where the handshake belongs), timeout",
        by_result(&[
            ("ok", t.tls_handshakes),
            ("failed", t.tls_handshake_failures),
            ("timeout", t.tls_handshake_timeouts),
        ]),
    );
    r.register(
        "gss_contexts",
        "RPCSEC_GSS (Kerberos) contexts held",
        gauge(GssStats::get(&g.contexts) as usize),
    );
    r.register(
        "gss_context_inits",
        "RPCSEC_GSS context establishments by result: ok, refused (bad token, unknown service principal, expired ticket)",
        by_result(&[
            ("ok", GssStats::get(&g.contexts_made)),
            ("refused", GssStats::get(&g.contexts_refused)),
        ]),
    );
    r.register(
        "gss_contexts_destroyed",
        "RPCSEC_GSS contexts ended by their client (DESTROY)",
        counter(GssStats::get(&g.contexts_destroyed)),
    );
    r.register(
        "gss_refusals",
        "RPCSEC_GSS calls refused, by reason: credential (no such context, bad verifier), context (expired, sequence numbers used up), replay (dropped), body (krb5i checksum or krb5p wrapping)",
        cause(&[
            ("credential", GssStats::get(&g.bad_credential)),
            ("context", GssStats::get(&g.context_problem)),
            ("replay", GssStats::get(&g.replays_dropped)),
            ("body", GssStats::get(&g.bad_body)),
        ]),
    );
    r.register(
        "tls_errors",
        "TLS connections closed for a TLS error after the handshake (a bad record, an alert)",
        counter(t.tls_errors),
    );
    r.register(
        "backpressure_pauses",
        "Times a connection stopped being read because its reply queue was full",
        counter(t.backpressure_pauses),
    );
    r.register(
        "flush_timeouts",
        "Connections aborted because they did not take their replies before a deadline",
        counter(t.flush_timeouts),
    );
    r.register(
        "service_panics",
        "Requests whose handling panicked (the connection is closed)",
        counter(t.service_panics),
    );
    r.register(
        "sessions_refused",
        "CREATE_SESSIONs refused by a limit, by limit",
        cause(&[("per_client", m.sessions_refused_per_client)]),
    );
}

/// Each export's operations and bytes, labelled with its pseudo path (in id order).
fn register_exports(r: &mut Registry, ctx: &Ctx) {
    let Some(admin) = &ctx.exports else {
        return;
    };
    let views = admin.list();
    let per = |f: fn(&crate::exports::ExportView) -> u64| {
        family(views.iter().map(|v| {
            (
                ExportLabel {
                    export: v.export.pseudo.clone(),
                },
                f(v),
            )
        }))
    };
    r.register(
        "export_ops",
        "Operations on each export's files (those with a current filehandle in it)",
        per(|v| v.ops),
    );
    r.register(
        "export_read_bytes",
        "Bytes READ from each export",
        per(|v| v.bytes_read),
    );
    r.register(
        "export_written_bytes",
        "Bytes written to each export by WRITE",
        per(|v| v.bytes_written),
    );
}

/// Clients with series of their own: the busiest by operations. A server with many
/// clients would otherwise give Prometheus a series per client ID, and client IDs change
/// at every client restart.
pub const CLIENTS_IN_METRICS: usize = 32;

/// The busiest clients' operations and bytes (`REST /api/v1/clients` has every client's).
fn register_clients(r: &mut Registry, ctx: &Ctx) {
    let mut clients = ctx.state.clients();
    clients.sort_by_key(|c| (std::cmp::Reverse(c.traffic.ops), c.id));
    clients.truncate(CLIENTS_IN_METRICS);
    clients.sort_by_key(|c| c.id);
    let per = |f: fn(&ringnfs_state::lease::Traffic) -> u64| {
        family(clients.iter().map(|c| {
            (
                ClientLabel {
                    client: ringnfs_state::ids::client_id_str(c.id),
                },
                f(&c.traffic),
            )
        }))
    };
    r.register(
        "client_ops",
        format!(
            "Operations of each of the busiest clients (at most {CLIENTS_IN_METRICS}) in their \
             sessions"
        ),
        per(|t| t.ops),
    );
    r.register(
        "client_received_bytes",
        "RPC call bytes of each of the busiest clients' COMPOUNDs",
        per(|t| t.bytes_in),
    );
    r.register(
        "client_sent_bytes",
        "RPC reply bytes to each of the busiest clients",
        per(|t| t.bytes_out),
    );
}
