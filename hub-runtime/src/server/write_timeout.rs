//! A write-stall timeout for the built-in server's sockets: a client that stops reading (an
//! event stream or a long poll nobody takes) would otherwise pin its response, its
//! connection and their buffers forever.
//!
//! The socket fails with `TimedOut` once a write (or flush, or shutdown) has waited
//! `timeout` for room without any byte getting through; hyper then drops the connection and
//! its requests, and their drop guards release the logical connection. Writes that make
//! progress, however slowly, never trip it, and an idle socket (nothing to write) never
//! waits, so long-lived connections are unaffected. The timer is made on the first stall only.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

pin_project_lite::pin_project! {
    /// An IO whose writes fail after waiting `timeout` for room.
    pub(crate) struct WriteTimeout<T> {
        #[pin]
        inner: T,
        timeout: Duration,
        // The stall timer, armed while a write waits.
        timer: Option<Pin<Box<Sleep>>>,
        armed: bool,
    }
}

impl<T> WriteTimeout<T> {
    pub(crate) fn new(inner: T, timeout: Duration) -> Self {
        WriteTimeout {
            inner,
            timeout,
            timer: None,
            armed: false,
        }
    }
}

impl<T: AsyncWrite> WriteTimeout<T> {
    /// Runs one write-side operation, timing its stalls.
    fn watch<R>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        operation: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        let this = self.project();
        let result = operation(this.inner, cx);
        if result.is_ready() {
            *this.armed = false;
            return result;
        }
        let deadline = crate::connection::deadline_after(*this.timeout);
        if !*this.armed {
            *this.armed = true;
            match this.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => *this.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let Some(timer) = this.timer.as_mut() else {
            return Poll::Pending;
        };
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!("the client stopped reading; dropping its connection");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client did not read what was written",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead> AsyncRead for WriteTimeout<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for WriteTimeout<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.watch(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.watch(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.watch(cx, |inner, cx| inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.watch(cx, |inner, cx| inner.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_takes_fails_after_the_timeout() {
        let (near, _far) = tokio::io::duplex(16);
        let mut io = WriteTimeout::new(near, Duration::from_secs(5));
        io.write_all(&[0; 16]).await.expect("room for 16 bytes");
        let started = Instant::now();
        let error = io.write_all(&[0; 1]).await.expect_err("nobody reads");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn never_is_a_year() {
        let (near, _far) = tokio::io::duplex(16);
        let mut io = WriteTimeout::new(near, Duration::MAX);
        io.write_all(&[0; 16]).await.expect("room for 16 bytes");
        let started = Instant::now();
        let error = io.write_all(&[0; 1]).await.expect_err("nobody reads");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(365 * 24 * 3600));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_progress_does_not_time_out() {
        let (near, mut far) = tokio::io::duplex(4);
        let mut io = WriteTimeout::new(near, Duration::from_secs(5));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 4];
            let mut total = 0;
            while total < 40 {
                tokio::time::sleep(Duration::from_secs(3)).await;
                total += tokio::io::AsyncReadExt::read(&mut far, &mut buf).await.unwrap();
            }
        });
        io.write_all(&[1; 40])
            .await
            .expect("each stall is shorter than the timeout");
        reader.await.unwrap();
    }
}
