//! The mirror's file-system limits and what a failed import leaves:
//! however many entries share one blob, no inode runs out of hard links
//! and later imports keep working (also in a mirror that an older airlock
//! filled with links); an import refused or failed after its blobs were
//! staged and promoted takes its objects out again, and keeps its staging
//! only when a later run can still publish it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use airlock::id::{ContentId, RelPath};
use airlock::manifest::{Blob, Entry, FORMAT_SINGLE, Manifest};
use airlock::sign::SecretKey;

use common::{airlock, hostile, keygen, one_line, snapshot, write_tree};

/// Names one inode may have in a generation (airlock's budget, see src/mirror/tree.rs).
const LINK_BUDGET: u64 = 10_000;

/// A channel's bundles of plain files, built from parts (no file to hash on
/// the way), each chained to the one before.
struct Channel {
    key: SecretKey,
    public: PathBuf,
    name: String,
    sequence: u64,
    previous: Option<ContentId>,
}

impl Channel {
    fn new(dir: &Path, name: &str) -> Self {
        let (secret, public) = keygen(dir, name);
        Channel { key: SecretKey::load(&secret).unwrap(), public, name: name.into(), sequence: 0, previous: None }
    }

    /// The channel's next bundle, listing `files` (path, contents), written to `out`.
    fn bundle(&mut self, files: &[(String, &[u8])], out: &Path) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let blobs: BTreeMap<ContentId, Vec<u8>> = files.iter().map(|(_, d)| (ContentId::of(d), d.to_vec())).collect();
        let mut entries: Vec<Entry> = files.iter().map(|(path, data)| file_entry(path, data)).collect();
        entries.sort_by(|a, b| a.place().cmp(&b.place()));
        self.sequence += 1;
        let manifest = Manifest {
            format: FORMAT_SINGLE,
            tool: "airlock tests/limits.rs".into(),
            channel: self.name.clone(),
            sequence: self.sequence,
            previous: self.previous,
            created: now - 60,
            expires: now + 86_400,
            signers: vec![self.key.public().id()],
            volumes: 1,
            parity: 0,
            blobs: blobs
                .iter()
                .map(|(id, data)| Blob {
                    id: *id,
                    size: data.len() as u64,
                    volume: 0,
                    carried: true,
                    pieces: Vec::new(),
                })
                .collect(),
            entries: entries.into(),
        };
        self.previous = Some(ContentId::of(&manifest.to_bytes().unwrap()));
        fs::write(out, hostile::rebuild(&manifest, &blobs, &[&self.key], &[&self.key])).unwrap();
    }
}

fn file_entry(path: &str, content: &[u8]) -> Entry {
    Entry {
        ecosystem: "files".into(),
        name: path.into(),
        version: None,
        path: RelPath::new(path).unwrap(),
        blob: ContentId::of(content),
        size: content.len() as u64,
        digests: BTreeMap::new(),
        source: None,
        attributes: BTreeMap::new(),
        evidence: Vec::new(),
        missing: Vec::new(),
    }
}

/// `count` entries with the same `content`, 1,000 to a folder.
fn shared(count: usize, content: &[u8]) -> Vec<(String, &[u8])> {
    (0..count).map(|i| (format!("many/{:02}/{i:05}.txt", i / 1000), content)).collect()
}

fn import(bundle: &Path, public: &Path, mirror: &Path) -> assert_cmd::assert::Assert {
    airlock().args(["import", "--quiet"]).arg(bundle).arg("--trust").arg(public).arg("--mirror").arg(mirror).assert()
}

