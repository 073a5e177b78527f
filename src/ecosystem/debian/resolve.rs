//! The dependency closure of the requested packages over `Pre-Depends` and
//! `Depends`, relative to the base (what the targets have already; empty
//! unless `--debian-base` names a listing). Deterministic, and documented
//! in the README:
//!
//! - a package is taken at its highest version in the suites' indexes
//!   (ties: the suite named first), or at the version pkgs.txt pins;
//! - a dependency already satisfied (by a package taken, one it
//!   `Provides`, or the base) adds nothing;
//! - otherwise its first alternative that a real package satisfies is
//!   taken, else its first alternative that some package `Provides`, the
//!   provider being the one whose name sorts first;
//! - a dependency nothing satisfies is an error naming the chain.
//!
//! With `--debian-recommends`, `Recommends` are followed the same way,
//! except that one nothing satisfies is left out, as apt leaves it out
//! (apt installs them by default). Suggests are never followed.

// Debian's and OpenPGP's names (InRelease, Packages.xz, OpenPGP) are words in these docs, not code.
#![allow(clippy::doc_markdown)]

use std::collections::{BTreeMap, VecDeque};

use super::control::{self, Paragraph, Wanted, compare_versions};
use super::lockfile;
use crate::error::{Error, Result};

/// One package of an index: its stanza and the suite it is from.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub suite: usize,
    pub stanza: Paragraph,
    pub name: String,
    pub version: String,
    pub arch: String,
    provides: Vec<(String, Option<String>)>,
}

/// Every package the suites' indexes list for one architecture.
#[derive(Debug, Default)]
pub struct Universe {
    candidates: Vec<Candidate>,
    by_name: BTreeMap<String, Vec<usize>>,
    providers: BTreeMap<String, Vec<usize>>,
}

impl Universe {
    /// Adds the paragraphs of a Packages file of suite number `suite`;
    /// only packages of `arch` or `all` are kept.
    pub fn add_index(&mut self, suite: usize, text: &str, arch: &str, origin: &str) -> Result<()> {
        for raw in control::split_paragraphs(text) {
            let stanza = control::paragraph(raw).map_err(|e| Error::Usage(format!("{origin}: {e}")))?;
            let field = |f: &str| stanza.get(f).map(str::to_owned);
            let (Some(name), Some(version), Some(pkg_arch)) =
                (field("Package"), field("Version"), field("Architecture"))
            else {
                return Err(Error::Usage(format!("{origin}: a stanza lacks Package, Version or Architecture")));
            };
            if pkg_arch != arch && pkg_arch != "all" {
                continue;
            }
            let provides = control::relations(stanza.get("Provides").unwrap_or_default(), arch)
                .map_err(|e| Error::Usage(format!("{origin}: {name}'s Provides: {e}")))?
                .into_iter()
                .flatten()
                .map(|w| (w.name, w.version.map(|(_, v)| v)))
                .collect::<Vec<_>>();
            let index = self.candidates.len();
            self.by_name.entry(name.clone()).or_default().push(index);
            for (p, _) in &provides {
                self.providers.entry(p.clone()).or_default().push(index);
            }
            self.candidates.push(Candidate { suite, stanza, name, version, arch: pkg_arch, provides });
        }
        Ok(())
    }

    /// The best candidate named `name` that `accept` takes: highest
    /// version, then the suite named first.
    fn best(&self, name: &str, accept: impl Fn(&Candidate) -> bool) -> Option<usize> {
        let mut found: Vec<usize> =
            self.by_name.get(name)?.iter().copied().filter(|&i| accept(&self.candidates[i])).collect();
        found.sort_by(|&a, &b| {
            let (a, b) = (&self.candidates[a], &self.candidates[b]);
            compare_versions(&b.version, &a.version).then(a.suite.cmp(&b.suite))
        });
        found.first().copied()
    }
}

/// Which relations the closure follows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Follow {
    /// `Recommends` too (soft: an unsatisfiable one is left out).
    pub recommends: bool,
}

