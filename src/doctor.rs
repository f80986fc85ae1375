//! `kompress doctor`: check the installation. (Being written.)

use anyhow::Result;

/// Run `kompress doctor`.
pub fn main() -> Result<()> {
    anyhow::bail!("doctor is not implemented yet")
}
