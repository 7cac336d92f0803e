//! Parking idle HTTP/1.1 keep-alive connections.
//!
//! hyper gives every HTTP/1 connection a read and a write buffer of 8 KiB each for
//! as long as the connection lives, so thousands of idle keep-alive clients would
//! cost tens of KiB each. A plain-TCP connection that has been quiet for
//! [`PARK_AFTER`] between requests is therefore *parked*: [`ParkingIo`] ends hyper's
//! connection with an end-of-file that hyper sees between two requests (a clean
//! close for it), hands the socket back, and the connection loop waits for the next
//! request on the bare socket, then serves it with a fresh hyper connection. The
//! client sees one keep-alive connection throughout.
//!
//! A connection is never parked while a request is in flight (from the moment
//! hyper hands a request to the service until the response body is finished or
//! dropped), after a protocol upgrade or HTTP/2, or when bytes of a next request
//! have arrived.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::io::Activity;
use crate::body::{Body, BoxError};

/// How long a connection stays quiet between requests before it is parked.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

/// How many times connections have parked since start.
static PARKED: AtomicU64 = AtomicU64::new(0);

/// How many times connections have parked since start.
#[cfg(test)]
pub fn parked_total() -> u64 {
    PARKED.load(Ordering::Relaxed)
}

/// What the connection loop and its [`ParkingIo`] share.
#[derive(Debug, Default)]
pub struct Parking {
    /// Requests handed to the service whose response body is not finished.
    in_flight: AtomicUsize,
    /// Set for good after an upgrade or an HTTP/2 request.
    never: AtomicBool,
    /// Bytes arrived while no request was in flight (a next request has begun).
    pending_bytes: AtomicBool,
    /// The socket, handed back when the connection parks.
    parked: Mutex<Option<TcpStream>>,
}

impl Parking {
    /// Shared state for one client connection.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Marks a request as handed to the service; the returned guard ends it.
    pub fn begin(self: &Arc<Self>, http2: bool) -> InFlight {
        if http2 {
            self.never.store(true, Ordering::Relaxed);
        }
        self.pending_bytes.store(false, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Keeps the connection from ever parking (after an upgrade).
    pub fn forbid(&self) {
        self.never.store(true, Ordering::Relaxed);
    }

    /// The socket of a connection that parked, if it did.
    pub fn take_parked(&self) -> Option<TcpStream> {
        self.parked.lock().ok().and_then(|mut s| s.take())
    }

    fn parkable(&self) -> bool {
        !self.never.load(Ordering::Relaxed)
            && !self.pending_bytes.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Acquire) == 0
    }
}

/// A request in flight; dropping it (with the response body) ends it.
#[derive(Debug)]
pub struct InFlight(Arc<Parking>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request [`InFlight`] until it is finished
    /// or dropped.
    pub struct GuardedBody {
        #[pin]
        inner: Body,
        guard: Option<InFlight>,
    }
}

impl GuardedBody {
    /// Wraps `inner`; `guard` is released with the body.
    pub fn new(inner: Body, guard: Option<InFlight>) -> Self {
        Self { inner, guard }
    }
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let r = this.inner.poll_frame(cx);
        if matches!(r, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.guard.take();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A plain-TCP connection as hyper sees it: records activity, and reports an
/// end-of-file once the connection has been parkable for [`PARK_AFTER`],
/// moving the socket into [`Parking`].
pub struct ParkingIo {
    inner: Option<TcpStream>,
    activity: Activity,
    parking: Arc<Parking>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl ParkingIo {
    /// Wraps `stream` for one hyper connection.
    pub fn new(stream: TcpStream, activity: Activity, parking: Arc<Parking>) -> Self {
        Self {
            inner: Some(stream),
            activity,
            parking,
            timer: None,
        }
    }

    /// Whether the connection should park now; arms the timer otherwise. The
    /// timer is armed once and only moved when it fires early (bytes moved since),
    /// so a busy connection does not touch the timer wheel on every request.
    fn park_due(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.parking.parkable() {
            return false;
        }
        let idle = self.activity.idle_for();
        if idle >= PARK_AFTER {
            return true;
        }
        let deadline = || Instant::now() + (PARK_AFTER - idle);
        match self.timer.as_mut() {
            None => {
                let mut timer = Box::pin(tokio::time::sleep_until(deadline()));
                // Registers the wake-up; the deadline lies in the future.
                let fired = timer.as_mut().poll(cx).is_ready();
                self.timer = Some(timer);
                fired
            }
            Some(timer) => {
                if timer.as_mut().poll(cx).is_ready() {
                    timer.as_mut().reset(deadline());
                    return timer.as_mut().poll(cx).is_ready();
                }
                false
            }
        }
    }
}

impl AsyncRead for ParkingIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(stream) = this.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        match Pin::new(stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.activity.touch();
                    if this.parking.in_flight.load(Ordering::Acquire) == 0 {
                        this.parking.pending_bytes.store(true, Ordering::Relaxed);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.park_due(cx) {
                    if let (Some(stream), Ok(mut slot)) =
                        (this.inner.take(), this.parking.parked.lock())
                    {
                        *slot = Some(stream);
                        PARKED.fetch_add(1, Ordering::Relaxed);
                    }
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

/// Writing to a parked connection: hyper only does so by mistake.
fn parked() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection parked")
}

impl AsyncWrite for ParkingIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Some(stream) = this.inner.as_mut() else {
            return Poll::Ready(Err(parked()));
        };
        let r = Pin::new(stream).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Some(stream) = this.inner.as_mut() else {
            return Poll::Ready(Err(parked()));
        };
        let r = Pin::new(stream).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner.as_mut() {
            Some(s) => Pin::new(s).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// hyper shuts the write side down when its connection ends; a parked socket
    /// stays open for the next request.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner.as_mut() {
            Some(s) => Pin::new(s).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_quiet_connection_without_requests_in_flight_may_park() {
        let p = Parking::new();
        assert!(p.parkable());
        let guard = p.begin(false);
        assert!(!p.parkable(), "a request is in flight");
        let body = GuardedBody::new(crate::body::empty(), Some(guard));
        assert!(!p.parkable(), "its response body is not finished");
        drop(body);
        assert!(p.parkable());
        p.pending_bytes.store(true, Ordering::Relaxed);
        assert!(!p.parkable(), "a next request has begun");
        drop(p.begin(false));
        assert!(p.parkable());
        drop(p.begin(true));
        assert!(!p.parkable(), "HTTP/2 never parks");
        let q = Parking::new();
        q.forbid();
        assert!(!q.parkable(), "upgraded connections never park");
    }
}
