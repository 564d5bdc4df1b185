//! A streaming HTTP/1.1 POST over a plain `TcpStream`, for watches: the gateway answers
//! with a chunked body of newline-separated JSON messages that lasts as long as the
//! watch. ureq cannot interrupt a blocking read of a body, and a dropped [`super::Watch`]
//! must stop its thread at once; here every read has a short timeout after which the
//! stop flag is checked.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::http::Endpoint;

/// How often a blocked read looks at the stop flag.
pub(crate) const POLL: Duration = Duration::from_millis(200);
/// The longest line (one watch message) or header accepted.
const MAX_LINE: usize = 64 << 20;

#[derive(Debug)]
pub(crate) enum StreamError {
    /// The stop flag was set.
    Stopped,
    /// The deadline passed with no data.
    TimedOut,
    /// The connection failed or closed, or the peer does not speak HTTP as expected.
    Broken(String),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Stopped => f.write_str("stopped"),
            StreamError::TimedOut => f.write_str("timed out"),
            StreamError::Broken(why) => f.write_str(why),
        }
    }
}

fn broken(why: impl Into<String>) -> StreamError {
    StreamError::Broken(why.into())
}

/// How the body ends.
enum Framing {
    /// `Transfer-Encoding: chunked`: bytes left in the current chunk, None between chunks.
    Chunked(Option<usize>),
    /// `Content-Length`: bytes left.
    Length(usize),
    /// Until the connection closes.
    Close,
}

/// The response to one streaming POST: its body's messages, one per line.
pub(crate) struct MessageStream<R> {
    source: R,
    stop: Arc<AtomicBool>,
    /// Bytes read from the connection and not yet consumed.
    raw: Vec<u8>,
    framing: Framing,
    /// Body bytes not yet split into lines.
    body: Vec<u8>,
    ended: bool,
}

/// POSTs `body` to `path` on `endpoint` and reads the response's head; the connection
/// and its head must come within `timeout`.
pub(crate) fn post(
    endpoint: &Endpoint,
    path: &str,
    body: &str,
    timeout: Duration,
    stop: Arc<AtomicBool>,
) -> Result<MessageStream<TcpStream>, StreamError> {
    let deadline = Instant::now() + timeout;
    let addrs = endpoint
        .socket_host()
        .to_socket_addrs()
        .map_err(|e| broken(format!("cannot resolve {}: {e}", endpoint.host)))?;
    let mut last = broken(format!("{} has no address", endpoint.host));
    let mut conn = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(2))) {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e) => last = broken(format!("connecting to {addr}: {e}")),
        }
    }
    let mut conn = conn.ok_or(last)?;
    let io = |e: std::io::Error| broken(format!("{}: {e}", endpoint.url()));
    conn.set_read_timeout(Some(POLL)).map_err(io)?;
    conn.set_write_timeout(Some(timeout)).map_err(io)?;
    let _ = conn.set_nodelay(true);
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        endpoint.host,
        endpoint.port,
        body.len()
    );
    conn.write_all(request.as_bytes()).map_err(io)?;
    let mut stream = MessageStream::new(conn, stop);
    stream.read_head(Some(deadline))?;
    Ok(stream)
}

impl<R: Read> MessageStream<R> {
    fn new(source: R, stop: Arc<AtomicBool>) -> Self {
        MessageStream {
            source,
            stop,
            raw: Vec::new(),
            framing: Framing::Close,
            body: Vec::new(),
            ended: false,
        }
    }

