//! A request body that can be taken back when the upstream connection fails before
//! the body was read, so the request can be retried on another server.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::body::{Body, BoxError};

/// The shared slot holding the client's body until an upstream starts reading it.
#[derive(Clone)]
pub struct BodySlot(Arc<Mutex<Option<Body>>>);

impl BodySlot {
    /// Puts the client's body in a new slot.
    pub fn new(body: Body) -> Self {
        Self(Arc::new(Mutex::new(Some(body))))
    }

    /// Takes the body back if no upstream has started reading it.
    pub fn reclaim(&self) -> Option<Body> {
        self.0.lock().ok().and_then(|mut b| b.take())
    }

    /// Whether the body is still unread and available for a retry.
    pub fn is_unread(&self) -> bool {
        self.0.lock().map(|b| b.is_some()).unwrap_or(false)
    }

    /// A body for one upstream attempt; it takes the real body on its first poll.
    pub fn attempt(&self, end_stream: bool, hint: SizeHint) -> Reclaimable {
        Reclaimable {
            slot: self.clone(),
            inner: None,
            end_stream,
            hint,
        }
    }
}

/// The body of one upstream attempt.
pub struct Reclaimable {
    slot: BodySlot,
    inner: Option<Body>,
    end_stream: bool,
    hint: SizeHint,
}

impl HttpBody for Reclaimable {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.inner.is_none() {
            match self.slot.reclaim() {
                Some(body) => self.inner = Some(body),
                None => return Poll::Ready(None),
            }
        }
        match self.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Some(b) => b.is_end_stream(),
            None => self.end_stream,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(b) => b.size_hint(),
            None => self.hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn unread_body_can_be_reclaimed_and_read_body_cannot() {
        let slot = BodySlot::new(crate::body::full("hello"));
        let attempt = slot.attempt(false, SizeHint::with_exact(5));
        assert_eq!(attempt.size_hint().exact(), Some(5));
        drop(attempt);
        assert!(slot.is_unread());
        let attempt = slot.attempt(false, SizeHint::with_exact(5));
        let bytes = attempt.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert!(slot.reclaim().is_none());
    }
}
