//! Signed policy statements: how a site's trust policy moves from serial N to
//! N+1 across the gap, the way TUF rotates its root metadata.
//!
//! A statement is a `COSE_Sign` envelope (purpose [`POLICY_STATEMENT`]) whose
//! payload is the next policy's TOML text, byte for byte, so what is applied
//! is exactly what was signed and reviewed. It is self-contained: keys are
//! inline (`public =`), npm registry keys too (`registry-keys-json`); a
//! reference to a file would let the file change what the signers vouched for.
//!
//! Serial N+1 replaces serial N only when:
//! - its serial is exactly N+1 (the same serial with the same text is a
//!   no-op that succeeds; anything else is a rollback, a skip or a conflict);
//! - a threshold of policy N's keys signed it: the keys trusted today
//!   authorise the change;
//! - a threshold of policy N+1's own keys signed it: the new keyholders prove
//!   they hold their keys, so a mistyped key cannot lock the site out;
//! - each key counts once, and a revoked key counts for neither;
//! - every key policy N revoked stays revoked.
//!
//! Nothing is written unless every check passed; the policy file is replaced
//! in one rename.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

use serde::Serialize;

use super::{Policy, References, Tables};
use crate::durable::write_atomically;
use crate::error::{Error, IoContext, Rejection, Result};
use crate::id::KeyId;
use crate::sign::Signer;
use crate::sign::envelope::{self, POLICY_STATEMENT, Verified};

const RESEND: &str = "the statement was damaged or tampered with: do not apply it, ask its signers for a fresh copy";

/// What `policy sign` did.
#[derive(Debug, Clone, Serialize)]
pub struct SignReport {
    pub statement: String,
    /// The serial of the policy the statement carries.
    pub serial: u64,
    pub added_signer: String,
    /// Every key id that has signed the statement so far (as claimed; `apply` verifies).
    pub signers: Vec<String>,
    /// The name the carried policy gives the new signer; `None`: it does not
    /// list the key, so the signature can only count for the current policy.
    pub listed_as: Option<String>,
}

/// What `policy apply` did or, in a dry run, would do.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub policy: String,
    pub statement: String,
    /// `applied`, `verified` (dry run: nothing written), or `already-applied`
    /// (the statement is the current policy: nothing to do).
    pub outcome: &'static str,
    pub previous_serial: u64,
    pub serial: u64,
    /// The current policy's keys whose signatures counted.
    pub signed_by_current: Vec<String>,
    /// The new policy's keys whose signatures counted.
    pub signed_by_new: Vec<String>,
    /// Signatures by keys either policy revoked: not counted.
    pub not_counted_revoked: Vec<String>,
    pub keys_added: Vec<String>,
    pub keys_removed: Vec<String>,
    pub keys_revoked: Vec<String>,
    pub previous_threshold: usize,
    pub threshold: usize,
}

/// Signs the policy text in `new_policy` with `key` into `statement`: a new
/// statement, or one more signature on an existing statement of exactly
/// that text (nothing else in it changes).
pub fn sign(new_policy: &Path, key: &dyn Signer, statement: &Path, tables: Tables<'_>) -> Result<SignReport> {
    let text = fs::read_to_string(new_policy).map_err(|e| Error::input(new_policy, "policy", &e))?;
    let origin = new_policy.display().to_string();
    let policy = Policy::parse(&text, References::Refused, &origin, tables)?;
    if policy.serial() == super::FIRST_SERIAL {
        return Err(Error::Usage(format!(
            "{origin}: has serial 1 (or none), which no statement can replace a policy with; set `serial = N+1`, where N is the serial of the policy the site has now"
        )));
    }
    let signed = match read_if_present(statement)? {
        None => envelope::seal(text.as_bytes(), &[key], POLICY_STATEMENT)?,
        Some(existing) => add_signature(&existing, &text, key, statement, &origin)?,
    };
    write_atomically(statement, &signed, 0o644)?;
    let opened = envelope::open_untrusted(&signed, POLICY_STATEMENT).map_err(|r| reject(statement, r))?;
    let id = key.public().id();
    Ok(SignReport {
        statement: statement.display().to_string(),
        serial: policy.serial(),
        added_signer: id.short(),
        signers: opened.claimed_signers.iter().map(KeyId::short).collect(),
        listed_as: policy.name_of(&id).filter(|_| !policy.is_revoked(&id)).map(str::to_owned),
    })
}

