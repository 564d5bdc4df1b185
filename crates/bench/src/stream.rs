//! A connection of the bench: plain TCP, or RPC-with-TLS (RFC 9289) over it, which the
//! setup and the workers read and write the same way.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ringnfs_client::ClientTls;
use rustls::{ClientConnection, StreamOwned};

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// `tcp`, after the AUTH_TLS probe and the TLS handshake when `tls` is given.
    pub fn start(mut tcp: TcpStream, tls: Option<&ClientTls>) -> Result<Stream, String> {
        match tls {
            None => Ok(Stream::Plain(tcp)),
            Some(t) => {
                let session = t.start(&mut tcp).map_err(|e| e.to_string())?;
                Ok(Stream::Tls(Box::new(StreamOwned::new(session, tcp))))
            }
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(t)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}
