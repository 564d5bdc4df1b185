//! Listening sockets: for each listen address, one `SO_REUSEPORT` socket per worker,
//! all on the same port (port 0 is resolved by the first socket's bind).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

const BACKLOG: i32 = 1024;

fn listener(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    set_reuse_port(&s)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s)
}

/// Bind `addr` without SO_REUSEPORT to check nobody listens there; returns the bound
/// address (port 0 resolved) after closing the probe.
fn exclusive_probe(addr: SocketAddr) -> io::Result<SocketAddr> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    bound_addr(&s)
}

/// `SO_REUSEPORT` (socket2 exposes it only with its "all" feature).
fn set_reuse_port(s: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: passes a pointer to a live c_int and its exact size for a socket we own.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            (&raw const one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn bound_addr(s: &Socket) -> io::Result<SocketAddr> {
    s.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listener has a non-IP address"))
}

/// Bind `workers` sockets per address. Returns `sockets[worker][address]` and the
/// actual bound address of each listen address.
pub(crate) fn bind_all(
    addrs: &[SocketAddr],
    workers: usize,
) -> io::Result<(Vec<Vec<Socket>>, Vec<SocketAddr>)> {
    let mut per_worker: Vec<Vec<Socket>> = (0..workers).map(|_| Vec::new()).collect();
    let mut bound = Vec::with_capacity(addrs.len());
    for &addr in addrs {
        // SO_REUSEPORT would let a second server on the same port share (and split) our
        // traffic; a plain bind first makes "address in use" fail loudly instead.
        let probe = exclusive_probe(addr)?;
        let addr = SocketAddr::new(addr.ip(), probe.port());
        let first = listener(addr)?;
        let actual = bound_addr(&first)?;
        per_worker[0].push(first);
        for sockets in per_worker.iter_mut().skip(1) {
            sockets.push(listener(actual)?);
        }
        bound.push(actual);
    }
    Ok((per_worker, bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_server_on_the_same_port_is_refused() {
        let (_socks, bound) = bind_all(&["127.0.0.1:0".parse().unwrap()], 2).unwrap();
        let err = bind_all(&bound, 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn port_zero_resolves_to_one_shared_port() {
        let addrs = [
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ];
        let (socks, bound) = bind_all(&addrs, 3).unwrap();
        assert_eq!(socks.len(), 3);
        assert_eq!(bound.len(), 2);
        assert_ne!(bound[0].port(), 0);
        assert_ne!(bound[0].port(), bound[1].port());
        for w in &socks {
            for (i, s) in w.iter().enumerate() {
                assert_eq!(bound_addr(s).unwrap(), bound[i]);
            }
        }
    }
}
