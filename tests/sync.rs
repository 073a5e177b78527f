//! Periodic sync over a channel: bundles numbered by the exporter's state,
//! rollback, replay and fork refused on import with the mirror unchanged,
//! and the exact last bundle re-imported as a no-op.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{airlock, export_in_channel, keygen, one_line, snapshot, write_tree};
use serde_json::Value;

fn week(dir: &Path, key: &Path, n: u32, state: &Path) -> PathBuf {
    let input = dir.join(format!("week{n}"));
    write_tree(&input, &[("release.txt", format!("release of week {n}\n").as_bytes()), ("tool.bin", b"unchanged")]);
    let out = dir.join(format!("week{n}.airlock"));
    export_in_channel(&input, &[key], &out, Some(state));
    out
}

fn import(bundle: &Path, public: &Path, mirror: &Path) -> assert_cmd::assert::Assert {
    airlock().args(["import", "--json"]).arg(bundle).arg("--trust").arg(public).arg("--mirror").arg(mirror).assert()
}

#[test]
fn three_weeks_in_order_then_replays_rollbacks_and_forks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let state = dir.path().join("state");
    let bundles: Vec<PathBuf> = (1..=3).map(|n| week(dir.path(), &key, n, &state)).collect();
    let channel: Value = serde_json::from_slice(&fs::read(state.join("default.json")).unwrap()).unwrap();
    assert_eq!(channel["sequence"], 3);

    let mirror = dir.path().join("mirror");
    for bundle in &bundles {
        import(bundle, &public, &mirror).success();
    }
    assert_eq!(fs::read_to_string(mirror.join("files/release.txt")).unwrap(), "release of week 3\n");
    let after_three = snapshot(&mirror);

    // The exact last bundle again: a no-op that succeeds, for retrying sync scripts.
    let out = import(&bundles[2], &public, &mirror).success();
    let report: Value = common::json_report(&out.get_output().stdout);
    assert_eq!(report["report"]["outcome"], "already-imported");
    assert_eq!(snapshot(&mirror), after_three);

    // The second week replayed, and the first re-imported after the third.
    for (bundle, expect) in [(&bundles[1], "roll the mirror back"), (&bundles[0], "roll the mirror back")] {
        let out = import(bundle, &public, &mirror).code(1);
        assert!(one_line(&out.get_output().stderr).contains(expect));
        assert_eq!(snapshot(&mirror), after_three);
    }

    // A bundle from a different history claiming the next place: a fork.
    let other_state = dir.path().join("other-state");
    for n in 1..=4 {
        week(dir.path(), &key, 10 + n, &other_state);
    }
    let out = import(&dir.path().join("week14.airlock"), &public, &mirror).code(1);
    assert!(one_line(&out.get_output().stderr).contains("fork"));
    assert_eq!(snapshot(&mirror), after_three);

    // An older bundle never imported here is a rollback too.
    let out = import(&dir.path().join("week12.airlock"), &public, &mirror).code(1);
    assert!(one_line(&out.get_output().stderr).contains("rollback"));

    // The real next bundle still imports.
    let fourth = week(dir.path(), &key, 4, &state);
    import(&fourth, &public, &mirror).success();
    assert_eq!(fs::read_to_string(mirror.join("files/release.txt")).unwrap(), "release of week 4\n");
}

#[test]
fn channels_keep_separate_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    write_tree(&input, &[("a.txt", b"a")]);
    let state = dir.path().join("state");
    for channel in ["weekly", "urgent"] {
        airlock()
            .args(["export", "--quiet", "--channel", channel, "--files"])
            .arg(&input)
            .arg("--key")
            .arg(&key)
            .arg("--state")
            .arg(&state)
            .arg("--out")
            .arg(dir.path().join(format!("{channel}.airlock")))
            .assert()
            .success();
    }
    let mirror = dir.path().join("mirror");
    import(&dir.path().join("weekly.airlock"), &public, &mirror).success();
    import(&dir.path().join("urgent.airlock"), &public, &mirror).success();
    assert!(state.join("weekly.json").is_file() && state.join("urgent.json").is_file());
}

