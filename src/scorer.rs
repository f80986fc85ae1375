//! The model pass behind a narrow interface.
//!
//! A [`Scorer`] sees words (never subtokens) and returns one keep score per word. The
//! pipeline, not the scorer, decides what is dropped: protected words are kept whatever
//! their score (see [`crate::protect`]). Until a model is installed, the pipeline runs
//! rules-only (no scorer), and `kompress doctor` says so.

/// Scores words for keeping.
pub trait Scorer: Send + Sync {
    /// One score in `0.0..=1.0` per word of `words`, in order; higher means keep.
    fn score(&self, words: &[&str]) -> anyhow::Result<Vec<f32>>;

    /// A short description for `doctor` and reports.
    fn describe(&self) -> String;
}

/// Scores every word the same: a deterministic stand-in for tests of the model pass.
#[derive(Clone, Copy, Debug)]
pub struct FixedScorer(pub f32);

impl Scorer for FixedScorer {
    fn score(&self, words: &[&str]) -> anyhow::Result<Vec<f32>> {
        Ok(vec![self.0; words.len()])
    }

    fn describe(&self) -> String {
        format!("fixed score {}", self.0)
    }
}