/// Per generation folder, the links it holds to each inode; and the most
/// links (`st_nlink`) any inode of the mirror has.
fn link_counts(mirror: &Path) -> (BTreeMap<String, u64>, u64) {
    let mut per_generation = BTreeMap::new();
    let mut most = 0;
    for generation in fs::read_dir(mirror.join(".airlock/generations")).unwrap() {
        let generation = generation.unwrap().path();
        let mut inodes: BTreeMap<u64, u64> = BTreeMap::new();
        count_links(&generation, &mut inodes, &mut most);
        let name = generation.file_name().unwrap().to_string_lossy().into_owned();
        per_generation.insert(name, inodes.values().copied().max().unwrap_or(0));
    }
    (per_generation, most)
}

fn count_links(dir: &Path, inodes: &mut BTreeMap<u64, u64>, most: &mut u64) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        assert!(!meta.file_type().is_symlink(), "{}: a link in the tree", entry.path().display());
        if meta.is_dir() {
            count_links(&entry.path(), inodes, most);
        } else {
            *inodes.entry(meta.ino()).or_default() += 1;
            *most = (*most).max(meta.nlink());
        }
    }
}

/// Every published file under MIRROR/files/many has `content`; returns how many there are.
fn check_published(mirror: &Path, content: &[u8]) -> usize {
    let mut seen = 0;
    for folder in fs::read_dir(mirror.join("files/many")).unwrap() {
        for file in fs::read_dir(folder.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            assert_eq!(fs::read(&path).unwrap(), content, "{}", path.display());
            seen += 1;
        }
    }
    seen
}

#[test]
fn seventy_thousand_entries_sharing_one_blob_import_and_later_imports_still_work() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut channel = Channel::new(dir.path(), "many");
    let mirror = dir.path().join("mirror");
    let content = b"the same bytes in every file\n";
    let mut files = shared(70_000, content);
    for round in 0..3 {
        let bundle = dir.path().join(format!("b{round}.airlock"));
        channel.bundle(&files, &bundle);
        import(&bundle, &channel.public, &mirror).success();
        // The next bundle of the channel lists one more file.
        files.push((format!("extra-{round}.txt"), b"another file\n"));
    }
    let (per_generation, most) = link_counts(&mirror);
    println!(
        "after three imports: most links one generation gives an inode {per_generation:?}, most links of any inode {most}"
    );
    for (generation, links) in &per_generation {
        assert!(*links <= LINK_BUDGET, "generation {generation} links one inode {links} times");
    }
    // The current and the previous generation (and the object's own name).
    assert!(most <= 2 * LINK_BUDGET + 1, "an inode has {most} links");
    assert_eq!(check_published(&mirror, content), 70_000);
    assert_eq!(fs::read(mirror.join("files/extra-1.txt")).unwrap(), b"another file\n");

    airlock().args(["gc", "--quiet", "--mirror"]).arg(&mirror).assert().success();
    assert_eq!(check_published(&mirror, content), 70_000);
    assert_eq!(fs::read_dir(mirror.join(".airlock/objects")).unwrap().count(), 2, "the shared blob and extra-1.txt");
    println!("70,000 entries sharing one blob, three imports and gc: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn a_mirror_an_older_airlock_filled_with_hard_links_recovers_on_the_next_imports() {
    let dir = tempfile::tempdir().unwrap();
    let mut channel = Channel::new(dir.path(), "old");
    let mirror = dir.path().join("mirror");
    // 33,000 empty files: the next generation's links would double that.
    let mut files = shared(33_000, b"");
    let first = dir.path().join("first.airlock");
    channel.bundle(&files, &first);
    import(&first, &channel.public, &mirror).success();

    // What an airlock without the link budget made of it: every entry a
    // hard link to the one object.
    let object = mirror.join(".airlock/objects").join(ContentId::of(b"").to_hex());
    let generation = fs::canonicalize(mirror.join(".airlock/current")).unwrap();
    let object_inode = fs::metadata(&object).unwrap().ino();
    for folder in fs::read_dir(generation.join("files/many")).unwrap() {
        for file in fs::read_dir(folder.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if fs::metadata(&path).unwrap().ino() != object_inode {
                fs::remove_file(&path).unwrap();
                fs::hard_link(&object, &path).unwrap();
            }
        }
    }
    assert_eq!(fs::metadata(&object).unwrap().nlink(), 33_001);

    for round in 0..2 {
        files.push((format!("extra-{round}.txt"), b"another file\n"));
        let bundle = dir.path().join(format!("next-{round}.airlock"));
        channel.bundle(&files, &bundle);
        import(&bundle, &channel.public, &mirror).success();
    }
    assert_eq!(check_published(&mirror, b""), 33_000);
    let (_, most) = link_counts(&mirror);
    println!("a mirror with 33,000 links to one inode, after two imports: most links of any inode {most}");
}

