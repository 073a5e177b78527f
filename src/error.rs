//! Errors and what they mean for the operator.
//!
//! Error policy:
//! - Every error a user can cause names the thing it concerns (a path, a key,
//!   a bundle member, a package) and says what to do next, in one line.
//! - Three classes map to the documented exit codes: [`Error::Rejected`] (1) is
//!   a verdict about the bundle or an entry — signature, digest, schema,
//!   policy, expiry; [`Error::Usage`] (2) is a bad flag, file, key or policy
//!   on the operator's side; [`Error::Io`] (3) is the machine failing us
//!   (disk full, permissions on the mirror) while doing legitimate work;
//!   [`Error::Incomplete`] (4) says a split bundle needs more volumes: not a
//!   failure of what was given, which is verified and kept;
//!   [`Error::Busy`] (5) says another airlock holds the mirror: nothing was
//!   done, a retry (or `--wait`) will do.
//! - The library never prints; the binary prints the error once.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a bundle, a volume or an entry was rejected. Each variant's text ends
/// with what the operator can do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The archive layout is not the one airlock writes.
    Malformed(String),
    /// A member the manifest does not call for: wrong name, link, device, duplicate.
    UnexpectedMember(String),
    /// The stream ended before the bundle did.
    Truncated(String),
    /// Something larger than declared or than the sane cap.
    Oversize(String),
    /// The signature envelope could not be decoded or a signature is invalid.
    BadSignature(String),
    /// Fewer distinct trusted keys signed than the policy requires.
    BelowThreshold { valid: usize, required: usize, signers: Box<Signers> },
    /// The manifest is not canonical CBOR or does not match the schema.
    Schema(String),
    /// A blob's BLAKE3, size or upstream digest differs from the manifest.
    DigestMismatch(String),
    /// The bundle's expiry time has passed.
    Expired(String),
    /// The policy or mirror state refuses the bundle.
    Policy(String),
    /// A signed policy statement cannot be applied; `kind` is its short code
    /// and the message already says what to do.
    Statement { kind: &'static str, message: String },
}

/// Who signed, by short key id, grouped by how the policy counted them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signers {
    /// Trusted keys whose signatures verified.
    pub counted: Vec<String>,
    /// Keys the policy does not list.
    pub untrusted: Vec<String>,
    /// Keys the policy revoked: never counted.
    pub revoked: Vec<String>,
}

impl fmt::Display for Signers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> =
            [("counted", &self.counted), ("not trusted", &self.untrusted), ("revoked, not counted", &self.revoked)]
                .into_iter()
                .filter(|(_, ids)| !ids.is_empty())
                .map(|(label, ids)| format!("{label}: {}", ids.join(", ")))
                .collect();
        if groups.is_empty() { f.write_str("no signatures") } else { f.write_str(&groups.join("; ")) }
    }
}

impl Signers {
    /// What to do about too few trusted signatures, given who did sign: a
    /// revoked key is not to be pinned again.
    fn advice(&self) -> &'static str {
        if !self.revoked.is_empty() && self.untrusted.is_empty() {
            "a revoked key's signature never counts: ask for a bundle signed by a key the policy trusts, or have more trusted operators co-sign"
        } else {
            "pin the exporter's key with --trust or in the policy, or have more trusted operators co-sign"
        }
    }
}

/// Every `kind` an error can have under `--json` (the README's table and
/// `schemas/reports.schema.json` list the same set; `tests/json_contract.rs`
/// checks both).
pub const ERROR_KINDS: [&str; 19] = [
    "malformed",
    "unexpected-member",
    "truncated",
    "oversize",
    "bad-signature",
    "below-threshold",
    "schema",
    "digest-mismatch",
    "expired",
    "policy",
    // Policy statements' own refusals (src/policy/statement.rs).
    "conflict",
    "invalid-policy",
    "rollback",
    "skip",
    "unrevoke",
    "usage",
    "io",
    "incomplete",
    "busy",
];

impl Rejection {
    /// A stable short code for `--json` reports and tests.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::UnexpectedMember(_) => "unexpected-member",
            Rejection::Truncated(_) => "truncated",
            Rejection::Oversize(_) => "oversize",
            Rejection::BadSignature(_) => "bad-signature",
            Rejection::BelowThreshold { .. } => "below-threshold",
            Rejection::Schema(_) => "schema",
            Rejection::DigestMismatch(_) => "digest-mismatch",
            Rejection::Expired(_) => "expired",
            Rejection::Policy(_) => "policy",
            Rejection::Statement { kind, .. } => kind,
        }
    }
}

const RESEND: &str = "the bundle was damaged or tampered with: do not use it, ask the exporter for a fresh copy";

