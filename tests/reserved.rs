//! The reservation rules of `airlock::ecosystem::reserved` across the real
//! ecosystems: which generated paths their entries share and which collide.
//! (Moved from src/ecosystem/reserved.rs, which names no ecosystem.)

use airlock::ecosystem::reserved::{Holder, check};
use airlock::id::{ContentId, RelPath};
use airlock::manifest::Entry;

fn entry(ecosystem: &str, name: &str, version: &str, path: &str) -> Entry {
    Entry {
        ecosystem: ecosystem.into(),
        name: name.into(),
        version: (ecosystem != "files").then(|| version.into()),
        path: RelPath::new(path).unwrap(),
        blob: ContentId::of(path.as_bytes()),
        size: 0,
        digests: std::collections::BTreeMap::new(),
        source: None,
        attributes: std::collections::BTreeMap::new(),
        evidence: Vec::new(),
        missing: Vec::new(),
    }
}

fn bundle(entries: &[Entry]) -> Result<(), String> {
    check(entries.len(), |i| (&entries[i], Holder::Bundle)).map_err(|e| e.to_string())
}

fn with_holders<'a>(items: &[(&'a Entry, Holder<'a>)]) -> Result<(), String> {
    check(items.len(), |i| items[i]).map_err(|e| e.to_string())
}

#[test]
fn versions_of_one_project_share_its_pages_and_index_file() {
    bundle(&[
        entry("pypi", "six", "1.0", "six/six-1.0.tar.gz"),
        entry("pypi", "six", "1.1", "six/six-1.1.tar.gz"),
        entry("npm", "a", "1.0.0", "a/-/a-1.0.0.tgz"),
        entry("npm", "a", "1.1.0", "a/-/a-1.1.0.tgz"),
        entry("cargo", "Serde", "1.0.0", "Serde-1.0.0.crate"),
        entry("cargo", "Serde", "1.1.0", "Serde-1.1.0.crate"),
        entry("files", "simple/index.html", "", "simple/index.html"),
    ])
    .unwrap();
}

#[test]
fn generated_paths_are_checked_against_every_other_path() {
    let cases = [
        (entry("pypi", "six", "1.0", "six/six-1.0.tar.gz.metadata"), "core metadata of pypi six 1.0"),
        (entry("pypi", "six", "1.0", "six/index.json"), "index page of pypi six"),
        (entry("pypi", "six", "1.0", "six/Six-1.0.tar.gz"), "differ only by case"),
        (entry("cargo", "SIX", "2.0.0", "SIX-2.0.0.crate"), "index file of cargo SIX"),
    ];
    let six = [entry("pypi", "six", "1.0", "six/six-1.0.tar.gz"), entry("cargo", "six", "1.0.0", "six-1.0.0.crate")];
    for (hostile, expected) in cases {
        let err = bundle(&[six[0].clone(), six[1].clone(), hostile.clone()]).unwrap_err();
        assert!(err.contains(expected) && err.contains("leave one of them out"), "{err}");
        // Against the mirror's entries: reported, with the channel that holds them.
        let held: Vec<_> = six.iter().map(|e| (e, Holder::Mirror("a"))).chain([(&hostile, Holder::Bundle)]).collect();
        let err = with_holders(&held).unwrap_err();
        assert!(err.contains("the mirror already holds one of them"), "{err}");
        // Between two entries the mirror holds (published before this rule): left alone.
        let kept: Vec<_> = six.iter().chain([&hostile]).map(|e| (e, Holder::Mirror("a"))).collect();
        with_holders(&kept).unwrap();
    }
}

#[test]
fn a_path_cannot_be_a_file_for_one_claim_and_a_folder_for_another() {
    // One file's provenance path is a folder on the way to another's.
    let a = entry("pypi", "p", "1", "p/p-x");
    let b = entry("pypi", "p", "1/p-x/provenance", "p/p-y");
    let err = bundle(&[a.clone(), b.clone()]).unwrap_err();
    assert!(err.starts_with("pypi/integrity/p/1/p-x/provenance: the provenance of pypi p 1/p-x/provenance"), "{err}");
    assert!(err.contains("as a file and as a folder"), "{err}");
    // Across bundles too: a plain file where the mirror has a folder, and the other way round.
    let (file, deeper) = (entry("files", "a", "", "a"), entry("files", "a/b", "", "a/b"));
    for (held, new) in [(&file, &deeper), (&deeper, &file)] {
        let err = with_holders(&[(held, Holder::Mirror("a")), (new, Holder::Bundle)]).unwrap_err();
        assert!(err.starts_with("files/a: ") && err.contains("the mirror already holds one of them"), "{err}");
    }
}