/// The names in `dir`, and in each folder in it, one level down.
fn listing(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            names.extend(
                fs::read_dir(&path).unwrap().map(|e| format!("{name}/{}", e.unwrap().file_name().to_string_lossy())),
            );
        }
        names.insert(name);
    }
    names
}

/// Incompressible bytes (xorshift), so a split bundle has several volumes.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A mirror holding channel `a`'s `tool.bin`, and a split bundle of
/// channel `b` (three volumes or more) bringing `late.txt` and new blobs.
fn mirror_and_split_bundle(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (key, public) = keygen(dir, "op");
    let first = dir.join("a");
    write_tree(&first, &[("tool.bin", b"the tool\n")]);
    let a = dir.join("a.airlock");
    common::export_files(&first, &key, &a).args(["--quiet", "--channel", "a"]).assert().success();
    let mirror = dir.join("mirror");
    import(&a, &public, &mirror).success();

    let second = dir.join("b");
    let blobs: Vec<(String, Vec<u8>)> = (0..6).map(|i| (format!("pkg/{i}.bin"), noise(30_000, i + 1))).collect();
    let mut listed: Vec<(&str, &[u8])> = blobs.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    listed.push(("late.txt", b"late\n"));
    write_tree(&second, &listed);
    let b = dir.join("b.airlock");
    common::export_files(&second, &key, &b).args(["--quiet", "--channel", "b", "--split", "64KiB"]).assert().success();
    assert!(fs::read_dir(&b).unwrap().count() >= 3, "a split bundle");
    (mirror, b, public)
}

#[test]
fn an_import_refused_after_its_blobs_were_promoted_leaves_no_staging_and_no_new_objects() {
    let dir = tempfile::tempdir().unwrap();
    let (mirror, bundle, public) = mirror_and_split_bundle(dir.path());
    // Publishing `late.txt` is refused once everything is staged and the
    // objects are promoted: the published tree has a folder of that name
    // (put there by hand, which nothing that checks the listing sees).
    let in_the_way = mirror.join(".airlock/current/files/late.txt");
    fs::create_dir(&in_the_way).unwrap();
    let before = snapshot(&mirror);
    let objects = listing(&mirror.join(".airlock/objects"));
    let staging = listing(&mirror.join(".airlock/staging"));

    let out = import(&bundle, &public, &mirror).code(1);
    let message = one_line(&out.get_output().stderr);
    assert!(message.contains("late.txt"), "{message}");
    assert_eq!(listing(&mirror.join(".airlock/objects")), objects, "the refused import left objects");
    assert_eq!(listing(&mirror.join(".airlock/staging")), staging, "the refused import left staging");
    assert_eq!(snapshot(&mirror), before);

    // Out of the way, the same bundle imports.
    fs::remove_dir(&in_the_way).unwrap();
    import(&bundle, &public, &mirror).success();
    assert_eq!(fs::read(mirror.join("files/late.txt")).unwrap(), b"late\n");
    assert_eq!(fs::read(mirror.join("files/tool.bin")).unwrap(), b"the tool\n");
    assert_eq!(fs::read_dir(mirror.join(".airlock/staging")).unwrap().count(), 0);
}

