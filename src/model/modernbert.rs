//! ModernBERT (encoder, token-classification head and the Kompress dual head) on candle.
//!
//! Mirrors Hugging Face transformers' `modeling_modernbert.py` (eval mode, no unpadding):
//!
//! ```text
//! ids ─► tok_embeddings ─► norm ─► N × layer ─► final_norm ─► head
//! layer i:  x += Wo(attn(RoPE(Wqkv(attn_norm(x)))))     attn_norm is Identity on layer 0
//!           x += mlp.Wo(act(in) * gate), (in, gate) = mlp.Wi(mlp_norm(x)).chunk(2)
//! ```
//!
//! Global layers (`full_attention`) attend to every key with RoPE theta `global_rope_theta`;
//! local layers (`sliding_attention`) attend to keys with `|i − j| ≤ local_attention / 2`
//! with theta `local_rope_theta`. Local layers are computed per block of query rows against
//! only the keys their window can reach, so their cost is O(n · window), not O(n²).
//!
//! Weight names are the ones `save_pretrained` writes (`model.layers.{i}.attn.Wqkv.weight`,
//! …), so checkpoints load unchanged. Weights come from F32 safetensors (a candle
//! `VarBuilder`) or a memory-mapped GGUF file whose Q8_0 matrices are used in place
//! ([`super::weights`]); activations are F32 either way.
//!
//! Two forwards share the loaded weights: `forward` runs [`super::cpu`] (own buffers, no
//! candle ops, ~10× faster on the CPU), `forward_reference` the candle code in this file,
//! which reads like transformers and is kept as the reference the fast path is checked
//! against (`tests/model_parity.rs`). `KOMPRESS_FORWARD=candle` makes `forward` take the
//! reference path too (diagnostics; `kompress bench` uses it for old-vs-new cold starts).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{D, DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, VarBuilder};

use super::cpu;
use super::weights::{Emb, Lin, Weights};
use serde::Deserialize;

/// Whether `KOMPRESS_FORWARD=candle` asks for the candle reference forward.
fn reference_forward_requested() -> bool {
    static CANDLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CANDLE.get_or_init(|| std::env::var("KOMPRESS_FORWARD").is_ok_and(|v| v == "candle"))
}

/// Additive mask value for keys a query must not see. Finite (unlike `-inf`) so a row whose
/// keys are all masked (a padding query) gives a uniform softmax instead of NaN; `exp` of it
/// underflows to exactly 0, as with transformers' `finfo(float32).min`.
const MASKED: f32 = -1e30;

/// Whether a layer attends globally or inside the sliding window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionKind {
    /// `full_attention`: every query sees every (unpadded) key.
    Global,
    /// `sliding_attention`: a query sees keys with `|i − j| ≤ local_attention / 2`.
    Local,
}

/// The activations ModernBERT checkpoints use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: the exact erf GELU (transformers' `ACT2FN["gelu"]`), the ModernBERT default.
    GeluErf,
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
}

impl Activation {
    fn parse(name: &str) -> std::result::Result<Self, String> {
        match name {
            "gelu" => Ok(Self::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Self::GeluTanh),
            other => Err(format!("unsupported activation {other:?}")),
        }
    }

    fn apply(self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::GeluErf => xs.gelu_erf(),
            Self::GeluTanh => xs.gelu(),
        }
    }
}

/// A ModernBERT `config.json`, normalised over transformers v4 and v5 spellings.
///
/// v4 writes `layer_norm_eps`/`norm_eps`, `global_attn_every_n_layers`, `global_rope_theta`
/// and `local_rope_theta`; v5 writes `norm_eps`, a `layer_types` list and `rope_parameters`
/// keyed by layer type. Both parse to the same struct; missing keys take transformers'
/// `ModernBertConfig` defaults.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub norm_eps: f64,
    pub pad_token_id: Option<u32>,
    /// Full window width; a query sees `local_attention / 2` keys on each side.
    pub local_attention: usize,
    /// One entry per layer.
    pub layer_types: Vec<AttentionKind>,
    pub global_rope_theta: f64,
    pub local_rope_theta: f64,
    pub norm_bias: bool,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub classifier_bias: bool,
    pub hidden_activation: Activation,
    pub classifier_activation: Activation,
    /// Label names by class index (from `id2label`, or inverted `label2id`).
    pub id2label: BTreeMap<u32, String>,
}