#[test]
fn co_signing_an_existing_bundle_meets_a_two_of_three_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keygen(dir.path(), "alice");
    let (bob, bob_pub) = keygen(dir.path(), "bob");
    let (_, carol_pub) = keygen(dir.path(), "carol");
    let input = dir.path().join("in");
    write_tree(&input, &[("a.txt", b"alpha"), ("b.bin", &[7u8; 3000])]);
    let bundle = dir.path().join("b.airlock");
    common::export(&input, &[&alice], &bundle);
    let policy = dir.path().join("policy.toml");
    let keys: Vec<String> = [("alice", &alice_pub), ("bob", &bob_pub), ("carol", &carol_pub)]
        .iter()
        .map(|(name, public)| {
            format!("[[keys]]\nname = \"{name}\"\nfile = \"{}\"\n", public.file_name().unwrap().to_str().unwrap())
        })
        .collect();
    let text = format!("version = 1\nthreshold = 2\n{}", keys.concat());
    fs::write(&policy, text).unwrap();
    let out = airlock().arg("verify").arg(&bundle).arg("--policy").arg(&policy).assert().code(1);
    assert!(one_line(&out.get_output().stderr).contains("requires 2"));

    // Bob checks what Alice signed, then co-signs.
    airlock()
        .args(["sign", "--quiet"])
        .arg(&bundle)
        .arg("--key")
        .arg(&bob)
        .arg("--trust")
        .arg(&alice_pub)
        .assert()
        .success();
    airlock().arg("verify").arg(&bundle).arg("--policy").arg(&policy).assert().success();
    // The volume is still a plain .tar.zst with the same blobs.
    let listed = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -dc {} | tar -t", bundle.display()))
        .output()
        .unwrap();
    // manifest.cose, manifest.segments and the two blobs.
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 4);

    // Signing twice with one key is refused and changes nothing.
    let before = fs::read(&bundle).unwrap();
    let out = airlock().arg("sign").arg(&bundle).arg("--key").arg(&bob).arg("--trust").arg(&alice_pub).assert().code(2);
    assert!(one_line(&out.get_output().stderr).contains("already signed"));
    assert_eq!(fs::read(&bundle).unwrap(), before);

    // A damaged bundle is not co-signed.
    let mut damaged = before.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    let copy = dir.path().join("damaged.airlock");
    fs::write(&copy, &damaged).unwrap();
    airlock().arg("sign").arg(&copy).arg("--key").arg(&bob).arg("--trust").arg(&alice_pub).assert().code(1);
    assert_eq!(fs::read(&copy).unwrap(), damaged);
}

#[test]
fn status_and_diff_describe_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let state = dir.path().join("state");
    let first = week(dir.path(), &key, 1, &state);
    let input = dir.path().join("week2");
    write_tree(&input, &[("release.txt", b"release of week 2\n"), ("new.txt", b"added")]);
    let second = dir.path().join("week2.airlock");
    export_in_channel(&input, &[&key], &second, Some(&state));

    let out = airlock().args(["diff", "--json"]).arg(&first).arg(&second).assert().success();
    let report: Value = common::json_report(&out.get_output().stdout);
    let changes: Vec<(String, String)> = report["report"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["change"].as_str().unwrap().to_owned(), c["path"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        changes,
        [
            ("added".into(), "new.txt".into()),
            ("changed".into(), "release.txt".into()),
            ("removed".into(), "tool.bin".into())
        ]
    );

    let mirror = dir.path().join("mirror");
    import(&first, &public, &mirror).success();
    import(&second, &public, &mirror).success();
    let out = airlock().args(["status", "--json", "--mirror"]).arg(&mirror).assert().success();
    let report: Value = common::json_report(&out.get_output().stdout);
    assert_eq!(report["report"]["channels"][0]["last_sequence"], 2);
    assert_eq!(report["report"]["channels"][0]["next_sequence"], 3);
    let out = airlock().args(["status", "--mirror"]).arg(dir.path().join("nowhere")).assert().code(2);
    one_line(&out.get_output().stderr);
}

