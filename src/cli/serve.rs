//! `airlock serve`

use std::io::Write;
use std::net::SocketAddr;
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
    /// The address and port to listen on; 0.0.0.0:PORT listens on every interface
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
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
        server.run(&move |line: &str| {
            if !quiet {
                // A closed standard error must not take the server down.
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        })
    }
}
