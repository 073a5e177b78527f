//! Accepting connections on hyper (HTTP/1.1 on tokio): keep-alive, the
//! limits and timeouts, the log line, and stopping.

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::body::{Log, Sent};
use super::head::Request;
use super::path::{self, Route};
use super::response::Response;
use super::stall::Guarded;
use crate::error::Result;

/// Connections served at the same time by default (each is a task, not a
/// thread, so idle ones cost a socket and a few KiB); more are answered 503.
pub const MAX_CONNECTIONS: usize = 4096;
/// The largest request head (request line and headers) accepted; more is 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a client has to send a request head (on a new connection, and
/// between requests on a kept-alive one), and the longest a write may stall.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Connections beyond the limit that are still answered (with 503); past
/// that they are closed unanswered.
const MAX_REFUSING: usize = 256;
/// A refused connection gets this long to send its head.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(2);
/// After `stop`, how long connections in flight get to finish.
const DRAIN: Duration = Duration::from_secs(10);
/// Connections the kernel may queue before they are accepted.
const BACKLOG: i32 = 4096;
/// Threads of the blocking pool that read large bodies.
const MAX_BLOCKING: usize = 128;

/// What the server answers to a GET or HEAD whose path passed the checks.
pub trait Handler: Send + Sync + 'static {
    fn respond(&self, route: &Route<'_>) -> Response;
}

/// A bound listener, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: std::net::TcpListener,
    local: SocketAddr,
    limit: usize,
}

/// Binds `listen`; the error is the operating system's.
pub fn bind(listen: SocketAddr) -> io::Result<Server> {
    raise_open_file_limit();
    let socket = socket2::Socket::new(socket2::Domain::for_address(listen), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&listen.into())?;
    // A thousand clients connecting at once must all wait in the queue, not
    // retry their SYN a second later (std's backlog is 128; the kernel caps
    // this at net.core.somaxconn).
    socket.listen(BACKLOG)?;
    let listener: std::net::TcpListener = socket.into();
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    Ok(Server { listener, local, limit: MAX_CONNECTIONS })
}

/// Each connection is a file descriptor: take the hard limit the system
/// allows, as web servers do, rather than the soft 1024 shells often start with.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let _ = setrlimit(Resource::Nofile, rustix::process::Rlimit { current: limit.maximum, ..limit });
    }
}

/// What every connection shares.
struct Shared {
    handler: Arc<dyn Handler>,
    log: Log,
    slots: Arc<Semaphore>,
    refusing: AtomicUsize,
}

impl Server {
    /// The address actually bound (with the real port when 0 was asked for).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves at most `limit` connections at once (more are answered 503).
    #[must_use]
    pub fn with_connection_limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// Serves `handler` until stopped through a [`ServerHandle`] (from
    /// [`spawn`](Server::spawn)), or forever. Each request is passed to `log` as one line.
    pub fn run(self, handler: impl Handler, log: impl Fn(&str) + Send + Sync + 'static) -> Result<()> {
        let (_keep, stop) = watch::channel(false);
        self.serve(Arc::new(handler), Arc::new(log), stop)
    }

    /// Runs the server on its own thread; the handle stops it (also when dropped).
    #[must_use]
    pub fn spawn(self, handler: impl Handler, log: impl Fn(&str) + Send + Sync + 'static) -> ServerHandle {
        let local = self.local;
        let (stop, stopped) = watch::channel(false);
        let (handler, log): (Arc<dyn Handler>, Log) = (Arc::new(handler), Arc::new(log));
        let thread = std::thread::Builder::new()
            .name("airlock-serve".into())
            .spawn(move || self.serve(handler, log, stopped))
            .expect("spawning the server thread");
        ServerHandle { local, stop, thread: Some(thread) }
    }

    fn serve(self, handler: Arc<dyn Handler>, log: Log, stop: watch::Receiver<bool>) -> Result<()> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 8);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(MAX_BLOCKING)
            .thread_name("airlock-serve")
            .enable_all()
            .build()
            .map_err(|e| crate::error::Error::Usage(format!("cannot start the server's threads: {e}")))?;
        let shared = Arc::new(Shared {
            handler,
            log,
            slots: Arc::new(Semaphore::new(self.limit)),
            refusing: AtomicUsize::new(0),
        });
        runtime.block_on(accept(self.listener, shared, stop));
        Ok(())
    }
}

