//! A deadline for a socket's first request head: a client that opens a connection and then
//! sends nothing, or its first request head (or the HTTP/2 preface) byte by byte, would
//! otherwise keep a task and a file descriptor forever. hyper's own header-read timer
//! covers HTTP/1 requests only once the protocol has been detected, which waits for bytes
//! with no timer at all.
//!
//! Reads fail with `TimedOut` once `timeout` has passed without the end of the first head
//! (the first blank line, `\r\n\r\n`: the end of an HTTP/1 request head, or of the HTTP/2
//! preface's first part) having been read. Past it the socket is a plain pass-through: later
//! requests are hyper's to time (`header_read_timeout` for HTTP/1, keep-alive pings for
//! HTTP/2).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Ends a request head (and the HTTP/2 preface's request line).
const BLANK_LINE: &[u8; 4] = b"\r\n\r\n";

pin_project_lite::pin_project! {
    /// An IO whose reads fail if the first request head is not in within the timeout.
    pub(crate) struct HeadDeadline<T> {
        #[pin]
        inner: T,
        // Running until the first head is in; then gone.
        timer: Option<Pin<Box<Sleep>>>,
        // How much of the blank line the bytes read so far end with.
        matched: usize,
    }
}

impl<T> HeadDeadline<T> {
    /// `inner`, whose first request head must be read within `timeout` (a year at most).
    pub(crate) fn new(inner: T, timeout: Duration) -> Self {
        HeadDeadline {
            inner,
            timer: Some(Box::pin(tokio::time::sleep_until(crate::connection::deadline_after(
                timeout,
            )))),
            matched: 0,
        }
    }
}

/// Advances `matched` (how much of [`BLANK_LINE`] the stream read so far ends with) over
/// `bytes`; whether the whole blank line was seen.
fn scan(matched: &mut usize, bytes: &[u8]) -> bool {
    for &byte in bytes {
        *matched = if byte == BLANK_LINE[*matched] {
            *matched + 1
        } else if byte == b'\r' {
            1
        } else {
            0
        };
        if *matched == BLANK_LINE.len() {
            return true;
        }
    }
    false
}

impl<T: AsyncRead> AsyncRead for HeadDeadline<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let Some(timer) = this.timer.as_mut() else {
            return this.inner.poll_read(cx, buf);
        };
        if timer.as_mut().poll(cx).is_ready() {
            tracing::debug!("no request head within the header timeout; dropping the connection");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the first request head did not arrive in time",
            )));
        }
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            if scan(this.matched, &buf.filled()[before..]) {
                *this.timer = None;
            }
        }
        result
    }
}

impl<T: AsyncWrite> AsyncWrite for HeadDeadline<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_blank_line_is_found_across_reads() {
        let mut matched = 0;
        assert!(!scan(&mut matched, b"GET / HTTP/1.1\r\nHost: x\r"));
        assert!(!scan(&mut matched, b"\n\r"));
        assert!(scan(&mut matched, b"\n"));
        let mut matched = 0;
        assert!(!scan(&mut matched, b"a\r\r\n\rb\n"));
        assert!(scan(&mut matched, b"\r\r\n\r\n"));
        let mut matched = 0;
        assert!(scan(&mut matched, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    }

    #[tokio::test(start_paused = true)]
    async fn reads_fail_until_a_head_arrives_in_time() {
        let (near, _far) = tokio::io::duplex(64);
        let mut io = HeadDeadline::new(near, Duration::from_secs(5));
        let error = io.read(&mut [0; 8]).await.expect_err("nothing came");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);

        let (near, mut far) = tokio::io::duplex(64);
        let mut io = HeadDeadline::new(near, Duration::from_secs(5));
        far.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0; 64];
        assert_eq!(io.read(&mut buf).await.unwrap(), 18);
        tokio::time::sleep(Duration::from_secs(60)).await;
        far.write_all(b"more").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 4, "no deadline after the first head");
    }

    #[tokio::test(start_paused = true)]
    async fn never_is_a_year() {
        let (near, _far) = tokio::io::duplex(64);
        let _io = HeadDeadline::new(near, Duration::MAX);
    }
}
