//! The demo's last step: the clients a site already has install from the
//! imported mirror, each only where it is on this machine (and skipped,
//! saying so, where it is not). What to run is data (`demo.toml` in the
//! embedded packages).

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Serialize;

use super::packages::{Client, Vars};

/// What one client did.
#[derive(Debug, Serialize)]
pub struct ClientRun {
    pub name: String,
    pub result: ClientResult,
    /// What it installed and printed, why it was skipped, or how it failed.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientResult {
    Installed,
    Skipped,
    Failed,
}

/// Runs `client` with its folder `dir/clients/NAME` made first.
pub fn run(client: &Client, dir: &Path, vars: &Vars) -> ClientRun {
    let done = |result, detail| ClientRun { name: client.name.clone(), result, detail };
    let probe = filled(&client.probe, vars);
    match command(client, &probe, vars).stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return done(ClientResult::Skipped, format!("{} is not installed here", probe[0]));
        }
        Err(e) => return done(ClientResult::Skipped, format!("{} cannot run here ({e})", probe[0])),
        Ok(status) if !status.success() => {
            return done(ClientResult::Skipped, format!("`{}` failed ({status})", probe.join(" ")));
        }
        Ok(_) => {}
    }
    let folder = dir.join("clients").join(&client.name);
    if let Err(e) = fs::create_dir_all(&folder) {
        return done(ClientResult::Failed, format!("{}: {e}", folder.display()));
    }
    let mut shown = String::new();
    for argv in &client.run {
        let argv = filled(argv, vars);
        let out = match command(client, &argv, vars).stdin(Stdio::null()).output() {
            Ok(out) => out,
            Err(e) => return done(ClientResult::Failed, format!("`{}` cannot run ({e})", argv.join(" "))),
        };
        if !out.status.success() {
            let said = last_line(&out.stderr).or_else(|| last_line(&out.stdout)).unwrap_or_default();
            return done(ClientResult::Failed, format!("`{}` failed ({}): {said}", argv.join(" "), out.status));
        }
        shown = last_line(&out.stdout).unwrap_or_default();
    }
    done(ClientResult::Installed, format!("{}; it printed {shown:?}", vars.fill(&client.says)))
}

fn filled(argv: &[String], vars: &Vars) -> Vec<String> {
    argv.iter().map(|arg| vars.fill(arg)).collect()
}

/// `argv` (never empty: the embedded script is tested) in the client's
/// folder and environment.
fn command(client: &Client, argv: &[String], vars: &Vars) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    if let Some(cwd) = &client.cwd {
        cmd.current_dir(vars.fill(cwd));
    }
    for name in &client.unset {
        cmd.env_remove(name);
    }
    for (name, value) in &client.env {
        cmd.env(name, vars.fill(value));
    }
    cmd
}

fn last_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    text.lines().map(str::trim).rfind(|l| !l.is_empty()).map(|l| crate::escape::one_line(l).into_owned())
}
