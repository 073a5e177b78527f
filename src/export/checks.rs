//! What an export refuses before it reads or fetches anything: the channel
//! name, the keys, the inputs, the expiry, `--out` and `--state`.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{ChannelState, ExportOptions, MAX_EXPIRES_IN};
use crate::bundle::split;
use crate::durable::Existing;
use crate::ecosystem::ALL;
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;
use crate::manifest::MAX_TIME;
use crate::sign::envelope;

/// Refuses a channel name the manifest schema would not allow.
fn check_channel(channel: &str) -> Result<()> {
    if crate::manifest::valid_channel(channel) {
        Ok(())
    } else {
        Err(Error::Usage(format!("--channel {channel:?}: use 1 to 64 letters, digits, '-', '_' or '.'")))
    }
}

/// What can be refused before anything is read or fetched.
pub(super) fn check_options(options: &ExportOptions) -> Result<()> {
    check_channel(&options.channel)?;
    if options.keys.is_empty() {
        return Err(Error::Usage("no signing key: pass --key KEY (made by `airlock keygen`)".into()));
    }
    if options.inputs.is_empty() {
        return Err(Error::Usage(format!(
            "nothing to export: pass --files DIR, {} (or --config FILE)",
            lockfile_flags()
        )));
    }
    expiry(options)?;
    check_out(options)?;
    if let Some(dir) = &options.state {
        check_state(dir, &options.channel)?;
    }
    Ok(())
}

/// The lockfile flags of every ecosystem: `--a-lock, --b-lock or --c-lock`.
fn lockfile_flags() -> String {
    let flags: Vec<&str> = ALL.iter().filter_map(|e| e.lockfile_flag()).collect();
    match flags.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// `--out` may not be an input; without `--split` it follows the rules of
/// every output file ([`crate::durable::check_output`]); with `--split` it
/// is replaced (with `--force`) only when it holds a bundle and nothing else.
fn check_out(options: &ExportOptions) -> Result<()> {
    let inputs = &options.inputs;
    let named: Vec<&Path> = inputs
        .files
        .iter()
        .chain(inputs.sources.iter().flat_map(|s| s.lockfiles()))
        .chain(&options.state)
        .map(PathBuf::as_path)
        .collect();
    let out = &options.out;
    if options.split.is_none() {
        return crate::durable::check_output(out, "--out", Existing::unless(options.force), &named);
    }
    crate::durable::refuse_inputs(out, "--out", &named)?;
    if out.symlink_metadata().is_err() {
        Ok(())
    } else if options.force {
        check_replaceable_bundle(out)
    } else {
        Err(Error::Usage(format!(
            "{}: already exists; choose another --out or pass --force to replace it",
            out.display()
        )))
    }
}

/// What `--split --force` may remove: a bundle file, or a folder holding
/// the volumes of one bundle and nothing else (their exporter's names, each
/// starting with an airlock manifest frame). Anything else may be someone's
/// work, and is refused naming the first file that is not a volume.
pub(super) fn check_replaceable_bundle(out: &Path) -> Result<()> {
    let not_a_bundle = |what: String| {
        Error::Usage(format!(
            "{}: {what}; --split --force replaces only an earlier bundle (a folder of its volumes, or a bundle file): move it away or choose another --out",
            out.display()
        ))
    };
    let meta = out.symlink_metadata().at(out)?;
    if meta.is_file() {
        return bundle_digest(out).map(drop).ok_or_else(|| not_a_bundle("is not an airlock bundle".into()));
    }
    if !meta.is_dir() {
        return Err(not_a_bundle("is not a folder of volumes".into()));
    }
    let mut digests = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(out).map_err(|e| Error::input(out, "folder", &e))? {
        let path = entry.map_err(|e| Error::input(out, "folder", &e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let is_file = path.symlink_metadata().is_ok_and(|m| m.is_file());
        let digest = if is_file && split::is_volume_file_name(name) { bundle_digest(&path) } else { None };
        let Some(digest) = digest else {
            return Err(not_a_bundle(format!("holds {}, which is not a volume of an airlock bundle", path.display())));
        };
        digests.insert(digest);
    }
    if digests.len() > 1 {
        return Err(not_a_bundle("holds the volumes of more than one bundle".into()));
    }
    Ok(())
}

/// The manifest digest of the volume at `path`, if it starts with an airlock
/// manifest frame holding a manifest envelope (signatures not checked).
fn bundle_digest(path: &Path) -> Option<ContentId> {
    let file = File::open(path).ok()?;
    let (_, frame) = crate::bundle::reader::VolumeReader::open(file, &path.display().to_string()).ok()?;
    let opened = envelope::open_untrusted(&frame.envelope, envelope::MANIFEST).ok()?;
    Some(ContentId::of(opened.payload))
}

/// The channel state's files are replaced on every export, but never when
/// they are not regular files (reading a FIFO would hang the export).
fn check_state(dir: &Path, channel: &str) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Usage(format!("{}: --state must be a folder", dir.display())));
    }
    for path in [ChannelState::path(dir, channel), ChannelState::blobs_path(dir, channel)] {
        crate::durable::check_output(&path, "--state", Existing::Replace, &[])?;
    }
    Ok(())
}

/// When the bundle expires: `expires_in` after its creation time, which must
/// be at most [`MAX_EXPIRES_IN`] and end by [`MAX_TIME`].
pub(super) fn expiry(options: &ExportOptions) -> Result<u64> {
    if options.expires_in > MAX_EXPIRES_IN {
        return Err(Error::Usage(format!(
            "--expires {}: longer than the 100 years a bundle may stay importable; choose a shorter duration",
            humantime::format_duration(options.expires_in)
        )));
    }
    options.now.checked_add(options.expires_in.as_secs()).filter(|t| *t <= MAX_TIME).ok_or_else(|| {
        Error::Usage(format!(
            "creation time {} (SOURCE_DATE_EPOCH, or the clock) plus --expires is after 9999-12-31T23:59:59Z; \
             set SOURCE_DATE_EPOCH to a real time",
            options.now
        ))
    })
}
