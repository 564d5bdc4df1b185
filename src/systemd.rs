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

/// SIGHUP: re-read `config` and apply the live settings it gives
/// (`max_connections_per_session`, `exclusive_binding`, `lease_time`, `delegations`);
/// the other options need a restart. A file that does not parse changes nothing.
pub fn reload(server: &Server, config: Option<&Path>) {
    let _ = sd_notify::notify(false, &[NotifyState::Reloading]);
    match config {
        None => tracing::info!("SIGHUP: no --config file to re-read; nothing changed"),
        Some(path) => match apply(server, path) {
            Ok(changed) if changed.is_empty() => {
                tracing::info!(file = %path.display(), "SIGHUP: no live setting changed")
            }
            Ok(changed) => tracing::info!(
                file = %path.display(),
                settings = %changed.join(","),
                "SIGHUP: live settings applied from the config file"
            ),
            Err(e) => tracing::error!("SIGHUP: {e:#}; nothing changed"),
        },
    }
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
}

/// Apply `path`'s live settings (validated all together first); what changed.
fn apply(server: &Server, path: &Path) -> anyhow::Result<Vec<String>> {
    let o = crate::config::load(path)?;
    let live = &server.state().settings;
    let scratch = crate::state::settings::LiveSettings::default();
    if let Some(n) = o.max_connections_per_session {
        scratch.set_max_connections_per_session(n.into())?;
    }
    if let Some(l) = o.lease_time {
        scratch.set_lease_secs(l.into())?;
    }
    let mut changed = Vec::new();
    if let Some(n) = o.max_connections_per_session
        && n != live.max_connections_per_session()
    {
        live.set_max_connections_per_session(n.into())?;
        changed.push(format!("max_connections_per_session={n}"));
    }
    if let Some(b) = o.exclusive_binding
        && b != live.exclusive_binding()
    {
        live.set_exclusive_binding(b);
        changed.push(format!("exclusive_binding={b}"));
    }
    if let Some(l) = o.lease_time
        && l != live.lease_secs()
    {
        live.set_lease_secs(l.into())?;
        changed.push(format!("lease_time={l}"));
    }
    if let Some(b) = o.delegations
        && b != live.delegations()
    {
        live.set_delegations(b);
        changed.push(format!("delegations={b}"));
    }
    Ok(changed)
}