/// The closure of `wanted` in `universe`, in the order packages were
/// taken; `base` lists what the targets already have.
pub fn closure<'u>(
    universe: &'u Universe,
    wanted: &[lockfile::Wanted],
    base: &[(String, String)],
    arch: &str,
    follow: Follow,
) -> Result<Vec<&'u Candidate>> {
    let mut state = State { universe, taken: BTreeMap::new(), order: Vec::new(), base, queue: VecDeque::new() };
    for w in wanted {
        if w.arch.as_deref().is_some_and(|a| a != arch && a != "all") {
            return Err(Error::Usage(format!(
                "{}:{}: only --debian-arch {arch} is exported; add the architecture or drop the qualifier",
                w.name,
                w.arch.as_deref().unwrap_or_default()
            )));
        }
        let pick = universe
            .best(&w.name, |c| w.version.as_deref().is_none_or(|v| c.version == v))
            .ok_or_else(|| Error::Usage(not_found(&w.name, w.version.as_deref())))?;
        state.take(pick, None)?;
    }
    while let Some(i) = state.queue.pop_front() {
        let c = &universe.candidates[i];
        let fields: &[&str] =
            if follow.recommends { &["Pre-Depends", "Depends", "Recommends"] } else { &["Pre-Depends", "Depends"] };
        for &field in fields {
            let deps = control::relations(c.stanza.get(field).unwrap_or_default(), arch)
                .map_err(|e| Error::Usage(format!("{} {}: {field}: {e}", c.name, c.version)))?;
            for dep in deps {
                match state.satisfy(&dep, c) {
                    // apt leaves out a recommendation it cannot meet; so does the closure.
                    Err(Error::Usage(_)) if field == "Recommends" => {}
                    other => other?,
                }
            }
        }
    }
    Ok(state.order.iter().map(|&i| &universe.candidates[i]).collect())
}

fn not_found(name: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("package {name}={v} is in none of the suites' indexes; check pkgs.txt and --debian-suite"),
        None => format!(
            "package {name} is in none of the suites' indexes; check pkgs.txt, --debian-suite and --debian-component"
        ),
    }
}

struct State<'u, 'b> {
    universe: &'u Universe,
    /// Package name → the candidate taken.
    taken: BTreeMap<&'u str, usize>,
    order: Vec<usize>,
    base: &'b [(String, String)],
    queue: VecDeque<usize>,
}

impl State<'_, '_> {
    fn take(&mut self, i: usize, _for: Option<&Candidate>) -> Result<()> {
        let c = &self.universe.candidates[i];
        if let Some(&j) = self.taken.get(c.name.as_str()) {
            if j != i {
                let other = &self.universe.candidates[j];
                return Err(Error::Usage(format!(
                    "package {} is needed at {} and at {}; pin one version in pkgs.txt",
                    c.name, other.version, c.version
                )));
            }
            return Ok(());
        }
        self.taken.insert(&c.name, i);
        self.order.push(i);
        self.queue.push_back(i);
        Ok(())
    }

    fn satisfied(&self, w: &Wanted) -> bool {
        let u = self.universe;
        self.taken.get(w.name.as_str()).is_some_and(|&i| w.accepts(Some(&u.candidates[i].version)))
            || self.base.iter().any(|(n, v)| *n == w.name && w.accepts(Some(v)))
            || self
                .taken
                .values()
                .any(|&i| u.candidates[i].provides.iter().any(|(p, v)| *p == w.name && w.accepts(v.as_deref())))
    }

