//! Where each registry is: the flag, then airlock's config file, then the
//! ecosystem client's own configuration (so a site's existing mirror or proxy
//! settings apply), then the public default.

use std::fs;
use std::path::{Path, PathBuf};

/// The endpoint for PyPI: pip's `index-url` from `PIP_INDEX_URL` or its config files.
#[must_use]
pub fn pip_index_url() -> Option<String> {
    if let Some(url) = env_nonempty("PIP_INDEX_URL") {
        return Some(url);
    }
    let home = home();
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(file) = env_nonempty("PIP_CONFIG_FILE") {
        files.push(file.into());
    }
    if let Some(home) = &home {
        files.push(home.join(".config/pip/pip.conf"));
        files.push(home.join(".pip/pip.conf"));
    }
    files.push("/etc/pip.conf".into());
    files.iter().find_map(|f| ini_value(f, "global", "index-url"))
}

/// The endpoint for npm: `npm_config_registry`, then `registry=` in the
/// project's .npmrc (beside the lockfile), then in ~/.npmrc.
#[must_use]
pub fn npm_registry(lockfile_dir: Option<&Path>) -> Option<String> {
    if let Some(url) = env_nonempty("npm_config_registry").or_else(|| env_nonempty("NPM_CONFIG_REGISTRY")) {
        return Some(url);
    }
    let mut files = Vec::new();
    if let Some(dir) = lockfile_dir {
        files.push(dir.join(".npmrc"));
    }
    if let Some(home) = home() {
        files.push(home.join(".npmrc"));
    }
    files.iter().find_map(|f| ini_value(f, "", "registry"))
}

/// The endpoint for crates.io: cargo's source replacement
/// (`[source.crates-io] replace-with = "x"`, `[source.x] registry = "sparse+URL"`).
#[must_use]
pub fn cargo_index() -> Option<String> {
    let cargo_home = env_nonempty("CARGO_HOME").map(PathBuf::from).or_else(|| home().map(|h| h.join(".cargo")))?;
    let text = fs::read_to_string(cargo_home.join("config.toml"))
        .or_else(|_| fs::read_to_string(cargo_home.join("config")))
        .ok()?;
    let config: toml::Value = toml::from_str(&text).ok()?;
    let sources = config.get("source")?;
    let replacement = sources.get("crates-io")?.get("replace-with")?.as_str()?;
    let registry = sources.get(replacement)?.get("registry")?.as_str()?;
    registry.strip_prefix("sparse+").map(str::to_owned)
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// A `key = value` from an INI-style file, inside `[section]` (or before
/// any section when `section` is empty).
fn ini_value(file: &Path, section: &str, key: &str) -> Option<String> {
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
        let file = dir.path().join("pip.conf");
        fs::write(
            &file,
            "[install]\nindex-url = wrong\n[global]\n# comment\nindex-url = https://mirror.example/simple\n",
        )
        .unwrap();
        assert_eq!(ini_value(&file, "global", "index-url").as_deref(), Some("https://mirror.example/simple"));
        let npmrc = dir.path().join(".npmrc");
        fs::write(&npmrc, "registry=https://npm.example/\n").unwrap();
        assert_eq!(ini_value(&npmrc, "", "registry").as_deref(), Some("https://npm.example/"));
    }
}
