#!/usr/bin/env python3
"""RPC-with-TLS stand-in (diagnostic for the kernel harness's `tlsprobe` scenario).

Not an NFS server: it answers only the RFC 9289 probe and then does the TLS handshake,
so the guest side (the kernel's RPC-with-TLS client, tlshd, the CA in the guest) can be
checked without any server support for TLS.

    tls_standin.py --listen 127.0.0.1:PORT --cert server.pem --key server.key \
        --log standin.log [--lifetime SECONDS] [--forward HOST:PORT]

Per connection:
 1. reads the first RPC record; if it is a NULL call (procedure 0) with credential
    flavor AUTH_TLS (7), answers MSG_ACCEPTED / SUCCESS with the verifier
    {flavor AUTH_NONE, body "STARTTLS"} (RFC 9289 section 4.1: what the Linux client
    checks in net/sunrpc/auth_tls.c, tls_validate());
 2. runs a TLS 1.3 server handshake on the same TCP connection, offering ALPN "sunrpc";
 3. reads the first RPC record inside TLS (proof that the client's kernel TLS works)
    and closes the connection (the mount then fails or retries: the guest bounds it);
    with --forward, sends that record and everything after it, decrypted, to a plain
    NFS server at HOST:PORT and its replies back inside TLS (a TLS-terminating proxy:
    the guest's whole RPC-with-TLS path, real NFS traffic included, before the server
    does TLS itself).

Every event is one line in the log: "conn N ...", "handshake ok ..." or "handshake
FAILED ...", "tls-record ...". It exits after --lifetime seconds in any case.
"""

import argparse
import select
import socket
import ssl
import struct
import sys
import threading
import time

AUTH_TLS = 7
NFS_PROGRAM = 100003

_log_lock = threading.Lock()
_log_file = None


def log(line):
    with _log_lock:
        _log_file.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        _log_file.flush()


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def read_record(sock, limit=1 << 20):
    """One RPC record (RFC 5531 section 11 record marking), all fragments."""
    data = b""
    while True:
        (mark,) = struct.unpack(">I", read_exact(sock, 4))
        size = mark & 0x7FFFFFFF
        if len(data) + size > limit:
            raise ValueError(f"record larger than {limit} bytes")
        data += read_exact(sock, size)
        if mark & 0x80000000:
            return data


def parse_call(rec):
    """xid, msg type, rpc version, program, version, procedure, credential flavor."""
    if len(rec) < 32:
        raise ValueError(f"{len(rec)}-byte record is too short for an RPC call")
    xid, mtype, rpcvers, prog, vers, proc, cred_flavor = struct.unpack(">7I", rec[:28])
    return xid, mtype, rpcvers, prog, vers, proc, cred_flavor


def starttls_reply(xid):
    body = struct.pack(">IIII", xid, 1, 0, 0)  # xid, REPLY, MSG_ACCEPTED, verf AUTH_NONE
    body += struct.pack(">I", 8) + b"STARTTLS"  # verifier body: 8 bytes, no padding
    body += struct.pack(">I", 0)  # accept_stat SUCCESS; NULL has no results
    return struct.pack(">I", 0x80000000 | len(body)) + body


def relay(n, tls, plain):
    """Bytes both ways until either side closes; one thread (an SSL object must not be
    read and written from two threads at once)."""
    up = down = 0
    tls.setblocking(True)
    plain.settimeout(None)
    tls.settimeout(None)
    socks = [tls, plain]
    while True:
        # Data already decrypted inside the SSL object is not seen by select.
        ready = [tls] if tls.pending() else select.select(socks, [], [], 600)[0]
        if not ready:
            log(f"conn {n}: relay idle for 600 s: closing")
            break
        src = ready[0]
        dst = plain if src is tls else tls
        try:
            data = src.recv(1 << 16)
        except ssl.SSLWantReadError:
            continue
        except (OSError, ssl.SSLError) as e:
            log(f"conn {n}: relay: {'client' if src is tls else 'server'} side: {e}")
            break
        if not data:
            log(f"conn {n}: relay: {'client' if src is tls else 'server'} closed")
            break
        try:
            dst.sendall(data)
        except (OSError, ssl.SSLError) as e:
            log(f"conn {n}: relay: {'server' if src is tls else 'client'} side: {e}")
            break
        if src is tls:
            up += len(data)
        else:
            down += len(data)
    log(f"conn {n}: relayed {up} bytes client->server and {down} bytes server->client")