    fn satisfy(&mut self, dep: &[Wanted], from: &Candidate) -> Result<()> {
        if dep.iter().any(|w| self.satisfied(w)) {
            return Ok(());
        }
        let u = self.universe;
        for w in dep {
            if self.taken.contains_key(w.name.as_str()) {
                continue;
            }
            if let Some(i) = u.best(&w.name, |c| w.accepts(Some(&c.version))) {
                return self.take(i, Some(from));
            }
        }
        for w in dep {
            let mut providers: Vec<usize> = u
                .providers
                .get(&w.name)
                .into_iter()
                .flatten()
                .copied()
                .filter(|&i| u.candidates[i].provides.iter().any(|(p, v)| *p == w.name && w.accepts(v.as_deref())))
                .collect();
            providers.sort_by(|&a, &b| {
                let (a, b) = (&u.candidates[a], &u.candidates[b]);
                a.name.cmp(&b.name).then(compare_versions(&b.version, &a.version))
            });
            if let Some(&i) = providers.iter().find(|&&i| !self.taken.contains_key(u.candidates[i].name.as_str())) {
                return self.take(i, Some(from));
            }
        }
        let text: Vec<String> = dep.iter().map(ToString::to_string).collect();
        Err(Error::Usage(format!(
            "{} {} depends on {}, which no suite's index or the base provides; add the suite that has it, or name what the targets have with --debian-base",
            from.name,
            from.version,
            text.join(" | ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "Package: app\nVersion: 1.0\nArchitecture: amd64\nDepends: libc6 (>= 2.34), mta | mail-transport-agent, gone | lib2\n\n\
Package: app\nVersion: 2.0\nArchitecture: amd64\nDepends: libc6 (>= 2.34)\n\n\
Package: lib2\nVersion: 1\nArchitecture: all\n\n\
Package: postfix\nVersion: 3\nArchitecture: amd64\nProvides: mail-transport-agent\n\n\
Package: exim4\nVersion: 4\nArchitecture: amd64\nProvides: mail-transport-agent\n\n\
Package: other\nVersion: 1\nArchitecture: arm64\n";

    fn universe() -> Universe {
        let mut u = Universe::default();
        u.add_index(0, INDEX, "amd64", "Packages").unwrap();
        u
    }

    fn names(c: &[&Candidate]) -> Vec<String> {
        c.iter().map(|c| format!("{}={}", c.name, c.version)).collect()
    }

    #[test]
    fn closure_is_deterministic() {
        let u = universe();
        let base = [("libc6".to_owned(), "2.36-9".to_owned())];
        let want = lockfile::parse_packages("app=1.0\n", "p").unwrap();
        let got = closure(&u, &want, &base, "amd64", Follow::default()).unwrap();
        // mta is unknown, so the virtual mail-transport-agent: exim4 sorts first; gone is unknown: lib2.
        assert_eq!(names(&got), ["app=1.0", "exim4=4", "lib2=1"]);
        let latest =
            closure(&u, &lockfile::parse_packages("app\n", "p").unwrap(), &base, "amd64", Follow::default()).unwrap();
        assert_eq!(names(&latest), ["app=2.0"]);
    }

    #[test]
    fn recommends_are_followed_only_when_asked_and_left_out_when_unmet() {
        let mut u = Universe::default();
        let index = "Package: tool\nVersion: 1\nArchitecture: amd64\nRecommends: docs, missing-thing\n\n\
Package: docs\nVersion: 2\nArchitecture: all\nDepends: fonts\n\n\
Package: fonts\nVersion: 3\nArchitecture: all\n";
        u.add_index(0, index, "amd64", "Packages").unwrap();
        let want = lockfile::parse_packages("tool\n", "p").unwrap();
        assert_eq!(names(&closure(&u, &want, &[], "amd64", Follow::default()).unwrap()), ["tool=1"]);
        let follow = Follow { recommends: true };
        assert_eq!(names(&closure(&u, &want, &[], "amd64", follow).unwrap()), ["tool=1", "docs=2", "fonts=3"]);
    }

    #[test]
    fn unsatisfiable_and_unknown_are_errors() {
        let u = universe();
        let e =
            closure(&u, &lockfile::parse_packages("app\n", "p").unwrap(), &[], "amd64", Follow::default()).unwrap_err();
        assert!(e.to_string().starts_with("app 2.0 depends on libc6 (>= 2.34), which no suite"), "{e}");
        let e = closure(&u, &lockfile::parse_packages("other\n", "p").unwrap(), &[], "amd64", Follow::default())
            .unwrap_err();
        assert!(e.to_string().starts_with("package other is in none"), "{e}");
        let old = [("libc6".to_owned(), "2.31".to_owned())];
        assert!(
            closure(&u, &lockfile::parse_packages("app\n", "p").unwrap(), &old, "amd64", Follow::default()).is_err()
        );
    }
}
