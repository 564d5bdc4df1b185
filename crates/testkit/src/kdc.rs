//! A real MIT Kerberos KDC for tests, as a user's would be: `krb5kdc` on 127.0.0.1 at a
//! free port, realm [`REALM`], its database, configuration, keytabs and credentials
//! caches in a temporary directory.
//!
//! [`Kdc::start`] makes the directory, writes `krb5.conf` and `kdc.conf`, creates the
//! database (`kdb5_util create`), the service principal [`SERVICE`] with its keytab
//! ([`Kdc::service_keytab`]), [`OTHER_SERVICE`] (known to the KDC, in no acceptor's
//! keytab) and the users [`USERS`], each with a keytab of its own so that a test gets
//! tickets without a password ([`Kdc::kinit`], into a credentials cache file of its own).
//! Dropping the [`Kdc`] stops `krb5kdc` and removes the directory; so does the end of the
//! test process, for the one [`Kdc::shared`] keeps, which is never dropped (a small `sh`
//! watcher holds a pipe from this process and cleans up when it closes).
//!
//! The tools are Debian's `krb5-kdc` (`krb5kdc`, `kdb5_util`), `krb5-admin-server`
//! (`kadmin.local`) and `krb5-user` (`kinit`); without them `start` returns
//! [`KdcError::Missing`], and a test calls [`crate::skip`] with its text.
//!
//! MIT Kerberos reads `KRB5_CONFIG` from the environment of the process using it: tests
//! that run the GSS-API in their own process use [`Kdc::shared`], which starts one KDC per
//! test process and sets the variables once; child processes get [`Kdc::env`] (and
//! [`Ccache::env`]). Set `KRB5_TRACE=/dev/stderr` to see what MIT's library does.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The test realm.
pub const REALM: &str = "RINGNFS.TEST";
/// The NFS server's principal, the one entry of [`Kdc::service_keytab`]; clients ask for
/// it as the host-based service `nfs@localhost`.
pub const SERVICE: &str = "nfs/localhost";
/// A service the KDC issues tickets for but no acceptor has a key of (`nfs@otherhost`).
pub const OTHER_SERVICE: &str = "nfs/otherhost";
/// User principals, each with a keytab ([`Kdc::keytab`]).
pub const USERS: &[&str] = &["alice", "bob"];
/// The clock skew every party allows (`clockskew` in krb5.conf): small, so that a test
/// of an expired ticket waits only a few seconds.
pub const CLOCK_SKEW: Duration = Duration::from_secs(2);

/// The packages to install, for messages.
const PACKAGES: &str = "krb5-kdc krb5-admin-server krb5-user";
/// How long `krb5kdc` may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the KDC is not there.
#[derive(Debug)]
pub enum KdcError {
    /// A tool is not installed: the test is skipped (and fails under CI).
    Missing {
        tool: &'static str,
        package: &'static str,
    },
    /// Something failed; the text says what, with the tool's output.
    Failed(String),
}

impl std::fmt::Display for KdcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KdcError::Missing { tool, package } => write!(
                f,
                "{tool} is not installed (Debian package {package}; the test KDC needs \
                 apt-get install {PACKAGES}, which .ci/run does)"
            ),
            KdcError::Failed(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for KdcError {}

fn failed(text: impl Into<String>) -> KdcError {
    KdcError::Failed(text.into())
}

struct Tools {
    kdb5_util: PathBuf,
    kadmin_local: PathBuf,
    krb5kdc: PathBuf,
    kinit: PathBuf,
}

/// `name` on PATH or in the sbin directories (which a non-root PATH may lack).
fn find_tool(name: &'static str, package: &'static str) -> Result<PathBuf, KdcError> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from));
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(KdcError::Missing {
            tool: name,
            package,
        })
}

impl Tools {
    fn find() -> Result<Tools, KdcError> {
        Ok(Tools {
            kdb5_util: find_tool("kdb5_util", "krb5-kdc")?,
            krb5kdc: find_tool("krb5kdc", "krb5-kdc")?,
            kadmin_local: find_tool("kadmin.local", "krb5-admin-server")?,
            kinit: find_tool("kinit", "krb5-user")?,
        })
    }
}

