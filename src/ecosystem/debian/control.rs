//! Debian's control-file formats, as the archive writes them: deb822
//! paragraphs (Release and Packages), the Release's digest lists and dates,
//! package relationships (`Depends`) and version comparison (dpkg's
//! algorithm, Debian Policy 5.6.12).

// Debian's and OpenPGP's names (InRelease, Packages.xz, OpenPGP) are words in these docs, not code.
#![allow(clippy::doc_markdown)]

use std::cmp::Ordering;

/// One paragraph: its fields in order, continuation lines joined with `\n`,
/// and its text exactly as written (for Packages stanzas, which travel as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph {
    pub fields: Vec<(String, String)>,
    pub raw: String,
}

impl Paragraph {
    /// The value of field `name` (case-insensitive, as deb822 says).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The paragraphs of a deb822 document, separated by blank lines.
pub fn paragraphs(text: &str) -> Result<Vec<Paragraph>, String> {
    let mut out = Vec::new();
    for raw in split_paragraphs(text) {
        out.push(paragraph(raw)?);
    }
    Ok(out)
}

/// The paragraphs' texts as written, each without its separating blank line.
pub fn split_paragraphs(text: &str) -> impl Iterator<Item = &str> {
    text.split("\n\n").map(|p| p.trim_matches('\n')).filter(|p| !p.trim().is_empty())
}

/// One paragraph's fields.
pub fn paragraph(raw: &str) -> Result<Paragraph, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (n, line) in raw.lines().enumerate() {
        if line.starts_with(' ') || line.starts_with('\t') {
            let (_, value) =
                fields.last_mut().ok_or_else(|| format!("line {}: a continuation with no field", n + 1))?;
            value.push('\n');
            value.push_str(line.trim());
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.to_owned(), value.trim().to_owned()));
        } else if !line.starts_with('#') {
            return Err(format!("line {}: not a field: {line:?}", n + 1));
        }
    }
    Ok(Paragraph { fields, raw: raw.to_owned() })
}

/// One line of a Release file's `SHA256` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub sha256: [u8; 32],
    pub size: u64,
    pub path: String,
}

/// The `SHA256` list of a Release paragraph.
pub fn sha256_list(release: &Paragraph) -> Result<Vec<Listed>, String> {
    let list = release.get("SHA256").ok_or("has no SHA256 list")?;
    let mut out = Vec::new();
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (Some(hash), Some(size), Some(path), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("has a malformed SHA256 line {line:?}"));
        };
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(hash, &mut sha256).map_err(|_| format!("has a malformed SHA256 line {line:?}"))?;
        let size = size.parse().map_err(|_| format!("has a malformed SHA256 line {line:?}"))?;
        out.push(Listed { sha256, size, path: path.to_owned() });
    }
    Ok(out)
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A Release date (`Sat, 11 Jul 2026 10:16:37 UTC`, RFC 2822 in UTC as the
/// archive writes it) in seconds since the epoch.
pub fn parse_date(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a Release date such as \"Sat, 11 Jul 2026 10:16:37 UTC\"");
    let rest = text.split_once(',').map_or(text, |(_, r)| r).trim();
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, clock, zone] = parts[..] else { return Err(bad()) };
    if !matches!(zone, "UTC" | "GMT" | "+0000" | "Z") {
        return Err(bad());
    }
    let month = MONTHS.iter().zip(1i64..).find(|(m, _)| **m == month).ok_or_else(bad)?.1;
    let day: i64 = day.parse().map_err(|_| bad())?;
    let year: i64 = year.parse().map_err(|_| bad())?;
    let hms: Vec<i64> = clock.split(':').map(str::parse).collect::<Result<_, _>>().map_err(|_| bad())?;
    let [h, m, s] = hms[..] else { return Err(bad()) };
    if !(1..=31).contains(&day) || !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..=60).contains(&s) {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).map_err(|_| bad())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A version relation in a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

/// One alternative of a dependency: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub version: Option<(Relation, String)>,
}

impl Wanted {
    /// Whether a package (or a `Provides`) of `version` satisfies it; a
    /// provided name without a version satisfies only unversioned wants.
    #[must_use]
    pub fn accepts(&self, version: Option<&str>) -> bool {
        match (&self.version, version) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((rel, want)), Some(have)) => {
                let ord = compare_versions(have, want);
                match rel {
                    Relation::Lt => ord == Ordering::Less,
                    Relation::Le => ord != Ordering::Greater,
                    Relation::Eq => ord == Ordering::Equal,
                    Relation::Ge => ord != Ordering::Less,
                    Relation::Gt => ord == Ordering::Greater,
                }
            }
        }
    }
}

impl std::fmt::Display for Wanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some((rel, v)) = &self.version {
            let op = match rel {
                Relation::Lt => "<<",
                Relation::Le => "<=",
                Relation::Eq => "=",
                Relation::Ge => ">=",
                Relation::Gt => ">>",
            };
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

/// A `Depends`-style field: a list of dependencies, each a list of
/// alternatives. Architecture qualifiers (`:any`, `:native`) are dropped;
/// alternatives restricted to other architectures (`[!amd64]`) or to build
/// profiles (`<!nocheck>`, which binary packages do not carry) are kept
/// out when `arch` is not among them.
pub fn relations(field: &str, arch: &str) -> Result<Vec<Vec<Wanted>>, String> {
    let mut out = Vec::new();
    for dep in field.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let mut alternatives = Vec::new();
        for alt in dep.split('|').map(str::trim) {
            if let Some(w) = wanted(alt, arch)? {
                alternatives.push(w);
            }
        }
        if !alternatives.is_empty() {
            out.push(alternatives);
        }
    }
    Ok(out)
}