impl fmt::Display for Rejection {
    /// One line whatever the bundle holds: a message may quote the bundle's
    /// own bytes (a field name, a path), so control characters are escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |m: &str| crate::escape::one_line(m).into_owned();
        match self {
            Rejection::Malformed(m) => write!(f, "malformed bundle: {}; {RESEND}", line(m)),
            Rejection::UnexpectedMember(m) => write!(f, "unexpected archive member {}; {RESEND}", line(m)),
            Rejection::Truncated(m) => write!(f, "bundle is truncated: {}; copy it again from the medium", line(m)),
            Rejection::Oversize(m) => write!(f, "{}; {RESEND}", line(m)),
            Rejection::BadSignature(m) => write!(f, "bad signature: {}; {RESEND}", line(m)),
            Rejection::BelowThreshold { valid, required, signers } => write!(
                f,
                "signed by {valid} trusted key(s), the policy requires {required} (signer key ids, {signers}); {}",
                signers.advice()
            ),
            Rejection::Schema(m) => write!(f, "manifest fails its schema: {}; {RESEND}", line(m)),
            Rejection::DigestMismatch(m) => write!(f, "digest mismatch: {}; {RESEND}", line(m)),
            Rejection::Expired(m) => write!(f, "{}; ask the exporter for a fresh bundle", line(m)),
            Rejection::Policy(m) => write!(f, "refused by policy: {}", line(m)),
            Rejection::Statement { message, .. } => f.write_str(&line(message)),
        }
    }
}

/// The reports of a refused bundle's entries, kept as reports (not as JSON
/// values: for 100 000 entries those took some 200 MiB) and given one at a
/// time as JSON when the refusal is printed.
pub trait EntryReports: fmt::Debug + Send + Sync {
    /// Calls `each` with every entry's report, in order, until it fails.
    fn each(&self, each: &mut dyn FnMut(serde_json::Value) -> io::Result<()>) -> io::Result<()>;
}

/// The one error type of the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bundle or one of its entries failed verification or policy (exit 1).
    #[error("{}: {rejection}", crate::escape::one_line(subject))]
    Rejected {
        subject: String,
        rejection: Rejection,
        /// When entries were refused by their evidence or the policy: every
        /// entry's report (the `packages` of a verify report), so that a
        /// refusal still shows what each entry established.
        packages: Option<std::sync::Arc<dyn EntryReports>>,
    },
    /// A usage or configuration problem on the operator's side (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A split bundle's set is not complete yet: what was given is verified
    /// and kept, more volumes are needed before anything is published (exit 4).
    #[error("{message}")]
    Incomplete {
        message: String,
        /// The file names of the data volumes still needed, for scripts.
        missing: Vec<String>,
    },
    /// Another airlock holds the mirror's lock (exit 5): nothing was done;
    /// try again, or pass `--wait`.
    #[error("{0}")]
    Busy(String),
    /// The machine failed a legitimate operation (exit 3).
    #[error("{}: {}; {hint}", path.display(), io_reason(source))]
    Io { path: PathBuf, source: io::Error, hint: &'static str },
}

impl Error {
    /// The process exit code documented in the README.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Rejected { .. } => 1,
            Error::Usage(_) => 2,
            Error::Io { .. } => 3,
            Error::Incomplete { .. } => 4,
            Error::Busy(_) => 5,
        }
    }

    /// A stable short code for `--json` reports.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Rejected { rejection, .. } => rejection.kind(),
            Error::Usage(_) => "usage",
            Error::Io { .. } => "io",
            Error::Incomplete { .. } => "incomplete",
            Error::Busy(_) => "busy",
        }
    }

    pub(crate) fn rejected(subject: impl fmt::Display, rejection: Rejection) -> Self {
        Error::Rejected { subject: subject.to_string(), rejection, packages: None }
    }

    /// The rejection of a bundle whose entries were judged one by one:
    /// `packages` is every entry's report.
    pub(crate) fn refused_entries(
        subject: impl fmt::Display,
        rejection: Rejection,
        packages: std::sync::Arc<dyn EntryReports>,
    ) -> Self {
        Error::Rejected { subject: subject.to_string(), rejection, packages: Some(packages) }
    }

    /// Every entry's report, when the bundle was refused because of entries.
    #[must_use]
    pub fn packages(&self) -> Option<&dyn EntryReports> {
        match self {
            Error::Rejected { packages: Some(p), .. } => Some(&**p),
            _ => None,
        }
    }

    /// An input file the operator named could not be read (exit 2).
    pub(crate) fn input(path: &Path, what: &str, err: &io::Error) -> Self {
        Error::Usage(format!(
            "{}: cannot read {what}: {}; check the path and its permissions",
            path.display(),
            io_reason(err)
        ))
    }

    /// A write on our side failed (exit 3).
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        let hint = match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                "free space on that filesystem and run the command again"
            }
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                "check the permissions of that directory"
            }
            _ => "check the filesystem and run the command again",
        };
        Error::Io { path: path.to_owned(), source, hint }
    }
}

/// `io::Error`'s display without the "(os error N)" noise operators don't need.
pub(crate) fn io_reason(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a path to an I/O result on the write side.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
