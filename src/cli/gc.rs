//! `airlock gc`

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{Output, bytes};
use crate::error::Result;
use crate::mirror::{Mirror, View};

/// Reclaim space: blobs withdrawn from the mirror, old generations, abandoned staging
#[derive(Debug, Args)]
pub struct GcArgs {
    /// The mirror folder
    #[arg(long, value_name = "DIR")]
    pub mirror: PathBuf,
}

#[derive(Serialize)]
struct GcReport {
    mirror: String,
    objects_removed: usize,
    bytes_freed: u64,
}

impl GcArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        // Refuse to create a mirror just to collect nothing.
        View::open(&self.mirror)?;
        let mirror = Mirror::open(&self.mirror)?;
        let (objects_removed, bytes_freed) = mirror.gc()?;
        out.line(format!(
            "gc        removed {objects_removed} unused blobs ({}) from {}",
            bytes(bytes_freed),
            self.mirror.display()
        ));
        out.line("note      an incremental bundle that relies on a removed blob needs a --full bundle");
        out.report(&GcReport { mirror: self.mirror.display().to_string(), objects_removed, bytes_freed });
        Ok(())
    }
}