    /// Reads more from the connection into `raw`; Ok(false) at its end.
    fn fill(&mut self, deadline: Option<Instant>) -> Result<bool, StreamError> {
        let mut buf = [0u8; 16 << 10];
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err(StreamError::Stopped);
            }
            match self.source.read(&mut buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.raw.extend_from_slice(&buf[..n]);
                    return Ok(true);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(StreamError::TimedOut);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(broken(format!("reading: {e}"))),
            }
        }
    }

    /// The next CRLF- or LF-terminated line of `raw`, without its terminator.
    fn raw_line(&mut self, deadline: Option<Instant>) -> Result<Vec<u8>, StreamError> {
        loop {
            if let Some(at) = self.raw.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.raw.drain(..=at).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.raw.len() > MAX_LINE {
                return Err(broken("line too long"));
            }
            if !self.fill(deadline)? {
                return Err(broken("connection closed"));
            }
        }
    }

    /// The status line and headers; fails unless the status is 200.
    fn read_head(&mut self, deadline: Option<Instant>) -> Result<(), StreamError> {
        let status = String::from_utf8_lossy(&self.raw_line(deadline)?).into_owned();
        if status.split_whitespace().nth(1) != Some("200") {
            return Err(broken(format!("HTTP reply {status:?}")));
        }
        loop {
            let line = self.raw_line(deadline)?;
            if line.is_empty() {
                return Ok(());
            }
            let line = String::from_utf8_lossy(&line).to_ascii_lowercase();
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            match (name.trim(), value.trim()) {
                ("transfer-encoding", v) if v.contains("chunked") => {
                    self.framing = Framing::Chunked(None)
                }
                ("content-length", v) if !matches!(self.framing, Framing::Chunked(_)) => {
                    let n = v.parse().map_err(|_| broken("bad Content-Length"))?;
                    self.framing = Framing::Length(n);
                }
                _ => {}
            }
        }
    }

    /// Moves the next piece of the body from `raw` to `body`; Ok(false) at its end.
    fn more_body(&mut self, deadline: Option<Instant>) -> Result<bool, StreamError> {
        if self.ended {
            return Ok(false);
        }
        match self.framing {
            Framing::Chunked(None) => {
                let line = self.raw_line(deadline)?;
                let text = String::from_utf8_lossy(&line);
                // Chunk extensions after ';' are allowed and meaningless here.
                let size = text.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size, 16)
                    .map_err(|_| broken(format!("bad chunk size {text:?}")))?;
                if size == 0 {
                    self.ended = true;
                    return Ok(false);
                }
                self.framing = Framing::Chunked(Some(size));
                Ok(true)
            }
            Framing::Chunked(Some(left)) | Framing::Length(left) => {
                if left == 0 {
                    // The CRLF after a chunk's data, or the end of a sized body.
                    if let Framing::Chunked(_) = self.framing {
                        self.raw_line(deadline)?;
                        self.framing = Framing::Chunked(None);
                        return Ok(true);
                    }
                    self.ended = true;
                    return Ok(false);
                }
                if self.raw.is_empty() && !self.fill(deadline)? {
                    return Err(broken("connection closed in the middle of the body"));
                }
                let n = left.min(self.raw.len());
                self.body.extend(self.raw.drain(..n));
                let left = left - n;
                self.framing = match self.framing {
                    Framing::Chunked(_) => Framing::Chunked(Some(left)),
                    _ => Framing::Length(left),
                };
                Ok(true)
            }
            Framing::Close => {
                if self.raw.is_empty() && !self.fill(deadline)? {
                    self.ended = true;
                    return Ok(false);
                }
                self.body.append(&mut self.raw);
                Ok(true)
            }
        }
    }

    /// The next message (a non-empty line of the body); None when the body ended.
    pub(crate) fn next_message(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<u8>>, StreamError> {
        loop {
            while let Some(at) = self.body.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.body.drain(..=at).collect();
                let line = line.trim_ascii();
                if !line.is_empty() {
                    return Ok(Some(line.to_vec()));
                }
            }
            if self.body.len() > MAX_LINE {
                return Err(broken("message too long"));
            }
            if !self.more_body(deadline)? {
                // A last message without a newline.
                let rest = std::mem::take(&mut self.body);
                let rest = rest.trim_ascii();
                return Ok((!rest.is_empty()).then(|| rest.to_vec()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its data a few bytes per read, with "timeouts" in between, as a slow
    /// connection would.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
        tick: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.tick = !self.tick;
            if self.tick {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = self.step.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn stream(data: &[u8], step: usize) -> MessageStream<Trickle> {
        let source = Trickle {
            data: data.to_vec(),
            at: 0,
            step,
            tick: false,
        };
        MessageStream::new(source, Arc::new(AtomicBool::new(false)))
    }

    fn messages(data: &[u8], step: usize) -> Result<Vec<String>, StreamError> {
        let mut s = stream(data, step);
        s.read_head(None)?;
        let mut out = Vec::new();
        while let Some(m) = s.next_message(None)? {
            out.push(String::from_utf8(m).unwrap());
        }
        Ok(out)
    }

    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\n\r\n\
        6\r\n{\"a\":1\r\n\
        5;ext=1\r\n}\n{\"b\r\n\
        b\r\n\":2}\n\n{\"c\":\r\n\
        3\r\n3}\n\r\n\
        0\r\n\r\n";

    #[test]
    fn chunked_messages_split_across_chunks_and_reads() {
        for step in [1, 2, 3, 7, 1000] {
            let got = messages(CHUNKED, step).unwrap();
            assert_eq!(
                got,
                [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#],
                "step {step}"
            );
        }
    }

    #[test]
    fn a_sized_body_and_one_without_framing() {
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"x\":1}\n\nignored";
        assert_eq!(messages(sized, 4).unwrap(), [r#"{"x":1}"#]);
        let closed = b"HTTP/1.1 200 OK\r\n\r\n{\"x\":1}\n{\"y\":2}";
        assert_eq!(messages(closed, 5).unwrap(), [r#"{"x":1}"#, r#"{"y":2}"#]);
    }

    #[test]
    fn a_cut_chunked_stream_is_broken() {
        let cut = &CHUNKED[..CHUNKED.len() - 20];
        assert!(matches!(messages(cut, 3), Err(StreamError::Broken(_))));
    }

    #[test]
    fn an_error_status_is_refused() {
        let reply = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nNot Found";
        match messages(reply, 100) {
            Err(StreamError::Broken(why)) => assert!(why.contains("404"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_stop_flag_ends_a_read_that_gets_nothing() {
        struct Silent;
        impl Read for Silent {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(ErrorKind::WouldBlock.into())
            }
        }
        let stop = Arc::new(AtomicBool::new(true));
        let mut s = MessageStream::new(Silent, stop.clone());
        assert!(matches!(s.read_head(None), Err(StreamError::Stopped)));
        stop.store(false, Ordering::Relaxed);
        let past = Instant::now();
        assert!(matches!(
            s.read_head(Some(past)),
            Err(StreamError::TimedOut)
        ));
    }
}
