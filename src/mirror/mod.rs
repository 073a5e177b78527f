//! The mirror: a published tree that only ever changes by one atomic step.
//!
//! ```text
//! MIRROR/
//!   files -> .airlock/current/files      one link per ecosystem folder
//!   .airlock/
//!     lock                               held for the whole import
//!     current -> generations/N           the published generation
//!     generations/N/                     ecosystem folders + state.json
//!     objects/<blake3>                   verified blobs; trees hard-link them
//!     segments/<blake3>                  manifest roots and segments (segments.rs)
//!     staging/<manifest digest>/         a bundle being imported, kept across runs:
//!       bundle.json                      its channel, sequence and expiry (for gc)
//!       blobs/<blake3>                   verified blobs
//!       volumes/<index>                  volume `index` verified, its blobs durable
//!       generation/                      the next generation while it is built
//! ```
//!
//! An import verifies every blob into staging, builds generation N+1 in
//! staging (hard links to the old generation and to objects, or to copies
//! of an object that has used up its links: see tree.rs), makes it
//! durable (file contents, then the rename, then the directory), and only
//! then replaces the `current` link with a rename. Until that rename
//! nothing a client sees has changed. Blobs go into the object store as
//! hard links of the staged ones, so a publish that fails before the
//! rename can take out the objects it added and leave the mirror as it
//! was, while the staging stays complete: a refused bundle's is removed,
//! one that failed on the machine (the disk) is kept for the next run.
//!
//! A split bundle may arrive over several runs, so its staging is kept,
//! keyed by the manifest digest: a volume counts as done only once its
//! blobs are durable and its marker is written (contents, then the rename,
//! then the directory), so a run killed at any point loses at most the
//! volume it was reading. What a killed run leaves half-written (a `.part-`
//! file, a half-built generation in any bundle's staging, a generation
//! renamed into place but never published) is removed when the mirror is
//! next opened; staging of a bundle that can no longer be imported is
//! removed by `airlock gc`.
//!
//! The mirror knows no ecosystem, no policy and no verification: the
//! import hands it what it must know of the entries ([`EntryRules`]) and
//! writes the ecosystems' layouts through [`Layout`]. Everything an import
//! or `gc` does to a mirror goes through [`Store`], which the local
//! directory ([`Mirror`]) and S3-compatible object storage ([`Bucket`],
//! see `bucket/`) implement.

mod bucket;
mod gc;
mod inventory;
mod layout;
mod local;
mod publish;
mod segments;
mod staging;
mod store;
mod tree;
mod unnamed;
mod view;

pub use bucket::{Bucket, is_bucket};
pub use gc::WaitingImport;
pub use inventory::{Against, Changes, EntryRules, Merged, Named, Stored, merge};
pub use layout::Layout;
pub use local::Mirror;
pub use publish::{Paths, Publication, PublishReport};
pub use segments::{CarriedSegments, KeptSegments, held_segments, holds_segments_of, local_segments};
pub use staging::{StagedBlob, StagedBundle, Staging};
pub use store::{Collected, Fill, Store};
pub(crate) use tree::copies_bytes;
pub use view::{ImportRecord, Published, State, Tally, View, read_published};

const META: &str = ".airlock";
const CURRENT: &str = "current";
const GENERATIONS: &str = "generations";
const OBJECTS: &str = "objects";
const STAGING: &str = "staging";
const STATE: &str = "state.json";
const INVENTORY: &str = "inventory.cbor";
const BUNDLE_RECORD: &str = "bundle.json";
/// The audit pages and JSON reports of imports, by manifest digest, in the
/// mirror folder (what `airlock serve` shows under `/-/reports/`).
pub const REPORTS: &str = ".airlock/reports";
/// The next generation while it is built, in a bundle's staging.
const BUILD: &str = "generation";
