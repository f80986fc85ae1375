//! The model runtime: an own ModernBERT forward pass on candle.
//!
//! Own code rather than `candle-transformers`, because that crate's ModernBERT cannot parse
//! transformers-v5 configs, has no token-classification head, does dense n×n work on local
//! layers and is F32-mask-only (docs/rust-ml-stack.md §2). One readable file per model, in
//! candle-transformers' style, with Hugging Face weight names so `save_pretrained` output loads
//! unchanged. Parity with transformers is pinned by `tests/model_parity.rs` against fixtures
//! built by `training/make_fixtures.py`.
//!
//! [`tokenizer`] is ModernBERT's byte-level BPE in a compact, memory-mapped form (the hook is a
//! process per tool call, so load time counts); [`words`] maps sub-token scores back to words
//! and implements [`crate::scorer::Scorer`] as [`ModelScorer`].
//!
//! Weights are F32 safetensors (training, parity) or a GGUF file with Q8_0 matrices that is
//! memory-mapped and used in place ([`gguf`], [`quant`], [`weights`]); [`convert`] turns a
//! Hugging Face checkpoint into kompress's model directory and describes one (`kompress model
//! convert|info`); [`bench`] measures load time, throughput, cold start and memory.

pub mod bench;
pub mod convert;
pub mod cpu;
pub mod device;
pub mod forest;
pub mod gguf;
pub mod modernbert;
pub mod qmatmul;
pub mod quant;
pub mod tokenizer;
pub mod weights;
pub mod words;

use std::path::{Path, PathBuf};

pub use tokenizer::Tokenizer;
pub use words::{ModelScorer, WordEncoder};

/// The quantized weights file of a model directory.
pub const GGUF_FILE: &str = "model.q8_0.gguf";
/// The F32 weights file of a model directory (Hugging Face's name).
pub const SAFETENSORS_FILE: &str = "model.safetensors";

/// Where a model directory was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// `--model DIR`.
    Flag,
    /// `KOMPRESS_MODEL`.
    Env,
    /// The data directory's `model/` ([`crate::paths::Dirs::model_dir`]).
    DataDir,
    /// The repository's `model/` (development checkouts).
    Repository,
}

/// Whether `dir` holds a loadable model (a `config.json` and weights).
pub fn is_model_dir(dir: &Path) -> bool {
    dir.join("config.json").is_file()
        && (dir.join(GGUF_FILE).is_file() || dir.join(SAFETENSORS_FILE).is_file())
}

/// Finds the model directory: `--model` (`explicit`), then `KOMPRESS_MODEL`, then the data
/// directory, then the repository's `model/`. An explicit flag or variable is returned as
/// given (a missing model there is an error for the caller to report, not a reason to fall
/// back silently); the last two count only when they hold a model.
///
/// The repository's `model/` is looked for next to the executable first (`../../model` from
/// `target/{debug,release}/kompress`, so a checkout that moved still works), then at the
/// compile-time `CARGO_MANIFEST_DIR/model` (for `cargo test` binaries under
/// `target/*/deps`). An installed binary has neither, so it ends at the data directory.
pub fn resolve_model_dir(explicit: Option<&Path>) -> Option<(PathBuf, ModelSource)> {
    if let Some(dir) = explicit {
        return Some((dir.to_path_buf(), ModelSource::Flag));
    }
    if let Some(dir) = std::env::var_os("KOMPRESS_MODEL").filter(|d| !d.is_empty()) {
        return Some((PathBuf::from(dir), ModelSource::Env));
    }
    if let Some(dir) = crate::paths::Dirs::resolve().map(|d| d.model_dir())
        && is_model_dir(&dir)
    {
        return Some((dir, ModelSource::DataDir));
    }
    let near_exe = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("model")));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("model");
    near_exe
        .into_iter()
        .chain([manifest])
        .find(|dir| is_model_dir(dir))
        .map(|dir| (dir, ModelSource::Repository))
}

/// Keeps freed activation buffers in the heap instead of returning them to the kernel.
///
/// Profiling the forward (perf, small config) showed ~8% of its time in page faults: every
/// candle op allocates a fresh output buffer, glibc serves those over its mmap threshold with
/// `mmap` and gives them back with `munmap`, so each one is faulted in page by page again.
/// Raising the thresholds lets the next op reuse the memory. Peak RSS is unchanged (the peak
/// is the largest set of live buffers either way). Called once, before the first model load.
pub fn tune_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes glibc malloc tunables; called before any worker
        // threads of the model exist.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
        }
    });
}
