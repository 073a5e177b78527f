//! A small read-only HTTP/1.1 server: connections, limits, request heads,
//! paths, and static or streamed file responses. What to answer is a
//! [`Handler`]'s business; this module knows no ecosystem and no mirror
//! (it must not name `crate::ecosystem`, `crate::mirror` or `crate::serve`).
//!
//! Safety rules: only GET and HEAD; the path is percent-decoded once and
//! refused (400) if it then holds a `..` or `.` segment, a backslash, a
//! control character or an empty segment (`..` inside a name, as in
//! `release..notes.txt`, is fine); a [`Folder`] follows links, but a resolved
//! path outside its canonical root is 404; only regular files are served,
//! never a listing. One thread per connection, at most [`MAX_CONNECTIONS`]
//! at a time (more get 503), one request per connection, a request head of
//! at most [`MAX_HEAD`] bytes (else 431), and [`TIMEOUT`] to send it. File
//! bodies are streamed, never held in memory.
//!
//! The server never prints: each request is handed to the caller's `log`
//! function as one line, `METHOD PATH STATUS BYTES` (BYTES counts the body
//! sent; `-` stands for a method or path that never arrived).

mod folder;
mod head;
mod path;
mod range;
mod response;
mod server;

pub use folder::{Folder, Found, open};
pub use head::Request;
pub use path::Route;
pub use range::open_range;
pub use response::{BINARY, HTML, JSON, Response, TEXT, content_type};
pub use server::{Handler, MAX_CONNECTIONS, MAX_HEAD, Server, ServerHandle, TIMEOUT, bind};
