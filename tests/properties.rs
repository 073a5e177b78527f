//! Properties of the decoders and of import, over generated inputs. CI runs
//! these; the cargo-fuzz targets in tests/fuzz/ explore the same decoders
//! for longer (README: Developing).
//!
//! "Any single-bit flip anywhere in a bundle is rejected" is not sampled
//! here: tests/tamper.rs (`every_bit_flip_is_rejected`) flips every bit
//! position of a whole bundle, which is stronger than any sample.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use airlock::ecosystem::ManifestExt as _;
use airlock::export::{ExportOptions, Inputs, Network, export};
use airlock::id::{ContentId, KeyId, RelPath};
use airlock::import::import;
use airlock::manifest::{
    Blob, Digest, Entry, Evidence, FORMAT_SEGMENTED, FORMAT_SINGLE, MAX_SEQUENCE, Manifest, Missing, canonical,
};
use airlock::policy::Policy;
use airlock::progress::Silent;
use airlock::sign::{SecretKey, envelope};
use proptest::prelude::*;

fn content_id() -> impl Strategy<Value = ContentId> {
    any::<[u8; 32]>().prop_map(ContentId)
}

fn rel_path() -> impl Strategy<Value = RelPath> {
    let component = "[a-zA-Z0-9 _.üßé€漢-]{1,8}".prop_filter("not . or ..", |c| c != "." && c != "..");
    prop::collection::vec(component, 1..4).prop_map(|parts| RelPath::new(&parts.join("/")).unwrap())
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn entry() -> impl Strategy<Value = Entry> {
    let names = (text(), prop::option::of(text()), rel_path(), content_id(), any::<u64>());
    let extras = (
        prop::collection::btree_map(text(), bytes(64).prop_map(Digest), 0..3),
        prop::option::of(text()),
        prop::collection::btree_map(text(), text(), 0..3),
        prop::collection::vec((text(), bytes(200)).prop_map(|(kind, data)| Evidence { kind, data }), 0..3),
        prop::collection::vec((text(), text()).prop_map(|(kind, looked)| Missing { kind, looked }), 0..2),
    );
    (text(), names, extras).prop_map(
        |(ecosystem, (name, version, path, blob, size), (digests, source, attributes, evidence, missing))| Entry {
            ecosystem,
            name,
            version,
            path,
            blob,
            size,
            digests,
            source,
            attributes,
            evidence,
            missing,
        },
    )
}

/// Any piece of a chunked blob, valid or not.
fn piece() -> impl Strategy<Value = airlock::manifest::Piece> {
    (content_id(), any::<u64>(), any::<u32>()).prop_map(|(id, size, volume)| airlock::manifest::Piece {
        id,
        size,
        volume,
    })
}

/// Any manifest the types can hold, valid or not.
fn manifest() -> impl Strategy<Value = Manifest> {
    let head = (any::<u32>(), text(), text(), any::<u64>(), prop::option::of(content_id()), any::<u64>(), any::<u64>());
    let body = (
        prop::collection::vec(any::<[u8; 16]>().prop_map(KeyId), 0..3),
        any::<u32>(),
        prop::collection::vec(
            (content_id(), any::<u64>(), any::<u32>(), any::<bool>(), prop::collection::vec(piece(), 0..3))
                .prop_map(|(id, size, volume, carried, pieces)| Blob { id, size, volume, carried, pieces }),
            0..4,
        ),
        prop::collection::vec(entry(), 0..4),
    );
    (head, body).prop_map(
        |((format, tool, channel, sequence, previous, created, expires), (signers, volumes, blobs, entries))| {
            Manifest {
                format,
                tool,
                channel,
                sequence,
                previous,
                created,
                expires,
                signers,
                volumes,
                parity: 0,
                blobs,
                entries: entries.into(),
            }
        },
    )
}

/// A manifest that passes the cross-field rules: plain files at distinct
/// paths, each blob listed once with its size.
fn valid_manifest() -> impl Strategy<Value = Manifest> {
    let files = prop::collection::btree_map(rel_path(), bytes(100), 1..6);
    (files, "[a-z0-9._-]{1,16}", 1..=MAX_SEQUENCE, any::<u32>(), prop::option::of(content_id()))
        .prop_map(|(files, channel, sequence, lifetime, previous)| {
            let entries: Vec<Entry> = files
                .iter()
                .map(|(path, data)| Entry {
                    ecosystem: "files".into(),
                    name: path.to_string(),
                    version: None,
                    path: path.clone(),
                    blob: ContentId::of(data),
                    size: data.len() as u64,
                    digests: BTreeMap::new(),
                    source: None,
                    attributes: BTreeMap::new(),
                    evidence: Vec::new(),
                    missing: Vec::new(),
                })
                .collect();
            let mut blobs: Vec<Blob> = Vec::new();
            for e in &entries {
                if !blobs.iter().any(|b| b.id == e.blob) {
                    blobs.push(Blob { id: e.blob, size: e.size, volume: 0, carried: true, pieces: Vec::new() });
                }
            }
            Manifest {
                format: FORMAT_SINGLE,
                tool: "airlock proptest".into(),
                channel,
                sequence,
                previous,
                created: 1_700_000_000,
                expires: 1_700_000_000 + u64::from(lifetime),
                signers: vec![KeyId([1; 16])],
                volumes: 1,
                parity: 0,
                blobs,
                entries: entries.into(),
            }
        })
        .prop_filter("paths a file system would merge", |m| m.check().is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// decode(encode(m)) == m, and the encoding is the one canonical form.
    #[test]
    fn manifests_decode_to_what_was_encoded(mut m in manifest()) {
        m.format = FORMAT_SINGLE;
        let bytes = m.to_bytes().unwrap();
        let back: Manifest = canonical::from_slice(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    /// The same through the full decoder, which adds the schema's rules.
    #[test]
    fn valid_manifests_pass_their_own_rules_after_a_round_trip(m in valid_manifest()) {
        prop_assert_eq!(Manifest::from_bytes(&m.to_bytes().unwrap()).unwrap(), m.clone());
        // And as format 2: a root and the segments it names.
        // Its blob table lists the carried blobs; those not carried come back after them, by id.
        let mut segmented = Manifest { format: FORMAT_SEGMENTED, ..m };
        let (root, segments) = segmented.encode().unwrap();
        airlock::manifest::segments::normalize_blobs(&mut segmented.blobs);
        prop_assert_eq!(Manifest::decode(&root, segments.as_deref(), &airlock::manifest::segments::NoSegments).unwrap(), segmented);
    }

    /// The envelope carries any payload unchanged, and verifies only for its signers.
    #[test]
    fn envelopes_open_to_their_payload(payload in bytes(2000), signers in 1usize..4) {
        let keys: Vec<SecretKey> = (0..signers).map(|_| SecretKey::generate().unwrap()).collect();
        let sealed = envelope::seal(&payload, &keys, envelope::MANIFEST).unwrap();
        let opened = envelope::open_untrusted(&sealed, envelope::MANIFEST).unwrap();
        prop_assert_eq!(&opened.payload, &payload);
        let policy = Policy::from_keys(keys.iter().map(|k| k.public().clone()).collect(), signers).unwrap();
        prop_assert_eq!(envelope::verify(&sealed, policy.keyring(), envelope::MANIFEST).unwrap().payload, payload);
    }

    /// Arbitrary bytes, and canonical encodings with one byte changed, are
    /// answered with an error, never a panic (the fuzz targets go further).
    #[test]
    fn decoders_refuse_garbage_without_panicking(garbage in bytes(4000), mut m in manifest(), at in any::<usize>(), to in any::<u8>()) {
        let _ = Manifest::from_bytes(&garbage);
        let _ = Manifest::decode(&garbage, Some(&garbage), &airlock::manifest::segments::NoSegments);
        m.format = FORMAT_SEGMENTED;
        let (mut root, segments) = m.encode().unwrap();
        let mut segments = segments.unwrap();
        let (root_len, total) = (root.len(), root.len() + segments.len());
        match (at % total).checked_sub(root_len) {
            Some(in_segments) => segments[in_segments] = to,
            None => root[at % root_len] = to,
        }
        let _ = Manifest::decode(&root, Some(&segments), &airlock::manifest::segments::NoSegments);
        m.format = FORMAT_SINGLE;
        let _ = envelope::open_untrusted(&garbage, envelope::MANIFEST);
        let mut bytes = m.to_bytes().unwrap();
        let at = at % bytes.len();
        bytes[at] = to;
        let _ = Manifest::from_bytes(&bytes);
        let _ = canonical::check_shape(&bytes, canonical::Shape { depth: 16, items: bytes.len() });
    }
}

/// A tree as path -> contents, without a file that is also a folder.
fn tree() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    let component = "[a-z0-9 _.é-]{1,8}".prop_filter("not . or ..", |c| c != "." && c != "..");
    let path = prop::collection::vec(component, 1..3).prop_map(|parts| parts.join("/"));
    prop::collection::btree_map(path, bytes(3000), 1..8).prop_map(|mut files| {
        let names: Vec<String> = files.keys().cloned().collect();
        files.retain(|name, _| !names.iter().any(|other| other.starts_with(&format!("{name}/"))));
        files
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Importing the same bundle again leaves every byte of the mirror,
    /// its state and its generations included, as the first import left it.
    #[test]
    fn import_is_idempotent(first in tree(), second in tree()) {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate().unwrap();
        let policy = Policy::from_keys(vec![key.public().clone()], 1).unwrap();
        let mirror = dir.path().join("mirror");
        let state = dir.path().join("state");
        for (n, files) in [first, second].iter().enumerate() {
            let input = dir.path().join(format!("in{n}"));
            for (name, data) in files {
                let path = input.join(name);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, data).unwrap();
            }
            let bundle = dir.path().join(format!("{n}.airlock"));
            let options = ExportOptions {
                inputs: Inputs { files: vec![input], ..Inputs::default() },
                keys: vec![key.clone().into()],
                out: bundle.clone(),
                channel: "prop".into(),
                expires_in: Duration::from_hours(1),
                now: airlock::now(),
                force: false,
                threads: 0,
                network: Network::default(),
                state: Some(state.clone()),
                full: false,
                split: None,
            };
            export(&options, &Silent).unwrap();
            let report = import(&bundle, &policy, &mirror, airlock::now(), false, &Silent).unwrap();
            prop_assert_eq!(report.outcome, "published");
            let once = common::snapshot(&mirror);
            let report = import(&bundle, &policy, &mirror, airlock::now(), false, &Silent).unwrap();
            prop_assert_eq!(report.outcome, "already-imported");
            prop_assert_eq!(common::snapshot(&mirror), once);
        }
    }
}
