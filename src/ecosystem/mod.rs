//! Ecosystems: one module per kind of artifact, behind one small trait.
//!
//! An ecosystem says which entries it accepts beyond the schema and how its
//! verified entries are laid out in the mirror for its clients. Adding an
//! ecosystem is adding a module here and a line to [`ALL`].

pub mod cargo;
pub mod endpoints;
pub mod files;
pub mod npm;
pub mod pypi;
pub mod registry;

pub use registry::Artifact;

use crate::error::Result;
use crate::manifest::Entry;
use crate::mirror::Tree;

/// What every ecosystem module provides to the import side.
pub trait Ecosystem: Sync {
    /// The name used in manifests (`entry.ecosystem`).
    fn name(&self) -> &'static str;
    /// Rules for an entry beyond the manifest schema; the error says what is wrong.
    fn check_entry(&self, entry: &Entry) -> Result<(), String>;
    /// Writes the verified `new` entries into the new mirror generation,
    /// under the ecosystem's own top-level folder, and regenerates whatever
    /// index the clients read from `all`, the ecosystem's entries after the
    /// import (the mirror's earlier entries and the new ones).
    fn publish(&self, new: &[&Entry], all: &[&Entry], tree: &mut Tree) -> Result<()>;
}

/// Every ecosystem this build knows.
pub static ALL: &[&dyn Ecosystem] = &[&files::Files, &pypi::Pypi, &npm::Npm, &cargo::Cargo];

/// The ecosystem with this manifest name.
#[must_use]
pub fn by_name(name: &str) -> Option<&'static dyn Ecosystem> {
    ALL.iter().copied().find(|e| e.name() == name)
}
