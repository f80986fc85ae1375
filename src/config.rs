//! User configuration: a TOML file in the config directory, then `KOMPRESS_*` overrides.
//!
//! ```toml
//! # ~/.config/kompress/config.toml
//! disable = false
//! min_chars = 200
//! deadline_ms = 1000
//! min_saving = 0.05
//! max_output_chars = 29000
//! store_max_bytes = 268435456
//! store_retention_days = 7
//! session_memory = true
//! model = true
//! device = "cpu"      # or "cuda", "auto" (see crate::model::device)
//!
//! [rewrite]          # the PreToolUse hook (crate::hook::rewrite)
//! enabled = true
//! exclude = ["make deploy"]
//! # commands = ["pytest", "cargo test"]   # replaces the built-in table
//!
//! [domains.build_log]
//! passes = ["ansi", "progress", "repeats", "blank_lines"]
//! model = false
//! ```
//!
//! Environment: `KOMPRESS_DISABLE=1` (pure passthrough), `KOMPRESS_CONFIG` (another file),
//! `KOMPRESS_MIN_CHARS`, `KOMPRESS_DEADLINE_MS`, `KOMPRESS_MIN_SAVING`,
//! `KOMPRESS_MAX_OUTPUT_CHARS`, `KOMPRESS_STORE_MAX_BYTES`, `KOMPRESS_STORE_RETENTION_DAYS`,
//! `KOMPRESS_SESSION_MEMORY`, `KOMPRESS_REWRITE=0` (no PreToolUse rewrite), `KOMPRESS_NO_MODEL=1` (rules only), `KOMPRESS_MODEL` (a model
//! directory: see [`crate::model::resolve_model_dir`]), `KOMPRESS_DEVICE` (`cpu`, `cuda`,
//! `auto`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::domain::{Domain, Settings};
use crate::hook::rewrite;
use crate::model::device::DeviceChoice;
use crate::paths::Dirs;

/// Resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Pure passthrough: kompress changes nothing.
    pub disable: bool,
    /// Inputs shorter than this many characters pass through unchanged.
    pub min_chars: usize,
    /// Give up and pass through when compression takes longer than this.
    pub deadline: Duration,
    /// Pass through unless at least this fraction of tokens is saved.
    pub min_saving: f64,
    /// The largest output hook mode may emit. Claude Code persists a Bash replacement over
    /// 30,000 characters to a file and shows the model a 2 KB preview, so the default stays
    /// below that, with room for kompress's own trailer.
    pub max_output_chars: usize,
    /// The store of originals (`kompress show`) is kept under about this many bytes, the
    /// least recently used evicted first. 0: store nothing and add no trailer.
    pub store_max_bytes: u64,
    /// Originals and session memory older than this many days are deleted.
    pub store_retention_days: u64,
    /// Replace a repeated Bash output in one session by "unchanged" or a diff.
    pub session_memory: bool,
    /// Run the model pass where a domain allows it and a model is installed; `false`:
    /// rules only.
    pub model: bool,
    /// Where the model runs ([`DeviceChoice`]); `--device` overrides it.
    pub device: DeviceChoice,
    /// Per-domain overrides of [`Domain::settings`].
    pub domains: BTreeMap<Domain, Settings>,
    /// Which Bash commands the PreToolUse hook runs under `kompress run`.
    pub rewrite: rewrite::Settings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            disable: false,
            min_chars: 200,
            deadline: Duration::from_millis(1000),
            min_saving: 0.05,
            max_output_chars: 29_000,
            store_max_bytes: 256 << 20,
            store_retention_days: 7,
            session_memory: true,
            model: true,
            device: DeviceChoice::Cpu,
            domains: BTreeMap::new(),
            rewrite: rewrite::Settings::default(),
        }
    }
}

/// The file format: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    disable: Option<bool>,
    min_chars: Option<usize>,
    deadline_ms: Option<u64>,
    min_saving: Option<f64>,
    max_output_chars: Option<usize>,
    store_max_bytes: Option<u64>,
    store_retention_days: Option<u64>,
    session_memory: Option<bool>,
    model: Option<bool>,
    device: Option<DeviceChoice>,
    #[serde(default)]
    domains: BTreeMap<Domain, Settings>,
    #[serde(default)]
    rewrite: RewriteFile,
}

