//! The demo's registry: the embedded packages and their upstream evidence,
//! served on loopback in each registry's wire format, so the export runs
//! its real fetch path with no network.

use std::collections::BTreeMap;

use super::packages::{Packages, Served, Vars};
use crate::error::{Error, Result};
use crate::http::{self, Handler, Response, Route, ServerHandle};

struct Routes(BTreeMap<String, Served>);

impl Handler for Routes {
    fn respond(&self, route: &Route<'_>) -> Response {
        let mut path = format!("/{}", route.segments.join("/"));
        if route.dir {
            path.push('/');
        }
        match self.0.get(&path) {
            Some((kind, body)) => Response::bytes(200, http::BINARY, body.clone()).typed(kind.clone()),
            None => Response::status(404),
        }
    }
}

/// A running registry and its base URL (`http://127.0.0.1:PORT`); it
/// stops when the handle is dropped.
pub fn start(packages: &Packages) -> Result<(ServerHandle, String)> {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let server = http::bind(loopback)
        .map_err(|e| Error::Usage(format!("127.0.0.1: the demo cannot listen on loopback for its registry ({e})")))?;
    let base = format!("http://{}", server.local_addr());
    let routes = packages.routes(&Vars::default().with("@REGISTRY@", base.clone()));
    Ok((server.spawn(Routes(routes), |_| {}), base))
}