#[test]
fn incremental_bundles_carry_only_what_changed_and_gaps_need_a_flag_or_a_full_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let state = dir.path().join("state");
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let export_week = |n: u32, extra: &[&str]| {
        let input = dir.path().join(format!("w{n}"));
        write_tree(&input, &[("release.txt", format!("week {n}\n").as_bytes()), ("big.bin", &big)]);
        let out = dir.path().join(format!("w{n}.airlock"));
        airlock()
            .args(["export", "--json", "--files"])
            .arg(&input)
            .arg("--key")
            .arg(&key)
            .arg("--state")
            .arg(&state)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .assert()
            .success();
        out
    };
    let sizes: Vec<u64> = (1..=3).map(|n| fs::metadata(export_week(n, &[])).unwrap().len()).collect();
    assert!(sizes[1] * 20 < sizes[0] && sizes[2] * 20 < sizes[0], "incremental bundles are not small: {sizes:?}");

    // Week 3 straight after week 1 is a gap.
    let mirror = dir.path().join("mirror");
    import(&dir.path().join("w1.airlock"), &public, &mirror).success();
    let before = snapshot(&mirror);
    let out = import(&dir.path().join("w3.airlock"), &public, &mirror).code(1);
    assert!(one_line(&out.get_output().stderr).contains("gap"));
    assert_eq!(snapshot(&mirror), before);
    airlock()
        .args(["import", "--quiet", "--allow-gap"])
        .arg(dir.path().join("w3.airlock"))
        .arg("--trust")
        .arg(&public)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    assert_eq!(fs::read(mirror.join("files/big.bin")).unwrap(), big);
    assert_eq!(fs::read_to_string(mirror.join("files/release.txt")).unwrap(), "week 3\n");

    // A new site cannot start from an incremental bundle, but can from a --full one.
    let fresh = dir.path().join("fresh");
    let out = import(&dir.path().join("w3.airlock"), &public, &fresh).code(1);
    assert!(one_line(&out.get_output().stderr).contains("--full"));
    let full = export_week(4, &["--full"]);
    assert!(fs::metadata(&full).unwrap().len() > sizes[0] / 2);
    import(&full, &public, &fresh).success();
    assert_eq!(fs::read(fresh.join("files/big.bin")).unwrap(), big);
}

#[test]
fn a_package_dropped_from_the_channel_is_withdrawn_from_the_index() {
    use common::registry::{self, Faults, Registry};
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let registry = Registry::start(Faults::default());
    let state = dir.path().join("state");
    let mirror = dir.path().join("mirror");
    let full = registry::requirements_txt();
    let without_sdistonly: String = full.split_inclusive('\n').skip_while(|l| !l.starts_with("tinyapp")).collect();
    for (week, requirements) in [(1, full.as_str()), (2, without_sdistonly.as_str()), (3, without_sdistonly.as_str())] {
        let lock = dir.path().join(format!("requirements-{week}.txt"));
        fs::write(&lock, requirements).unwrap();
        let bundle = dir.path().join(format!("{week}.airlock"));
        airlock()
            .args(["export", "--quiet", "--pypi-lock"])
            .arg(&lock)
            .arg("--pypi-index")
            .arg(format!("{}/simple/", registry.base))
            .arg("--cache")
            .arg(dir.path().join("cache"))
            .arg("--state")
            .arg(&state)
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(&bundle)
            .assert()
            .success();
        import(&bundle, &public, &mirror).success();
        let root = fs::read_to_string(mirror.join("pypi/simple/index.html")).unwrap();
        assert_eq!(root.contains("sdistonly"), week == 1, "week {week}: {root}");
    }
    assert!(!mirror.join("pypi/simple/sdistonly/index.html").exists());
    assert!(!mirror.join("pypi/simple/sdistonly").join(registry::SDIST_ONLY).exists());
    assert!(mirror.join("pypi/simple/tinyapp/index.html").is_file());

    // gc reclaims the withdrawn blob once no kept generation uses it.
    let objects = || fs::read_dir(mirror.join(".airlock/objects")).unwrap().count();
    let before = objects();
    let out = airlock().args(["gc", "--json", "--mirror"]).arg(&mirror).assert().success();
    let report: Value = common::json_report(&out.get_output().stdout);
    assert_eq!(report["report"]["objects_removed"], 1);
    assert_eq!(objects(), before - 1);
    assert!(mirror.join("pypi/simple/tinyapp/index.html").is_file());
    let out = airlock().args(["gc", "--mirror"]).arg(dir.path().join("nowhere")).assert().code(2);
    one_line(&out.get_output().stderr);
}

