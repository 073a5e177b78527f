//! `airlock serve`

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::Output;
use crate::ecosystem::SERVED;
use crate::error::Result;
use crate::serve::{ServeOptions, bind};

/// Serve a mirror read-only over HTTP to pip, npm and cargo, until interrupted
///
/// Each request is logged on standard error as one line: METHOD PATH STATUS BYTES.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The mirror folder (the one given to airlock import)
    #[arg(long, value_name = "DIR", env = "AIRLOCK_MIRROR", hide_env_values = true)]
    pub mirror: PathBuf,
    /// Where to listen: HOST:PORT (an address or a name, e.g. localhost:8080), or a bare PORT on 127.0.0.1; 0.0.0.0:PORT listens on every interface
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080", value_parser = listen_address)]
    pub listen: SocketAddr,
}

/// `--listen`: an address, a bare port (on loopback, as the default is),
/// or a host name and port. A name is resolved once, here; an IPv4 address
/// it has is preferred, so `localhost` gives the 127.0.0.1 that clients'
/// `localhost` reaches first on most systems.
fn listen_address(text: &str) -> std::result::Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let refuse = |why: String| format!("{why}; give HOST:PORT (e.g. 127.0.0.1:8080, localhost:8080) or a PORT");
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let port = text.parse::<u16>().map_err(|_| refuse(format!("port {text} is not between 0 and 65535")))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let Some((host, port)) = text.rsplit_once(':') else { return Err(refuse("it names no port".into())) };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(refuse(format!("{port:?} is not a port, or the host is empty")));
    }
    let addresses: Vec<SocketAddr> =
        text.to_socket_addrs().map_err(|e| refuse(format!("the host {host:?} does not resolve ({e})")))?.collect();
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| refuse(format!("the host {host:?} has no address")))
}

/// The `--json` report, printed once the server listens: `mirror`, `url`,
/// then each served ecosystem's name and the URL its clients take.
#[derive(Debug)]
struct ServeReport {
    mirror: String,
    url: String,
    clients: Vec<(&'static str, String)>,
}

impl Serialize for ServeReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2 + self.clients.len()))?;
        map.serialize_entry("mirror", &self.mirror)?;
        map.serialize_entry("url", &self.url)?;
        for (name, url) in &self.clients {
            map.serialize_entry(name, url)?;
        }
        map.end()
    }
}

impl ServeArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let server = bind(&ServeOptions { mirror: self.mirror.clone(), listen: self.listen })?;
        let url = format!("http://{}", server.local_addr());
        let clients = SERVED.iter().filter_map(|e| Some((e.name(), e.client_url(&url)?))).collect();
        let report = ServeReport { mirror: self.mirror.display().to_string(), url, clients };
        let listed: Vec<String> = report.clients.iter().map(|(name, url)| format!("{name}: {url}")).collect();
        out.line(format!("serving {} on {} ({})", report.mirror, report.url, listed.join(", ")));
        out.report("serve", &report);
        let quiet = out.quiet;
        server.run(move |line: &str| {
            if !quiet {
                // A closed standard error must not take the server down.
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::listen_address;

    #[test]
    fn listen_takes_an_address_a_port_or_a_host_name() {
        assert_eq!(listen_address("0.0.0.0:9000").unwrap().to_string(), "0.0.0.0:9000");
        assert_eq!(listen_address("[::1]:9000").unwrap().to_string(), "[::1]:9000");
        assert_eq!(listen_address("8080").unwrap().to_string(), "127.0.0.1:8080");
        assert!(listen_address("localhost:8080").unwrap().ip().is_loopback());
        assert_eq!(listen_address("localhost:8080").unwrap().port(), 8080);
    }

    #[test]
    fn listen_refuses_what_is_not_an_address_in_one_line() {
        for bad in ["70000", "localhost", "localhost:http", ":8080", ""] {
            let error = listen_address(bad).unwrap_err();
            assert!(error.contains("HOST:PORT") && !error.contains('\n'), "{bad}: {error}");
        }
    }
}