/// Makes `dir` refuse new names: read-only for a user, immutable for root
/// (who ignores modes). `None` where neither works here.
fn freeze(dir: &Path) -> Option<Frozen> {
    let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let frozen = if root {
        std::process::Command::new("chattr").arg("+i").arg(dir).status().is_ok_and(|s| s.success())
    } else {
        fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o555)).is_ok()
    };
    let frozen = Frozen { dir: dir.to_owned(), root, active: frozen };
    if frozen.active && fs::create_dir(dir.join("probe")).is_err() {
        return Some(frozen);
    }
    let _ = fs::remove_dir(dir.join("probe"));
    eprintln!("skipped: cannot make {} refuse new names here (chattr or modes)", dir.display());
    None
}

struct Frozen {
    dir: PathBuf,
    root: bool,
    active: bool,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if self.root {
            let _ = std::process::Command::new("chattr").arg("-i").arg(&self.dir).status();
        } else {
            let _ = fs::set_permissions(&self.dir, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        }
    }
}

#[test]
fn a_publish_that_fails_on_the_disk_takes_its_objects_out_and_a_retry_after_gc_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let (mirror, bundle, public) = mirror_and_split_bundle(dir.path());
    let before = snapshot(&mirror);
    let objects = listing(&mirror.join(".airlock/objects"));
    {
        // Everything verifies, is promoted and built; renaming the new
        // generation into place fails.
        let Some(_frozen) = freeze(&mirror.join(".airlock/generations")) else { return };
        let out = import(&bundle, &public, &mirror).code(3);
        one_line(&out.get_output().stderr);
    }
    assert_eq!(listing(&mirror.join(".airlock/objects")), objects, "the failed publish left objects");
    assert_eq!(snapshot(&mirror), before);
    // Not the bundle's fault: its verified volumes are kept for the retry,
    // and gc leaves them, as the bundle can still be imported.
    let staged = listing(&mirror.join(".airlock/staging"));
    assert!(staged.iter().any(|n| n.ends_with("/volumes")), "{staged:?}");
    airlock().args(["gc", "--quiet", "--mirror"]).arg(&mirror).assert().success();

    // The retry reads no volume: give it only the first, the rest are staged.
    let first = fs::read_dir(&bundle).unwrap().map(|e| e.unwrap().path()).min().unwrap();
    import(&first, &public, &mirror).success();
    assert_eq!(fs::read(mirror.join("files/late.txt")).unwrap(), b"late\n");
    assert_eq!(fs::read_dir(mirror.join(".airlock/staging")).unwrap().count(), 0);
}

#[test]
fn what_killed_runs_left_half_built_goes_when_the_mirror_is_next_opened() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    write_tree(&input, &[("a.txt", b"alpha\n")]);
    let bundle = dir.path().join("a.airlock");
    common::export(&input, &[&key], &bundle);
    let mirror = dir.path().join("mirror");
    import(&bundle, &public, &mirror).success();
    let before = snapshot(&mirror);

    // Each holds a link to a published file, as a half-built generation
    // does to every one: the build of another bundle's killed import, and a
    // generation renamed into place by a run killed before the swap.
    let published = mirror.join(".airlock/current/files/a.txt");
    let leftovers = [
        mirror.join(".airlock/staging").join("ab".repeat(32)).join("generation/files"),
        mirror.join(".airlock/generations/2/files"),
    ];
    for folder in &leftovers {
        fs::create_dir_all(folder).unwrap();
        fs::hard_link(&published, folder.join("a.txt")).unwrap();
    }
    assert_eq!(fs::metadata(&published).unwrap().nlink(), 4);

    airlock().args(["gc", "--quiet", "--mirror"]).arg(&mirror).assert().success();
    for folder in &leftovers {
        assert!(!folder.parent().unwrap().exists(), "{} is still there", folder.display());
    }
    assert_eq!(fs::metadata(&published).unwrap().nlink(), 2, "the object and the published generation");
    assert_eq!(snapshot(&mirror), before);
}