fn wanted(text: &str, arch: &str) -> Result<Option<Wanted>, String> {
    let mut rest = text;
    if let Some(open) = rest.find('[') {
        let close = rest.find(']').ok_or_else(|| format!("unclosed architecture list in {text:?}"))?;
        let list = &rest[open + 1..close];
        let negated = list.trim_start().starts_with('!');
        let listed = list.split_whitespace().any(|a| a.trim_start_matches('!') == arch);
        if listed == negated {
            return Ok(None);
        }
        rest = &rest[..open];
    }
    if let Some(open) = rest.find('<') {
        rest = &rest[..open];
    }
    let (name_part, version) = match rest.find('(') {
        Some(open) => {
            let close = rest.find(')').ok_or_else(|| format!("unclosed version in {text:?}"))?;
            let inner = rest[open + 1..close].trim();
            let (rel, v) = [
                ("<<", Relation::Lt),
                ("<=", Relation::Le),
                (">=", Relation::Ge),
                (">>", Relation::Gt),
                ("=", Relation::Eq),
                ("<", Relation::Le),
                (">", Relation::Ge),
            ]
            .iter()
            .find_map(|(op, rel)| inner.strip_prefix(op).map(|v| (*rel, v.trim())))
            .ok_or_else(|| format!("bad version relation in {text:?}"))?;
            (&rest[..open], Some((rel, v.to_owned())))
        }
        None => (rest, None),
    };
    let name = name_part.trim();
    let name = name.split_once(':').map_or(name, |(n, _)| n);
    if name.is_empty() {
        return Err(format!("no package name in {text:?}"));
    }
    Ok(Some(Wanted { name: name.to_owned(), version }))
}

/// dpkg's version order: epoch, then upstream version and Debian revision
/// compared by alternating non-digit and digit runs, `~` before anything.
#[must_use]
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |v: &str| -> (u64, String, String) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) => (e.parse().unwrap_or(0), r),
            None => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((up, rev)) => (epoch, up.to_owned(), rev.to_owned()),
            None => (epoch, rest.to_owned(), String::new()),
        }
    };
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| compare_part(&ua, &ub)).then_with(|| compare_part(&ra, &rb))
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        loop {
            let (ca, cb) = (
                a.first().copied().filter(|c| !c.is_ascii_digit()),
                b.first().copied().filter(|c| !c.is_ascii_digit()),
            );
            if ca.is_none() && cb.is_none() {
                break;
            }
            let ord = order(ca).cmp(&order(cb));
            if ord != Ordering::Equal {
                return ord;
            }
            a = &a[1..];
            b = &b[1..];
        }
        let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
        let (da, db) = (digits(a), digits(b));
        let num = |s: &[u8]| s.iter().skip_while(|c| **c == b'0').copied().collect::<Vec<u8>>();
        let (na, nb) = (num(&a[..da]), num(&b[..db]));
        let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(&nb));
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_in_dpkg_order() {
        let ascending = ["1.0~rc1", "1.0", "1.0-1", "1.0-1+deb12u1", "1.0a", "1.1", "1.10", "1:0.1", "2:0~"];
        for w in ascending.windows(2) {
            assert_eq!(compare_versions(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
            assert_eq!(compare_versions(w[1], w[0]), Ordering::Greater);
        }
        assert_eq!(compare_versions("2:4.17.12+dfsg-0+deb12u2", "2:4.17.12+dfsg-0+deb12u2"), Ordering::Equal);
        assert_eq!(compare_versions("1.01", "1.1"), Ordering::Equal);
    }

    #[test]
    fn relations_with_alternatives_qualifiers_and_restrictions() {
        let r = relations(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any, foo [!amd64], bar [amd64 arm64] <!nocheck>",
            "amd64",
        )
        .unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0][0], Wanted { name: "libc6".into(), version: Some((Relation::Ge, "2.34".into())) });
        assert_eq!(r[1].len(), 2);
        assert_eq!(r[2][0].name, "python3");
        assert_eq!(r[3][0].name, "bar");
        assert!(r[0][0].accepts(Some("2.36-9")) && !r[0][0].accepts(Some("2.31")) && !r[0][0].accepts(None));
    }

    #[test]
    fn release_dates() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC").unwrap(), 0);
        assert_eq!(parse_date("Sat, 11 Jul 2026 10:16:37 UTC").unwrap(), 1_783_764_997);
        assert!(parse_date("yesterday").is_err());
        assert!(parse_date("Sat, 11 Jul 2026 10:16:37 +0200").is_err());
    }

    #[test]
    fn paragraphs_keep_their_text() {
        let text = "Package: a\nDescription: x\n more\n\nPackage: b\n";
        let p = paragraphs(text).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].get("description"), Some("x\nmore"));
        assert_eq!(p[0].raw, "Package: a\nDescription: x\n more");
        assert!(paragraph(" orphan").is_err());
    }
}