/// Most bytes a statement may have: a policy with its keys, Sigstore root
/// and npm keys inline is tens of KiB.
pub const MAX_STATEMENT_BYTES: u64 = 4 << 20;

/// Reads a statement to apply, refusing one over [`MAX_STATEMENT_BYTES`]
/// without reading it whole.
fn read_statement(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let file = fs::File::open(path).map_err(|e| Error::input(path, "policy statement", &e))?;
    let mut signed = Vec::new();
    file.take(MAX_STATEMENT_BYTES + 1)
        .read_to_end(&mut signed)
        .map_err(|e| Error::input(path, "policy statement", &e))?;
    if signed.len() as u64 > MAX_STATEMENT_BYTES {
        return Err(reject(
            path,
            rejection(
                "oversize",
                format!("more than {} MiB, larger than any policy statement; {RESEND}", MAX_STATEMENT_BYTES >> 20),
            ),
        ));
    }
    Ok(signed)
}

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::input(path, "policy statement", &e)),
    }
}

/// Co-signing: the statement must carry exactly the text the co-signer reviewed.
fn add_signature(existing: &[u8], text: &str, key: &dyn Signer, statement: &Path, origin: &str) -> Result<Vec<u8>> {
    let opened = envelope::open_untrusted(existing, POLICY_STATEMENT).map_err(|r| reject(statement, r))?;
    if opened.payload != text.as_bytes() {
        return Err(Error::Usage(format!(
            "{}: carries a different policy text than {origin}; co-sign with the exact file the statement was made from, or write a new statement with another --out",
            statement.display()
        )));
    }
    let id = key.public().id();
    if opened.claimed_signers.contains(&id) {
        return Err(Error::Usage(format!(
            "{}: already signed by key {}; a key counts once",
            statement.display(),
            id.short()
        )));
    }
    envelope::add_signature(existing, key, POLICY_STATEMENT).map_err(|e| match e {
        envelope::AddError::Rejected(r) => reject(statement, r),
        envelope::AddError::Signer(e) => e,
    })
}

/// Verifies `statement` against the policy file at `policy_path` and, unless
/// `dry_run`, replaces that file with the statement's policy; both policies
/// are read with the ecosystem tables `tables`.
pub fn apply(statement: &Path, policy_path: &Path, dry_run: bool, tables: Tables<'_>) -> Result<ApplyReport> {
    let current_text = fs::read_to_string(policy_path).map_err(|e| Error::input(policy_path, "policy", &e))?;
    let base = policy_path.parent().unwrap_or(Path::new("."));
    let current = Policy::parse(&current_text, References::Beside(base), &policy_path.display().to_string(), tables)?;
    let signed = read_statement(statement)?;
    let checked = check(&signed, &current, &current_text, policy_path, tables).map_err(|r| reject(statement, r))?;
    let outcome = match (checked.step, dry_run) {
        (Step::AlreadyApplied, _) => "already-applied",
        (Step::Next, true) => "verified",
        (Step::Next, false) => {
            replace_policy(policy_path, &checked.text)?;
            "applied"
        }
    };
    Ok(checked.report(&current, statement, policy_path, outcome))
}

/// A statement that passed every check, and what applying it means.
struct Checked<'a> {
    step: Step,
    text: String,
    next: Policy,
    by_current: Verified<'a>,
    by_next: Verified<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The statement carries the next serial.
    Next,
    /// The statement carries the current policy itself.
    AlreadyApplied,
}

/// Authenticates first, then parses: the current policy's keys must have
/// signed the statement's bytes before anything in it is parsed (its TOML,
/// the Sigstore trusted root and npm registry keys it inlines), so nobody
/// without a threshold of today's keys can make this side parse anything.
fn check<'a>(
    signed: &'a [u8],
    current: &Policy,
    current_text: &str,
    policy_path: &Path,
    tables: Tables<'_>,
) -> Result<Checked<'a>, Rejection> {
    let by_current = signed_by(signed, current, "current")?;
    let text = std::str::from_utf8(by_current.payload)
        .map_err(|_| rejection("malformed", format!("the policy it carries is not UTF-8 text; {RESEND}")))?;
    let next = Policy::parse(text, References::Refused, "the policy it carries", tables)
        .map_err(|e| rejection("invalid-policy", e.to_string()))?;
    // The serial before the new keys: it says best what is wrong with an old or early statement.
    let step = check_serial(current, &next, text == current_text, policy_path)?;
    let by_next = signed_by(signed, &next, "new")?;
    check_revocations_kept(current, &next)?;
    Ok(Checked { step, text: text.to_owned(), next, by_current, by_next })
}