def serve(conn, peer, n, ctx, forward):
    conn.settimeout(30)
    try:
        rec = read_record(conn)
        xid, mtype, rpcvers, prog, vers, proc, flavor = parse_call(rec)
        log(f"conn {n} from {peer[0]}:{peer[1]}: first record xid={xid:#x} type={mtype} "
            f"rpcvers={rpcvers} prog={prog} vers={vers} proc={proc} cred_flavor={flavor}")
        if mtype != 0 or proc != 0 or flavor != AUTH_TLS:
            log(f"conn {n}: not an AUTH_TLS NULL probe: closing")
            return
        if prog != NFS_PROGRAM:
            log(f"conn {n}: probe for program {prog}, not NFS ({NFS_PROGRAM}); answering anyway")
        conn.sendall(starttls_reply(xid))
        log(f"conn {n}: sent the STARTTLS reply; TLS handshake")
        tls = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as e:
            log(f"conn {n}: handshake FAILED: {e}")
            return
        log(f"conn {n}: handshake ok version={tls.version()} cipher={tls.cipher()[0]} "
            f"alpn={tls.selected_alpn_protocol()} sni={getattr(tls, 'sni', None)}")
        try:
            rec = read_record(tls)
            xid, mtype, rpcvers, prog, vers, proc, flavor = parse_call(rec)
            log(f"conn {n}: tls-record xid={xid:#x} type={mtype} rpcvers={rpcvers} prog={prog} "
                f"vers={vers} proc={proc} cred_flavor={flavor} ({len(rec)} bytes inside TLS)")
        except (ssl.SSLError, OSError, EOFError, ValueError) as e:
            log(f"conn {n}: no RPC record inside TLS: {e}")
            tls.close()
            return
        if forward:
            host, port = forward.rsplit(":", 1)
            try:
                plain = socket.create_connection((host, int(port)), timeout=10)
            except OSError as e:
                log(f"conn {n}: cannot reach {forward}: {e}")
                tls.close()
                return
            log(f"conn {n}: forwarding to {forward}")
            # The record as it came (one fragment), then the rest as bytes.
            plain.sendall(struct.pack(">I", 0x80000000 | len(rec)) + rec)
            relay(n, tls, plain)
            plain.close()
        tls.close()
    except (OSError, EOFError, ValueError) as e:
        log(f"conn {n}: {e}")
    finally:
        conn.close()


def main():
    global _log_file
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--lifetime", type=float, default=1800)
    ap.add_argument("--forward", metavar="HOST:PORT", help="plain NFS server to relay to after the handshake")
    a = ap.parse_args()
    _log_file = open(a.log, "a")
    host, port = a.listen.rsplit(":", 1)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["sunrpc"])
    # No session tickets: the kernel's TLS receive path takes application data and
    # alerts; a ticket sent after the handshake would be a record it has no use for.
    ctx.num_tickets = 0
    # The server name the client sent (tlshd sends the mount's server name, if any).
    ctx.sni_callback = lambda sock, name, _ctx: setattr(sock, "sni", name)

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(16)
    srv.settimeout(1)
    log(f"listening on {a.listen} (TLS 1.3, ALPN offered: sunrpc), for at most {a.lifetime:.0f} s"
        + (f", relaying to {a.forward}" if a.forward else ""))
    end = time.monotonic() + a.lifetime
    n = 0
    while time.monotonic() < end:
        try:
            conn, peer = srv.accept()
        except socket.timeout:
            continue
        n += 1
        threading.Thread(target=serve, args=(conn, peer, n, ctx, a.forward), daemon=True).start()
    log("lifetime over: exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
