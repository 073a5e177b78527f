//! A read-only HTTP/1.1 server on hyper and tokio: connections, limits,
//! request heads, paths, validators, compression and streamed file
//! responses. What to answer is a [`Handler`]'s business; this module knows
//! no ecosystem and no mirror (it must not name `crate::ecosystem`,
//! `crate::mirror` or `crate::serve`).
//!
//! Safety rules: only GET and HEAD; the path is percent-decoded once and
//! refused (400) if it then holds a `..` or `.` segment, a backslash, a
//! control character or an empty segment (`..` inside a name, as in
//! `release..notes.txt`, is fine); a [`Folder`] follows links, but a resolved
//! path outside its canonical root is 404; only regular files are served,
//! never a listing. Connections are tasks, not threads: at most
//! [`MAX_CONNECTIONS`] at a time (more get 503), kept alive between
//! requests, a request head of at most [`MAX_HEAD`] bytes (else 431) sent
//! within [`TIMEOUT`] (also the longest a write may stall). File bodies are
//! streamed a chunk at a time, never held in memory. Every 200 carries an
//! `ETag` (and a file its `Last-Modified`) and is answered 304 when the
//! client's copy is current; text is gzip-compressed for clients that ask.
//!
//! The server never prints: each request is handed to the caller's `log`
//! function as one line, `TIME CLIENT METHOD PATH STATUS BYTES` (BYTES counts
//! the body sent; `-` stands for what never arrived or is not known).

mod body;
mod folder;
mod head;
mod path;
mod range;
mod response;
mod server;
mod stall;

pub use folder::{Folder, Found, open};
pub use head::Request;
pub use path::Route;
pub use response::{BINARY, HTML, JSON, Response, TEXT, content_type};
pub use server::{Handler, MAX_CONNECTIONS, MAX_HEAD, Server, ServerHandle, TIMEOUT, bind};
