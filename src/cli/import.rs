//! `airlock import`

use std::path::PathBuf;

use clap::Args;

use super::{Output, TrustArgs};
use crate::error::Result;
use crate::import::{ImportOptions, import_volumes, render};

/// Verify a bundle and publish it into a mirror (a folder, or S3-compatible object storage), all or nothing
///
/// A split bundle's volumes may be given in any order and over several runs (the folder, or any
/// volume files): each volume verified is kept in the mirror's staging, and the bundle is
/// published once every data volume is there (parity volumes rebuild missing or damaged ones).
/// Until then the import exits with status 4, naming the missing volumes, and the mirror is unchanged.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle file; or a split bundle's folder, or one or more of its volume files
    /// (none with --base-url: re-render the mirror's documents for that address)
    #[arg(required_unless_present = "base_url", value_name = "BUNDLE")]
    pub bundle: Vec<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// The mirror: a folder (created if missing; files land in MIRROR/files/), or s3://BUCKET/PREFIX
    /// (a new or empty prefix the first time; endpoint, region and credentials from AWS_ENDPOINT_URL,
    /// AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)
    #[arg(long, value_name = "MIRROR", env = "AIRLOCK_MIRROR", hide_env_values = true)]
    pub mirror: PathBuf,
    /// Accept an incremental bundle that skips sequence numbers of its channel
    #[arg(long)]
    pub allow_gap: bool,
    /// The address clients reach the mirror at (http[s]://HOST[:PORT][/PATH]): npm packuments,
    /// cargo's config.json and PyPI's provenance links name it in full, so any static web server or
    /// bucket serves the mirror as it is. Recorded; later imports keep it until another is given
    #[arg(long, value_name = "URL", value_parser = parse_base_url)]
    pub base_url: Option<String>,
    /// Verify everything and say what the import would publish, replace and withdraw; write nothing
    /// (every data volume of a split bundle must be given)
    #[arg(long, conflicts_with = "base_url")]
    pub dry_run: bool,
    #[command(flatten)]
    pub wait: super::WaitArgs,
}

/// What the import replaced and withdrew (or would): a count, and with
/// `-v` every entry.
fn print_changes(out: &Output, changes: &crate::mirror::Changes, dry: bool) {
    let lists = [
        ("replaced", "would replace", "with new content", &changes.replaced),
        ("withdrew", "would withdraw", "the channel no longer lists", &changes.withdrawn),
    ];
    for (did, would, why, entries) in lists {
        if entries.is_empty() {
            continue;
        }
        let verb = if dry { would } else { did };
        out.line(format!("{verb} {} {why}", super::counted(entries.len(), "entry", "entries")));
        for e in entries {
            out.detail(format!("  {did:<9} {e}"));
        }
    }
}

/// An absolute http(s) URL with a host and no query or fragment, without
/// its trailing slash (the documents append `/npm/...`).
fn parse_base_url(text: &str) -> std::result::Result<String, String> {
    let refuse = |why: &str| Err(format!("{why}; give the mirror's address as http[s]://HOST[:PORT][/PATH]"));
    if text.chars().any(|c| c.is_whitespace() || c.is_control() || "\"'<>\\`{}|^".contains(c)) {
        return refuse("it holds a space, a quote or a character URLs may not");
    }
    let Ok(uri) = text.parse::<ureq::http::Uri>() else { return refuse("it is not a URL") };
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return refuse("it is not an http:// or https:// URL");
    }
    if uri.host().is_none_or(str::is_empty) || uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return refuse("it names no host (or carries a user name)");
    }
    if uri.query().is_some() || text.contains('#') {
        return refuse("it has a query or a fragment");
    }
    Ok(text.trim_end_matches('/').to_owned())
}

impl ImportArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        if self.bundle.is_empty() {
            return self.render(out);
        }
        let policy = self.trust.load("import")?;
        let progress = out.progress();
        let options =
            ImportOptions { allow_gap: self.allow_gap, base_url: self.base_url.clone(), dry_run: self.dry_run };
        let report = self
            .wait
            .retrying(out, || import_volumes(&self.bundle, &policy, &self.mirror, crate::now(), &options, &progress))?;
        super::verify::print_verified(out, &report.verified);
        let dry = report.outcome == "dry-run";
        out.line(format!(
            "{} {} into {} (generation {})",
            if dry { "would publish" } else { "published" },
            super::counted(report.mirror.published.len(), "file", "files"),
            report.mirror.mirror,
            report.mirror.generation
        ));
        print_changes(out, &report.changes, dry);
        if let Some(page) = &report.audit_page {
            out.line(format!("audit     {page}"));
        }
        if let Some(why) = &report.audit_error {
            out.warn(format!("the import is published, but its audit page was not written: {why}"));
        }
        if dry {
            out.line(super::verify::summary("dry run: verified", &report.verified));
            out.line("nothing was written: run the same command without --dry-run to import");
        } else {
            out.line(super::verify::summary("imported", &report.verified));
        }
        out.report_entries("import", &report);
        Ok(())
    }

    /// `import --mirror M --base-url URL` with no bundle.
    fn render(&self, out: &Output) -> Result<()> {
        let url = self.base_url.as_deref().expect("clap requires a bundle without --base-url");
        let report = self.wait.retrying(out, || render(&self.mirror, url))?;
        out.line(format!("rendered the documents of {} for {url} (generation {})", report.mirror, report.generation));
        out.report("render", &report);
        Ok(())
    }
}
