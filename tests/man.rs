//! The checked-in man pages are exactly what the clap definitions render.
//! Regenerate with `UPDATE_MAN=1 cargo test --test man`.

use std::fs;
use std::path::Path;

#[test]
fn man_pages_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages = airlock::cli::man_pages();
    if std::env::var_os("UPDATE_MAN").is_some() {
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &pages {
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut stale = Vec::new();
    for (name, bytes) in &pages {
        if fs::read(dir.join(name)).ok().as_ref() != Some(bytes) {
            stale.push(name.clone());
        }
    }
    let expected: Vec<_> = pages.iter().map(|(n, _)| n.clone()).collect();
    for entry in fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !expected.contains(&name) {
            stale.push(format!("{name} (no such command any more)"));
        }
    }
    assert!(
        stale.is_empty(),
        "man pages out of date: {stale:?}; run `UPDATE_MAN=1 cargo test --test man` and commit man/"
    );
}

#[test]
fn the_synopsis_shows_flag_values_and_repetition() {
    let page =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man/airlock-verify.1")).unwrap();
    let synopsis = page.split(".SH SYNOPSIS\n").nth(1).unwrap().lines().next().unwrap();
    assert!(synopsis.contains(r"[\fB\-\-trust\fR \fIPUB\fR]..."), "{synopsis}");
    assert!(synopsis.contains(r"<\fIBUNDLE\fR>..."), "{synopsis}");
    assert!(synopsis.starts_with(r"\fBairlock verify\fR "), "{synopsis}");
}