#[test]
fn a_bundle_from_a_channel_the_policy_does_not_list_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    write_tree(&input, &[("a.txt", b"a")]);
    let bundle = dir.path().join("b.airlock");
    airlock()
        .args(["export", "--quiet", "--channel", "urgent", "--files"])
        .arg(&input)
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&bundle)
        .assert()
        .success();
    let policy = dir.path().join("policy.toml");
    fs::write(
        &policy,
        "version = 1\nthreshold = 1\nchannels = [\"weekly\"]\n[[keys]]\nname = \"op\"\nfile = \"op.pub\"\n",
    )
    .unwrap();
    let out = airlock().arg("verify").arg(&bundle).arg("--policy").arg(&policy).assert().code(1);
    assert!(one_line(&out.get_output().stderr).contains("urgent"));
    fs::write(
        &policy,
        "version = 1\nthreshold = 1\nchannels = [\"weekly\", \"urgent\"]\n[[keys]]\nname = \"op\"\nfile = \"op.pub\"\n",
    )
    .unwrap();
    airlock().arg("verify").arg(&bundle).arg("--policy").arg(&policy).assert().success();
}

#[test]
fn a_dry_run_says_what_would_be_published_replaced_and_withdrawn_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let state = dir.path().join("state");
    let bundle = |n: u32, files: &[(&str, &[u8])]| {
        let input = dir.path().join(format!("in{n}"));
        write_tree(&input, files);
        let out = dir.path().join(format!("{n}.airlock"));
        export_in_channel(&input, &[&key], &out, Some(&state));
        out
    };
    let first = bundle(1, &[("keep.txt", b"kept"), ("release.txt", b"release 1"), ("old.txt", b"dropped next week")]);
    let second = bundle(2, &[("keep.txt", b"kept"), ("release.txt", b"release 2"), ("new.txt", b"new this week")]);
    let dry_run = |bundle: &Path, mirror: &Path, flag: &str| {
        airlock()
            .args(["import", "--dry-run", flag])
            .arg(bundle)
            .arg("--trust")
            .arg(&public)
            .arg("--mirror")
            .arg(mirror)
            .assert()
    };

    // Into a mirror that does not exist yet: verified, said, and no folder made.
    let mirror = dir.path().join("mirror");
    let out = dry_run(&first, &mirror, "--json").success();
    let report = common::json_report(&out.get_output().stdout);
    assert_eq!(report["report"]["outcome"], "dry-run");
    assert_eq!(report["report"]["mirror"]["generation"], 1);
    assert_eq!(report["report"]["changes"]["added"], 3);
    assert!(!mirror.exists(), "a dry run made the mirror");

    import(&first, &public, &mirror).success();
    let before = snapshot(&mirror);
    let out = dry_run(&second, &mirror, "-v").success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for line in [
        "would publish 3 files into",
        "(generation 2)",
        "would replace 1 entry with new content",
        "would withdraw 1 entry the channel no longer lists",
        "withdrew  files old.txt",
        "replaced  files release.txt",
        "nothing was written",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    let out = dry_run(&second, &mirror, "--json").success();
    let report = common::json_report(&out.get_output().stdout);
    let changes = &report["report"]["changes"];
    assert_eq!(changes["added"], 1, "{changes:#}");
    assert_eq!(changes["replaced"][0]["path"], "release.txt", "{changes:#}");
    assert_eq!(changes["withdrawn"][0]["path"], "old.txt", "{changes:#}");
    assert_eq!(snapshot(&mirror), before, "a dry run changed the mirror");

    // The import for real does and says the same, on its audit page too.
    let out = import(&second, &public, &mirror).success();
    let report = common::json_report(&out.get_output().stdout);
    assert_eq!(report["report"]["outcome"], "published");
    assert_eq!(&report["report"]["changes"], changes);
    assert!(!mirror.join("files/old.txt").exists());
    let page = fs::read_to_string(report["report"]["audit_page"].as_str().unwrap()).unwrap();
    assert!(page.contains("<td id=\"entries-withdrawn\">1</td>"), "{page}");
    assert!(page.contains("<table id=\"withdrawn\">"), "{page}");
    assert!(page.contains("<code>old.txt</code>"), "{page}");
}

