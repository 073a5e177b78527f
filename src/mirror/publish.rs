//! Publishing a generation: build it from the one before and the staged
//! bundle, make it durable, swap the `current` link, link its folders at
//! the top of the mirror. The order is the module's (see `mirror`).

use std::fs;
use std::path::Path;

use serde::Serialize;

use super::inventory::write_inventory;
use super::local::symlink;
use super::tree::{self, Tree};
use super::{
    BUILD, CURRENT, EntryRules, GENERATIONS, ImportRecord, Layout, META, Merged, Mirror, OBJECTS, STATE, Staging,
    State, merge,
};
use crate::durable::{OpenDir, remove_path, sync_dir};
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;
use crate::manifest::Manifest;

/// What an import changed.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    pub mirror: String,
    pub generation: u64,
    pub published: Paths,
    #[serde(skip)]
    pub state: State,
}

/// Paths (`folder/path`) in one buffer, as a list in the reports: an import
/// of 100 000 files lists as many, which as a `String` each took twice their
/// bytes and a growing vector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paths {
    text: String,
    /// Where each path ends in `text`.
    ends: Vec<usize>,
}

impl Paths {
    /// Adds `folder/path`.
    pub fn push(&mut self, folder: &str, path: &str) {
        self.text.push_str(folder);
        self.text.push('/');
        self.text.push_str(path);
        self.ends.push(self.text.len());
    }

    /// Adds a path already in `folder/path` form.
    pub fn push_joined(&mut self, path: &str) {
        self.text.push_str(path);
        self.ends.push(self.text.len());
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The paths, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(start, end)| &self.text[start..*end])
    }
}

impl<'a> FromIterator<&'a str> for Paths {
    /// Paths already in `folder/path` form.
    fn from_iter<I: IntoIterator<Item = &'a str>>(paths: I) -> Self {
        let mut all = Paths::default();
        paths.into_iter().for_each(|path| all.push_joined(path));
        all
    }
}

impl Serialize for Paths {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// A verified bundle to publish, with what the mirror must be told to publish it.
pub struct Publication<'a> {
    /// The bundle's manifest; the blobs it carries are in the staging.
    pub manifest: &'a Manifest,
    /// What the mirror's state records of the bundle; `None` for a
    /// re-render, which imports nothing.
    pub record: Option<ImportRecord>,
    /// The base URL the generation's documents are rendered for, recorded in its state.
    pub base_url: Option<String>,
    pub rules: &'a EntryRules<'a>,
    /// Writes the ecosystems' layouts for the merged entries into the
    /// generation being built (the import knows the ecosystems).
    pub layouts: &'a mut dyn FnMut(&Merged<'_>, &mut dyn Layout) -> Result<()>,
    /// The other paths of `folder` a reader of a static store asks for the
    /// document at `path` by (a project page as `NAME/` rather than
    /// `NAME/index.html`): a store that cannot map requests, a bucket,
    /// publishes the document at each of them too. The local folder needs
    /// none (web servers' rules and `serve` map them).
    pub aliases: &'a dyn Fn(&str, &str) -> Vec<String>,
}

impl Mirror {
    /// Builds the next generation from the current one plus the verified
    /// bundle in `staging`, makes it durable and publishes it atomically.
    /// The bundle passed the checks of [`merge`] and the import's own
    /// against this mirror's inventory, under the same lock, before it was
    /// staged (import does that).
    ///
    /// When it fails before the new generation is published, what it did
    /// is undone: the half-built generation and the objects it added go,
    /// so the mirror is as it was (the staged blobs stay in `staging`).
    pub(super) fn publish_staged(&mut self, staging: &Staging, publication: Publication<'_>) -> Result<PublishReport> {
        let previous = self.current()?;
        let generation = previous.as_ref().map_or(1, |(n, _)| n + 1);
        let mut added = Vec::new();
        let previous_dir = previous.as_ref().map(|(_, dir)| dir.as_path());
        let result = self.build_and_swap(staging, publication, (generation, previous_dir), &mut added);
        if result.is_err() {
            self.undo_publish(staging, generation, &added);
        }
        result
    }

    /// Removes what a failed [`Mirror::publish`] of `generation` left, unless
    /// that generation is the published one (a failure after the swap):
    /// the build, the generation if it was renamed into place, and the
    /// objects it `added` (no published generation can use them: they were
    /// not in the store before). Best effort: the next open and `gc` remove
    /// what is left, and the error that ended the publish is the one to report.
    fn undo_publish(&self, staging: &Staging, generation: u64, added: &[ContentId]) {
        if self.current().ok().flatten().is_some_and(|(n, _)| n == generation) {
            return;
        }
        let _ = remove_path(&staging.dir.join(BUILD));
        let _ = remove_path(&self.meta.join(GENERATIONS).join(generation.to_string()));
        let objects = self.meta.join(OBJECTS);
        for id in added {
            let _ = remove_path(&objects.join(id.to_hex()));
        }
        let _ = sync_dir(&objects);
    }

