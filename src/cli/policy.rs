//! `airlock policy sign` and `airlock policy apply`: the trust policy's next
//! serial as a signed statement (key rotation and revocation).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Output;
use super::keys::{KeyParser, UnlockArgs};
use crate::durable::Existing;
use crate::error::Result;
use crate::policy::statement::{ApplyReport, apply, sign};
use crate::sign::signer::KeySource;

/// Rotate and revoke keys: sign the site's next trust policy as a statement, and apply it on the disconnected side
#[derive(Debug, Args)]
#[command(disable_help_subcommand = true)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    Sign(PolicySignArgs),
    Apply(PolicyApplyArgs),
}

/// Sign a new policy (serial N+1, keys inline) into a statement, or add your signature to an existing one
#[derive(Debug, Args)]
pub struct PolicySignArgs {
    /// The new policy file (its bytes are what is signed and later applied)
    pub policy: PathBuf,
    /// Your secret key: a key file (encrypted or in clear), or a PKCS#11 URI (pkcs11:token=...;object=...)
    #[arg(long, value_name = "KEY", value_parser = KeyParser)]
    pub key: KeySource,
    /// The statement file: created, or co-signed when it exists and carries the same policy text
    #[arg(long, value_name = "STATEMENT")]
    pub out: PathBuf,
    #[command(flatten)]
    pub unlock: UnlockArgs,
}

/// Verify a policy statement against the current policy and replace the policy file with it, atomically
#[derive(Debug, Args)]
pub struct PolicyApplyArgs {
    /// The statement file written by airlock policy sign
    pub statement: PathBuf,
    /// The current policy file (replaced in place)
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Verify only; leave the policy file as it is
    #[arg(long)]
    pub dry_run: bool,
}

impl PolicyArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        match &self.command {
            PolicyCommand::Sign(args) => args.run(out),
            PolicyCommand::Apply(args) => args.run(out),
        }
    }
}

impl PolicySignArgs {
    fn run(&self, out: &Output) -> Result<()> {
        // An existing statement is co-signed, so it may exist; but it may not be the policy or the key.
        let inputs: Vec<&std::path::Path> =
            [Some(self.policy.as_path()), self.key.path()].into_iter().flatten().collect();
        crate::durable::check_output(&self.out, "--out", Existing::Replace, &inputs)?;
        let (keys, clear) = self.unlock.open(std::slice::from_ref(&self.key))?;
        let report = sign(&self.policy, &keys[0], &self.out, crate::ecosystem::POLICY_TABLES)?;
        out.line(format!("signed    {} (policy serial {})", report.statement, report.serial));
        out.line(format!("signers   {}", report.signers.join(", ")));
        if report.listed_as.is_none() {
            out.line(format!(
                "note      the new policy does not trust key {}: this signature counts only toward the current policy's threshold",
                report.added_signer
            ));
        }
        out.report("policy-sign", &report);
        clear.warn(out);
        Ok(())
    }
}

impl PolicyApplyArgs {
    fn run(&self, out: &Output) -> Result<()> {
        let report = apply(&self.statement, &self.policy, self.dry_run, crate::ecosystem::POLICY_TABLES)?;
        print_applied(out, &report);
        out.report("policy-apply", &report);
        Ok(())
    }
}

fn print_applied(out: &Output, report: &ApplyReport) {
    let what = match report.outcome {
        "applied" => format!("applied   {}: {} is now serial {}", report.statement, report.policy, report.serial),
        "verified" => format!(
            "verified  {}: it can replace serial {} of {} with serial {} (dry run: nothing written)",
            report.statement, report.previous_serial, report.policy, report.serial
        ),
        _ => format!("unchanged {}: {} is already serial {}", report.statement, report.policy, report.serial),
    };
    out.line(what);
    out.line(format!("signed by current policy: {}", report.signed_by_current.join(", ")));
    out.line(format!("signed by new policy:     {}", report.signed_by_new.join(", ")));
    for revoked in &report.not_counted_revoked {
        out.line(format!("revoked   {revoked}: signature not counted (a policy revokes this key)"));
    }
    let changes = [("added", &report.keys_added), ("removed", &report.keys_removed), ("revoked", &report.keys_revoked)];
    for (change, keys) in changes {
        if !keys.is_empty() {
            out.line(format!("keys      {change}: {}", keys.join(", ")));
        }
    }
    if report.threshold != report.previous_threshold {
        out.line(format!("threshold {} -> {}", report.previous_threshold, report.threshold));
    }
}