/// A channel of many small files, one of them changed each week.
fn many_files_week(dir: &Path, key: &Path, state: &Path, n: u32) -> PathBuf {
    let input = dir.join("many");
    if n == 1 {
        let files: Vec<(String, Vec<u8>)> =
            (0..2000).map(|i| (format!("docs/{i:04}.txt"), format!("page {i}\n").into_bytes())).collect();
        let files: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
        write_tree(&input, &files);
    } else {
        fs::write(input.join(format!("docs/{:04}.txt", 100 * n)), format!("page changed in week {n}\n")).unwrap();
    }
    let out = dir.join(format!("many{n}.airlock"));
    export_in_channel(&input, &[key], &out, Some(state));
    out
}

#[test]
fn incremental_bundles_leave_out_the_manifest_segments_the_site_already_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let state = dir.path().join("state");
    let weeks: Vec<PathBuf> = (1..=4).map(|n| many_files_week(dir.path(), &key, &state, n)).collect();
    let size = |p: &PathBuf| fs::metadata(p).unwrap().len();
    // Week 2 still lists every blob again as not carried (its blob table
    // changes once); from week 3 on, a changed file is a segment or two.
    assert!(size(&weeks[2]) * 8 < size(&weeks[0]), "week 3 is {} bytes, week 1 {}", size(&weeks[2]), size(&weeks[0]));
    let inspect = |bundle: &Path, mirror: Option<&Path>| {
        let mut command = airlock();
        command.args(["inspect", "--json"]).arg(bundle);
        if let Some(mirror) = mirror {
            command.arg("--mirror").arg(mirror);
        }
        command.output().unwrap()
    };

    // Without the mirror that holds the left-out segments, verify and inspect say what to pass.
    let out = airlock().arg("verify").arg(&weeks[2]).arg("--trust").arg(&public).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out.stderr);
    assert!(line.contains("is not carried") && line.contains("--mirror"), "{line}");
    assert_eq!(inspect(&weeks[2], None).status.code(), Some(1));

    // On the exporting side the state keeps the segments of the channel's
    // last bundle: that bundle verifies and is co-signed there.
    let (bob, _) = keygen(dir.path(), "bob");
    let with_state = |command: &str, bundle: &Path| {
        let mut run = airlock();
        run.args([command, "--quiet"]).arg(bundle).arg("--trust").arg(&public).arg("--state").arg(&state);
        run
    };
    with_state("verify", &weeks[3]).assert().success();
    with_state("sign", &weeks[3]).arg("--key").arg(&bob).assert().success();
    let kept = fs::read_dir(state.join("segments")).unwrap().count();
    let named = fs::read_to_string(state.join("default.segments")).unwrap().lines().count();
    assert_eq!(kept, named, "the state keeps exactly the segments of the last bundle");

    // A new site cannot start from it: nothing is written.
    let fresh = dir.path().join("fresh");
    let out = import(&weeks[2], &public, &fresh).code(1);
    let line = one_line(&out.get_output().stderr);
    assert!(line.contains("does not hold it") && line.contains("--full"), "{line}");
    assert!(!fresh.exists());

    // A gap leaves the site without the segments the bundle relies on: even with --allow-gap it is refused, unchanged.
    let mirror = dir.path().join("mirror");
    import(&weeks[0], &public, &mirror).success();
    let before = snapshot(&mirror);
    let out = airlock()
        .args(["import", "--allow-gap"])
        .arg(&weeks[2])
        .arg("--trust")
        .arg(&public)
        .arg("--mirror")
        .arg(&mirror)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line(&out.stderr).contains("in order"), "{}", one_line(&out.stderr));
    assert_eq!(snapshot(&mirror), before);

    // In order, each bundle finds the segments the one before kept.
    for week in &weeks[1..] {
        import(week, &public, &mirror).success();
    }
    assert_eq!(fs::read_to_string(mirror.join("files/docs/0400.txt")).unwrap(), "page changed in week 4\n");
    assert_eq!(fs::read_to_string(mirror.join("files/docs/1999.txt")).unwrap(), "page 1999\n");
    airlock().arg("verify").arg(&weeks[3]).arg("--trust").arg(&public).arg("--mirror").arg(&mirror).assert().success();
    let report = &common::json_report(&inspect(&weeks[3], Some(&mirror)).stdout)["report"];
    assert_eq!(report["entries"].as_array().unwrap().len(), 2000);
    let segments = &report["segments"];
    let (named, carried) = (segments["named"].as_u64().unwrap(), segments["carried"].as_u64().unwrap());
    assert!(carried >= 1 && carried * 10 < named, "{carried} of {named} segments carried");

    // gc keeps what the channel's latest root names, and only that.
    let segments = mirror.join(".airlock/segments");
    fs::write(segments.join("stray"), b"left by a killed run").unwrap();
    let count = || fs::read_dir(&segments).unwrap().count();
    let held = count();
    let out = airlock().args(["gc", "--json", "--mirror"]).arg(&mirror).assert().success();
    let report = common::json_report(&out.get_output().stdout);
    assert!(report["report"]["segments_removed"].as_u64().unwrap() > 1, "{report}");
    assert!(count() < held, "gc removed none of {held} segment files");
    assert!(!segments.join("stray").exists());
    let after_gc = many_files_week(dir.path(), &key, &state, 5);
    import(&after_gc, &public, &mirror).success();

    // A damaged copy in the mirror is named, and the import refused with the mirror unchanged.
    let next = many_files_week(dir.path(), &key, &state, 6);
    for entry in fs::read_dir(&segments).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = fs::read(&path).unwrap();
        bytes[0] ^= 1;
        fs::write(&path, bytes).unwrap();
    }
    let before = snapshot(&mirror);
    let out = import(&next, &public, &mirror).code(1);
    let line = one_line(&out.get_output().stderr);
    assert!(line.contains(".airlock/segments") && line.contains("damaged") && !line.contains("tampered"), "{line}");
    assert_eq!(snapshot(&mirror), before);
}

