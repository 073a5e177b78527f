//! Bundles refused once their blobs are staged: what the import staged and
//! promoted must go again (issue 14.15).

use super::Made;
use crate::base::Base;

pub fn cases(base: &Base) -> Vec<Made> {
    // Another channel's file below the published file `notes.txt` of
    // good.airlock: a folder cannot be where a file is, which publishing
    // finds after the new blob was staged and put into the object store.
    let under_a_file = base.files("other", &[("notes.txt/inner.txt", b"a file under a file\n")]);
    vec![("refused-at-publish.airlock".into(), base.signed(&under_a_file))]
}