impl Config {
    /// Reads and parses a `config.json`.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Self::from_json(&text).map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))
    }

    /// Parses the text of a `config.json`.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }

    /// Number of classes of a classification head; transformers' default is 2.
    pub fn num_labels(&self) -> usize {
        if self.id2label.is_empty() {
            2
        } else {
            self.id2label.len()
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// The keys as they appear in either transformers version; see [`Config`].
#[derive(Deserialize)]
#[serde(default)]
struct RawConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    norm_eps: Option<f64>,
    layer_norm_eps: Option<f64>,
    pad_token_id: Option<u32>,
    local_attention: usize,
    layer_types: Option<Vec<String>>,
    global_attn_every_n_layers: usize,
    global_rope_theta: Option<f64>,
    local_rope_theta: Option<f64>,
    rope_parameters: Option<serde_json::Value>,
    norm_bias: bool,
    attention_bias: bool,
    mlp_bias: bool,
    classifier_bias: bool,
    hidden_activation: String,
    classifier_activation: String,
    id2label: Option<BTreeMap<String, String>>,
    label2id: Option<BTreeMap<String, serde_json::Value>>,
}

/// transformers' `ModernBertConfig` defaults (ModernBERT-base).
impl Default for RawConfig {
    fn default() -> Self {
        Self {
            vocab_size: 50368,
            hidden_size: 768,
            num_hidden_layers: 22,
            num_attention_heads: 12,
            intermediate_size: 1152,
            max_position_embeddings: 8192,
            norm_eps: None,
            layer_norm_eps: None,
            pad_token_id: Some(50283),
            local_attention: 128,
            layer_types: None,
            global_attn_every_n_layers: 3,
            global_rope_theta: None,
            local_rope_theta: None,
            rope_parameters: None,
            norm_bias: false,
            attention_bias: false,
            mlp_bias: false,
            classifier_bias: false,
            hidden_activation: "gelu".into(),
            classifier_activation: "gelu".into(),
            id2label: None,
            label2id: None,
        }
    }
}

/// Reads `rope_theta` from one `rope_parameters` entry, refusing RoPE scaling we do not
/// implement (anything but `default`) rather than silently computing something else.
fn rope_theta(params: &serde_json::Value) -> std::result::Result<Option<f64>, String> {
    if let Some(kind) = params.get("rope_type").and_then(|t| t.as_str())
        && kind != "default"
    {
        return Err(format!("unsupported rope_type {kind:?}"));
    }
    Ok(params.get("rope_theta").and_then(|t| t.as_f64()))
}

impl TryFrom<RawConfig> for Config {
    type Error = String;

    fn try_from(raw: RawConfig) -> std::result::Result<Self, String> {
        if raw.num_attention_heads == 0 || !raw.hidden_size.is_multiple_of(raw.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                raw.hidden_size, raw.num_attention_heads
            ));
        }
        let layer_types = match &raw.layer_types {
            Some(types) => {
                if types.len() != raw.num_hidden_layers {
                    return Err(format!(
                        "layer_types has {} entries for {} layers",
                        types.len(),
                        raw.num_hidden_layers
                    ));
                }
                types
                    .iter()
                    .map(|t| match t.as_str() {
                        "full_attention" => Ok(AttentionKind::Global),
                        "sliding_attention" => Ok(AttentionKind::Local),
                        other => Err(format!("unknown layer type {other:?}")),
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?
            }
            None => {
                let every = raw.global_attn_every_n_layers.max(1);
                (0..raw.num_hidden_layers)
                    .map(|i| {
                        if i % every == 0 {
                            AttentionKind::Global
                        } else {
                            AttentionKind::Local
                        }
                    })
                    .collect()
            }
        };
        // v5: {"full_attention": {...}, "sliding_attention": {...}}; a flat {"rope_theta"}
        // applies to both. v5 values win over v4 keys when both are present.
        let (mut global_theta, mut local_theta) = (raw.global_rope_theta, raw.local_rope_theta);
        if let Some(params) = &raw.rope_parameters {
            let full = params.get("full_attention");
            let sliding = params.get("sliding_attention");
            if full.is_some() || sliding.is_some() {
                if let Some(t) = full.map(rope_theta).transpose()?.flatten() {
                    global_theta = Some(t);
                }
                if let Some(t) = sliding.map(rope_theta).transpose()?.flatten() {
                    local_theta = Some(t);
                }
            } else if let Some(t) = rope_theta(params)? {
                global_theta = Some(t);
                local_theta = Some(t);
            }
        }
        let mut id2label = BTreeMap::new();
        if let Some(map) = &raw.id2label {
            for (k, v) in map {
                let id = k
                    .parse()
                    .map_err(|_| format!("id2label key {k:?} is not an integer"))?;
                id2label.insert(id, v.clone());
            }
        } else if let Some(map) = &raw.label2id {
            for (label, v) in map {
                // Normally an integer; some exporters write it as a string.
                let id = v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .and_then(|id| u32::try_from(id).ok())
                    .ok_or_else(|| format!("label2id value {v} is not an integer"))?;
                id2label.insert(id, label.clone());
            }
        }
        Ok(Self {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            intermediate_size: raw.intermediate_size,
            max_position_embeddings: raw.max_position_embeddings,
            norm_eps: raw.norm_eps.or(raw.layer_norm_eps).unwrap_or(1e-5),
            pad_token_id: raw.pad_token_id,
            local_attention: raw.local_attention,
            layer_types,
            global_rope_theta: global_theta.unwrap_or(160_000.0),
            local_rope_theta: local_theta.unwrap_or(10_000.0),
            norm_bias: raw.norm_bias,
            attention_bias: raw.attention_bias,
            mlp_bias: raw.mlp_bias,
            classifier_bias: raw.classifier_bias,
            hidden_activation: Activation::parse(&raw.hidden_activation)?,
            classifier_activation: Activation::parse(&raw.classifier_activation)?,
            id2label,
        })
    }
}

/// Memory-maps safetensors files into a F32 [`VarBuilder`].
///
/// Sound in practice: candle copies each tensor out of the mapping into an owned buffer when
/// it is loaded (docs/rust-ml-stack.md §3.2), so the mapping is read only while the model is
/// built, and the files are kompress's own installed weights, which nothing rewrites while
/// they are read. The remaining hazard, the file being truncated or changed underneath the
/// mapping during load, is the one every mmap-based loader accepts.
pub fn load_safetensors<P: AsRef<Path>>(
    paths: &[P],
    device: &Device,
) -> Result<VarBuilder<'static>> {
    // SAFETY: see the doc comment above.
    unsafe { VarBuilder::from_mmaped_safetensors(paths, DType::F32, device) }
}

