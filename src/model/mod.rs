//! The model runtime: an own ModernBERT forward pass on candle.
//!
//! Own code rather than `candle-transformers`, because that crate's ModernBERT cannot parse
//! transformers-v5 configs, has no token-classification head, does dense n×n work on local
//! layers and is F32-mask-only (docs/rust-ml-stack.md §2). One readable file per model, in
//! candle-transformers' style, with Hugging Face weight names so `save_pretrained` output loads
//! unchanged. Parity with transformers is pinned by `tests/model_parity.rs` against fixtures
//! built by `training/make_fixtures.py`.
//!
//! Not here yet: quantized (GGUF) linears, the tokenizer, and the [`crate::scorer::Scorer`]
//! adapter that maps sub-token scores back to words.

pub mod modernbert;
