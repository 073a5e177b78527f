//! Accepting connections: the connection limits, one thread per connection,
//! one request per connection, the log line, and stopping.

use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::head::{HeadRead, parse_head, read_head};
use super::path::{self, Route};
use super::response::Response;
use crate::error::Result;

/// Connections served at the same time; more are answered 503.
pub const MAX_CONNECTIONS: usize = 64;
/// The largest request head (request line and headers) accepted; more is 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a client has to send its request head, and the longest a write may stall.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Connections beyond [`MAX_CONNECTIONS`] that are still answered (with 503);
/// past that they are closed unanswered.
const MAX_REFUSING: usize = 16;
/// A refused connection gets this long to send its head and read the 503.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(2);
/// After the response, unread input is drained this long (so closing does not
/// reset the connection before the client read the response).
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1 << 20;

/// What the server answers to a GET or HEAD whose path passed the checks.
pub trait Handler: Sync {
    fn respond(&self, route: &Route<'_>) -> Response;
}

/// A bound listener, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local: SocketAddr,
    stop: Arc<AtomicBool>,
}

/// Binds `listen`; the error is the operating system's.
pub fn bind(listen: SocketAddr) -> io::Result<Server> {
    let listener = TcpListener::bind(listen)?;
    let local = listener.local_addr()?;
    Ok(Server { listener, local, stop: Arc::new(AtomicBool::new(false)) })
}

impl Server {
    /// The address actually bound (with the real port when 0 was asked for).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves `handler` until stopped through a [`ServerHandle`] (from
    /// [`spawn`](Server::spawn)), or forever. Each request is passed to `log` as one line.
    pub fn run(self, handler: &dyn Handler, log: &(dyn Fn(&str) + Sync)) -> Result<()> {
        let active = AtomicUsize::new(0);
        let refusing = AtomicUsize::new(0);
        let local = self.local;
        thread::scope(|scope| {
            loop {
                let stream = match self.listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(_) if self.stop.load(Ordering::SeqCst) => break,
                    Err(_) => {
                        // Out of file descriptors or an aborted handshake: try again shortly.
                        thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                if self.stop.load(Ordering::SeqCst) {
                    break;
                }
                let (slots, refuse) = if acquire(&active, MAX_CONNECTIONS) {
                    (&active, false)
                } else if acquire(&refusing, MAX_REFUSING) {
                    (&refusing, true)
                } else {
                    continue; // dropping the stream closes it
                };
                let spawned = thread::Builder::new().name("airlock-serve".into()).spawn_scoped(scope, move || {
                    let _slot = Slot(slots);
                    connection(handler, local, stream, refuse, log);
                });
                if spawned.is_err() {
                    slots.fetch_sub(1, Ordering::SeqCst);
                }
            }
        });
        Ok(())
    }

    /// Runs the server on its own thread; the handle stops it (also when dropped).
    #[must_use]
    pub fn spawn(
        self,
        handler: impl Handler + Send + 'static,
        log: impl Fn(&str) + Send + Sync + 'static,
    ) -> ServerHandle {
        let local = self.local;
        let stop = Arc::clone(&self.stop);
        let thread = thread::Builder::new()
            .name("airlock-serve-accept".into())
            .spawn(move || self.run(&handler, &log))
            .expect("spawning the server thread");
        ServerHandle { local, stop, thread: Some(thread) }
    }
}

/// A server running on its own thread.
#[derive(Debug)]
pub struct ServerHandle {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl ServerHandle {
    /// The address the server listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting, waits for the connections in flight, and returns what
    /// [`Server::run`] returned.
    pub fn stop(mut self) -> Result<()> {
        match self.halt() {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }

    fn halt(&mut self) -> Option<thread::Result<Result<()>>> {
        let thread = self.thread.take()?;
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; if even that fails, leave the thread be rather than hang.
        TcpStream::connect_timeout(&wake_addr(self.local), Duration::from_secs(5)).ok()?;
        Some(thread.join())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

fn wake_addr(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

fn acquire(slots: &AtomicUsize, limit: usize) -> bool {
    slots.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1)).is_ok()
}

/// Gives a connection slot back when the connection's thread ends, however it ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One connection: read the head, answer it (503 when `refuse`), log
/// (`TIME CLIENT METHOD TARGET STATUS BYTES`), linger.
/// `local` is the listener's address, the fallback for the connection's own.
fn connection(
    handler: &dyn Handler,
    local: SocketAddr,
    mut stream: TcpStream,
    refuse: bool,
    log: &(dyn Fn(&str) + Sync),
) {
    let timeout = if refuse { REFUSE_TIMEOUT } else { TIMEOUT };
    // The log names who asked, as web servers' access logs do.
    let client = stream.peer_addr().map_or_else(|_| "-".to_owned(), |a| a.ip().to_string());
    if stream.set_write_timeout(Some(timeout)).is_err() {
        return;
    }
    let local = stream.local_addr().unwrap_or(local);
    let (request, response) = match read_head(&mut stream, Instant::now() + timeout) {
        HeadRead::Nothing => return,
        HeadRead::TooLarge => (None, Response::status(431)),
        HeadRead::Partial => (None, Response::status(400)),
        HeadRead::TimedOut => (None, Response::status(408)),
        HeadRead::Complete(head) => {
            let (request, well_formed) = parse_head(&head, local);
            let response = if !well_formed {
                Response::status(400)
            } else if refuse {
                Response::status(503).header("Retry-After", "1".into())
            } else {
                path::respond(handler, &request)
            };
            (Some(request), response)
        }
    };
    let head_only = request.as_ref().is_some_and(|r| r.method == "HEAD");
    let status = response.code();
    let sent = response.send(&mut stream, head_only);
    let (method, target) = request.as_ref().map_or(("-", "-"), |r| (r.method.as_str(), r.target.as_str()));
    log(&format!(
        "{} {} {} {} {status} {sent}",
        crate::time::rfc3339(crate::time::now()),
        client,
        log_safe(method),
        log_safe(target)
    ));
    linger(stream);
}

/// Escapes what would break the one-line, space-separated log format.
fn log_safe(text: &str) -> String {
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

/// Reads and discards what the client still sends, briefly, after our half of
/// the connection is closed: closing with unread input would reset the
/// connection and could destroy the response before the client reads it.
fn linger(mut stream: TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 8192];
    let mut total = 0;
    while total < LINGER_BYTES {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_fields_are_sanitized() {
        assert_eq!(log_safe("/a b\tc"), "/a%20b%09c");
    }
}