#[test]
fn a_mirror_that_lost_the_segments_of_its_last_import_is_mended_by_importing_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let state = dir.path().join("state");
    let weeks: Vec<PathBuf> = (1..=2).map(|n| many_files_week(dir.path(), &key, &state, n)).collect();
    // A mirror without the segments of its last import (lost, or filled by
    // an airlock that did not keep them) is mended by importing that bundle
    // again, a no-op that keeps them, when it carried them all.
    let other = dir.path().join("other");
    import(&weeks[0], &public, &other).success();
    let held = |mirror: &Path| {
        let out = airlock().args(["status", "--json", "--mirror"]).arg(mirror).assert().success();
        common::json_report(&out.get_output().stdout)["report"]["channels"][0]["segments_held"].clone()
    };
    assert_eq!(held(&other), Value::Bool(true));
    let root = common::json_report(
        &airlock().args(["status", "--json", "--mirror"]).arg(&other).output().unwrap().stdout,
    )["report"]["channels"][0]["last_manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    for entry in fs::read_dir(other.join(".airlock/segments")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != root.as_str() {
            fs::remove_file(path).unwrap();
        }
    }
    assert_eq!(held(&other), Value::Bool(false));
    let status = airlock().args(["status", "--mirror"]).arg(&other).output().unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("import that bundle again"));
    assert!(one_line(&import(&weeks[1], &public, &other).code(1).get_output().stderr).contains("again"));
    let report = common::json_report(&import(&weeks[0], &public, &other).success().get_output().stdout);
    assert_eq!(report["report"]["outcome"], "already-imported");
    assert_eq!(held(&other), Value::Bool(true));
    import(&weeks[1], &public, &other).success();
}