fn layer_norm(size: usize, eps: f64, bias: bool, vb: Weights) -> Result<LayerNorm> {
    let weight = vb.get(size, "weight")?;
    Ok(if bias {
        LayerNorm::new(weight, vb.get(size, "bias")?, eps)
    } else {
        LayerNorm::new_no_bias(weight, eps)
    })
}

/// RoPE cos/sin tables for one forward, shape `(seq_len, head_dim / 2)`.
///
/// Computed like transformers (F32 inverse frequencies, F32 `position · inv_freq`) so the
/// angles round the same way; building them per forward costs `seq_len · head_dim` trig
/// calls, which is negligible next to the matmuls.
struct RopeTable {
    cos: Tensor,
    sin: Tensor,
}

impl RopeTable {
    fn new(theta: f64, head_dim: usize, seq_len: usize, device: &Device) -> Result<Self> {
        let half = head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32)
            .collect();
        let mut cos = Vec::with_capacity(seq_len * half);
        let mut sin = Vec::with_capacity(seq_len * half);
        for pos in 0..seq_len {
            for &f in &inv_freq {
                let angle = (pos as f32 * f) as f64;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        Ok(Self {
            cos: Tensor::from_vec(cos, (seq_len, half), device)?,
            sin: Tensor::from_vec(sin, (seq_len, half), device)?,
        })
    }

    /// Rotates `(batch, heads, seq, head_dim)` with the `rotate_half` convention.
    fn apply(&self, xs: &Tensor) -> Result<Tensor> {
        candle_nn::rotary_emb::rope(&xs.contiguous()?, &self.cos, &self.sin)
    }
}

/// Per-forward state shared by all layers: RoPE tables, the padding mask and the block
/// plan (with band masks) for local attention.
struct ForwardContext {
    global_rope: RopeTable,
    local_rope: RopeTable,
    /// `(batch, 1, 1, seq)` additive, `None` when nothing is padded.
    padding: Option<Tensor>,
    local_blocks: Vec<LocalBlock>,
}

/// Query rows `q_start..q_end` attend to keys `k_start..k_end`; `band` masks the keys of
/// that slice that are outside each row's window, shape `(q_len, k_len)`.
struct LocalBlock {
    q_start: usize,
    q_len: usize,
    k_start: usize,
    k_len: usize,
    band: Tensor,
}

/// Splits the sequence into blocks of `block` query rows. Each block needs keys within
/// `half_window` of its rows, so local work is `seq · (block + 2 · half_window)` instead of
/// `seq²`; a block size equal to the full window keeps the gemms reasonably shaped.
fn plan_local_blocks(
    seq_len: usize,
    half_window: usize,
    block: usize,
    device: &Device,
) -> Result<Vec<LocalBlock>> {
    let block = block.max(1);
    let mut blocks = Vec::new();
    let mut q_start = 0;
    while q_start < seq_len {
        let q_end = (q_start + block).min(seq_len);
        let k_start = q_start.saturating_sub(half_window);
        let k_end = (q_end + half_window).min(seq_len);
        let (q_len, k_len) = (q_end - q_start, k_end - k_start);
        let mut band = Vec::with_capacity(q_len * k_len);
        for i in q_start..q_end {
            for j in k_start..k_end {
                band.push(if i.abs_diff(j) > half_window {
                    MASKED
                } else {
                    0.0
                });
            }
        }
        blocks.push(LocalBlock {
            q_start,
            q_len,
            k_start,
            k_len,
            band: Tensor::from_vec(band, (q_len, k_len), device)?,
        });
        q_start = q_end;
    }
    Ok(blocks)
}

struct Attention {
    wqkv: Lin,
    wo: Lin,
    num_heads: usize,
    head_dim: usize,
    kind: AttentionKind,
}

impl Attention {
    fn load(cfg: &Config, kind: AttentionKind, vb: Weights) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            wqkv: vb.pp("Wqkv").linear(h, 3 * h, cfg.attention_bias)?,
            wo: vb.pp("Wo").linear(h, h, cfg.attention_bias)?,
            num_heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
            kind,
        })
    }

    fn forward(&self, xs: &Tensor, ctx: &ForwardContext) -> Result<Tensor> {
        let (b, t, h) = xs.dims3()?;
        let qkv = self
            .wqkv
            .forward(xs)?
            .reshape((b, t, 3, self.num_heads, self.head_dim))?;
        // (batch, heads, seq, head_dim) each.
        let part = |i: usize| qkv.i((.., .., i))?.transpose(1, 2)?.contiguous();
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let rope = match self.kind {
            AttentionKind::Global => &ctx.global_rope,
            AttentionKind::Local => &ctx.local_rope,
        };
        let (q, k) = (rope.apply(&q)?, rope.apply(&k)?);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let out = match self.kind {
            AttentionKind::Global => attend(&q, &k, &v, scale, None, ctx.padding.as_ref())?,
            AttentionKind::Local => {
                let mut outs = Vec::with_capacity(ctx.local_blocks.len());
                for blk in &ctx.local_blocks {
                    let q = q.narrow(2, blk.q_start, blk.q_len)?;
                    let k = k.narrow(2, blk.k_start, blk.k_len)?;
                    let v = v.narrow(2, blk.k_start, blk.k_len)?;
                    let pad = match &ctx.padding {
                        Some(p) => Some(p.narrow(3, blk.k_start, blk.k_len)?),
                        None => None,
                    };
                    outs.push(attend(&q, &k, &v, scale, Some(&blk.band), pad.as_ref())?);
                }
                Tensor::cat(&outs, 2)?
            }
        };
        self.wo.forward(&out.transpose(1, 2)?.reshape((b, t, h))?)
    }
}

