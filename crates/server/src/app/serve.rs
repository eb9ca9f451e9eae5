//! The accept loop: HTTP/1 connections served with the limits that keep a client who reaches the
//! port from holding the server's file descriptors (issue 17).
//!
//! - **Header timeout** (`Config::header_timeout`): a request's head must be complete within it,
//!   counted from when the connection starts waiting for a request (hyper's
//!   `header_read_timeout`). Hyper starts that clock on a new connection and again after each
//!   response, so it bounds a connection that never sends anything and an idle keep-alive one
//!   too; the connection is closed without an answer.
//! - **Idle timeout** (`Config::idle_timeout`): a connection on which no byte moves either way
//!   for that long, while no request is being handled, is closed (a client that stops reading a
//!   response, or a keep-alive connection when the idle timeout is the shorter one).
//! - **Request timeout** (`Config::request_timeout`): a request's body must have arrived within
//!   it, counted from its head; otherwise it is answered 408 (`request_timeout`, the API's JSON)
//!   and the connection closed. Handlers themselves are not timed.
//! - **Connection cap** (`Config::max_connections`): at most that many connections at once.
//!   Connections over the cap wait: they are not accepted (they queue in the kernel's listen
//!   backlog) until one of the open ones closes.
//!
//! Hyper answers a request it cannot parse (a URI over 65,534 bytes: 414, a head too large: 431,
//! a malformed one: 400) itself, with an empty body; [`Tracked`] puts the API's JSON error in it.
//!
//! On shutdown the loop stops accepting, asks every connection to finish (idle ones close at
//! once, busy ones after their response) and returns when all are closed, as `axum::serve`'s
//! graceful shutdown did.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower_service::Service as _;

use crate::api::error::ApiError;

/// The connection limits (`Config` holds them).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` resolves, then until every connection closes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Each connection holds a receiver of `stop`: the loop tells them to finish through it, and
    // waits for them all through `stop.closed()`.
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first: over the cap, connections are not accepted until one closes.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        // Out of file descriptors, say: wait instead of spinning.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            connection(stream, peer, router, limits, stopping).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(stopping);
    stop.closed().await;
    Ok(())
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
        rewrite: None,
    });
    let busy = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (mut parts, body) = request.into_parts();
        // The client address (`client_ip::client_ip`) starts from the peer's.
        parts.extensions.insert(ConnectInfo(peer));
        let timed_out = Arc::new(AtomicBool::new(false));
        let body = if body.is_end_stream() {
            Body::new(body)
        } else {
            with_deadline(
                Body::new(body),
                Instant::now() + limits.request_timeout,
                timed_out.clone(),
            )
        };
        let mut router = router.clone();
        let handling = Handling::start(busy.clone());
        async move {
            let response = router.call(Request::from_parts(parts, body)).await;
            drop(handling);
            if timed_out.load(Ordering::Relaxed) {
                return Ok(request_timeout());
            }
            response
        }
    });
    let mut conn = std::pin::pin!(
        http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(io, service)
    );
    let mut finishing = false;
    loop {
        let idle_until = activity.idle_deadline(limits.idle_timeout);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                return;
            }
            _ = stopping.changed(), if !finishing => {
                finishing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(idle_until) => {
                if activity.is_idle(limits.idle_timeout) {
                    tracing::debug!(%peer, "closing an idle connection");
                    return;
                }
            }
        }
    }
}

/// The request body, cut off with an error at `deadline` (and `timed_out` set).
fn with_deadline(body: Body, deadline: Instant, timed_out: Arc<AtomicBool>) -> Body {
    let frames = futures_util::stream::unfold(Some(body.into_data_stream()), move |stream| {
        let timed_out = timed_out.clone();
        async move {
            let mut stream = stream?;
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(stream))),
                Ok(None) => None,
                Err(_) => {
                    timed_out.store(true, Ordering::Relaxed);
                    Some((Err(axum::Error::new(BodyTimedOut)), None))
                }
            }
        }
    });
    Body::from_stream(frames)
}

#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// The 408 of a request whose body did not arrive in time; the connection closes after it.
fn request_timeout() -> Response {
    let mut response = ApiError::RequestTimeout.into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// When bytes last moved on a connection, and how many of its requests are being handled.
struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last: AtomicU64,
    handling: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed)) + idle
    }

    fn is_idle(&self, idle: Duration) -> bool {
        self.handling.load(Ordering::Relaxed) == 0 && Instant::now() >= self.idle_deadline(idle)
    }
}

/// A request being handled: its connection is not idle, however long the handler takes.
struct Handling(Arc<Activity>);

impl Handling {
    fn start(activity: Arc<Activity>) -> Handling {
        activity.handling.fetch_add(1, Ordering::Relaxed);
        Handling(activity)
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.touch();
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection's socket, recording activity, and giving hyper's automatic error answers the
/// API's JSON body.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// The JSON answer being written in place of hyper's empty one, how much of it is written,
    /// and how many bytes of hyper's to report written once it is.
    rewrite: Option<(Vec<u8>, usize, usize)>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        if buf.filled().len() > before {
            self.activity.touch();
        }
        Poll::Ready(result)
    }
}

impl Tracked {
    /// Writes the replacement answer; done when all of it is written.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some((answer, written, claimed)) = self.rewrite.as_mut() else {
            unreachable!("only called while rewriting")
        };
        while *written < answer.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            self.activity.touch();
        }
        let claimed = *claimed;
        self.rewrite = None;
        Poll::Ready(Ok(claimed))
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.rewrite.is_none()
            && let Some(answer) = automatic_answer(buf)
        {
            self.rewrite = Some((answer, 0, buf.len()));
        }
        if self.rewrite.is_some() {
            return self.poll_rewrite(cx);
        }
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        if n > 0 {
            self.activity.touch();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.rewrite.is_none()
            && let Some(first) = bufs.first()
            && let Some(answer) = automatic_answer(first)
        {
            let claimed = bufs.iter().map(|b| b.len()).sum();
            self.rewrite = Some((answer, 0, claimed));
        }
        if self.rewrite.is_some() {
            return self.poll_rewrite(cx);
        }
        let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        if n > 0 {
            self.activity.touch();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The answer to write instead of `head` when it is one of hyper's own answers to a request it
/// could not read: a status line of 400, 414 or 431 and no header but `content-length: 0`,
/// `connection` and `date`. An answer of Stele's always has a body (and a content type).
fn automatic_answer(head: &[u8]) -> Option<Vec<u8>> {
    let (code, message) = if head.starts_with(b"HTTP/1.1 414 ") {
        (
            "uri_too_long",
            "the request's URI is longer than this server reads (65,534 bytes)",
        )
    } else if head.starts_with(b"HTTP/1.1 431 ") {
        (
            "headers_too_large",
            "the request's head (its headers) is larger than this server reads",
        )
    } else if head.starts_with(b"HTTP/1.1 400 ") {
        (
            "malformed_request",
            "the request is not valid HTTP/1.1 (its request line or a header is malformed)",
        )
    } else {
        return None;
    };
    if head.len() > 256 || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.trim_end().split("\r\n");
    let status_line = lines.next()?;
    let mut empty = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" if value.trim() == "0" => empty = true,
            "date" | "connection" => {}
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let body = ApiError::body_text(code, message);
    Some(
        format!(
            "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}
