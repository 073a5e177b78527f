//! The table-driven corpus of hostile inputs in fixtures/vectors/ (see its
//! README): every case is a `.toml` file declaring what `inspect`, `verify`
//! and `import` must do with its bundle, and the bundles are made by the
//! generators below, so a new attack is a new case file plus, where it
//! needs a new bundle, a new generator entry.
//!
//! Two tests: the committed bundles are exactly what the generators make
//! (`AIRLOCK_UPDATE_VECTORS=1 cargo test --test vectors` rewrites them), and
//! every case ends as declared.

#[path = "../common/mod.rs"]
mod common;

mod base;
mod cases;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use common::{airlock, snapshot};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/vectors")
}

/// Every file the generators make, by path relative to fixtures/vectors/.
fn generated() -> BTreeMap<String, Vec<u8>> {
    let base = base::Base::new();
    let mut out = BTreeMap::new();
    for (path, bytes) in cases::all(&base) {
        assert!(out.insert(path.clone(), bytes).is_none(), "two generators make {path}");
    }
    out
}

/// Bundle files under fixtures/vectors/ (files ending `.airlock`, and every file in a folder of volumes).
fn committed_bundles(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if path.is_dir() && name != "keys" {
            for volume in fs::read_dir(&path).unwrap() {
                let volume = volume.unwrap().path();
                let file = volume.file_name().unwrap().to_str().unwrap();
                out.insert(format!("{name}/{file}"), fs::read(&volume).unwrap());
            }
        } else if name.ends_with(".airlock") {
            out.insert(name, fs::read(&path).unwrap());
        }
    }
    out
}

#[test]
fn committed_vectors_are_what_the_generators_make() {
    let dir = vectors_dir();
    let made = generated();
    if std::env::var_os("AIRLOCK_UPDATE_VECTORS").is_some() {
        for (stale, _) in committed_bundles(&dir).iter().filter(|(p, _)| !made.contains_key(*p)) {
            fs::remove_file(dir.join(stale)).unwrap();
        }
        for (path, bytes) in &made {
            let target = dir.join(path);
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::write(target, bytes).unwrap();
        }
        return;
    }
    let committed = committed_bundles(&dir);
    let missing: Vec<_> = made.keys().filter(|p| !committed.contains_key(*p)).collect();
    let stale: Vec<_> = committed.keys().filter(|p| !made.contains_key(*p)).collect();
    let changed: Vec<_> =
        made.iter().filter(|(p, b)| committed.get(*p).is_some_and(|c| c != *b)).map(|(p, _)| p).collect();
    assert!(
        missing.is_empty() && stale.is_empty() && changed.is_empty(),
        "fixtures/vectors is out of date (missing {missing:?}, stale {stale:?}, changed {changed:?}); \
         run AIRLOCK_UPDATE_VECTORS=1 cargo test --test vectors and review the change"
    );
}

/// A case file (fixtures/vectors/README.md describes every field).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    /// Where the case comes from (an issue item, an attack class).
    #[serde(default)]
    source: Option<String>,
    /// The bundle: a file or a folder of volumes; default `<case>.airlock`.
    #[serde(default)]
    bundle: Option<String>,
    /// Bundles imported into the mirror first, in order; each must succeed.
    #[serde(default)]
    setup: Vec<String>,
    /// The policy every command uses; default `policy.toml`.
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    inspect: Option<Expect>,
    #[serde(default)]
    verify: Option<Expect>,
    #[serde(default)]
    import: Option<Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    exit: i32,
    /// Substrings the one error line must contain (when `exit` is not 0).
    #[serde(default)]
    error: Vec<String>,
    /// Extra arguments after the command's usual ones.
    #[serde(default)]
    args: Vec<String>,
    /// An import refused with exit 4 keeps the volumes it verified.
    #[serde(default)]
    keeps_staging: bool,
}

