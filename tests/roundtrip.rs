//! export -> import reproduces arbitrary file trees exactly.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use airlock::export::{ExportOptions, Inputs, Network, export};
use airlock::import::import;
use airlock::policy::Policy;
use airlock::progress::Silent;
use airlock::sign::SecretKey;
use proptest::prelude::*;

/// Path components: spaces, unicode, dots, but never "." or "..". One case
/// only, and no ß (which folds to "ss"): names that differ only by case are
/// refused by design (tests/attacks.rs), not a round trip.
fn component() -> impl Strategy<Value = String> {
    "[a-z0-9 _.üé€漢-]{1,10}".prop_filter("not . or ..", |c| c != "." && c != "..")
}

/// A tree as path -> contents, without a file that is also a folder.
fn tree() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    let path = prop::collection::vec(component(), 1..4).prop_map(|parts| parts.join("/"));
    let contents = prop_oneof![Just(Vec::new()), prop::collection::vec(any::<u8>(), 0..3000)];
    prop::collection::btree_map(path, contents, 1..12).prop_map(|mut files| {
        let names: Vec<String> = files.keys().cloned().collect();
        files.retain(|name, _| !names.iter().any(|other| other.starts_with(&format!("{name}/"))));
        files
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn export_then_import_reproduces_the_tree(files in tree()) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        for (name, data) in &files {
            let path = input.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, data).unwrap();
        }
        let key = SecretKey::generate().unwrap();
        let policy = Policy::from_keys(vec![key.public().clone()], 1).unwrap();
        let bundle = dir.path().join("b.airlock");
        let options = ExportOptions {
            inputs: Inputs { files: vec![input], ..Inputs::default() },
            keys: vec![key.into()],
            out: bundle.clone(),
            channel: "prop".into(),
            expires_in: Duration::from_hours(1),
            now: airlock::now(),
            force: false,
            threads: 0,
            network: Network::default(),
            state: None,
            full: false,
            split: None,
        };
        export(&options, &Silent).unwrap();
        let mirror = dir.path().join("mirror");
        import(&bundle, &policy, &mirror, airlock::now(), false, &Silent).unwrap();
        let published: BTreeMap<String, Vec<u8>> = common::snapshot(&mirror.join("files"))
            .into_iter()
            .filter(|(name, _)| !name.ends_with('/'))
            .collect();
        prop_assert_eq!(published, files.clone());
        // Importing again is a no-op for the published files.
        import(&bundle, &policy, &mirror, airlock::now(), false, &Silent).unwrap();
        let again: BTreeMap<String, Vec<u8>> = common::snapshot(&mirror.join("files"))
            .into_iter()
            .filter(|(name, _)| !name.ends_with('/'))
            .collect();
        prop_assert_eq!(again, files);
    }
}
