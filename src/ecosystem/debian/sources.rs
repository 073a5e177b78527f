//! The archive the host's apt uses, the default when neither
//! `--debian-archive` nor `[debian] archive` names one, as the other
//! ecosystems default to their client's configuration: deb822
//! `/etc/apt/sources.list.d/*.sources` and one-line `sources.list` /
//! `sources.list.d/*.list` entries, in the order apt reads them.

// Debian's names (sources.list, deb822) are words in these docs, not code.
#![allow(clippy::doc_markdown)]

use std::path::Path;

/// One `deb` source: its archive URL and the suites it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uri: String,
    pub suites: Vec<String>,
}

/// The `deb` sources of a deb822 `.sources` file (`Enabled: no` left out).
#[must_use]
pub fn parse_deb822(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines().filter(|l| !l.starts_with('#')) {
            match line.strip_prefix([' ', '\t']) {
                Some(more) => {
                    if let Some((_, value)) = fields.last_mut() {
                        value.push(' ');
                        value.push_str(more.trim());
                    }
                }
                None => {
                    if let Some((name, value)) = line.split_once(':') {
                        fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                    }
                }
            }
        }
        let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let words = |name: &str| field(name).unwrap_or_default().split_whitespace().map(str::to_owned).collect();
        let types: Vec<String> = words("types");
        if !types.iter().any(|t| t == "deb") || field("enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")) {
            continue;
        }
        let suites: Vec<String> = words("suites");
        for uri in words("uris") {
            out.push(AptSource { uri, suites: suites.clone() });
        }
    }
    out
}

/// The `deb` lines of a one-line `sources.list` (options in brackets skipped).
#[must_use]
pub fn parse_one_line(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line.strip_prefix("deb ").or_else(|| line.strip_prefix("deb\t")) else { continue };
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('[') {
            Some(options) => options.split_once(']').map_or("", |(_, after)| after),
            None => rest,
        };
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            out.push(AptSource { uri: uri.to_owned(), suites: vec![suite.to_owned()] });
        }
    }
    out
}

/// Every `deb` source of the apt configuration under `etc` (normally
/// `/etc/apt`): `sources.list`, then `sources.list.d/` in name order.
#[must_use]
pub fn read_sources(etc: &Path) -> Vec<AptSource> {
    let mut out = std::fs::read_to_string(etc.join("sources.list")).map(|t| parse_one_line(&t)).unwrap_or_default();
    let mut parts: Vec<_> = std::fs::read_dir(etc.join("sources.list.d"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    parts.sort();
    for path in parts {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        match path.extension().and_then(|e| e.to_str()) {
            Some("sources") => out.extend(parse_deb822(&text)),
            Some("list") => out.extend(parse_one_line(&text)),
            _ => {}
        }
    }
    out
}

/// The archive of the first http(s) source that names `suite`, if any.
#[must_use]
pub fn archive_for(sources: &[AptSource], suite: &str) -> Option<String> {
    sources
        .iter()
        .find(|s| {
            (s.uri.starts_with("http://") || s.uri.starts_with("https://")) && s.suites.iter().any(|x| x == suite)
        })
        .map(|s| s.uri.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_name_their_archives_and_suites() {
        let deb822 = "Types: deb\n# a comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n\
Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: bookworm\n\n\
Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n";
        let sources = parse_deb822(deb822);
        assert_eq!(archive_for(&sources, "bookworm").as_deref(), Some("http://deb.debian.org/debian"));
        assert_eq!(
            archive_for(&sources, "bookworm-security").as_deref(),
            Some("http://deb.debian.org/debian-security")
        );
        assert_eq!(archive_for(&sources, "trixie"), None);
        assert_eq!(sources.len(), 2);

        let list = "# old style\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\ndeb-src http://src.example/debian bookworm main\ndeb cdrom:[Debian]/ bookworm main\n";
        let sources = parse_one_line(list);
        assert_eq!(archive_for(&sources, "bookworm").as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(sources.len(), 2, "{sources:?}");
    }
}