fn check_serial(current: &Policy, next: &Policy, same_text: bool, policy_path: &Path) -> Result<Step, Rejection> {
    let (now, new) = (current.serial(), next.serial());
    let policy = policy_path.display();
    if new == now && same_text {
        Ok(Step::AlreadyApplied)
    } else if new == now {
        Err(rejection(
            "conflict",
            format!(
                "conflict: the statement carries serial {new}, the serial of {policy}, with a different text; two policies claim the same serial: find out which is genuine"
            ),
        ))
    } else if new < now {
        Err(rejection(
            "rollback",
            format!(
                "rollback: the statement carries policy serial {new}, older than serial {now} of {policy}; only a statement of serial {} can replace it",
                now + 1
            ),
        ))
    } else if new > now + 1 {
        Err(rejection(
            "skip",
            format!(
                "skip: the statement carries policy serial {new}, but {policy} is serial {now}; apply {} first, in order",
                if new - 1 == now + 1 {
                    format!("the statement of serial {}", now + 1)
                } else {
                    format!("the statements of serials {} to {}", now + 1, new - 1)
                }
            ),
        ))
    } else {
        Ok(Step::Next)
    }
}

/// A threshold of `policy`'s keys must have signed; `which` names the policy in errors.
fn signed_by<'a>(signed: &'a [u8], policy: &Policy, which: &str) -> Result<Verified<'a>, Rejection> {
    envelope::verify(signed, policy.keyring(), POLICY_STATEMENT).map_err(|r| match r {
        Rejection::BelowThreshold { valid, required, signers } => rejection(
            "below-threshold",
            format!(
                "signed by {valid} key(s) of the {which} policy (serial {}), it requires {required} (signer key ids, {signers}); a new policy must be signed by a threshold of the current policy's keys and of its own: have those keyholders co-sign with `airlock policy sign`",
                policy.serial()
            ),
        ),
        other => statement_rejection(other),
    })
}

/// Revocation is for good: a later policy that lifted it would let a
/// compromised key count again.
fn check_revocations_kept(current: &Policy, next: &Policy) -> Result<(), Rejection> {
    match current.revoked().find(|id| !next.is_revoked(id)) {
        Some(id) => Err(rejection(
            "unrevoke",
            format!(
                "the statement lifts the revocation of key {}; a revoked key stays revoked in every later serial: keep it in `revoked` and give its holder a new key",
                current.describe(id)
            ),
        )),
        None => Ok(()),
    }
}

/// Writes through a symbolic link to the file it names, as an editor would,
/// keeping the file's permissions.
fn replace_policy(policy_path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let target = fs::canonicalize(policy_path).map_err(|e| Error::input(policy_path, "policy", &e))?;
    let mode = fs::metadata(&target).at(&target)?.permissions().mode() & 0o7777;
    write_atomically(&target, text.as_bytes(), mode)
}

impl Checked<'_> {
    fn report(&self, current: &Policy, statement: &Path, policy_path: &Path, outcome: &'static str) -> ApplyReport {
        let ids = |p: &Policy| p.keys().map(|k| k.key.id()).collect::<BTreeSet<KeyId>>();
        let (before, after) = (ids(current), ids(&self.next));
        let was_revoked: BTreeSet<&KeyId> = current.revoked().collect();
        // Keys the new policy no longer lists are named as the current policy named them.
        let describe = |id: &KeyId| match self.next.name_of(id) {
            Some(_) => self.next.describe(id),
            None => current.describe(id),
        };
        let revoked_signers: BTreeSet<&KeyId> =
            self.by_current.revoked_signers.iter().chain(&self.by_next.revoked_signers).collect();
        ApplyReport {
            policy: policy_path.display().to_string(),
            statement: statement.display().to_string(),
            outcome,
            previous_serial: current.serial(),
            serial: self.next.serial(),
            signed_by_current: self.by_current.trusted_signers.iter().map(|id| current.describe(id)).collect(),
            signed_by_new: self.by_next.trusted_signers.iter().map(|id| self.next.describe(id)).collect(),
            not_counted_revoked: revoked_signers.into_iter().map(describe).collect(),
            keys_added: after.difference(&before).map(describe).collect(),
            keys_removed: before.difference(&after).map(describe).collect(),
            keys_revoked: self.next.revoked().filter(|id| !was_revoked.contains(id)).map(describe).collect(),
            previous_threshold: current.threshold(),
            threshold: self.next.threshold(),
        }
    }
}

