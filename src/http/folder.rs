//! Files below a canonical folder, and only those: the one way a route reaches the file system.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::response::{Body, Response};

/// A subfolder `under` of a canonical `root`; paths are resolved below
/// `root/under`, following links, and refused when they end up outside `root`.
pub struct Folder<'a> {
    root: &'a Path,
    under: &'a str,
}

/// What a path resolves to.
pub enum Found {
    /// A regular file, by its canonical path.
    File(PathBuf),
    Dir,
    Missing,
}

impl<'a> Folder<'a> {
    /// `root` must be canonical (`fs::canonicalize`): it is the boundary.
    #[must_use]
    pub fn new(root: &'a Path, under: &'a str) -> Self {
        Folder { root, under }
    }

    /// Resolves `path` below the folder, following links, and refuses anything
    /// that ends up outside the root.
    #[must_use]
    pub fn find(&self, path: &[&str]) -> Found {
        let mut joined = self.root.join(self.under);
        joined.extend(path);
        let Ok(real) = fs::canonicalize(&joined) else {
            return Found::Missing;
        };
        if !real.starts_with(self.root) {
            return Found::Missing;
        }
        match fs::metadata(&real) {
            Ok(meta) if meta.is_file() => Found::File(real),
            Ok(meta) if meta.is_dir() => Found::Dir,
            _ => Found::Missing,
        }
    }

    /// Whether `path` is a regular file.
    #[must_use]
    pub fn is_file(&self, path: &[&str]) -> bool {
        matches!(self.find(path), Found::File(_))
    }

    /// A regular file at `path`, streamed, or 404.
    #[must_use]
    pub fn file(&self, path: &[&str], content_type: &'static str) -> Response {
        match self.find(path) {
            Found::File(file) => open(&file, content_type),
            _ => Response::status(404),
        }
    }

    /// A regular file at `path`, streamed with every `placeholder` replaced by
    /// `value` (chunked: its length is known only once sent), or 404.
    #[must_use]
    pub fn file_replacing(
        &self,
        path: &[&str],
        content_type: &'static str,
        placeholder: &str,
        value: &str,
    ) -> Response {
        let Found::File(found) = self.find(path) else { return Response::status(404) };
        open(&found, content_type).replacing(placeholder, value)
    }

    /// A regular file at `path` read whole, for a route that rewrites it; the
    /// error is the response to give instead (404, 403 or 500).
    pub fn read_to_string(&self, path: &[&str]) -> Result<String, Response> {
        let Found::File(file) = self.find(path) else {
            return Err(Response::status(404));
        };
        fs::read_to_string(&file).map_err(|e| Response::from_error(&e))
    }
}

/// Opens a resolved file for streaming; only regular files.
#[must_use]
pub fn open(path: &Path, content_type: &'static str) -> Response {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return Response::from_error(&e),
    };
    match file.metadata() {
        Ok(meta) if meta.is_file() => Response::with_body(200, content_type, Body::File(file, meta.len())),
        Ok(_) => Response::status(404),
        Err(e) => Response::from_error(&e),
    }
}
