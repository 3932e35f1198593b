//! A Redis client's socket: plain TCP, or TLS (`crate::tls`) when the node has certificates.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl ClientStream {
    /// Waits for input and appends what is available to `buf`, first making room for about
    /// `room` bytes. `Ok(0)` is the end of the stream.
    ///
    /// Cancel safe: no input is lost if another branch of a `select!` wins. A plain socket
    /// reserves room only once input is there, so an idle connection holds no read buffer.
    pub async fn read_into(&mut self, buf: &mut BytesMut, room: usize) -> io::Result<usize> {
        let reserve = |buf: &mut BytesMut| {
            if buf.capacity() - buf.len() < room / 2 {
                buf.reserve(room);
            }
        };
        match self {
            ClientStream::Plain(s) => loop {
                s.readable().await?;
                reserve(buf);
                match s.try_read_buf(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return r,
                }
            },
            // Decrypted input can wait inside rustls with the socket itself not readable,
            // so TLS reads through the stream, not on socket readiness.
            ClientStream::Tls(s) => {
                reserve(buf);
                s.read_buf(buf).await
            }
        }
    }

    /// Writes all of `data` (and, for TLS, the records rustls still holds).
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            ClientStream::Plain(s) => s.write_all(data).await,
            ClientStream::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
        }
    }
}
