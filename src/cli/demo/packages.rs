//! The package half of the demo, embedded: `fixtures/demo-packages/packages.tar`,
//! written by `fixtures/demo-packages/make.py` from the registry fixtures.
//! Everything the package round trip needs is data in it — what the loopback
//! registry serves, the lockfiles, config and policy written into the demo
//! folder, and the client runs — so this code names no ecosystem.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::Path;

use serde::Deserialize;

use crate::error::{IoContext, Result};

const PACKAGES: &[u8] = include_bytes!("../../../fixtures/demo-packages/packages.tar");
/// Members with this suffix are templates, filled with [`Vars`].
const TEMPLATE: &str = ".in";
/// Members served by the loopback registry rather than written.
const SERVED: &str = "registry/";
/// `PATH\tCONTENT-TYPE\tMEMBER` lines: what the registry answers.
const ROUTES: &str = "routes.txt";
/// The client runs ([`Script`]).
const SCRIPT: &str = "demo.toml";

/// The embedded members, by name.
pub struct Packages {
    members: BTreeMap<String, Vec<u8>>,
}

/// The placeholders of the templates and their values.
#[derive(Default)]
pub struct Vars(Vec<(&'static str, String)>);

impl Vars {
    #[must_use]
    pub fn with(mut self, placeholder: &'static str, value: impl Into<String>) -> Self {
        self.0.push((placeholder, value.into()));
        self
    }

    #[must_use]
    pub fn fill(&self, text: &str) -> String {
        self.0.iter().fold(text.to_owned(), |text, (placeholder, value)| text.replace(placeholder, value))
    }
}

/// A body the registry serves: its content type and bytes.
pub type Served = (String, Vec<u8>);

/// `demo.toml`: the clients a site already has, run against the mirror.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub client: Vec<Client>,
}

/// One client: whether it is installed (`probe`), the commands to run (the
/// last one's output is shown), their folder and environment, and what a
/// success means.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub name: String,
    pub probe: Vec<String>,
    pub says: String,
    pub run: Vec<Vec<String>>,
    pub cwd: Option<String>,
    #[serde(default)]
    pub unset: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl Packages {
    /// The embedded tar, read. It is part of the binary (tests/demo.rs
    /// checks it against its script), so a bad one is a build defect.
    #[must_use]
    pub fn embedded() -> Self {
        let mut members = BTreeMap::new();
        let mut archive = tar::Archive::new(PACKAGES);
        for entry in archive.entries().expect("the embedded demo packages are a tar") {
            let mut entry = entry.expect("the embedded demo packages are a tar");
            let name = entry.path().expect("member names are UTF-8").to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("the embedded demo packages are a tar");
            members.insert(name, data);
        }
        Packages { members }
    }

    /// Writes every member that is neither served nor the script under
    /// `dir`, templates filled.
    pub fn write_into(&self, dir: &Path, vars: &Vars) -> Result<()> {
        for (name, data) in &self.members {
            if name.starts_with(SERVED) || name == ROUTES || name == SCRIPT {
                continue;
            }
            let (name, data) = filled(name, data, vars);
            let path = dir.join(name);
            fs::create_dir_all(path.parent().expect("a member has a folder")).at(&path)?;
            fs::write(&path, data).at(&path)?;
        }
        Ok(())
    }

    /// What the registry answers, by path, templates filled.
    #[must_use]
    pub fn routes(&self, vars: &Vars) -> BTreeMap<String, Served> {
        let table = String::from_utf8_lossy(&self.members[ROUTES]).into_owned();
        table
            .lines()
            .map(|line| {
                let mut fields = line.splitn(3, '\t');
                let (Some(path), Some(kind), Some(member)) = (fields.next(), fields.next(), fields.next()) else {
                    panic!("{ROUTES}: {line:?} is not PATH, TYPE and MEMBER");
                };
                let data = self.members.get(member).unwrap_or_else(|| panic!("{ROUTES} names {member}, not a member"));
                (path.to_owned(), (kind.to_owned(), filled(member, data, vars).1))
            })
            .collect()
    }

    /// The client runs.
    #[must_use]
    pub fn script(&self) -> Script {
        let text = String::from_utf8_lossy(&self.members[SCRIPT]);
        toml::from_str(&text).unwrap_or_else(|e| panic!("the embedded {SCRIPT} is invalid: {e}"))
    }
}

/// A member's name and bytes as written: a template without its suffix, filled.
fn filled<'a>(name: &'a str, data: &[u8], vars: &Vars) -> (&'a str, Vec<u8>) {
    match name.strip_suffix(TEMPLATE) {
        Some(bare) => (bare, vars.fill(&String::from_utf8_lossy(data)).into_bytes()),
        None => (name, data.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_names_a_member_and_the_script_parses() {
        let packages = Packages::embedded();
        let routes = packages.routes(&Vars::default().with("@REGISTRY@", "http://x"));
        assert!(routes.len() > 5);
        assert!(routes.values().all(|(kind, _)| !kind.is_empty()));
        assert!(!packages.script().client.is_empty());
    }

    #[test]
    fn templates_are_filled_and_lose_their_suffix() {
        let vars = Vars::default().with("@A@", "1").with("@B@", "2");
        let (name, data) = filled("x/config.toml.in", b"a=@A@ b=@B@ a=@A@", &vars);
        assert_eq!((name, data.as_slice()), ("x/config.toml", b"a=1 b=2 a=1".as_slice()));
        assert_eq!(filled("x.bin", b"@A@", &vars).1, b"@A@");
    }
}
