//! The Grafana dashboard (`deploy/grafana/ringnfs-dashboard.json`) and the Prometheus
//! alert rules (`deploy/prometheus/ringnfs-alerts.yml`) stay valid: both parse, have the
//! structure their tools need, and every `ringnfs_*` metric their expressions name is one
//! a running server serves at `/metrics` (scraped here after some traffic, errors
//! included, so the labelled families are present).

pub mod common;

use std::collections::BTreeSet;
use std::path::Path;

use ringnfs::client::{Files, Op};
use ringnfs::server::{BackendKind, Server, ServerConfig};
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

fn repo(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `ringnfs_*` identifiers in a PromQL expression.
fn metrics_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("ringnfs_") {
        let start = i + at;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        if start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_') {
            out.push(expr[start..end].to_string());
        }
        i = end;
    }
    out
}

/// The sample names a server serves, after traffic that fills every labelled family.
fn served_metrics() -> BTreeSet<String> {
    let dir = common::TempDir::new("dashboards");
    let server = Server::start(ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 1,
        pin_cores: false,
        backend: BackendKind::Memory,
        state_dir: Some(dir.0.join("state")),
        control: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    })
    .expect("server starts");
    let (_, session) = ringnfs::client::Client::connect(
        &server.local_addrs(),
        ringnfs::client::ClientOptions::default(),
    )
    .expect("client");
    let files = Files::new(session);
    let root = files.root_fh().unwrap();
    files.write_file(&root, b"f", b"x").unwrap();
    // An error, for ringnfs_op_errors_total.
    let _ = files.call(&[Op::PutFh(root), Op::Lookup(b"missing".to_vec())]);
    let c = ringnfs::control::client::HttpClient::new(server.control_addr().unwrap(), None);
    let text = c.get("/metrics").expect("scrape").text();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

fn check_metrics(what: &str, expr: &str, served: &BTreeSet<String>) {
    for m in metrics_in(expr) {
        assert!(
            served.contains(&m),
            "{what}: {m} is not a metric ringnfs serves (it serves {served:?})"
        );
    }
}

#[test]
fn the_dashboard_and_alert_rules_parse_and_name_served_metrics() {
    let served = served_metrics();
    assert!(
        served.contains("ringnfs_compound_ops_total") && served.contains("ringnfs_op_errors_total")
    );
    // The check catches a name that is not served.
    assert!(
        std::panic::catch_unwind(|| check_metrics(
            "typo",
            "rate(ringnfs_compund_ops_total[5m])",
            &served
        ))
        .is_err()
    );

    // Grafana: every panel has an id, a place, a title and queries; ids are unique.
    let dash: Value = serde_json::from_str(&repo("deploy/grafana/ringnfs-dashboard.json"))
        .expect("the dashboard is JSON");
    assert_eq!(dash["uid"], "ringnfs-overview");
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    let mut ids = BTreeSet::new();
    let mut exprs = 0;
    for p in panels {
        let title = p["title"].as_str().expect("a title");
        assert!(
            ids.insert(p["id"].as_u64().expect("an id")),
            "{title}: id reused"
        );
        for k in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][k].is_u64(), "{title}: gridPos.{k}");
        }
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("an expression");
            assert!(
                !metrics_in(expr).is_empty(),
                "{title}: {expr} names no metric"
            );
            check_metrics(title, expr, &served);
            exprs += 1;
        }
    }
    for v in dash["templating"]["list"].as_array().expect("variables") {
        if let Some(q) = v["definition"].as_str() {
            check_metrics("a dashboard variable", q, &served);
        }
    }
    assert!(exprs >= 20, "{exprs} queries");

    // Prometheus: groups of rules, each alert with an expression, a severity and a
    // summary.
    let docs = YamlLoader::load_from_str(&repo("deploy/prometheus/ringnfs-alerts.yml"))
        .expect("the rules are YAML");
    let groups = docs[0]["groups"].as_vec().expect("groups");
    let mut alerts = BTreeSet::new();
    for g in groups {
        assert!(g["name"].as_str().is_some(), "a group name");
        for r in g["rules"].as_vec().expect("rules") {
            let name = r["alert"].as_str().expect("an alert name").to_string();
            assert!(alerts.insert(name.clone()), "{name} twice");
            let expr = r["expr"].as_str().expect("an expression");
            check_metrics(&name, expr, &served);
            assert!(
                matches!(
                    r["labels"]["severity"].as_str(),
                    Some("critical" | "warning" | "info")
                ),
                "{name}: severity"
            );
            assert!(
                r["annotations"]["summary"].as_str().is_some(),
                "{name}: summary"
            );
            if let Yaml::String(f) = &r["for"] {
                assert!(f.ends_with('m') || f.ends_with('s'), "{name}: for {f}");
            }
        }
    }
    assert!(alerts.contains("RingnfsServicePanics") && alerts.len() >= 6);
}

#[test]
fn metric_names_are_found_in_expressions() {
    assert_eq!(
        metrics_in("sum by (op) (rate(ringnfs_compound_ops_total{x=\"y\"}[5m])) / ringnfs_clients"),
        vec!["ringnfs_compound_ops_total", "ringnfs_clients"]
    );
    assert!(metrics_in("up{job=\"ringnfs\"} == 0").is_empty());
}
