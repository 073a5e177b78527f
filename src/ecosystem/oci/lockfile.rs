//! `images.txt`: one image reference a line, `REGISTRY/REPO:TAG`,
//! `REGISTRY/REPO@sha256:<hex>` or `REGISTRY/REPO:TAG@sha256:<hex>`; blank
//! lines and `#` comments are skipped.

use super::{check_repository, check_tag};
use crate::lockfile::LockError;

/// One line of images.txt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `HOST[:PORT]/PATH`.
    pub repository: String,
    pub tag: Option<String>,
    /// The pinned sha256, lower-case hex.
    pub digest: Option<String>,
}

impl ImageRef {
    /// The registry's host (and port).
    #[must_use]
    pub fn host(&self) -> &str {
        self.repository.split_once('/').map_or(&self.repository, |(h, _)| h)
    }

    /// The repository's path on its registry.
    #[must_use]
    pub fn path(&self) -> &str {
        self.repository.split_once('/').map_or("", |(_, p)| p)
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@sha256:{digest}")?;
        }
        Ok(())
    }
}

/// Parses images.txt; a bad line is an error naming it.
pub fn parse_images(text: &str, origin: &str) -> Result<Vec<ImageRef>, LockError> {
    let mut refs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        refs.push(parse_ref(line).map_err(|m| LockError::at_line(origin, n + 1, m))?);
    }
    Ok(refs)
}

/// One reference.
pub fn parse_ref(text: &str) -> Result<ImageRef, String> {
    let (name, digest) = match text.split_once('@') {
        Some((name, digest)) => {
            let hex = digest
                .strip_prefix("sha256:")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
                .ok_or_else(|| format!("{text:?}: the digest must be sha256: and 64 lower-case hex digits"))?;
            (name, Some(hex.to_owned()))
        }
        None => (text, None),
    };
    let slash = name.rfind('/').unwrap_or(0);
    let (repository, tag) = match name[slash..].rfind(':') {
        Some(colon) => (&name[..slash + colon], Some(name[slash + colon + 1..].to_owned())),
        None => (name, None),
    };
    if tag.is_none() && digest.is_none() {
        return Err(format!(
            "{text:?} names no tag and no digest; write REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:<hex>"
        ));
    }
    check_repository(repository).map_err(|m| format!("{text:?}: {m}"))?;
    if let Some(tag) = &tag {
        check_tag(tag).map_err(|m| format!("{text:?}: {m}"))?;
    }
    Ok(ImageRef { repository: repository.to_owned(), tag, digest })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let hex = "a".repeat(64);
        let text = format!(
            "# images\n127.0.0.1:5000/team/app:1.0\n\nregistry.example/x@sha256:{hex}  # pinned\nr.io/a/b:v2@sha256:{hex}\n"
        );
        let refs = parse_images(&text, "images.txt").unwrap();
        assert_eq!(
            refs[0],
            ImageRef { repository: "127.0.0.1:5000/team/app".into(), tag: Some("1.0".into()), digest: None }
        );
        assert_eq!(refs[0].host(), "127.0.0.1:5000");
        assert_eq!(refs[0].path(), "team/app");
        assert_eq!(refs[1].tag, None);
        assert_eq!(refs[1].digest.as_deref(), Some(hex.as_str()));
        assert_eq!(refs[2].to_string(), format!("r.io/a/b:v2@sha256:{hex}"));
        let err = parse_images("ok.example/a:1\n127.0.0.1:5000/app\n", "images.txt").unwrap_err().to_string();
        assert!(err.starts_with("images.txt:2: "), "{err}");
        for bad in ["app:1", "r.io/../x:1", "r.io/a:-x", "r.io/a@sha256:abc", "r.io/A:1"] {
            assert!(parse_ref(bad).is_err(), "{bad}");
        }
    }
}
