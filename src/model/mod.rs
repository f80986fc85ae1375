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
//! Not here yet: quantized (GGUF) linears.

pub mod modernbert;
pub mod tokenizer;
pub mod words;

pub use tokenizer::Tokenizer;
pub use words::{ModelScorer, WordEncoder};
