//! `airlock serve`

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::Output;
use crate::error::Result;
use crate::serve::{ServeOptions, bind};

/// Serve a mirror read-only over HTTP to pip, npm and cargo, until interrupted
///
/// Each request is logged on standard error as one line: METHOD PATH STATUS BYTES.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The mirror folder (the one given to airlock import)
    #[arg(long, value_name = "DIR")]
    pub mirror: PathBuf,
    /// The address and port to listen on; 0.0.0.0:PORT listens on every interface
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

/// The `--json` report, printed once the server listens.
#[derive(Debug, Serialize)]
struct ServeReport {
    mirror: String,
    url: String,
    npm: String,
    pypi: String,
    cargo: String,
}

impl ServeArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let server = bind(&ServeOptions { mirror: self.mirror.clone(), listen: self.listen })?;
        let url = format!("http://{}", server.local_addr());
        let report = ServeReport {
            mirror: self.mirror.display().to_string(),
            npm: format!("{url}/npm/"),
            pypi: format!("{url}/pypi/simple/"),
            cargo: format!("sparse+{url}/cargo/index/"),
            url,
        };
        out.line(format!(
            "serving {} on {} (npm: {}, pypi: {}, cargo: {})",
            report.mirror, report.url, report.npm, report.pypi, report.cargo
        ));
        out.report(&report);
        let quiet = out.quiet;
        server.run(&move |line: &str| {
            if !quiet {
                // A closed standard error must not take the server down.
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        })
    }
}