/// A running KDC and its directory.
pub struct Kdc {
    dir: PathBuf,
    port: u16,
    tools: Tools,
    kdc: Child,
    watcher: Child,
    // The watcher's standard input: open while we live.
    _pids: ChildStdin,
    ccaches: AtomicU32,
    /// Principals added so far. Held while one is added: tests running at once that add
    /// the same principal must not give it a new random key (`ktadd` does) after another
    /// test wrote its keytab, or that test's kinit finds the key changed ("Password
    /// incorrect").
    added: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// A credentials cache file with a principal's tickets; removed on drop.
pub struct Ccache {
    path: PathBuf,
}

impl Ccache {
    /// Its name for MIT (`FILE:/...`), as KRB5CCNAME or a credential store's "ccache".
    pub fn name(&self) -> String {
        format!("FILE:{}", self.path.display())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// KRB5CCNAME for a child process.
    pub fn env(&self) -> (&'static str, OsString) {
        ("KRB5CCNAME", self.name().into())
    }
}

impl Drop for Ccache {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 (as far as one can tell before use).
fn free_port() -> Result<u16, KdcError> {
    for _ in 0..20 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| failed(format!("no free TCP port on 127.0.0.1: {e}")))?;
        let port = tcp.local_addr().map_err(|e| failed(e.to_string()))?.port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(failed("no port free for both TCP and UDP on 127.0.0.1"))
}

fn file_name(principal: &str) -> String {
    principal.replace('/', "_")
}

/// The combined output of a finished command, for error messages.
fn output_text(out: &std::process::Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text.trim().to_string()
}

/// The last lines of a file, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Kdc {
    /// Makes the realm and starts `krb5kdc` (see the module's text); waits until it
    /// serves, for at most 15 seconds.
    pub fn start() -> Result<Kdc, KdcError> {
        let tools = Tools::find()?;
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringnfs-kdc-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["", "keytabs", "ccaches", "rcache"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| failed(format!("creating {}: {e}", dir.join(sub).display())))?;
        }
        // From here on the watcher stops every krb5kdc whose pid we write to it and
        // removes the directory when its standard input closes: when we drop it, or when
        // this process ends, however it ends.
        let mut watcher = Command::new("sh")
            .args([
                "-c",
                "pids=; while read -r pid; do pids=\"$pids $pid\"; done; \
                 [ -n \"$pids\" ] && kill $pids 2>/dev/null; rm -rf \"$1\"",
                "ringnfs-kdc-watcher",
            ])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| failed(format!("starting sh: {e}")))?;
        let pids = watcher.stdin.take().expect("piped");
        match Kdc::start_in(&dir, &tools, pids) {
            Ok((kdc, port, pids)) => Ok(Kdc {
                dir,
                port,
                tools,
                kdc,
                watcher,
                _pids: pids,
                ccaches: AtomicU32::new(0),
                // Those `start_in` made, with their keytabs.
                added: std::sync::Mutex::new(
                    [SERVICE, OTHER_SERVICE]
                        .iter()
                        .chain(USERS.iter())
                        .map(|p| p.to_string())
                        .collect(),
                ),
            }),
            Err(e) => {
                // start_in dropped the pipe: the watcher cleans up.
                let _ = watcher.wait();
                Err(e)
            }
        }
    }

    fn start_in(
        dir: &Path,
        tools: &Tools,
        mut pids: ChildStdin,
    ) -> Result<(Child, u16, ChildStdin), KdcError> {
        let mut port = free_port()?;
        write_config(dir, port)?;
        let env = config_env(dir);
        let out = Command::new(&tools.kdb5_util)
            .args(["create", "-s", "-r", REALM, "-P", "ringnfs-test-master-key"])
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| failed(format!("running kdb5_util: {e}")))?;
        if !out.status.success() {
            return Err(failed(format!(
                "kdb5_util create failed: {}",
                output_text(&out)
            )));
        }
        let mut principals = vec![SERVICE, OTHER_SERVICE];
        principals.extend(USERS);
        let mut script = String::new();
        for p in &principals {
            script.push_str(&format!("addprinc -randkey {p}@{REALM}\n"));
        }
        // Each principal's own keytab: SERVICE's is the acceptor's; OTHER_SERVICE's is
        // there for a test that wants a second acceptor.
        for p in &principals {
            let kt = dir.join("keytabs").join(format!("{}.keytab", file_name(p)));
            script.push_str(&format!("ktadd -k {} {p}@{REALM}\n", kt.display()));
        }
        run_kadmin(tools, dir, &script)?;
        for p in &principals {
            let kt = dir.join("keytabs").join(format!("{}.keytab", file_name(p)));
            if std::fs::metadata(&kt).map(|m| m.len()).unwrap_or(0) == 0 {
                return Err(failed(format!("kadmin.local made no keytab for {p}")));
            }
        }
        // Another process may take the port between our check and the KDC's bind.
        let mut attempt = 0;
        loop {
            let mut kdc = Command::new(&tools.krb5kdc)
                .args(["-n", "-r", REALM])
                .envs(env.iter().cloned())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(dir.join("krb5kdc.stderr"))
                        .map_err(|e| failed(e.to_string()))?,
                )
                .spawn()
                .map_err(|e| failed(format!("starting krb5kdc: {e}")))?;
            if let Err(e) = writeln!(pids, "{}", kdc.id()) {
                let _ = kdc.kill();
                let _ = kdc.wait();
                return Err(failed(format!("writing to the watcher: {e}")));
            }
            match wait_ready(dir, port, &mut kdc) {
                Ok(()) => return Ok((kdc, port, pids)),
                Err(e) => {
                    let _ = kdc.kill();
                    let _ = kdc.wait();
                    let in_use = tail(&dir.join("kdc.log")).contains("Address already in use");
                    attempt += 1;
                    if !in_use || attempt >= 5 {
                        return Err(e);
                    }
                    port = free_port()?;
                    write_config(dir, port)?;
                }
            }
        }
    }

    /// The KDC started once for this process, with KRB5_CONFIG, KRB5_KDC_PROFILE and
    /// KRB5RCACHEDIR set in the process's environment (for the GSS-API library running in
    /// it). Every test of a binary that calls the GSS-API must call this before it does:
    /// the variables are set while no other thread of the binary can be reading them.
    pub fn shared() -> Result<&'static Kdc, &'static KdcError> {
        static SHARED: OnceLock<Result<Kdc, KdcError>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let kdc = Kdc::start()?;
                for (key, value) in kdc.env() {
                    // SAFETY: setenv races with C code reading the environment in
                    // another thread. This runs once, inside the OnceLock, which every
                    // test that reaches Kerberos (the only C code of these binaries that
                    // reads these variables) calls first and waits on; Rust's own readers
                    // take std's environment lock.
                    unsafe { std::env::set_var(key, value) };
                }
                Ok(kdc)
            })
            .as_ref()
    }

    pub fn realm(&self) -> &'static str {
        REALM
    }

    /// The KDC's port on 127.0.0.1 (TCP and UDP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory (configuration, database, keytabs, caches, `kdc.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// KRB5_CONFIG, KRB5_KDC_PROFILE and KRB5RCACHEDIR, for a child process (which also
    /// wants a KRB5CCNAME, [`Ccache::env`], if it is a client).
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        config_env(&self.dir)
    }

    /// The keytab of a principal the fixture made ([`SERVICE`], [`OTHER_SERVICE`],
    /// [`USERS`]) or [`Kdc::add_principal`] added.
    pub fn keytab(&self, principal: &str) -> PathBuf {
        self.dir
            .join("keytabs")
            .join(format!("{}.keytab", file_name(principal)))
    }

    /// The acceptor's keytab: [`SERVICE`] only.
    pub fn service_keytab(&self) -> PathBuf {
        self.keytab(SERVICE)
    }

    /// Adds `principal` (without realm, `nfs/host.example`) with a random key, and its
    /// keytab ([`Kdc::keytab`]).
    pub fn add_principal(&self, principal: &str) -> Result<PathBuf, KdcError> {
        let kt = self.keytab(principal);
        let mut added = self.added.lock().unwrap_or_else(|p| p.into_inner());
        if added.contains(principal) {
            return Ok(kt);
        }
        let script = format!(
            "addprinc -randkey {principal}@{REALM}\nktadd -k {} {principal}@{REALM}\n",
            kt.display()
        );
        run_kadmin(&self.tools, &self.dir, &script)?;
        if std::fs::metadata(&kt).map(|m| m.len()).unwrap_or(0) == 0 {
            return Err(failed(format!(
                "kadmin.local made no keytab for {principal}"
            )));
        }
        added.insert(principal.to_string());
        Ok(kt)
    }

    /// Tickets for `principal` (from its keytab) in a new credentials cache file;
    /// `lifetime` is kinit's `-l` (`"3s"`, `"10m"`), the realm's maximum (1 hour) when None.
    pub fn kinit(&self, principal: &str, lifetime: Option<&str>) -> Result<Ccache, KdcError> {
        let n = self.ccaches.fetch_add(1, Ordering::Relaxed);
        let cache = Ccache {
            path: self
                .dir
                .join("ccaches")
                .join(format!("{}-{n}", file_name(principal))),
        };
        let mut cmd = Command::new(&self.tools.kinit);
        cmd.envs(self.env()).env("KRB5CCNAME", cache.name());
        if let Some(l) = lifetime {
            cmd.args(["-l", l]);
        }
        let out = cmd
            .arg("-k")
            .arg("-t")
            .arg(self.keytab(principal))
            .arg(format!("{principal}@{REALM}"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| failed(format!("running kinit: {e}")))?;
        if !out.status.success() {
            return Err(failed(format!(
                "kinit {principal} failed: {}\n(kdc.log:\n{})",
                output_text(&out),
                tail(&self.dir.join("kdc.log"))
            )));
        }
        Ok(cache)
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.kdc.kill();
        let _ = self.kdc.wait();
        // Killed rather than told (closing its pipe): the krb5kdc pids it holds are
        // reaped now and could be another process's by the time it read them.
        let _ = self.watcher.kill();
        let _ = self.watcher.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config_env(dir: &Path) -> Vec<(&'static str, OsString)> {
    vec![
        ("KRB5_CONFIG", dir.join("krb5.conf").into()),
        ("KRB5_KDC_PROFILE", dir.join("kdc.conf").into()),
        ("KRB5RCACHEDIR", dir.join("rcache").into()),
    ]
}

fn write_config(dir: &Path, port: u16) -> Result<(), KdcError> {
    let skew = CLOCK_SKEW.as_secs();
    // udp_preference_limit = 1: clients talk TCP, the transport the readiness check saw.
    // No DNS: host names in service principals are taken as written.
    let krb5_conf = format!(
        "[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
    clockskew = {skew}

[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    localhost = {REALM}
    otherhost = {REALM}
"
    );
    let d = dir.display();
    let kdc_conf = format!(
        "[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {REALM} = {{
        database_name = {d}/principal
        key_stash_file = {d}/stash
        max_life = 1h
        max_renewable_life = 0
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = FILE:{d}/kdc.log
"
    );
    for (name, text) in [("krb5.conf", krb5_conf), ("kdc.conf", kdc_conf)] {
        std::fs::write(dir.join(name), text)
            .map_err(|e| failed(format!("writing {}: {e}", dir.join(name).display())))?;
    }
    Ok(())
}

/// Runs kadmin.local on `script` (one query a line, from standard input).
fn run_kadmin(tools: &Tools, dir: &Path, script: &str) -> Result<(), KdcError> {
    let mut child = Command::new(&tools.kadmin_local)
        .args(["-r", REALM])
        .envs(config_env(dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("running kadmin.local: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    std::io::Write::write_all(&mut stdin, script.as_bytes())
        .map_err(|e| failed(format!("writing to kadmin.local: {e}")))?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("running kadmin.local: {e}")))?;
    if !out.status.success() {
        return Err(failed(format!(
            "kadmin.local failed: {}",
            output_text(&out)
        )));
    }
    Ok(())
}

/// Until `krb5kdc` says it serves and answers on its TCP port; an error with its log if
/// it exits or takes longer than START_TIMEOUT.
fn wait_ready(dir: &Path, port: u16, kdc: &mut Child) -> Result<(), KdcError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Ok(Some(status)) = kdc.try_wait() {
            let mut stderr = String::new();
            if let Ok(mut f) = std::fs::File::open(dir.join("krb5kdc.stderr")) {
                let _ = f.read_to_string(&mut stderr);
            }
            return Err(failed(format!(
                "krb5kdc exited ({status}) before serving: {}\n(kdc.log:\n{})",
                stderr.trim(),
                tail(&dir.join("kdc.log"))
            )));
        }
        let logged = std::fs::read_to_string(dir.join("kdc.log"))
            .is_ok_and(|log| log.contains("commencing operation"));
        if logged && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(failed(format!(
                "krb5kdc did not answer on 127.0.0.1:{port} within {}s\n(kdc.log:\n{})",
                START_TIMEOUT.as_secs(),
                tail(&dir.join("kdc.log"))
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_package() {
        let e = find_tool("krb5kdc-not-here", "krb5-kdc").unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, KdcError::Missing { .. }), "{text}");
        assert!(
            text.starts_with("krb5kdc-not-here is not installed"),
            "{text}"
        );
        assert!(text.contains("apt-get install krb5-kdc krb5-admin-server krb5-user"));
    }

    #[test]
    fn a_kdc_of_its_own_issues_tickets_and_goes_away_when_dropped() {
        let kdc = match Kdc::start() {
            Ok(kdc) => kdc,
            Err(e @ KdcError::Missing { .. }) => {
                crate::skip(
                    "a_kdc_of_its_own_issues_tickets_and_goes_away_when_dropped",
                    &e.to_string(),
                );
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let keytab = kdc.add_principal("nfs/server.example").unwrap();
        assert_eq!(keytab, kdc.keytab("nfs/server.example"));
        let cache = kdc.kinit("nfs/server.example", Some("5m")).unwrap();
        assert!(cache.path().is_file());
        assert!(kdc.kinit("carol", None).is_err(), "no such principal");
        let (dir, pid) = (kdc.dir().to_path_buf(), kdc.kdc.id());
        drop(cache);
        drop(kdc);
        assert!(!dir.exists(), "{}", dir.display());
        // Reaped by Drop, so no /proc entry (not even a zombie's).
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