    /// [`Mirror::publish`] of `generation`, built from the folder of the one
    /// before (if any), until it is done or fails; the ids of the objects it
    /// put into the store are pushed to `added` as it goes.
    fn build_and_swap(
        &mut self,
        staging: &Staging,
        publication: Publication<'_>,
        (generation, previous): (u64, Option<&Path>),
        added: &mut Vec<ContentId>,
    ) -> Result<PublishReport> {
        let Publication { manifest, record, base_url, rules, layouts, aliases: _ } = publication;
        let entries = manifest.entries.decoded();
        let inventory = self.inventory_against(&entries, &manifest.channel)?;
        let merged = merge(&inventory, &entries, &manifest.channel, rules)?;
        let build = staging.dir.join(BUILD);
        match previous {
            Some(dir) => tree::link_copy(dir, &build)?,
            None => fs::create_dir(&build).at(&build)?,
        }
        let objects = self.meta.join(OBJECTS);
        let objects_dir = OpenDir::open(&objects)?;
        staging.make_durable()?;
        added.reserve_exact(manifest.blobs.iter().filter(|b| b.carried).count());
        for blob in manifest.blobs.iter().filter(|b| b.carried) {
            if staging.promote(&blob.id, &objects_dir)? {
                added.push(blob.id);
            }
        }
        objects_dir.sync()?;
        let mut tree = Tree::new(build.clone(), objects);
        tree.objects_added(added);
        layouts(&merged, &mut tree)?;
        write_inventory(&mut tree, &merged, rules)?;
        drop(merged);
        drop(inventory);
        let mut state = self.state()?;
        state.generation = generation;
        state.imports.extend(record);
        state.base_url = base_url;
        tree.write_file(Path::new(STATE), &serde_json::to_vec_pretty(&state).expect("state serializes"))?;
        tree::sync_tree(&build)?;

        let generations = self.meta.join(GENERATIONS);
        let target = generations.join(generation.to_string());
        if target.exists() {
            // Left by an import killed after this rename but before the link swap.
            fs::remove_dir_all(&target).at(&target)?;
        }
        fs::rename(&build, &target).at(&target)?;
        sync_dir(&generations)?;
        self.swap_current(generation)?;
        self.published = true;
        self.repair_links()?;
        self.prune(generation);
        Ok(PublishReport {
            mirror: self.root.display().to_string(),
            generation,
            published: tree.take_published(),
            state,
        })
    }

    /// Points `current` at generation `n` with one rename.
    fn swap_current(&self, n: u64) -> Result<()> {
        let tmp = self.meta.join("current.tmp");
        let _ = fs::remove_file(&tmp);
        symlink(&Path::new(GENERATIONS).join(n.to_string()), &tmp).at(&tmp)?;
        let link = self.meta.join(CURRENT);
        fs::rename(&tmp, &link).at(&link)?;
        sync_dir(&self.meta)
    }

    /// Every folder of the published generation (one per ecosystem) has its
    /// link at the top of the mirror (restores links an interrupted first
    /// import did not make).
    pub(super) fn repair_links(&self) -> Result<()> {
        let Some((_, dir)) = self.current()? else { return Ok(()) };
        // What cannot be listed has no folder to link, as `is_dir` said before.
        let mut folders: Vec<_> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .map(|entry| entry.file_name())
            .collect();
        folders.sort();
        for folder in folders {
            let link = self.root.join(&folder);
            let target = Path::new(META).join(CURRENT).join(&folder);
            match fs::read_link(&link) {
                Ok(existing) if existing == target => continue,
                Ok(_) | Err(_) if link.symlink_metadata().is_ok() => {
                    return Err(Error::Usage(format!(
                        "{}: is not airlock's link; move it out of the mirror",
                        link.display()
                    )));
                }
                _ => {}
            }
            symlink(&target, &link).at(&link)?;
        }
        sync_dir(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_come_back_as_added_and_serialize_as_a_list() {
        let mut paths = Paths::default();
        assert!(paths.is_empty() && paths.iter().next().is_none());
        paths.push("pypi", "simple/six/six-1.0.tar.gz");
        paths.push("files", "a b/ü.txt");
        assert_eq!(paths.iter().collect::<Vec<_>>(), ["pypi/simple/six/six-1.0.tar.gz", "files/a b/ü.txt"]);
        assert_eq!(
            serde_json::to_value(&paths).unwrap(),
            serde_json::json!(["pypi/simple/six/six-1.0.tar.gz", "files/a b/ü.txt"])
        );
        assert_eq!(paths.iter().collect::<Paths>(), paths);
    }
}
