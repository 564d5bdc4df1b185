//! A real etcd cluster for tests: `members` etcd processes on 127.0.0.1 at free ports,
//! their data directories and logs (`m0.log`, ...) in a temporary directory, elections
//! quick (`--heartbeat-interval 50 --election-timeout 500`) so that a test that kills a
//! member does not wait long for a new leader.
//!
//! Dropping the [`EtcdCluster`] kills every member and removes the directory, except
//! while a test is panicking: the directory then stays for its logs, and its path is
//! written to stderr.
//!
//! etcd is Debian's `etcd-server` (bookworm's is 3.4); without it [`EtcdCluster::start`]
//! fails with a text saying so and [`EtcdCluster::start_or_skip`] skips the test
//! ([`crate::skip`], a failure under CI).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a member may take to start serving (with a leader).
const START_TIMEOUT: Duration = Duration::from_secs(30);

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    process: Option<Child>,
}

/// A running etcd cluster (see the module's text).
pub struct EtcdCluster {
    dir: PathBuf,
    etcd: PathBuf,
    token: String,
    members: Vec<Member>,
    /// One cluster at a time per test process: several clusters with 50 ms heartbeats on
    /// a small machine could miss heartbeats and hold elections mid-test. Released after
    /// the members are killed (fields drop after `Drop::drop`).
    _turn: MutexGuard<'static, ()>,
}

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// `etcd` on PATH or in /usr/bin.
fn find_etcd() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/bin"));
    dirs.iter().map(|d| d.join("etcd")).find(|p| p.is_file())
}

/// `n` distinct ports free on 127.0.0.1 (as far as one can tell before use: all are held
/// until all are chosen, so they differ).
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("no free TCP port on 127.0.0.1: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string()))
        .collect()
}

/// The last lines of a file, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Whether the member at `port` says it is healthy (it has a leader): `GET /health`.
fn healthy(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    // HTTP/1.0: the member closes the connection after its reply.
    if conn
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    reply.contains(r#""health":"true""#)
}

impl EtcdCluster {
    /// Starts a new cluster of `members` members and waits until every one serves.
    pub fn start(members: usize) -> Result<EtcdCluster, String> {
        assert!(members > 0, "a cluster has at least one member");
        let etcd = find_etcd()
            .ok_or("etcd is not installed (Debian package etcd-server, which .ci/run installs)")?;
        let turn = one_at_a_time();
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ringnfs-etcd-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let ports = free_ports(2 * members)?;
        let mut cluster = EtcdCluster {
            dir,
            etcd,
            // Unique, so that members of two test clusters never take each other in.
            token: format!("ringnfs-test-{}-{n}-{nanos}", std::process::id()),
            members: (0..members)
                .map(|i| Member {
                    name: format!("m{i}"),
                    client_port: ports[2 * i],
                    peer_port: ports[2 * i + 1],
                    process: None,
                })
                .collect(),
            _turn: turn,
        };
        for i in 0..members {
            cluster.spawn(i, "new")?;
        }
        for i in 0..members {
            cluster.wait_healthy(i)?;
        }
        Ok(cluster)
    }

    /// [`EtcdCluster::start`], or None after [`crate::skip`] when etcd is not installed.
    /// Any other failure panics.
    pub fn start_or_skip(test: &str, members: usize) -> Option<EtcdCluster> {
        if find_etcd().is_none() {
            crate::skip(
                test,
                "etcd is not installed (Debian package etcd-server, which .ci/run installs)",
            );
            return None;
        }
        match EtcdCluster::start(members) {
            Ok(cluster) => Some(cluster),
            Err(e) => panic!("{test}: cannot start an etcd cluster: {e}"),
        }
    }

    /// The client URLs, `http://127.0.0.1:PORT`, member 0 first.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// Member `i`'s client URL.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client_port)
    }

    /// The directory with the members' data and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills member `i` (SIGKILL: no clean shutdown) and waits for it to be gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].process.take() {
            // std's Child::kill sends SIGKILL.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until every running member serves with a leader (after a kill, until the
    /// others have elected one).
    pub fn wait_ready(&mut self) -> Result<(), String> {
        for i in 0..self.members.len() {
            if self.members[i].process.is_some() {
                self.wait_healthy(i)?;
            }
        }
        Ok(())
    }

    /// Kills every member.
    pub fn kill_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }

    /// Starts member `i` again on its data directory (killing it first if it runs) and
    /// waits until it serves with a leader.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        self.kill(i);
        self.spawn(i, "existing")?;
        self.wait_healthy(i)
    }

    /// Start every member again (after [`Self::kill_all`]): all of them first, since one
    /// alone has no quorum to become healthy with, then wait until each serves.
    pub fn restart_all(&mut self) -> Result<(), String> {
        for i in 0..self.members.len() {
            self.kill(i);
            self.spawn(i, "existing")?;
        }
        self.wait_ready()
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.members[i].name))
    }

    fn spawn(&mut self, i: usize, state: &str) -> Result<(), String> {
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let log_path = self.log(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let m = &self.members[i];
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new(&self.etcd)
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(self.dir.join(&m.name))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.etcd.display()))?;
        self.members[i].process = Some(child);
        Ok(())
    }

    fn wait_healthy(&mut self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if healthy(self.members[i].client_port) {
                return Ok(());
            }
            let exited = match self.members[i].process.as_mut() {
                Some(child) => child.try_wait().ok().flatten(),
                None => return Err(format!("etcd member {i} is not running")),
            };
            if let Some(status) = exited {
                return Err(format!(
                    "etcd member {i} exited ({status}); its log {}:\n{}",
                    self.log(i).display(),
                    tail(&self.log(i))
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd member {i} did not become healthy within {START_TIMEOUT:?}; its log {}:\n{}",
                    self.log(i).display(),
                    tail(&self.log(i))
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() {
            let _ = writeln!(
                std::io::stderr().lock(),
                "etcd cluster kept for its logs: {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_a_member_restarts_and_drop_removes_it() {
        let Some(mut cluster) =
            EtcdCluster::start_or_skip("a_cluster_starts_a_member_restarts_and_drop_removes_it", 3)
        else {
            return;
        };
        let ports: Vec<u16> = cluster.members.iter().map(|m| m.client_port).collect();
        assert!(ports.iter().all(|p| healthy(*p)));
        cluster.kill(1);
        assert!(!healthy(ports[1]));
        cluster.restart(1).unwrap();
        assert!(healthy(ports[1]));
        let dir = cluster.dir().to_path_buf();
        assert!(dir.join("m1").is_dir());
        drop(cluster);
        assert!(!dir.exists());
        assert!(ports.iter().all(|p| !healthy(*p)));
    }
}
