//! Reading an ecosystem client's own configuration, so that a site's
//! existing mirror or proxy settings apply. Each ecosystem's `source` module
//! finds its registry: the flag, then airlock's config file, then the
//! client's configuration (read with these helpers), then the public default.
//! This module knows no ecosystem.

use std::fs;
use std::path::{Path, PathBuf};

/// The variable `name`, unless unset or blank.
pub(crate) fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The user's home folder.
pub(crate) fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// A `key = value` from an INI-style file, inside `[section]` (or before
/// any section when `section` is empty).
pub(crate) fn ini_value(file: &Path, section: &str, key: &str) -> Option<String> {
    let text = fs::read_to_string(file).ok()?;
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            name.trim().clone_into(&mut current);
            continue;
        }
        if let Some((k, v)) = line.split_once('=')
            && current == section
            && k.trim() == key
        {
            return Some(v.trim().to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.conf");
        fs::write(
            &file,
            "[install]\nindex-url = wrong\n[global]\n# comment\nindex-url = https://mirror.example/simple\n",
        )
        .unwrap();
        assert_eq!(ini_value(&file, "global", "index-url").as_deref(), Some("https://mirror.example/simple"));
        let rc = dir.path().join(".clientrc");
        fs::write(&rc, "registry=https://registry.example/\n").unwrap();
        assert_eq!(ini_value(&rc, "", "registry").as_deref(), Some("https://registry.example/"));
    }
}
