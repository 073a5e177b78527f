//! `import`: verify everything into staging, then publish in one step.

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::mirror::{Mirror, PublishReport};
use crate::policy::Policy;
use crate::progress::Progress;
use crate::verify::{VerifyReport, verify_bundle};

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub verified: VerifyReport,
    pub mirror: PublishReport,
}

/// Verifies `bundle` against `policy` and publishes it into the mirror at
/// `mirror`. On any error the published mirror is unchanged.
pub fn import(
    bundle: &Path,
    policy: &Policy,
    mirror: &Path,
    now: u64,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let mut mirror = Mirror::open(mirror)?;
    let mut staging = mirror.staging()?;
    let (verified, report) = verify_bundle(bundle, policy, now, &mut staging, progress)?;
    let published = mirror.publish(&staging, &verified, now)?;
    Ok(ImportReport { verified: report, mirror: published })
}
