//! The pages auditors open: one per import (which bundle, channel and
//! sequence, who signed, every entry with its five layers and the evidence
//! behind them), kept in the mirror as `.airlock/reports/<manifest digest>.html`
//! beside its JSON, and the catalog `airlock serve` shows at `/` (what the
//! mirror holds, where each entry came from, links to those pages).
//!
//! Every page is self-contained: no script at all, styles inline, and a
//! Content-Security-Policy that forbids loading anything. Everything a
//! bundle names (entry names, paths, prose quoting them) is escaped; the
//! names of a bundle signed by a trusted key are still hostile input.

use std::collections::BTreeMap;
use std::io;

use crate::escape::html;
use crate::mirror::{Changes, ImportRecord, PublishReport, Stored};
use crate::verify::VerifyReport;

/// The Content-Security-Policy of the pages, in their `<head>` and as
/// `serve`'s header: no resource of any kind may load, no script may run.
pub const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// What the pages' `<head>` says (the `content` is [`PAGE_POLICY`]).
const HEAD: &str = "<meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}\
.ok{color:#060}.failed{color:#b00;font-weight:bold}.absent,.not-checked{color:#a60}.not-required{color:#666}\
code{font-size:12px}</style>";

/// Writes the page of one import to `page`: `report` as verified,
/// `published` as the mirror published it, and what it `changed` (entries
/// replaced and withdrawn). Written row by row as it is made: the page of a
/// bundle of 100 000 entries is 50 MB.
pub fn write_import_page(
    page: &mut dyn io::Write,
    report: &VerifyReport,
    published: &PublishReport,
    changed: &Changes,
    imported: &str,
) -> io::Result<()> {
    write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head>{HEAD}<title>airlock import {}</title></head><body>",
        html(&report.manifest_digest[..16])
    )?;
    page.write_all(b"<h1>airlock import</h1><table>")?;
    let rows = [
        ("bundle", report.bundle.clone()),
        ("manifest", report.manifest_digest.clone()),
        ("channel", report.channel.clone()),
        ("sequence", report.sequence.to_string()),
        ("created", report.created.clone()),
        ("expires", report.expires.clone()),
        ("imported", imported.to_owned()),
        ("signed by", report.trusted_signers.join(", ")),
        ("revoked, not counted", report.revoked_signers.join(", ")),
        ("generation", published.generation.to_string()),
        ("files published", published.published.len().to_string()),
        ("entries added", changed.added.to_string()),
        ("entries replaced", changed.replaced.len().to_string()),
        ("entries withdrawn", changed.withdrawn.len().to_string()),
    ];
    for (label, value) in rows {
        write!(page, "<tr><th>{label}</th><td id=\"{}\">{}</td></tr>", id(label), html(&value))?;
    }
    page.write_all(
        b"</table><h2>Entries</h2><table id=\"entries\"><tr><th>ecosystem</th><th>name</th><th>version</th>\
        <th>path</th><th>transfer</th><th>content</th><th>digest</th><th>provenance</th><th>policy</th></tr>",
    )?;
    for entry in report.packages.iter() {
        let layers = [
            (entry.layers.transfer, entry.transfer),
            (entry.layers.content, entry.content),
            (entry.layers.digest, entry.digest),
            (entry.layers.provenance, entry.provenance),
            (entry.layers.policy, entry.policy),
        ];
        write!(
            page,
            "<tr class=\"entry\"><td>{}</td><td class=\"name\">{}</td><td>{}</td><td><code>{}</code></td>",
            html(entry.ecosystem()),
            html(entry.name()),
            html(entry.version().unwrap_or("")),
            html(entry.path())
        )?;
        for (outcome, prose) in layers {
            let word = outcome.word();
            write!(page, "<td><span class=\"{word}\">{word}</span><br>{}</td>", html(prose))?;
        }
        page.write_all(b"</tr>")?;
    }
    page.write_all(b"</table>")?;
    for (title, table, entries) in
        [("Withdrawn", "withdrawn", &changed.withdrawn), ("Replaced (what they were)", "replaced", &changed.replaced)]
    {
        if entries.is_empty() {
            continue;
        }
        write!(
            page,
            "<h2>{title}</h2><table id=\"{table}\"><tr><th>ecosystem</th><th>name</th><th>version</th><th>path</th></tr>"
        )?;
        for e in entries {
            write!(
                page,
                "<tr class=\"{table}\"><td>{}</td><td class=\"name\">{}</td><td>{}</td><td><code>{}</code></td></tr>",
                html(&e.ecosystem),
                html(&e.name),
                html(e.version.as_deref().unwrap_or("")),
                html(&e.path)
            )?;
        }
        page.write_all(b"</table>")?;
    }
    page.write_all(b"</body></html>\n")
}

