//! The admin HTTP port: a tiny HTTP/1.1 responder (one request per connection) serving
//! `GET /health`. A later issue replaces it with a full router and /metrics.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Server;

const MAX_HEAD: usize = 8 * 1024;

pub async fn serve(listener: TcpListener, srv: Arc<Server>) {
    let mut shutdown = srv.shutdown_receiver();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(10), respond(stream)).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// The response to a request head (status line, content type, body).
pub fn route(head: &[u8]) -> (&'static str, &'static str) {
    let line = head.split(|&c| c == b'\n').next().unwrap_or(b"");
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/health") => ("200 OK", "ok"),
        (_, "/health") => ("405 Method Not Allowed", "method not allowed"),
        _ => ("404 Not Found", "not found"),
    }
}

async fn respond(mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if head.len() > MAX_HEAD {
            stream
                .write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await?;
            return Ok(());
        }
    }
    let (status, body) = route(&head);
    let is_head = head.starts_with(b"HEAD ");
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        if is_head { "" } else { body }
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn routes_health() {
        assert_eq!(
            route(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").0,
            "200 OK"
        );
        assert_eq!(route(b"GET /health?x=1 HTTP/1.1\r\n\r\n").1, "ok");
        assert_eq!(
            route(b"POST /health HTTP/1.1\r\n\r\n").0,
            "405 Method Not Allowed"
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n").0, "404 Not Found");
        assert_eq!(route(b"").0, "404 Not Found");
    }
}
