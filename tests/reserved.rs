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

/// The rules [`check`] applies, stated naively over every pair of claims:
/// a claim is (path, shared key, from the bundle); two claims clash when one
/// of them is the bundle's and they take one path (unless both are the
/// document one key shares), when one's path is a folder of the other's, or
/// when a name on the way to one (its folders or itself) differs from a name
/// on the way to the other only by folding.
fn naive_verdict(items: &[(&Entry, Holder<'_>)]) -> bool {
    use airlock::ecosystem;
    let mut clash = false;
    for eco in ecosystem::ALL {
        let mut claims: Vec<(String, Option<String>, bool)> = Vec::new();
        for (entry, holder) in items.iter().filter(|(e, _)| e.ecosystem == eco.name()) {
            eco.reserve(entry, &mut |r| {
                claims.push((r.path.into_owned(), r.shared_by.map(str::to_owned), *holder == Holder::Bundle));
            });
        }
        if claims.is_empty() {
            continue;
        }
        claims.extend(eco.reserved_globally().iter().map(|(p, _)| ((*p).to_owned(), None, false)));
        let names = |path: &str| -> Vec<String> {
            let mut ends: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
            ends.push(path.len());
            ends.into_iter().map(|end| path[..end].to_owned()).collect()
        };
        for (i, a) in claims.iter().enumerate() {
            for (j, b) in claims.iter().enumerate() {
                if i == j || !(a.2 || b.2) {
                    continue;
                }
                let shared = a.1.is_some() && a.1 == b.1;
                let same = a.0 == b.0 && !shared;
                let folder = b.0.starts_with(&format!("{}/", a.0));
                let folds = a.2
                    && names(&a.0).iter().any(|x| {
                        names(&b.0).iter().any(|y| x != y && airlock::manifest::fold(x) == airlock::manifest::fold(y))
                    });
                clash |= same || folder || folds;
            }
        }
    }
    !clash
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

    /// The sorted, one-pass check and the naive statement of its rules agree,
    /// over small worlds where paths meet, nest and fold into each other.
    #[test]
    fn the_sorted_check_agrees_with_every_pair_compared(
        items in proptest::collection::vec(
            (0usize..3, "[aAbß]{1,2}(/[aAb]{1,2}){0,2}", "[sS]ix|x", "[12]", proptest::bool::ANY),
            1..12,
        )
    ) {
        let entries: Vec<(Entry, bool)> = items
            .into_iter()
            .map(|(eco, path, name, version, ours)| match eco {
                0 => (entry("files", &path, "", &path), ours),
                1 => (entry("pypi", &name, &version, &format!("{name}/{}.tar.gz", path.replace('/', "-"))), ours),
                _ => (entry("npm", &name.to_lowercase(), &format!("{version}.0.0"), &format!("{name}/-/{path}.tgz")), ours),
            })
            .collect();
        let items: Vec<(&Entry, Holder<'_>)> =
            entries.iter().map(|(e, ours)| (e, if *ours { Holder::Bundle } else { Holder::Mirror("a") })).collect();
        proptest::prop_assert_eq!(with_holders(&items).is_ok(), naive_verdict(&items), "{:?}", with_holders(&items));
    }
}
