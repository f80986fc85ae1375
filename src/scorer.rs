//! The model pass behind a narrow interface.
//!
//! A [`Scorer`] sees words (never subtokens), each with the whitespace before it, and
//! returns one keep score per word. The pipeline, not the scorer, decides what is dropped:
//! protected words are kept whatever their score (see [`crate::protect`]).
//!
//! [`installed`] is how the hook, the pipe and `kompress eval` get the model: it only
//! resolves the model directory (a few `stat` calls); the weights and the tokenizer are
//! mapped the first time a text reaches the model pass, so a passthrough or a domain
//! without the model never pays for them. When the model cannot be loaded, or would miss
//! the deadline, the model pass is skipped and the rules' output stands.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Result, anyhow};

use crate::config::Config;
use crate::model::device::DeviceChoice;
use crate::model::forest::Forest;
use crate::model::{ModelScorer, ModelSource, resolve_model_dir};

/// Scores words for keeping.
pub trait Scorer: Send + Sync {
    /// One score in `0.0..=1.0` per word, in order; higher means keep. `words` holds
    /// `(whitespace before, word)` pairs of the text. Fails once `deadline` has passed.
    fn score(&self, words: &[(&str, &str)], deadline: Instant) -> Result<Vec<f32>>;

    /// A short description for `doctor` and reports.
    fn describe(&self) -> String;

    /// The line model that comes with the word model, if any (see [`crate::select`]).
    fn lines(&self) -> Option<&Forest> {
        None
    }
}

/// The line model's file in a model directory.
pub const LINES_FILE: &str = "lines.bin";

/// Scores every word the same: a deterministic stand-in for tests of the model pass.
#[derive(Clone, Copy, Debug)]
pub struct FixedScorer(pub f32);

impl Scorer for FixedScorer {
    fn score(&self, words: &[(&str, &str)], _deadline: Instant) -> Result<Vec<f32>> {
        Ok(vec![self.0; words.len()])
    }

    fn describe(&self) -> String {
        format!("fixed score {}", self.0)
    }
}

/// A model directory, loaded on first use, on the device of a [`DeviceChoice`].
pub struct LazyModel {
    dir: PathBuf,
    source: ModelSource,
    device: DeviceChoice,
    loaded: OnceLock<Result<ModelScorer, String>>,
    lines: OnceLock<Option<Forest>>,
}

impl LazyModel {
    pub fn new(dir: PathBuf, source: ModelSource, device: DeviceChoice) -> Self {
        LazyModel {
            dir,
            source,
            device,
            loaded: OnceLock::new(),
            lines: OnceLock::new(),
        }
    }

    /// The device choice it loads with.
    pub fn device(&self) -> DeviceChoice {
        self.device
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads the model now (if not yet); the error says why it cannot be used.
    pub fn get(&self) -> Result<&ModelScorer> {
        self.loaded
            .get_or_init(|| {
                let device = self.device.resolve().map_err(|e| format!("{e:#}"))?;
                ModelScorer::load_on(&self.dir, device.as_ref()).map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| anyhow!("model at {}: {e}", self.dir.display()))
    }
}

impl LazyModel {
    /// Where the model came from and its weights file's size, without the directory (for
    /// reports that are committed or shared).
    pub fn label(&self) -> String {
        let weights = self.dir.join(crate::model::GGUF_FILE);
        let file = if weights.is_file() {
            weights
        } else {
            self.dir.join(crate::model::SAFETENSORS_FILE)
        };
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let device = match self.device {
            DeviceChoice::Cpu => String::new(),
            other => format!(", --device {other}"),
        };
        format!(
            "model {name} ({size} bytes) from {}{device}",
            self.source_name()
        )
    }

    /// How the model directory was found.
    pub fn source_name(&self) -> &'static str {
        match self.source {
            ModelSource::Flag => "--model",
            ModelSource::Env => "KOMPRESS_MODEL",
            ModelSource::DataDir => "the data directory",
            ModelSource::Repository => "the repository's model/",
        }
    }
}

impl Scorer for LazyModel {
    fn score(&self, words: &[(&str, &str)], deadline: Instant) -> Result<Vec<f32>> {
        self.get()?.score_gapped(words, deadline)
    }

    fn describe(&self) -> String {
        format!("model at {} ({})", self.dir.display(), self.source_name())
    }

    /// `lines.bin` of the model directory, read on first use; missing or unusable: no
    /// line model (logged), the rules' output stands.
    fn lines(&self) -> Option<&Forest> {
        self.lines
            .get_or_init(|| {
                let path = self.dir.join(LINES_FILE);
                if !path.is_file() {
                    return None;
                }
                match Forest::open(&path, crate::select::features::NAMES) {
                    Ok(forest) => Some(forest),
                    Err(e) => {
                        crate::log::write(&format!("line model {} skipped: {e:#}", path.display()));
                        None
                    }
                }
            })
            .as_ref()
    }
}

/// The command-line choice of model and device (`--model DIR`, `--device NAME`), shared by
/// the pipe, `run`, `hook` and `eval`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ModelArgs {
    /// Use the model in DIR (before KOMPRESS_MODEL, the data dir and the repository's
    /// model/).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Run the model on cpu, cuda (a build with `--features cuda`) or auto (default: the
    /// configuration's `device`, else cpu).
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<DeviceChoice>,
}

/// The model to use: `--model DIR` whatever the configuration says, else `None` when
/// `model = false` (or `KOMPRESS_NO_MODEL=1`), else the first model directory of
/// [`resolve_model_dir`]'s lookup order, if any; on `--device`, else the configuration's
/// device.
pub fn installed(config: &Config, args: &ModelArgs) -> Option<LazyModel> {
    let explicit = args.model.as_deref();
    if !config.model && explicit.is_none() {
        return None;
    }
    let (dir, source) = resolve_model_dir(explicit)?;
    Some(LazyModel::new(
        dir,
        source,
        args.device.unwrap_or(config.device),
    ))
}