/// The `[rewrite]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RewriteFile {
    enabled: Option<bool>,
    commands: Option<Vec<String>>,
    #[serde(default)]
    exclude: Vec<String>,
}

impl Config {
    /// The settings for `domain`: the user's override or the built-in default.
    pub fn settings(&self, domain: Domain) -> Settings {
        self.domains
            .get(&domain)
            .cloned()
            .unwrap_or_else(|| domain.settings())
    }

    /// Load the configuration file (if any) and apply environment overrides.
    pub fn load() -> Result<Config> {
        let path = std::env::var_os("KOMPRESS_CONFIG")
            .map(PathBuf::from)
            .or_else(|| Dirs::resolve().map(|d| d.config_file()));
        let mut config = match path {
            Some(path) if path.exists() => Config::from_file(&path)?,
            _ => Config::default(),
        };
        config.apply_env(|key| std::env::var(key).ok())?;
        Ok(config)
    }

    /// Parse one configuration file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let file: File = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        let defaults = Config::default();
        Ok(Config {
            disable: file.disable.unwrap_or(defaults.disable),
            min_chars: file.min_chars.unwrap_or(defaults.min_chars),
            deadline: file
                .deadline_ms
                .map_or(defaults.deadline, Duration::from_millis),
            min_saving: file.min_saving.unwrap_or(defaults.min_saving),
            max_output_chars: file.max_output_chars.unwrap_or(defaults.max_output_chars),
            store_max_bytes: file.store_max_bytes.unwrap_or(defaults.store_max_bytes),
            store_retention_days: file
                .store_retention_days
                .unwrap_or(defaults.store_retention_days),
            session_memory: file.session_memory.unwrap_or(defaults.session_memory),
            model: file.model.unwrap_or(defaults.model),
            device: file.device.unwrap_or(defaults.device),
            domains: file.domains,
            rewrite: rewrite::Settings {
                enabled: file.rewrite.enabled.unwrap_or(defaults.rewrite.enabled),
                commands: file.rewrite.commands.unwrap_or(defaults.rewrite.commands),
                exclude: file.rewrite.exclude,
            },
        })
    }

    /// Apply `KOMPRESS_*` overrides read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
            value
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("{key}={value:?} is not a valid value"))
        }
        if let Some(v) = get("KOMPRESS_DISABLE") {
            self.disable = !matches!(v.trim(), "" | "0" | "false" | "no");
        }
        if let Some(v) = get("KOMPRESS_MIN_CHARS") {
            self.min_chars = parse("KOMPRESS_MIN_CHARS", &v)?;
        }
        if let Some(v) = get("KOMPRESS_DEADLINE_MS") {
            self.deadline = Duration::from_millis(parse("KOMPRESS_DEADLINE_MS", &v)?);
        }
        if let Some(v) = get("KOMPRESS_MIN_SAVING") {
            self.min_saving = parse("KOMPRESS_MIN_SAVING", &v)?;
        }
        if let Some(v) = get("KOMPRESS_MAX_OUTPUT_CHARS") {
            self.max_output_chars = parse("KOMPRESS_MAX_OUTPUT_CHARS", &v)?;
        }
        if let Some(v) = get("KOMPRESS_STORE_MAX_BYTES") {
            self.store_max_bytes = parse("KOMPRESS_STORE_MAX_BYTES", &v)?;
        }
        if let Some(v) = get("KOMPRESS_STORE_RETENTION_DAYS") {
            self.store_retention_days = parse("KOMPRESS_STORE_RETENTION_DAYS", &v)?;
        }
        if let Some(v) = get("KOMPRESS_SESSION_MEMORY") {
            self.session_memory = !matches!(v.trim(), "" | "0" | "false" | "no");
        }
        if let Some(v) = get("KOMPRESS_REWRITE") {
            self.rewrite.enabled = !matches!(v.trim(), "" | "0" | "false" | "no");
        }
        if let Some(v) = get("KOMPRESS_NO_MODEL") {
            self.model = matches!(v.trim(), "" | "0" | "false" | "no");
        }
        if let Some(v) = get("KOMPRESS_DEVICE") {
            self.device = v.parse()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::Pass;

    #[test]
    fn file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "min_chars = 500\n[domains.build_log]\npasses = [\"ansi\", \"repeats\"]\nmodel = false\n",
        )
        .unwrap();
        let mut config = Config::from_file(&path).unwrap();
        assert_eq!(config.min_chars, 500);
        assert_eq!(
            config.settings(Domain::BuildLog).passes,
            vec![Pass::Ansi, Pass::Repeats]
        );
        assert_eq!(config.settings(Domain::Diff), Domain::Diff.settings());
        config
            .apply_env(|k| (k == "KOMPRESS_DISABLE").then(|| "1".to_string()))
            .unwrap();
        assert!(config.disable);
        let bad = config.apply_env(|k| (k == "KOMPRESS_MIN_CHARS").then(|| "x".to_string()));
        assert!(bad.unwrap_err().to_string().contains("KOMPRESS_MIN_CHARS"));
    }

    #[test]
    fn store_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "store_max_bytes = 1000\nstore_retention_days = 2\nsession_memory = false\n",
        )
        .unwrap();
        let mut config = Config::from_file(&path).unwrap();
        assert_eq!(
            (
                config.store_max_bytes,
                config.store_retention_days,
                config.session_memory
            ),
            (1000, 2, false)
        );
        config
            .apply_env(|k| match k {
                "KOMPRESS_STORE_MAX_BYTES" => Some("5000".to_string()),
                "KOMPRESS_STORE_RETENTION_DAYS" => Some("1".to_string()),
                "KOMPRESS_SESSION_MEMORY" => Some("1".to_string()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            (
                config.store_max_bytes,
                config.store_retention_days,
                config.session_memory
            ),
            (5000, 1, true)
        );
        assert_eq!(Config::default().store_max_bytes, 256 << 20);
    }

    #[test]
    fn model_switch() {
        assert!(Config::default().model);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "model = false\n").unwrap();
        let mut config = Config::from_file(&path).unwrap();
        assert!(!config.model);
        config
            .apply_env(|k| (k == "KOMPRESS_NO_MODEL").then(|| "0".to_string()))
            .unwrap();
        assert!(config.model);
        config
            .apply_env(|k| (k == "KOMPRESS_NO_MODEL").then(|| "1".to_string()))
            .unwrap();
        assert!(!config.model);
    }

    #[test]
    fn device_from_file_and_env() {
        assert_eq!(Config::default().device, DeviceChoice::Cpu);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "device = \"auto\"\n").unwrap();
        let mut config = Config::from_file(&path).unwrap();
        assert_eq!(config.device, DeviceChoice::Auto);
        config
            .apply_env(|k| (k == "KOMPRESS_DEVICE").then(|| "cuda".to_string()))
            .unwrap();
        assert_eq!(config.device, DeviceChoice::Cuda);
        assert!(
            config
                .apply_env(|k| (k == "KOMPRESS_DEVICE").then(|| "tpu".to_string()))
                .is_err()
        );
        std::fs::write(&path, "device = \"tpu\"\n").unwrap();
        assert!(Config::from_file(&path).is_err());
    }

    #[test]
    fn rewrite_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[rewrite]\nexclude = [\"make deploy\"]\n").unwrap();
        let mut config = Config::from_file(&path).unwrap();
        assert!(config.rewrite.enabled);
        assert_eq!(config.rewrite.exclude, vec!["make deploy"]);
        assert_eq!(
            config.rewrite.commands.len(),
            rewrite::DEFAULT_COMMANDS.len()
        );
        config
            .apply_env(|k| (k == "KOMPRESS_REWRITE").then(|| "0".to_string()))
            .unwrap();
        assert!(!config.rewrite.enabled);
        std::fs::write(
            &path,
            "[rewrite]\ncommands = [\"just test\"]\nenabled = false\n",
        )
        .unwrap();
        let config = Config::from_file(&path).unwrap();
        assert_eq!(
            (config.rewrite.commands, config.rewrite.enabled),
            (vec!["just test".to_string()], false)
        );
        std::fs::write(&path, "[rewrite]\nexclud = []\n").unwrap();
        assert!(Config::from_file(&path).is_err());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "min_char = 5\n").unwrap();
        let err = format!("{:#}", Config::from_file(&path).unwrap_err());
        assert!(err.contains("min_char"), "{err}");
    }
}