/// `softmax(q·kᵀ · scale + masks) · v`, in transformers' eager order (scale after the
/// matmul, masks added before the softmax).
fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    band: Option<&Tensor>,
    padding: Option<&Tensor>,
) -> Result<Tensor> {
    let mut scores = (q.contiguous()?.matmul(&k.contiguous()?.t()?)? * scale)?;
    if let Some(band) = band {
        scores = scores.broadcast_add(band)?;
    }
    if let Some(padding) = padding {
        scores = scores.broadcast_add(padding)?;
    }
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v.contiguous()?)
}

/// GeGLU feed-forward: `Wi` produces input and gate halves.
struct Mlp {
    wi: Lin,
    wo: Lin,
    act: Activation,
}

impl Mlp {
    fn load(cfg: &Config, vb: Weights) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            wi: vb.pp("Wi").linear(h, 2 * i, cfg.mlp_bias)?,
            wo: vb.pp("Wo").linear(i, h, cfg.mlp_bias)?,
            act: cfg.hidden_activation,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = self.wi.forward(xs)?;
        let halves = xs.chunk(2, D::Minus1)?;
        self.wo
            .forward(&(self.act.apply(&halves[0])? * &halves[1])?)
    }
}

struct Layer {
    /// `None` on layer 0, where transformers has an Identity (the embedding norm precedes it).
    attn_norm: Option<LayerNorm>,
    attn: Attention,
    mlp_norm: LayerNorm,
    mlp: Mlp,
}