/// Accepts until `stop` changes, then lets the connections in flight finish.
async fn accept(listener: std::net::TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => connection(&shared, &graceful, stream, peer.ip()),
                // Out of file descriptors or an aborted handshake: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

/// Takes a slot for the connection (or a refusing one, or closes it) and serves it on a task.
fn connection(shared: &Arc<Shared>, graceful: &GracefulShutdown, stream: TcpStream, client: IpAddr) {
    let permit = Arc::clone(&shared.slots).try_acquire_owned().ok();
    if permit.is_none() && !acquire(&shared.refusing, MAX_REFUSING) {
        return; // dropping the stream closes it
    }
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let refuse = permit.is_none();
    let timeout = if refuse { REFUSE_TIMEOUT } else { TIMEOUT };
    let watcher = graceful.watcher();
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let _slot = Slot { permit, shared: Arc::clone(&shared) };
        if !speaks_plain_http(&stream, timeout).await {
            return;
        }
        let service_shared = Arc::clone(&shared);
        let service = service_fn(move |request| {
            let shared = Arc::clone(&service_shared);
            async move { Ok::<_, Infallible>(answer(&shared, request, client, local, refuse)) }
        });
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(timeout).max_buf_size(MAX_HEAD).keep_alive(!refuse);
        let conn = builder.serve_connection(TokioIo::new(Guarded::new(stream, TIMEOUT)), service);
        if let Err(e) = watcher.watch(conn).await {
            log_broken(&shared, client, &e);
        }
    });
}

/// Whether the client sends something other than a TLS handshake within
/// `timeout`. A client trying HTTPS first (as skopeo and podman do for a
/// registry they may not verify) is closed at once, so it falls back to
/// plain HTTP; one that sends nothing is closed unlogged: it made no request.
async fn speaks_plain_http(stream: &TcpStream, timeout: Duration) -> bool {
    /// The first byte of a TLS record carrying a handshake; no HTTP method starts with it.
    const TLS_HANDSHAKE: u8 = 0x16;
    let mut first = [0u8; 1];
    matches!(tokio::time::timeout(timeout, stream.peek(&mut first)).await, Ok(Ok(1..))) && first[0] != TLS_HANDSHAKE
}

/// A request hyper answered itself (a head it could not parse, or one too
/// large), or a connection cut off mid-head: logged without a method or target.
fn log_broken(shared: &Shared, client: IpAddr, e: &hyper::Error) {
    let status = if e.is_parse_too_large() {
        "431"
    } else if e.is_parse() || e.is_incomplete_message() {
        "400"
    } else if e.is_timeout() {
        "408"
    } else {
        return;
    };
    (shared.log)(&format!("{} {client} - - {status} -", crate::time::rfc3339(crate::time::now())));
}

/// The response to one request: 503 on a refused connection, else the
/// method and path checks and the handler, on the blocking pool.
fn answer(
    shared: &Shared,
    request: hyper::Request<Incoming>,
    client: IpAddr,
    local: SocketAddr,
    refuse: bool,
) -> hyper::Response<Sent> {
    let (parts, _body) = request.into_parts();
    let request = Request::from_parts(&parts, local);
    // The log names who asked, as web servers' access logs do.
    let head = format!(
        "{} {client} {} {}",
        crate::time::rfc3339(crate::time::now()),
        log_safe(&request.method),
        log_safe(&request.target)
    );
    let log = Arc::clone(&shared.log);
    // The answer is made right here, on the async thread, as nginx's event
    // loop does its open and stat: a mirror's metadata and small files come
    // from the page cache in microseconds, and a hop to the blocking pool
    // per request cost a third of the small-file rate (bench/serve). Bodies
    // over 64 KiB are read a chunk at a time on the blocking pool.
    let response = if refuse {
        Response::status(503).header("Retry-After", "1".into()).header("Connection", "close".into())
    } else {
        path::respond(&*shared.handler, &request)
    };
    response.finish(&request, log, &head)
}

fn acquire(slots: &AtomicUsize, limit: usize) -> bool {
    slots.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1)).is_ok()
}

/// Gives a connection's slot back when its task ends, however it ends.
struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    shared: Arc<Shared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.permit.take().is_none() {
            self.shared.refusing.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A server running on its own thread.
#[derive(Debug)]
pub struct ServerHandle {
    local: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl ServerHandle {
    /// The address the server listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting, lets the connections in flight finish (idle
    /// kept-alive ones are closed), and returns what [`Server::run`] returned.
    pub fn stop(mut self) -> Result<()> {
        match self.halt() {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }

    fn halt(&mut self) -> Option<std::thread::Result<Result<()>>> {
        let thread = self.thread.take()?;
        let _ = self.stop.send(true);
        Some(thread.join())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// Escapes what would break the one-line, space-separated log format.
fn log_safe(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_fields_are_sanitized() {
        assert_eq!(log_safe("/a b\tc"), "/a%20b%09c");
    }
}