/// The catalog: every entry the mirror publishes and the channel it came
/// from, then every import with a link to its page (`report_href` of its
/// manifest digest, or none when the import predates the pages). Written
/// to a page as the entries come, so that a mirror of any size is listed
/// in the memory of one entry: [`CatalogPage::begin`], a
/// [`CatalogPage::row`] for each entry, [`CatalogPage::end`].
pub struct CatalogPage<'a> {
    /// Each channel's last import.
    latest: BTreeMap<&'a str, &'a ImportRecord>,
}

impl<'a> CatalogPage<'a> {
    /// The page's head, its summary (`entries` published) and the imports.
    pub fn begin(
        page: &mut dyn io::Write,
        entries: u64,
        imports: &'a [ImportRecord],
        report_href: &dyn Fn(&str) -> Option<String>,
    ) -> io::Result<Self> {
        write!(page, "<!DOCTYPE html><html lang=\"en\"><head>{HEAD}<title>airlock mirror</title></head><body>")?;
        write!(page, "<h1>airlock mirror</h1><p id=\"summary\">{entries} entries from {} imports</p>", imports.len())?;
        page.write_all(
            b"<h2>Imports</h2><table id=\"imports\"><tr><th>channel</th><th>sequence</th><th>imported</th>\
            <th>entries</th><th>manifest</th></tr>",
        )?;
        let mut latest: BTreeMap<&str, &ImportRecord> = BTreeMap::new();
        for record in imports {
            latest.insert(record.channel.as_str(), record);
            let digest = html(&record.manifest_digest);
            let manifest = match report_href(&record.manifest_digest) {
                Some(href) => format!("<a href=\"{}\">{digest}</a>", html(&href)),
                None => format!("<code>{digest}</code>"),
            };
            write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{manifest}</td></tr>",
                html(&record.channel),
                record.sequence,
                html(&record.imported),
                record.entries
            )?;
        }
        page.write_all(
            b"</table><h2>Entries</h2><table id=\"entries\"><tr><th>ecosystem</th><th>name</th><th>version</th>\
            <th>path</th><th>channel</th><th>last import of the channel</th></tr>",
        )?;
        Ok(CatalogPage { latest })
    }

    /// One entry's row.
    pub fn row(&self, page: &mut dyn io::Write, stored: &Stored) -> io::Result<()> {
        let entry = &stored.entry;
        let last =
            self.latest.get(stored.channel.as_str()).map_or(String::new(), |r| format!("sequence {}", r.sequence));
        write!(
            page,
            "<tr class=\"entry\"><td>{}</td><td class=\"name\">{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            html(&entry.ecosystem),
            html(&entry.name),
            html(entry.version.as_deref().unwrap_or("")),
            html(entry.path.as_str()),
            html(&stored.channel),
            html(&last)
        )
    }

    /// The page's end.
    pub fn end(self, page: &mut dyn io::Write) -> io::Result<()> {
        page.write_all(b"</table></body></html>\n")
    }
}

/// An element id for a row label: `signed by` -> `signed-by`.
fn id(label: &str) -> String {
    label.replace([' ', ','], "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_carries_the_page_policy() {
        assert!(HEAD.contains(&format!("content=\"{PAGE_POLICY}\"")));
    }

    #[test]
    fn hostile_names_are_text_on_the_catalog() {
        let mut entry = crate::manifest::tests::sample().entries.remove(0);
        entry.name = "<script>alert(1)</script>".into();
        let stored = Stored { channel: "c\"><img src=x>".into(), also_listed_by: Vec::new(), entry };
        let mut page = Vec::new();
        let catalog = CatalogPage::begin(&mut page, 1, &[], &|_| None).unwrap();
        catalog.row(&mut page, &stored).unwrap();
        catalog.end(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(!page.contains("<script>alert") && !page.contains("<img src=x>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
    }
}