impl Layer {
    fn load(cfg: &Config, index: usize, vb: Weights) -> Result<Self> {
        let (h, eps) = (cfg.hidden_size, cfg.norm_eps);
        let attn_norm = if index == 0 {
            None
        } else {
            Some(layer_norm(h, eps, cfg.norm_bias, vb.pp("attn_norm"))?)
        };
        Ok(Self {
            attn_norm,
            attn: Attention::load(cfg, cfg.layer_types[index], vb.pp("attn"))?,
            mlp_norm: layer_norm(h, eps, cfg.norm_bias, vb.pp("mlp_norm"))?,
            mlp: Mlp::load(cfg, vb.pp("mlp"))?,
        })
    }

    fn forward(&self, xs: &Tensor, ctx: &ForwardContext) -> Result<Tensor> {
        let normed = match &self.attn_norm {
            Some(norm) => norm.forward(xs)?,
            None => xs.clone(),
        };
        let xs = (xs + self.attn.forward(&normed, ctx)?)?;
        &xs + self.mlp.forward(&self.mlp_norm.forward(&xs)?)?
    }
}

/// The bare encoder (`ModernBertModel`): ids to final-normed hidden states.
pub struct ModernBert {
    tok_embeddings: Emb,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    final_norm: LayerNorm,
    cfg: Config,
    device: Device,
    /// The same weights for the fast CPU forward (shared, not copied); `None` when the
    /// weights live on another device or were dequantized for one ([`Weights::runs_fast`]).
    fast: Option<cpu::Encoder>,
}

