//! `kompress init`: register the hook in Claude Code's settings.json. (Being written.)

use std::path::Path;

use anyhow::Result;

/// Run `kompress init`.
pub fn main(_project: bool, _uninstall: bool, _settings: Option<&Path>) -> Result<()> {
    anyhow::bail!("init is not implemented yet")
}
