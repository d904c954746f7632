//! A connection as async-h1 sees it, with one change: async-h1 writes a
//! response's head and its body in two writes, and on loopback each write
//! is a TCP segment and a wake-up of the client. A head that announces a
//! fixed-length body is held back and goes out with the body in one
//! `writev` (or at the flush that ends every response, for an empty body
//! or a HEAD request). Streaming (chunked) responses such as the event
//! stream are never held, so their head goes out at once.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use smol::io::{AsyncRead, AsyncWrite};
use smol::net::TcpStream;

/// Cloned by async-h1 for its reader and writer halves; the held head is
/// shared between the clones.
#[derive(Clone)]
pub(super) struct Conn {
    stream: TcpStream,
    held: Arc<Mutex<Vec<u8>>>,
}

impl Conn {
    pub(super) fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            held: Arc::default(),
        }
    }
}

/// A complete response head (not an interim 1xx such as 100 Continue,
/// which async-h1 writes without a flush) with a Content-Length.
fn is_fixed_length_head(buf: &[u8]) -> bool {
    buf.starts_with(b"HTTP/1.1 ")
        && !buf.starts_with(b"HTTP/1.1 1")
        && buf.ends_with(b"\r\n\r\n")
        && buf
            .windows(17)
            .any(|w| w.eq_ignore_ascii_case(b"\r\ncontent-length:"))
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Cloned so the guard does not borrow `this` (the stream is
        // borrowed mutably below).
        let held = Arc::clone(&this.held);
        let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_empty() {
            if is_fixed_length_head(buf) {
                held.extend_from_slice(buf);
                return Poll::Ready(Ok(buf.len()));
            }
            return Pin::new(&mut this.stream).poll_write(cx, buf);
        }
        loop {
            let bufs = [IoSlice::new(&held), IoSlice::new(buf)];
            let n = ready!(Pin::new(&mut this.stream).poll_write_vectored(cx, &bufs))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n <= held.len() {
                // Only (part of) the head went out; this write's bytes are
                // still to come, so try again rather than report zero.
                held.drain(..n);
                if held.is_empty() {
                    return Pin::new(&mut this.stream).poll_write(cx, buf);
                }
                continue;
            }
            let from_buf = n - held.len();
            held.clear();
            return Poll::Ready(Ok(from_buf));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let held = Arc::clone(&this.held);
        let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
        while !held.is_empty() {
            let n = ready!(Pin::new(&mut this.stream).poll_write(cx, &held))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            held.drain(..n);
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.stream).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::is_fixed_length_head;

    #[test]
    fn only_complete_fixed_length_heads_are_held() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ndate: x\r\n\r\n";
        assert!(is_fixed_length_head(head));
        assert!(is_fixed_length_head(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        ));
        // The event stream: chunked, its head must go out at once.
        assert!(!is_fixed_length_head(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        ));
        // Written by async-h1 without a flush after it.
        assert!(!is_fixed_length_head(b"HTTP/1.1 100 Continue\r\n\r\n"));
        // A body, or a head cut in two by the copy buffer.
        assert!(!is_fixed_length_head(b"{\"status\":\"ok\"}"));
        assert!(!is_fixed_length_head(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"));
    }
}