/// Encoder outputs with every intermediate state, for debugging parity.
pub struct HiddenStates {
    /// `[0]` is the embedding output, `[i + 1]` the output of layer `i` (before `final_norm`),
    /// matching transformers' `output_hidden_states`.
    pub layers: Vec<Tensor>,
    /// After `final_norm`: transformers' `last_hidden_state`.
    pub last: Tensor,
}

impl ModernBert {
    /// Frees the fast forward's cached activation buffers (~6.6 MB at 512 tokens). They
    /// speed up the next forward of the same call; between calls they only add to the
    /// process's peak, on top of whatever it allocates after scoring (measured: a hook's
    /// peak RSS p95 49.8 → 56.4 MiB when they were kept).
    pub fn release_buffers(&self) {
        if let Some(fast) = &self.fast {
            fast.release_buffers();
        }
    }

    /// Loads from `vb` positioned at the encoder's prefix (`model` in a
    /// `ModernBertForTokenClassification` checkpoint, nothing in a bare `ModernBertModel`).
    pub fn load<'a>(cfg: &Config, vb: impl Into<Weights<'a>>) -> Result<Self> {
        let vb: Weights = vb.into();
        let (h, eps) = (cfg.hidden_size, cfg.norm_eps);
        let emb = vb.pp("embeddings");
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(cfg, i, vb.pp("layers").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let tok_embeddings = emb.pp("tok_embeddings").embedding(cfg.vocab_size, h)?;
        let embed_norm = layer_norm(h, eps, cfg.norm_bias, emb.pp("norm"))?;
        let final_norm = layer_norm(h, eps, cfg.norm_bias, vb.pp("final_norm"))?;
        let fast = if vb.runs_fast() {
            let fast_layers = layers
                .iter()
                .map(|l| {
                    Ok(cpu::Layer {
                        attn_norm: l.attn_norm.as_ref().map(cpu::Norm::new).transpose()?,
                        wqkv: cpu::Linear::new(&l.attn.wqkv)?,
                        wo: cpu::Linear::new(&l.attn.wo)?,
                        mlp_norm: cpu::Norm::new(&l.mlp_norm)?,
                        wi: cpu::Linear::new(&l.mlp.wi)?,
                        mlp_wo: cpu::Linear::new(&l.mlp.wo)?,
                        kind: l.attn.kind,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Some(cpu::Encoder::new(
                cfg,
                &tok_embeddings,
                &embed_norm,
                fast_layers,
                &final_norm,
            )?)
        } else {
            None
        };
        Ok(Self {
            tok_embeddings,
            embed_norm,
            layers,
            final_norm,
            cfg: cfg.clone(),
            device: vb.device(),
            fast,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// `input_ids` `(batch, seq)` u32; `attention_mask` `(batch, seq)` with 1 for real tokens
    /// and 0 for padding (`None`: nothing padded). Returns `(batch, seq, hidden)`.
    ///
    /// Runs the fast CPU forward ([`super::cpu`]) unless `KOMPRESS_FORWARD=candle` or the
    /// weights are on another device.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        match self.fast_forward() {
            Some(fast) => cpu::run_batch(
                input_ids,
                attention_mask,
                self.cfg.hidden_size,
                |ids, valid| fast.run(ids, valid, None),
            ),
            None => self.forward_reference(input_ids, attention_mask),
        }
    }

    /// The fast CPU forward, when it is both possible and not overridden.
    fn fast_forward(&self) -> Option<&cpu::Encoder> {
        self.fast
            .as_ref()
            .filter(|_| !reference_forward_requested())
    }

    /// [`Self::forward`] on the candle reference path.
    pub fn forward_reference(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        Ok(self.forward_hidden_states(input_ids, attention_mask)?.last)
    }

    /// The candle reference forward, keeping every layer's output.
    pub fn forward_hidden_states(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<HiddenStates> {
        let (b, t) = input_ids.dims2()?;
        let head_dim = self.cfg.head_dim();
        let padding = match attention_mask {
            // (1 − m) · MASKED, as (batch, 1, 1, seq) to broadcast over heads and queries.
            Some(m) => Some(
                m.to_dtype(DType::F32)?
                    .affine(-(MASKED as f64), MASKED as f64)?
                    .reshape((b, 1, 1, t))?,
            ),
            None => None,
        };
        let half_window = self.cfg.local_attention / 2;
        let ctx = ForwardContext {
            global_rope: RopeTable::new(self.cfg.global_rope_theta, head_dim, t, &self.device)?,
            local_rope: RopeTable::new(self.cfg.local_rope_theta, head_dim, t, &self.device)?,
            padding,
            local_blocks: plan_local_blocks(
                t,
                half_window,
                self.cfg.local_attention,
                &self.device,
            )?,
        };
        let mut xs = self
            .embed_norm
            .forward(&self.tok_embeddings.forward(input_ids)?)?;
        let mut layers = Vec::with_capacity(self.layers.len() + 1);
        layers.push(xs.clone());
        for layer in &self.layers {
            xs = layer.forward(&xs, &ctx)?;
            layers.push(xs.clone());
        }
        let last = self.final_norm.forward(&xs)?;
        Ok(HiddenStates { layers, last })
    }
}

/// `ModernBertForTokenClassification`: encoder, then
/// `head.dense → act → head.norm → classifier` per token.
pub struct ModernBertForTokenClassification {
    model: ModernBert,
    dense: Lin,
    act: Activation,
    norm: LayerNorm,
    classifier: Lin,
    /// The head for the fast CPU forward (same weights), when the encoder has one.
    fast_head: Option<cpu::TokenHead>,
}

impl ModernBertForTokenClassification {
    /// Loads a `save_pretrained` checkpoint (encoder under `model.`).
    pub fn load<'a>(cfg: &Config, vb: impl Into<Weights<'a>>) -> Result<Self> {
        let vb: Weights = vb.into();
        let h = cfg.hidden_size;
        let dense = vb
            .pp("head")
            .pp("dense")
            .linear(h, h, cfg.classifier_bias)?;
        let norm = layer_norm(h, cfg.norm_eps, cfg.norm_bias, vb.pp("head").pp("norm"))?;
        // transformers always gives the classifier a bias, whatever `classifier_bias` says.
        let classifier = vb.pp("classifier").linear(h, cfg.num_labels(), true)?;
        let fast_head = if vb.runs_fast() {
            Some(cpu::TokenHead {
                dense: cpu::Linear::new(&dense)?,
                act: cfg.classifier_activation,
                norm: cpu::Norm::new(&norm)?,
                classifier: cpu::Linear::new(&classifier)?,
            })
        } else {
            None
        };
        Ok(Self {
            model: ModernBert::load(cfg, vb.pp("model"))?,
            dense,
            act: cfg.classifier_activation,
            norm,
            classifier,
            fast_head,
        })
    }

    pub fn encoder(&self) -> &ModernBert {
        &self.model
    }

    /// Logits `(batch, seq, num_labels)`, by the fast CPU forward unless
    /// `KOMPRESS_FORWARD=candle` or the weights are on another device.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        let (Some(fast), Some(head)) = (self.model.fast_forward(), &self.fast_head) else {
            return self.forward_reference(input_ids, attention_mask);
        };
        let labels = self.model.cfg.num_labels();
        cpu::run_batch(input_ids, attention_mask, labels, |ids, valid| {
            fast.run(ids, valid, Some(head))
        })
    }

    /// [`Self::forward`] on the candle reference path.
    pub fn forward_reference(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let hidden = self.model.forward_reference(input_ids, attention_mask)?;
        let xs = self.act.apply(&self.dense.forward(&hidden)?)?;
        self.classifier.forward(&self.norm.forward(&xs)?)
    }
}

/// The Kompress dual head (docs/kompress-model.md §0, §1.9): bare encoder, a per-token
/// `token_head` and a `span_conv` stack that smooths keep decisions over neighbours.
///
/// Weight names: `encoder.<ModernBertModel name>`, `token_head.{weight,bias}`,
/// `span_conv.0.{weight,bias}` (Conv1d H→C, k5, p2) and `span_conv.2.{weight,bias}`
/// (Conv1d C→1, k3, p1); index 1 is the GELU. This flattens headroom's three state dicts
/// (`encoder_state_dict`, `token_head_state_dict`, `span_conv_state_dict`) into one file.
pub struct KompressDual {
    encoder: ModernBert,
    token_head: Lin,
    conv0: Conv1d,
    conv2: Conv1d,
}

/// Outputs of [`KompressDual::forward`].
pub struct DualOutput {
    /// `(batch, seq, 2)`; class 1 is keep.
    pub token_logits: Tensor,
    /// `(batch, seq)`, sigmoid of the span convolution.
    pub span: Tensor,
    /// `(batch, seq)`: `softmax(token_logits)[…, 1] · (0.5 + 0.5 · span)`; keep when > 0.5.
    pub scores: Tensor,
}

/// A same-length Conv1d: kernel size is read from the weight, padding is `(k − 1) / 2`.
fn same_conv1d(in_channels: usize, vb: Weights) -> Result<Conv1d> {
    let weight = vb.get_unchecked("weight")?;
    let (out_channels, w_in, kernel) = weight.dims3()?;
    if w_in != in_channels || kernel % 2 == 0 {
        candle_core::bail!(
            "{}: conv weight {:?} does not fit {in_channels} input channels with an odd kernel",
            vb.prefix(),
            weight.shape()
        );
    }
    let bias = vb.get(out_channels, "bias")?;
    let cfg = Conv1dConfig {
        padding: (kernel - 1) / 2,
        ..Default::default()
    };
    Ok(Conv1d::new(weight, Some(bias), cfg))
}

impl KompressDual {
    /// Loads from `vb` at the checkpoint root; `encoder_prefix` is where the `ModernBertModel`
    /// weights live (`"encoder"` for the flattened layout described on the type).
    pub fn load<'a>(
        cfg: &Config,
        encoder_prefix: &str,
        vb: impl Into<Weights<'a>>,
    ) -> Result<Self> {
        let vb: Weights = vb.into();
        let h = cfg.hidden_size;
        let encoder_vb = if encoder_prefix.is_empty() {
            vb.clone()
        } else {
            vb.pp(encoder_prefix)
        };
        let conv0 = same_conv1d(h, vb.pp("span_conv").pp("0"))?;
        let channels = conv0.weight().dim(0)?;
        Ok(Self {
            encoder: ModernBert::load(cfg, encoder_vb)?,
            token_head: vb.pp("token_head").linear(h, 2, true)?,
            conv0,
            conv2: same_conv1d(channels, vb.pp("span_conv").pp("2"))?,
        })
    }

    pub fn encoder(&self) -> &ModernBert {
        &self.encoder
    }

    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<DualOutput> {
        let hidden = self.encoder.forward(input_ids, attention_mask)?;
        let token_logits = self.token_head.forward(&hidden)?;
        // Conv1d wants (batch, channels, seq). Zero padding covers the whole sequence, special
        // tokens included, as in headroom.
        let span = self
            .conv0
            .forward(&hidden.transpose(1, 2)?.contiguous()?)?
            .gelu_erf()?;
        let span = candle_nn::ops::sigmoid(&self.conv2.forward(&span)?)?.squeeze(1)?;
        let keep = candle_nn::ops::softmax_last_dim(&token_logits)?.i((.., .., 1))?;
        let scores = (keep * span.affine(0.5, 0.5)?)?;
        Ok(DualOutput {
            token_logits,
            span,
            scores,
        })
    }
}