fn rejection(kind: &'static str, message: String) -> Rejection {
    debug_assert!(crate::error::ERROR_KINDS.contains(&kind), "{kind} is not in ERROR_KINDS");
    Rejection::Statement { kind, message }
}

/// The envelope's own rejections, worded for a statement rather than a bundle.
fn statement_rejection(r: Rejection) -> Rejection {
    match r {
        Rejection::BadSignature(m) => rejection("bad-signature", format!("bad signature: {m}; {RESEND}")),
        Rejection::Malformed(m) => rejection("malformed", format!("not a policy statement: {m}; {RESEND}")),
        other => other,
    }
}

fn reject(statement: &Path, r: Rejection) -> Error {
    Error::rejected(statement.display(), statement_rejection(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SecretKey;

    fn policy_text(serial: u64, key: &SecretKey, extra: &str) -> String {
        format!(
            "version = 1\nserial = {serial}\nthreshold = 1\n[[keys]]\nname = \"k\"\npublic = \"{}\"\n{extra}",
            key.public().to_text()
        )
    }

    fn kind_of(result: Result<Checked<'_>, Rejection>) -> &'static str {
        match result {
            Err(Rejection::Statement { kind, .. }) => kind,
            Err(other) => panic!("not a statement rejection: {other}"),
            Ok(_) => "accepted",
        }
    }

    /// An ecosystem table whose pinned document (like npm's registry keys)
    /// is always refused: reached only once the statement is authenticated.
    struct Pinning;

    impl crate::policy::Table for Pinning {
        fn name(&self) -> &'static str {
            "pinning"
        }
        fn evidence(&self) -> &'static [crate::manifest::evidence::EvidenceKind] {
            &[]
        }
        fn settings(&self) -> &'static [&'static str] {
            &["document-json"]
        }
        fn resolve(
            &self,
            _: &std::collections::BTreeMap<&'static str, String>,
            _: &[String],
            _: References<'_>,
            origin: &str,
        ) -> Result<Option<crate::policy::Pinned>> {
            Err(Error::Usage(format!("{origin}: [pinning] document-json is not a keys document")))
        }
    }

    #[test]
    fn a_statement_is_authenticated_before_anything_in_it_is_parsed() {
        let (site, stranger) = (SecretKey::generate().unwrap(), SecretKey::generate().unwrap());
        let current_text = policy_text(1, &site, "");
        let current = Policy::parse(&current_text, References::Refused, "current", &[]).unwrap();
        let path = Path::new("policy.toml");
        let huge_root = format!("[sigstore]\ntrusted-root-json = '''{}'''\n", "x".repeat(1 << 20));
        let payloads: Vec<Vec<u8>> = vec![
            b"this is = not [ TOML".to_vec(),
            vec![0xff, 0xfe, 0x00],
            policy_text(2, &stranger, &huge_root).into_bytes(),
            policy_text(2, &stranger, "[pinning]\ndocument-json = '''{\"keys\": 7}'''\n").into_bytes(),
        ];
        let tables: &[&dyn crate::policy::Table] = &[&Pinning];
        for payload in &payloads {
            // Signed by a key the current policy does not trust: refused as a
            // signature failure, never as the parse error the text would give.
            let signed = envelope::seal(payload, std::slice::from_ref(&stranger), POLICY_STATEMENT).unwrap();
            assert_eq!(kind_of(check(&signed, &current, &current_text, path, tables)), "below-threshold");
            // Signed by the current key, the same text fails as what it is.
            let signed = envelope::seal(payload, &[site.clone(), stranger.clone()], POLICY_STATEMENT).unwrap();
            let kind = kind_of(check(&signed, &current, &current_text, path, tables));
            assert!(["invalid-policy", "malformed"].contains(&kind), "{kind}");
        }
        let next = policy_text(2, &site, "");
        let signed = envelope::seal(next.as_bytes(), std::slice::from_ref(&site), POLICY_STATEMENT).unwrap();
        assert_eq!(kind_of(check(&signed, &current, &current_text, path, tables)), "accepted");
    }

    #[test]
    fn a_statement_larger_than_any_policy_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.statement");
        std::fs::write(&path, vec![0u8; MAX_STATEMENT_BYTES as usize + 1]).unwrap();
        let err = read_statement(&path).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("larger than any policy statement"), "{err}");
        std::fs::write(&path, vec![0u8; 100]).unwrap();
        assert_eq!(read_statement(&path).unwrap().len(), 100);
    }
}
