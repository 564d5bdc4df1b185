//! Life under systemd (`Type=notify`, see `packaging/ringnfs.service`): READY once the
//! server serves, STOPPING on the way out, WATCHDOG pings while the NFS port answers an
//! RPC NULL (so a server whose workers stopped answering is restarted, not just one
//! whose process died), and SIGHUP (`systemctl reload`) re-reading the config file's
//! live settings. Outside systemd (no `NOTIFY_SOCKET`) the notifications do nothing.

use std::path::Path;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::server::Server;

/// The server serves: tell systemd, and start feeding its watchdog if it has one.
pub fn ready(server: &Server) {
    if let Err(e) = sd_notify::notify(false, &[NotifyState::Ready]) {
        tracing::warn!("telling systemd the server is ready: {e}");
    }
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        let period = Duration::from_micros(usec) / 2;
        let Some(addr) = server.local_addrs().first().copied() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("ringnfs-watchdog".into())
            .spawn(move || watchdog(addr, period));
        if let Err(e) = spawned {
            tracing::warn!("cannot start the systemd watchdog thread: {e}");
        }
        tracing::info!(
            every_ms = period.as_millis() as u64,
            "feeding the systemd watchdog while the NFS port answers"
        );
    }
}

/// Ping the watchdog after each RPC NULL the server answers on `addr`; a NULL that
/// fails skips the ping (systemd restarts the server when they stop for WatchdogSec).
fn watchdog(addr: std::net::SocketAddr, period: Duration) {
    loop {
        let answered = crate::client::RpcConn::connect(addr, crate::rpc::Credential::None)
            .and_then(|c| {
                c.set_timeout(period);
                c.null()
            })
            .map_err(|e| e.to_string());
        match answered {
            Ok(()) => {
                let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
            }
            Err(e) => tracing::warn!("watchdog: the NFS port did not answer a NULL: {e}"),
        }
        std::thread::sleep(period);
    }
}

/// The server is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// SIGHUP: re-read the TLS files, re-read `config` and apply the live settings it gives
/// (`max_connections_per_session`, `exclusive_binding`, `lease_time`, `delegations`)
/// and its exports (`[[export]]` tables or `export`), as the control plane would: an
/// export that stays where it was keeps its clients. The other options need a restart.
/// A file that does not parse, or exports that are not valid together, change nothing.
pub fn reload(server: &Server, config: Option<&Path>) {
    let _ = sd_notify::notify(false, &[NotifyState::Reloading]);
    // A renewed certificate is picked up by new handshakes.
    match server.reload_tls() {
        Ok(true) => tracing::info!("SIGHUP: TLS certificate, key and client CA re-read"),
        Ok(false) => {}
        Err(e) => tracing::error!("SIGHUP: {e}; the TLS files in use stay"),
    }
    match config {
        None => tracing::info!("SIGHUP: no --config file to re-read; nothing changed"),
        Some(path) => match apply(server, path) {
            Ok(applied) if applied.is_empty() => tracing::info!(
                file = %path.display(),
                "SIGHUP: the config file gives no live setting and no exports; nothing changed"
            ),
            Ok(applied) => tracing::info!(
                file = %path.display(),
                settings = %applied,
                "SIGHUP: live settings applied from the config file"
            ),
            Err(e) => tracing::error!("SIGHUP: {e:#}; nothing changed"),
        },
    }
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
}

/// Apply `path`'s live settings (validated all together on a scratch copy first, as
/// the control plane's PATCH does); what was applied, `key=value` separated by commas.
fn apply(server: &Server, path: &Path) -> anyhow::Result<String> {
    let o = crate::config::load(path)?;
    let given = crate::state::settings::PersistedSettings {
        max_connections_per_session: o.max_connections_per_session,
        exclusive_binding: o.exclusive_binding,
        lease_time: o.lease_time,
        log_level: None,
        delegations: o.delegations,
    };
    given.apply(&crate::state::settings::LiveSettings::default())?;
    let exports = match &o.export {
        Some(crate::options::ExportArg::Tables(t)) => Some(t.clone()),
        Some(crate::options::ExportArg::Dir(d)) => {
            Some(vec![crate::control::exports::ExportSpec {
                pseudo: "/".into(),
                path: Some(d.display().to_string()),
                ..Default::default()
            }])
        }
        None => None,
    };
    // The exports first: refused, they change nothing, the settings included.
    if let Some(specs) = &exports {
        server
            .exports()
            .replace(specs.clone(), true)
            .map_err(|e| anyhow::anyhow!("exports: {e}"))?;
    }
    given.apply(&server.state().settings)?;
    let mut said = given.describe();
    if let Some(specs) = exports {
        let pseudo: Vec<&str> = specs.iter().map(|s| s.pseudo.as_str()).collect();
        let sep = if said.is_empty() { "" } else { ", " };
        said.push_str(&format!("{sep}exports={}", pseudo.join(" ")));
    }
    Ok(said)
}
