//! The bearer token: read from a file, created with mode 0600 and a fresh random value
//! on first start. Requests that change something, and every request when the control
//! plane listens on (or is reached from) a non-loopback address, must carry
//! `Authorization: Bearer <token>`. The token is never logged.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Ctx;
use super::error::ApiError;

/// A fresh token: 32 random bytes as hex.
pub fn fresh_token() -> String {
    let b: [u8; 32] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Read the token in `path`, or create the file (0600) with a fresh one.
pub fn load_or_create_token(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let t = s.trim().to_string();
            if t.is_empty() {
                anyhow::bail!("control token file {} is empty", path.display());
            }
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let token = fresh_token();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(format!("{token}\n").as_bytes())?;
            f.sync_all()?;
            tracing::info!(path = %path.display(), "created the control-plane token file");
            Ok(token)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Comparison whose time does not depend on where the strings differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request must carry the token.
pub fn needs_token(method: &Method, token_always: bool, peer: Option<SocketAddr>) -> bool {
    let reads = matches!(*method, Method::GET | Method::HEAD);
    let remote_peer = peer.is_some_and(|p| !p.ip().is_loopback());
    !reads || token_always || remote_peer
}

/// Middleware: refuse with 401 when the token is needed and missing or wrong.
pub async fn require_token(State(ctx): State<Arc<Ctx>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if needs_token(req.method(), ctx.token_always, peer) {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let ok = given.is_some_and(|t| constant_time_eq(t.as_bytes(), ctx.token.as_bytes()));
        if !ok {
            let msg = if given.is_none() {
                "this request needs a bearer token (Authorization: Bearer <token from the control token file>)"
            } else {
                "invalid bearer token"
            };
            let mut r = ApiError::new(StatusCode::UNAUTHORIZED, msg).into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("valid"));
            return r;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_rules() {
        let lo: SocketAddr = "127.0.0.1:5".parse().unwrap();
        let far: SocketAddr = "10.0.0.1:5".parse().unwrap();
        assert!(!needs_token(&Method::GET, false, Some(lo)));
        assert!(needs_token(&Method::GET, true, Some(lo)));
        assert!(needs_token(&Method::GET, false, Some(far)));
        assert!(needs_token(&Method::PATCH, false, Some(lo)));
        assert!(needs_token(&Method::DELETE, false, Some(lo)));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn token_file_is_created_0600_and_reread() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ringnfs-token-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("control-token");
        let t = load_or_create_token(&path).unwrap();
        assert_eq!(t.len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_token(&path).unwrap(), t);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
