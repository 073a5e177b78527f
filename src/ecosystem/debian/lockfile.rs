//! `pkgs.txt`: the Debian packages to carry, one a line (`name`,
//! `name=version`, `name:arch`, `name:arch=version`; `#` starts a
//! comment), and the `--debian-base` listing (`dpkg-query -W` output:
//! `name[:arch]<TAB>version`) of what the target machines already have.

// Debian's and OpenPGP's names (InRelease, Packages.xz, OpenPGP) are words in these docs, not code.
#![allow(clippy::doc_markdown)]

use crate::lockfile::LockError;

/// One requested package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub arch: Option<String>,
    pub version: Option<String>,
}

/// A package name as Debian Policy 5.6.1 allows it: lower-case letters,
/// digits, `+ - .`, at least two characters, starting alphanumeric.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = name.len() >= 2
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if ok { Ok(()) } else { Err(format!("{name:?} is not a Debian package name")) }
}

/// A version as Debian Policy 5.6.12 allows it (the characters; the order is `control::compare_versions`).
pub fn check_version(version: &str) -> Result<(), String> {
    let ok = !version.is_empty()
        && version.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || b".+~:-".contains(&b));
    if ok { Ok(()) } else { Err(format!("{version:?} is not a Debian version")) }
}

/// Parses a pkgs.txt; `origin` names it in errors.
pub fn parse_packages(text: &str, origin: &str) -> Result<Vec<Wanted>, LockError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let at = |m: String| LockError::new(format!("{origin}:{}", n + 1), m);
        let (spec, version) = match line.split_once('=') {
            Some((s, v)) => (s, Some(v.trim().to_owned())),
            None => (line, None),
        };
        let (name, arch) = match spec.trim().split_once(':') {
            Some((n, a)) => (n, Some(a.to_owned())),
            None => (spec.trim(), None),
        };
        check_name(name).map_err(|m| at(format!("{m}; one package a line: name, name=version or name:arch")))?;
        if let Some(v) = &version {
            check_version(v).map_err(&at)?;
        }
        out.push(Wanted { name: name.to_owned(), arch, version });
    }
    Ok(out)
}

/// Parses a `dpkg-query -W` listing into (name, version) pairs; lines of
/// packages with no version (known but not installed) are skipped.
pub fn parse_base(text: &str, origin: &str) -> Result<Vec<(String, String)>, LockError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (spec, version) = line.split_once('\t').ok_or_else(|| {
            LockError::new(format!("{origin}:{}", n + 1), "not NAME<TAB>VERSION; make it with `dpkg-query -W`")
        })?;
        let name = spec.split_once(':').map_or(spec, |(n, _)| n);
        if !version.trim().is_empty() {
            out.push((name.trim().to_owned(), version.trim().to_owned()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_lines() {
        let got = parse_packages("# tools\nhello\ntree=2.1.0-1 # pinned\nlibc6:amd64\n\n", "pkgs.txt").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].version.as_deref(), Some("2.1.0-1"));
        assert_eq!(got[2].arch.as_deref(), Some("amd64"));
        let e = parse_packages("hello\nHello World\n", "pkgs.txt").unwrap_err().to_string();
        assert!(e.starts_with("pkgs.txt:2: \"Hello World\" is not a Debian package name"), "{e}");
    }

    #[test]
    fn base_listing() {
        let got = parse_base("libc6:amd64\t2.36-9+deb12u10\nfoo\t\n", "base.txt").unwrap();
        assert_eq!(got, [("libc6".to_owned(), "2.36-9+deb12u10".to_owned())]);
        assert!(parse_base("libc6 2.36\n", "base.txt").is_err());
    }
}
