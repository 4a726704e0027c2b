//! The two bodies of the proxy: what goes to an upstream ([`ReqBody`]: empty,
//! buffered so a retry can resend it, or streamed once), and what goes back
//! to the client ([`RespBody`]: the upstream's, streamed, or one the proxy
//! wrote itself). An upstream connection goes back to its worker's pool when
//! the response body it carried has been read to the end.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Limited;
use hyper::body::Incoming;

use crate::client::Checkin;

/// The error type of both bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body on its way to an upstream.
pub enum ReqBody {
    /// No body (most GETs).
    Empty,
    /// A body read whole beforehand: can be sent again on a retry.
    Full(Option<Bytes>),
    /// A large body streamed from the client, at most the configured size: sent once.
    Stream(Limited<Incoming>),
}

impl ReqBody {
    /// A copy for another attempt, when the body can be sent again.
    pub fn replay(&self) -> Option<ReqBody> {
        match self {
            ReqBody::Empty => Some(ReqBody::Empty),
            ReqBody::Full(b) => Some(ReqBody::Full(b.clone())),
            ReqBody::Stream(_) => None,
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut *self {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Full(b) => b.is_none(),
            ReqBody::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReqBody::Stream(s) => s.size_hint(),
        }
    }
}

/// A response body on its way to the client.
pub enum RespBody {
    /// Written by the proxy (errors, admin answers).
    Local(Option<Bytes>),
    /// An upstream's body; its connection is handed back when it ends.
    Upstream {
        /// The body.
        body: Incoming,
        /// The connection to return to the pool at the end.
        checkin: Option<Checkin>,
    },
}

impl RespBody {
    /// A body the proxy writes itself.
    pub fn local(b: impl Into<Bytes>) -> RespBody {
        RespBody::Local(Some(b.into()))
    }

    /// An upstream's body; the connection goes back at once if the body is
    /// already complete (no body, or a HEAD response).
    pub fn upstream(body: Incoming, checkin: Checkin) -> RespBody {
        if body.is_end_stream() {
            checkin.give_back();
            return RespBody::Upstream { body, checkin: None };
        }
        RespBody::Upstream { body, checkin: Some(checkin) }
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut *self {
            RespBody::Local(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RespBody::Upstream { body, checkin } => {
                let r = Pin::new(&mut *body).poll_frame(cx);
                match &r {
                    Poll::Ready(None) => {
                        if let Some(c) = checkin.take() {
                            c.give_back();
                        }
                    }
                    Poll::Ready(Some(Ok(_))) if body.is_end_stream() => {
                        if let Some(c) = checkin.take() {
                            c.give_back();
                        }
                    }
                    // An error: the connection is not reused (dropped with the checkin).
                    Poll::Ready(Some(Err(_))) => {
                        checkin.take();
                    }
                    _ => {}
                }
                r.map_err(|e| e.into())
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Local(b) => b.is_none(),
            RespBody::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Local(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RespBody::Upstream { body, .. } => body.size_hint(),
        }
    }
}