fn cases() -> Vec<(String, Case)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(vectors_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        // Policy files are not cases: policy.toml and policy-*.toml.
        if path.extension().is_some_and(|e| e == "toml") && name != "policy" && !name.starts_with("policy-") {
            let text = fs::read_to_string(&path).unwrap();
            let case: Case = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((name, case));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// An empty working folder for one command: whatever appears in it was written by the command.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// What one command did, judged against `expect`; a list of problems.
fn judge(case: &str, command: &str, output: &std::process::Output, expect: &Expect) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code().unwrap_or(-1);
    let mut problems = Vec::new();
    if code == 101 || stderr.contains("panicked") {
        problems.push(format!("{case}: {command} crashed: {stderr}"));
        return problems;
    }
    if code != expect.exit {
        problems.push(format!("{case}: {command} exited {code}, expected {}: {stderr}", expect.exit));
        return problems;
    }
    if expect.exit != 0 {
        let text = stderr.trim_end();
        if text.lines().count() != 1 || !text.starts_with("error: ") {
            problems.push(format!("{case}: {command}: expected one `error:` line, got: {stderr}"));
        }
        for part in &expect.error {
            if !text.contains(part.as_str()) {
                problems.push(format!("{case}: {command}: expected {part:?} in: {text}"));
            }
        }
    }
    problems
}

fn run(cwd: &Path, args: &[std::ffi::OsString]) -> std::process::Output {
    airlock().current_dir(cwd).args(args).output().unwrap()
}

fn os(items: &[&Path]) -> Vec<std::ffi::OsString> {
    items.iter().map(|p| p.as_os_str().to_owned()).collect()
}

/// Runs every declared command of `case`; returns the problems found.
fn check_case(name: &str, case: &Case) -> Vec<String> {
    let dir = vectors_dir();
    let bundle = dir.join(case.bundle.clone().unwrap_or_else(|| format!("{name}.airlock")));
    let policy = dir.join(case.policy.as_deref().unwrap_or("policy.toml"));
    let mut problems = Vec::new();
    if !bundle.exists() {
        return vec![format!("{name}: no bundle {}", bundle.display())];
    }
    assert!(!case.about.is_empty() && case.source.as_deref() != Some(""), "{name}: say what the case is about");
    let quiet = Path::new("--quiet");
    if let Some(expect) = &case.inspect {
        let work = scratch();
        let mut args = os(&[Path::new("inspect"), quiet, &bundle]);
        args.extend(expect.args.iter().map(Into::into));
        let before = snapshot(work.path());
        problems.extend(judge(name, "inspect", &run(work.path(), &args), expect));
        if snapshot(work.path()) != before {
            problems.push(format!("{name}: inspect wrote into its working folder"));
        }
    }
    if let Some(expect) = &case.verify {
        let work = scratch();
        let mut args = os(&[Path::new("verify"), quiet, &bundle, Path::new("--policy"), &policy]);
        args.extend(expect.args.iter().map(Into::into));
        let before = snapshot(work.path());
        problems.extend(judge(name, "verify", &run(work.path(), &args), expect));
        if snapshot(work.path()) != before {
            problems.push(format!("{name}: verify wrote into its working folder"));
        }
    }
    if let Some(expect) = &case.import {
        problems.extend(check_import(name, case, &bundle, &policy, expect));
    }
    problems
}

fn check_import(name: &str, case: &Case, bundle: &Path, policy: &Path, expect: &Expect) -> Vec<String> {
    let work = scratch();
    let mirror = work.path().join("mirror");
    let import = |bundle: &Path, extra: &[String]| {
        let mut args = os(&[Path::new("import"), Path::new("--quiet"), bundle, Path::new("--policy"), policy]);
        args.extend([std::ffi::OsString::from("--mirror"), mirror.clone().into()]);
        args.extend(extra.iter().map(Into::into));
        run(work.path(), &args)
    };
    for setup in &case.setup {
        let out = import(&vectors_dir().join(setup), &[]);
        assert!(
            out.status.success(),
            "{name}: setup import of {setup} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let before = snapshot(&mirror);
    let output = import(bundle, &expect.args);
    let mut problems = judge(name, "import", &output, expect);
    if expect.exit != 0 {
        if snapshot(&mirror) != before {
            problems.push(format!("{name}: the refused import changed the mirror"));
        }
        let staging = mirror.join(".airlock/staging");
        let staged = fs::read_dir(&staging).map_or(0, Iterator::count);
        if staged != 0 && !expect.keeps_staging {
            problems.push(format!("{name}: the refused import left {staged} item(s) in {}", staging.display()));
        }
        if case.setup.is_empty() && !expect.keeps_staging && mirror.exists() {
            problems.push(format!("{name}: the refused import into a new mirror left {}", mirror.display()));
        }
    }
    problems
}

#[test]
fn every_vector_ends_as_declared() {
    let cases = cases();
    assert!(!cases.is_empty(), "no cases in fixtures/vectors");
    let problems: Vec<String> = cases.iter().flat_map(|(name, case)| check_case(name, case)).collect();
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
    eprintln!("{} vector cases checked", cases.len());
}

#[test]
fn every_generated_bundle_has_a_case() {
    let made = generated();
    let cases = cases();
    let used: std::collections::BTreeSet<String> = cases
        .iter()
        .flat_map(|(name, case)| {
            let bundle = case.bundle.clone().unwrap_or_else(|| format!("{name}.airlock"));
            std::iter::once(bundle).chain(case.setup.iter().cloned())
        })
        .collect();
    let unused: Vec<_> =
        made.keys().filter(|p| !used.contains(*p) && !used.iter().any(|u| p.starts_with(&format!("{u}/")))).collect();
    assert!(unused.is_empty(), "generated bundles that no case uses: {unused:?}");
}
