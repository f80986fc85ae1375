//! The fast CPU forward: ModernBERT on plain `f32` buffers, without candle's per-op tensors.
//!
//! Why a second forward next to the candle one in [`super::modernbert`]: profiling the candle
//! path (docs/bench.md) showed ~40% of the CPU in its thread pool spin-waiting for workers
//! that a loaded 2-core machine had descheduled, ~8% in page faults from a fresh buffer per
//! op, ~50% in an F32 AVX2 gemm kernel on dequantized weights, dense `n × n` score matrices
//! for local layers cut up by many small copies, and scalar `expf`/`erff`. Here one forward:
//!
//! - allocates its activation buffers once ([`Buffers`]) and reuses them in every layer;
//! - fuses what it can into the matmuls: the bias is the initial value of the destination and
//!   the residual add is the matmul accumulating into the residual stream, the GeGLU product
//!   is written in place over the `Wi` output;
//! - multiplies Q8_0 weights as integers ([`super::qmatmul`]: activations rounded to 8 bits
//!   per block of 32, `vpdpbusd` with AVX-512 VNNI), which is where most of the time goes;
//!   without VNNI, or for F32 weights, the `gemm` crate's F32 kernels run with
//!   `Parallelism::None` (no pool, nothing spins), Q8_0 dequantized one panel of [`PANEL`]
//!   rows at a time so the mapped file is never copied whole to the heap;
//! - computes attention only over the keys each query's window reaches, with the band and
//!   padding masks applied inside the softmax (no mask tensors): with AVX-512 by its own
//!   kernel ([`attn512`]: keys transposed once per layer, tiles of 4 queries × 32 keys), else
//!   by gemm per block of [`QUERY_BLOCK`] queries;
//! - evaluates `exp`, `erf` and `tanh` with branch-free polynomials ([`exp`], [`erf`]) that
//!   the compiler vectorizes (AVX-512 or AVX2 + FMA when the CPU has them, chosen at run
//!   time, SSE2 otherwise); their error (≤ 5e-7) is far inside the 1e-4 parity tolerance;
//! - uses at most 2 threads, and one for inputs under 256 tokens: the threads claim chunks
//!   of [`CHUNK`] token rows from a shared counter, phase by phase, and meet once per layer
//!   at a [`Barrier`] (which blocks rather than spins), after every row's Q/K/V of the layer
//!   is written and before any thread reads other rows' keys; a batch of several sequences
//!   is shared out by whole sequences instead, with no barrier ([`run_batch`]). Claiming
//!   instead of owning a fixed half means a thread that a busy machine deschedules holds up
//!   one chunk while the other thread takes the rest.
//!
//! Numerics follow the candle forward (and transformers' eager attention): scores are
//! `(q·kᵀ) · scale`, masked keys get probability 0, LayerNorm is two-pass in `f32`, RoPE uses
//! the same tables. `tests/model_parity.rs` checks this path against transformers' outputs
//! (F32, 1e-4) and against the candle forward (F32 to float rounding, Q8_0 to 1e-3).

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};

use candle_core::{DType, Result, Storage, Tensor};
use candle_nn::LayerNorm;

use super::modernbert::{Activation, AttentionKind, Config};
use super::quant::QMatrix;
use super::weights::{Emb, Lin};

/// Defines `fn $name(args)` that runs `$generic(args)` compiled for the widest vector
/// extension the CPU has (AVX-512, else AVX2 + FMA, chosen at run time), so plain loops in
/// `$generic` (which must be `#[inline(always)]`) vectorize without `-C target-cpu`.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $generic:ident) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    $generic($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $generic($($arg),*)
                }
                match simd() {
                    // SAFETY: the features were detected on this CPU.
                    Simd::Avx512 => return unsafe { avx512($($arg),*) },
                    Simd::Avx2 => return unsafe { avx2($($arg),*) },
                    Simd::Baseline => {}
                }
            }
            $generic($($arg),*)
        }
    };
}

/// Output rows of a Q8_0 weight dequantized at once per matmul call (`PANEL × in` floats:
/// 64 KB for `in` = 256, 288 KB for 1,152; sized for L2).
const PANEL: usize = 64;
/// Query rows per attention block: local layers compute `QUERY_BLOCK × (QUERY_BLOCK +
/// window)` scores per block, of which each row needs `window + 1`.
const QUERY_BLOCK: usize = 32;
/// Rows per work item of a forward. The threads claim chunks of rows from a shared counter,
/// phase by phase, instead of owning half of the rows each: a thread the machine deschedules
/// then holds up at most one chunk, and the other thread takes the rest. A multiple of 16
/// (a group of the transposed keys) and of the integer kernel's row tile.
const CHUNK: usize = 64;
/// Each thread gets at least this many tokens, so inputs under 256 tokens (the hook's usual
/// ~100-token outputs among them) run on one thread. Measured on the shared 2-core machine
/// (docs/bench.md): a 107-token input on 2 threads took the same wall time as on one and
/// 8–15% more CPU (thread start, 6 barrier wake-ups, a core that is never really free
/// there); 512-token chunks ran from 6% slower to 1.15× faster in wall time than on one
/// thread, depending on the load. `KOMPRESS_THREADS=1` forces one thread.
const MIN_TOKENS_PER_THREAD: usize = 128;

fn err(msg: impl Into<String>) -> candle_core::Error {
    candle_core::Error::Msg(msg.into())
}

/// A contiguous F32 CPU tensor whose data is read in place (candle weights shared, not
/// copied: the F32 embedding table alone is 51 MB for a 50k vocabulary).
#[derive(Clone)]
struct F32Data(Tensor);

impl F32Data {
    fn new(t: &Tensor) -> Result<Self> {
        let t = t.to_dtype(DType::F32)?.contiguous()?;
        if !matches!(&*t.storage_and_layout().0, Storage::Cpu(_)) {
            return Err(err("the fast forward runs on the CPU only"));
        }
        Ok(Self(t))
    }

    fn with<R>(&self, f: impl FnOnce(&[f32]) -> R) -> R {
        let (storage, layout) = self.0.storage_and_layout();
        let Storage::Cpu(cpu) = &*storage else {
            unreachable!("checked in new")
        };
        let data = cpu.as_slice::<f32>().expect("checked F32 in new");
        let start = layout.start_offset();
        f(&data[start..start + self.0.elem_count()])
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

/// A weight matrix `[out, in]`.
#[derive(Clone)]
enum Matrix {
    F32(F32Data),
    /// Q8_0 in the mapping, and its repacked copy for the integer kernel once first used.
    Q8(QMatrix, OnceLock<super::qmatmul::Packed>),
}

/// A linear layer `y = x · Wᵀ + b`.
#[derive(Clone)]
pub(crate) struct Linear {
    w: Matrix,
    bias: Option<Vec<f32>>,
    out: usize,
    inp: usize,
}

impl Linear {
    pub(crate) fn new(lin: &Lin) -> Result<Self> {
        match lin {
            Lin::F32(l) => {
                let (out, inp) = l.weight().dims2()?;
                Ok(Self {
                    w: Matrix::F32(F32Data::new(l.weight())?),
                    bias: l.bias().map(to_vec).transpose()?,
                    out,
                    inp,
                })
            }
            Lin::Q8 { w, bias, packed } => Ok(Self {
                w: Matrix::Q8(
                    w.clone(),
                    packed.clone().map(OnceLock::from).unwrap_or_default(),
                ),
                bias: bias.as_ref().map(to_vec).transpose()?,
                out: w.rows,
                inp: w.cols,
            }),
        }
    }

    /// The integer kernel's layout of `w`: the file's pre-packed tensors, or else a copy
    /// repacked on first use (then the mapped pages are released, so RSS does not hold both).
    fn packed<'a>(
        w: &QMatrix,
        packed: &'a OnceLock<super::qmatmul::Packed>,
    ) -> &'a super::qmatmul::Packed {
        packed.get_or_init(|| {
            let packed = super::qmatmul::Packed::new(w);
            w.release_pages();
            packed
        })
    }

    /// Repacks the weights now if the integer kernel will need them (see [`Encoder::run`]).
    fn prepack(&self) {
        if let Matrix::Q8(w, packed) = &self.w
            && super::qmatmul::available()
        {
            Self::packed(w, packed);
        }
    }

    /// For `m` rows: `y[r] = x[r] · Wᵀ + b`, or `y[r] += x[r] · Wᵀ + b` when `accumulate`.
    /// Rows are `x_stride` and `y_stride` floats apart; `scratch` holds dequantized panels.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: &[f32],
        x_stride: usize,
        m: usize,
        y: &mut [f32],
        y_stride: usize,
        accumulate: bool,
        scratch: &mut Scratch,
    ) {
        if m == 0 {
            return;
        }
        assert!(x_stride >= self.inp && x.len() >= (m - 1) * x_stride + self.inp);
        assert!(y_stride >= self.out && y.len() >= (m - 1) * y_stride + self.out);
        // The bias becomes the destination's initial value, so gemm adds onto it.
        let read_dst = match &self.bias {
            Some(b) => {
                for r in 0..m {
                    let row = &mut y[r * y_stride..r * y_stride + self.out];
                    if accumulate {
                        row.iter_mut().zip(b).for_each(|(y, b)| *y += b);
                    } else {
                        row.copy_from_slice(b);
                    }
                }
                true
            }
            None => accumulate,
        };
        match &self.w {
            Matrix::Q8(w, packed) if super::qmatmul::available() => {
                super::qmatmul::matmul(
                    super::qmatmul::Act::forward(),
                    Self::packed(w, packed),
                    x,
                    x_stride,
                    m,
                    y,
                    y_stride,
                    read_dst,
                    &mut scratch.int,
                );
            }
            Matrix::F32(w) => w.with(|w| {
                // SAFETY: the asserts above bound every row of x and y; w is out × inp.
                unsafe {
                    gemm_xwt(
                        m,
                        self.out,
                        self.inp,
                        x,
                        x_stride,
                        w,
                        y.as_mut_ptr(),
                        y_stride,
                        read_dst,
                    )
                }
            }),
            Matrix::Q8(w, _) => {
                let scratch = &mut scratch.panel;
                scratch.resize(PANEL * self.inp, 0.0);
                for r0 in (0..self.out).step_by(PANEL) {
                    let r1 = (r0 + PANEL).min(self.out);
                    let panel = &mut scratch[..(r1 - r0) * self.inp];
                    w.dequantize_rows(r0, r1, panel);
                    // SAFETY: as above; columns r0..r1 of each y row lie inside the row.
                    unsafe {
                        gemm_xwt(
                            m,
                            r1 - r0,
                            self.inp,
                            x,
                            x_stride,
                            panel,
                            y.as_mut_ptr().add(r0),
                            y_stride,
                            read_dst,
                        )
                    }
                }
            }
        }
    }
}

/// Per-thread buffers: attention scores and matmul scratch.
#[derive(Default)]
struct Scratch {
    /// Attention scores of one block of queries.
    scores: Vec<f32>,
    /// A dequantized Q8_0 panel (F32 kernel).
    panel: Vec<f32>,
    /// Quantized activations and a packed panel (integer kernel).
    int: super::qmatmul::Scratch,
}

/// `y[m × n] (+)= x[m × k] · wᵀ` with `w` row-major `n × k`, single-threaded.
///
/// # Safety
/// `x` must hold `m` rows of `k` floats `x_stride` apart (checked), and `y` must point to `m`
/// rows of at least `n` writable floats `y_stride` apart that nothing else accesses.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_xwt(
    m: usize,
    n: usize,
    k: usize,
    x: &[f32],
    x_stride: usize,
    w: &[f32],
    y: *mut f32,
    y_stride: usize,
    read_dst: bool,
) {
    debug_assert!(w.len() >= n * k && x.len() >= (m - 1) * x_stride + k);
    // SAFETY: see the function's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            y,
            1,
            y_stride as isize,
            read_dst,
            x.as_ptr(),
            1,
            x_stride as isize,
            w.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// LayerNorm over the last dimension.
#[derive(Clone)]
pub(crate) struct Norm {
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    eps: f32,
}

impl Norm {
    pub(crate) fn new(ln: &LayerNorm) -> Result<Self> {
        Ok(Self {
            weight: to_vec(ln.weight())?,
            bias: ln.bias().map(to_vec).transpose()?,
            eps: ln.eps() as f32,
        })
    }

    /// Normalizes one row of `x` into `out` (two-pass mean and variance).
    #[inline(always)]
    fn row(&self, x: &[f32], out: &mut [f32]) {
        let n = x.len() as f32;
        let mean = sum_by(x, |v| v) / n;
        let var = sum_by(x, |v| (v - mean) * (v - mean)) / n;
        let inv = 1.0 / (var + self.eps).sqrt();
        match &self.bias {
            Some(b) => {
                for (((o, v), w), b) in out.iter_mut().zip(x).zip(&self.weight).zip(b) {
                    *o = (v - mean) * inv * w + b;
                }
            }
            None => {
                for ((o, v), w) in out.iter_mut().zip(x).zip(&self.weight) {
                    *o = (v - mean) * inv * w;
                }
            }
        }
    }

    /// Normalizes rows of width `w` from `x` into `out`.
    fn rows(&self, x: &[f32], out: &mut [f32], w: usize) {
        norm_rows(self, x, out, w);
    }
}

#[inline(always)]
fn norm_rows_generic(norm: &Norm, x: &[f32], out: &mut [f32], w: usize) {
    for (x, o) in x.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
        norm.row(x, o);
    }
}

multiversion! {
    /// [`Norm::rows`], vectorized.
    fn norm_rows(norm: &Norm, x: &[f32], out: &mut [f32], w: usize) => norm_rows_generic
}

/// `Σ f(x)` with 8 independent partial sums, so it vectorizes: a plain `sum()` over `f32`
/// is one serial chain of adds (the compiler may not reorder them), which made LayerNorm's
/// variance 6.5% of the forward's CPU at 512-token chunks.
#[inline(always)]
fn sum_by(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// A token embedding table `[vocab, hidden]`.
#[derive(Clone)]
enum Embedding {
    F32(F32Data),
    Q8(QMatrix),
}

impl Embedding {
    fn new(emb: &Emb) -> Result<Self> {
        Ok(match emb {
            Emb::F32(e) => Self::F32(F32Data::new(e.embeddings())?),
            Emb::Q8(q) => Self::Q8(q.clone()),
        })
    }

    /// Row `id` into `out` (`hidden` floats).
    fn row(&self, id: u32, out: &mut [f32]) -> Result<()> {
        let id = id as usize;
        match self {
            Self::F32(t) => t.with(|data| {
                let h = out.len();
                let row = data
                    .get(id * h..(id + 1) * h)
                    .ok_or_else(|| err(format!("token id {id} out of range")))?;
                out.copy_from_slice(row);
                Ok(())
            }),
            Self::Q8(q) => {
                if id >= q.rows {
                    return Err(err(format!("token id {id} out of range {}", q.rows)));
                }
                q.dequantize_rows(id, id + 1, out);
                Ok(())
            }
        }
    }
}

/// One encoder layer's weights.
#[derive(Clone)]
pub(crate) struct Layer {
    pub(crate) attn_norm: Option<Norm>,
    pub(crate) wqkv: Linear,
    pub(crate) wo: Linear,
    pub(crate) mlp_norm: Norm,
    pub(crate) wi: Linear,
    pub(crate) mlp_wo: Linear,
    pub(crate) kind: AttentionKind,
}

/// The token-classification head: `dense → act → norm → classifier`.
#[derive(Clone)]
pub(crate) struct TokenHead {
    pub(crate) dense: Linear,
    pub(crate) act: Activation,
    pub(crate) norm: Norm,
    pub(crate) classifier: Linear,
}

/// RoPE cos/sin tables, `(positions, head_dim / 2)` each, for both thetas.
struct Rope {
    len: usize,
    global: (Vec<f32>, Vec<f32>),
    local: (Vec<f32>, Vec<f32>),
}

/// The same angles as [`super::modernbert`]'s `RopeTable` (F32 inverse frequencies and
/// products, cos/sin in f64), so both forwards round alike.
fn rope_table(theta: f64, head_dim: usize, len: usize) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32)
        .collect();
    let mut cos = Vec::with_capacity(len * half);
    let mut sin = Vec::with_capacity(len * half);
    for pos in 0..len {
        for &f in &inv_freq {
            let angle = (pos as f32 * f) as f64;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    (cos, sin)
}

/// The encoder (embeddings, layers, final norm) on plain buffers.
pub(crate) struct Encoder {
    emb: Embedding,
    embed_norm: Norm,
    layers: Vec<Layer>,
    final_norm: Norm,
    hidden: usize,
    heads: usize,
    head_dim: usize,
    inter: usize,
    half_window: usize,
    act: Activation,
    global_theta: f64,
    local_theta: f64,
    /// Grown to the longest input seen; tables are `seq · head_dim` trig calls, worth keeping.
    rope: Mutex<Option<Arc<Rope>>>,
    /// The last forward's activation buffers, reused by the next one: a fresh set was
    /// zeroed by `calloc` on every 512-token chunk (~6.6 MB, 1.2–1.5% of the forward's CPU).
    /// Every element a forward reads it has written first, so stale contents are harmless.
    /// The scorer frees them when a call ends ([`Encoder::release_buffers`]).
    buffers: Mutex<Option<Buffers>>,
}

/// Per-forward activation buffers, shared by the threads (see [`Shared`]).
struct Buffers {
    /// Residual stream, `t × hidden`.
    x: Vec<f32>,
    /// Normed rows (and, at the end, the final hidden states), `t × hidden`.
    xn: Vec<f32>,
    /// Q, K, V per row (`[q | k | v]`, heads contiguous inside each), `t × 3·hidden`. With 2
    /// threads, two sets used by alternate layers, so a thread may write the next layer's
    /// rows while another still reads this layer's keys; one thread uses only the first.
    qkv: [Vec<f32>; 2],
    /// Each head's keys transposed for the AVX-512 attention kernel
    /// ([`attn512::transpose_keys`]), in sets like `qkv`; empty without the kernel.
    keys_t: [Vec<f32>; 2],
    /// Attention output, `t × hidden`.
    attn: Vec<f32>,
    /// `Wi` output `[input | gate]`, `t × 2·inter`; the GeGLU product overwrites the first half.
    mlp: Vec<f32>,
    /// Head output, `t × out` (classifier logits).
    out: Vec<f32>,
}

/// A buffer shared between threads: a thread writes only the rows of the chunks it claimed
/// in the current phase, and reads rows other threads wrote only after the barrier that
/// ends their phase.
#[derive(Clone, Copy)]
struct Shared {
    ptr: *mut f32,
    len: usize,
    width: usize,
}

// SAFETY: access is coordinated as described on the type (disjoint row ranges for writes,
// reads of others' rows only after a barrier).
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn new(v: &mut [f32], width: usize) -> Self {
        Self {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            width,
        }
    }

    /// Rows `r` for writing.
    ///
    /// # Safety
    /// No other thread accesses these rows while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn rows_mut(&self, r: Range<usize>) -> &mut [f32] {
        assert!(r.end * self.width <= self.len);
        // SAFETY: in bounds (asserted); exclusivity is the caller's contract.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.add(r.start * self.width), r.len() * self.width)
        }
    }

    /// The whole buffer for reading.
    ///
    /// # Safety
    /// No thread writes to the buffer while the slice lives.
    unsafe fn all(&self) -> &[f32] {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Everything a thread needs for one sequence.
struct Job<'a> {
    ids: &'a [u32],
    /// Per key: whether it is a real token (`None`: all are).
    valid: Option<&'a [bool]>,
    rope: &'a Rope,
    head: Option<&'a TokenHead>,
    x: Shared,
    xn: Shared,
    qkv: [Shared; 2],
    keys_t: [Shared; 2],
    attn: Shared,
    mlp: Shared,
    out: Shared,
    /// How many of the qkv and keys_t buffers are in use: layer `l` uses set `l % sets`.
    sets: usize,
    /// Rows per chunk: [`CHUNK`], or all of them on one thread (smaller pieces would only
    /// stream each weight matrix through the cache once more per chunk).
    chunk: usize,
    /// Next unclaimed chunk of each phase: phase 0 is the embeddings and layer 0's Q/K/V,
    /// phase `l + 1` layer `l`'s attention and MLP, then layer `l + 1`'s Q/K/V (or the head).
    next: Vec<AtomicUsize>,
    /// The first embedding lookup error (reported after the forward, see [`Encoder::work`]).
    error: Mutex<Option<candle_core::Error>>,
}

impl Job<'_> {
    /// Claims the next chunk of `phase`'s rows, if any is left.
    fn claim(&self, phase: usize) -> Option<Range<usize>> {
        let t = self.ids.len();
        let c = self.next[phase].fetch_add(1, Ordering::Relaxed);
        (c * self.chunk < t).then(|| c * self.chunk..((c + 1) * self.chunk).min(t))
    }
}

impl Encoder {
    pub(crate) fn new(
        cfg: &Config,
        emb: &Emb,
        embed_norm: &LayerNorm,
        layers: Vec<Layer>,
        final_norm: &LayerNorm,
    ) -> Result<Self> {
        Ok(Self {
            emb: Embedding::new(emb)?,
            embed_norm: Norm::new(embed_norm)?,
            layers,
            final_norm: Norm::new(final_norm)?,
            hidden: cfg.hidden_size,
            heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
            inter: cfg.intermediate_size,
            half_window: cfg.local_attention / 2,
            act: cfg.hidden_activation,
            global_theta: cfg.global_rope_theta,
            local_theta: cfg.local_rope_theta,
            rope: Mutex::new(None),
            buffers: Mutex::new(None),
        })
    }

    fn rope(&self, len: usize) -> Arc<Rope> {
        let mut cache = self.rope.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.as_ref().filter(|r| r.len >= len) {
            return r.clone();
        }
        let r = Arc::new(Rope {
            len,
            global: rope_table(self.global_theta, self.head_dim, len),
            local: rope_table(self.local_theta, self.head_dim, len),
        });
        *cache = Some(r.clone());
        r
    }

    /// Drops the cached activation buffers (see [`Encoder::buffers`]).
    pub(crate) fn release_buffers(&self) {
        *self.buffers.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Runs one sequence: `ids`, with `valid` marking real (unpadded) tokens. Returns the
    /// final hidden states (`t × hidden`), or the head's output (`t × head.out`) with a head.
    pub(crate) fn run(
        &self,
        ids: &[u32],
        valid: Option<&[bool]>,
        head: Option<&TokenHead>,
    ) -> Result<Vec<f32>> {
        let t = ids.len();
        let (h, i) = (self.hidden, self.inter);
        let out_w = head.map_or(h, |hd| hd.classifier.out);
        let keys_t = if self.fast_attention() {
            attn512::keys_t_len(t, h)
        } else {
            0
        };
        // A concurrent forward on the same encoder finds None and allocates its own set.
        let cached = self
            .buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let mut b = cached.unwrap_or_else(|| Buffers {
            x: Vec::new(),
            xn: Vec::new(),
            qkv: [Vec::new(), Vec::new()],
            keys_t: [Vec::new(), Vec::new()],
            attn: Vec::new(),
            mlp: Vec::new(),
            out: Vec::new(),
        });
        // Two sets of Q/K/V buffers with 2 threads (see `Buffers::qkv`); one thread runs each
        // phase whole, one chunk of all rows, so one set is enough.
        let threads = threads_for(t);
        let sets = threads.min(2);
        // Only growth is zeroed; the forward overwrites every element before reading it.
        let [q0, q1] = &mut b.qkv;
        let [k0, k1] = &mut b.keys_t;
        for (v, n) in [
            (&mut b.x, t * h),
            (&mut b.xn, t * h),
            (q0, t * 3 * h),
            (q1, if sets == 2 { t * 3 * h } else { 0 }),
            (k0, keys_t),
            (k1, if sets == 2 { keys_t } else { 0 }),
            (&mut b.attn, t * h),
            (&mut b.mlp, t * 2 * i),
            (&mut b.out, if head.is_some() { t * out_w } else { 0 }),
        ] {
            v.resize(n, 0.0);
        }
        let rope = self.rope(t);
        let [q0, q1] = &mut b.qkv;
        let [k0, k1] = &mut b.keys_t;
        let job = Job {
            ids,
            valid,
            rope: &rope,
            head,
            x: Shared::new(&mut b.x, h),
            xn: Shared::new(&mut b.xn, h),
            qkv: [Shared::new(q0, 3 * h), Shared::new(q1, 3 * h)],
            keys_t: [Shared::new(k0, 1), Shared::new(k1, 1)],
            attn: Shared::new(&mut b.attn, h),
            mlp: Shared::new(&mut b.mlp, 2 * i),
            out: Shared::new(&mut b.out, out_w),
            next: (0..=self.layers.len())
                .map(|_| AtomicUsize::new(0))
                .collect(),
            error: Mutex::new(None),
            chunk: if threads == 1 { t.max(1) } else { CHUNK },
            sets,
        };
        if threads == 1 {
            self.work(&job, None, (0, 1));
        } else {
            let barrier = Barrier::new(threads);
            std::thread::scope(|s| {
                let workers: Vec<_> = (1..threads)
                    .map(|k| {
                        let (job, barrier) = (&job, &barrier);
                        s.spawn(move || self.work(job, Some(barrier), (k, threads)))
                    })
                    .collect();
                self.work(&job, Some(&barrier), (0, threads));
                for w in workers {
                    w.join().expect("forward thread panicked");
                }
            });
        }
        if let Some(e) = job.error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        let out = if head.is_some() {
            b.out.clone()
        } else {
            b.xn.clone()
        };
        *self.buffers.lock().unwrap_or_else(|e| e.into_inner()) = Some(b);
        Ok(out)
    }

    /// Whether attention runs on the AVX-512 kernel (which reads transposed keys).
    fn fast_attention(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return attn512::usable(self.head_dim);
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// One thread's share of the forward: in each phase it claims chunks of rows until none
    /// is left, then meets the other threads at `barrier` (once per layer, after which every
    /// row's keys and values of the layer are written). Every thread runs the same phases,
    /// so an embedding lookup error is only recorded, and reported when the (then
    /// meaningless) forward has finished.
    ///
    /// `(me, of)`: this thread's index and the thread count. In a process's first forward
    /// with 2 threads, each thread first repacks every other weight matrix for the integer
    /// kernel, so the one-time repacking (~10% of a ~100-token cold start's CPU) is split
    /// too instead of falling to whichever thread reaches a layer first.
    fn work(&self, job: &Job, barrier: Option<&Barrier>, (me, of): (usize, usize)) {
        if of > 1 {
            let linears = self
                .layers
                .iter()
                .flat_map(|l| [&l.wqkv, &l.wo, &l.wi, &l.mlp_wo])
                .chain(job.head.into_iter().flat_map(|h| [&h.dense, &h.classifier]));
            for lin in linears.skip(me).step_by(of) {
                lin.prepack();
            }
        }
        let mut scratch = Scratch::default();
        while let Some(rows) = job.claim(0) {
            if let Err(e) = self.embed_rows(job, rows.clone()) {
                job.error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(e);
            }
            self.qkv_rows(0, job, rows, &mut scratch);
        }
        for l in 0..self.layers.len() {
            if let Some(b) = barrier {
                b.wait();
            }
            while let Some(rows) = job.claim(l + 1) {
                self.attend_mlp_rows(l, job, rows.clone(), &mut scratch);
                if l + 1 < self.layers.len() {
                    self.qkv_rows(l + 1, job, rows, &mut scratch);
                } else {
                    self.head_rows(job, rows, &mut scratch);
                }
            }
        }
    }

    /// Embeddings and their norm for `rows`, into x.
    fn embed_rows(&self, job: &Job, rows: Range<usize>) -> Result<()> {
        let h = self.hidden;
        // SAFETY (every `rows_mut` in these row functions): this thread claimed `rows` in
        // the current phase, so no other thread touches these rows of x, xn, attn, mlp and
        // out, nor of the qkv and keys_t buffers it writes (see `qkv_rows`).
        let x = unsafe { job.x.rows_mut(rows.clone()) };
        let xn = unsafe { job.xn.rows_mut(rows.clone()) };
        let mut first_err = Ok(());
        for (r, row) in rows.zip(xn.chunks_exact_mut(h)) {
            if let Err(e) = self.emb.row(job.ids[r], row) {
                first_err = first_err.and(Err(e));
            }
        }
        self.embed_norm.rows(xn, x, h);
        first_err
    }

    /// Layer `l`'s norm, Q/K/V projection and RoPE for `rows`, into its qkv set, and the rows'
    /// keys transposed into its keys_t set for the attention kernel.
    fn qkv_rows(&self, l: usize, job: &Job, rows: Range<usize>, scratch: &mut Scratch) {
        let (h, hd) = (self.hidden, self.head_dim);
        let layer = &self.layers[l];
        let m = rows.len();
        // SAFETY: see `embed_rows`. With 2 sets, the rows of layer l's set written here were
        // last read by any thread in layer l − 2's attention, which every thread finished
        // before layer l − 1's barrier; with one set (one thread, one chunk), layer l − 1's
        // attention over all rows has finished.
        let x = unsafe { job.x.rows_mut(rows.clone()) };
        let xn = unsafe { job.xn.rows_mut(rows.clone()) };
        let qkv = unsafe { job.qkv[l % job.sets].rows_mut(rows.clone()) };
        let input: &[f32] = match &layer.attn_norm {
            Some(norm) => {
                norm.rows(x, xn, h);
                xn
            }
            None => x,
        };
        layer.wqkv.forward(input, h, m, qkv, 3 * h, false, scratch);
        let (cos, sin) = match layer.kind {
            AttentionKind::Global => &job.rope.global,
            AttentionKind::Local => &job.rope.local,
        };
        let half = hd / 2;
        for (r, row) in rows.clone().zip(qkv.chunks_exact_mut(3 * h)) {
            let (c, s) = (
                &cos[r * half..(r + 1) * half],
                &sin[r * half..(r + 1) * half],
            );
            for v in row[..2 * h].chunks_exact_mut(hd) {
                rotate_half(v, c, s);
            }
        }
        #[cfg(target_arch = "x86_64")]
        if self.fast_attention() {
            let t = job.ids.len();
            // SAFETY: the groups of keys `rows` (whole groups of 16: chunks start at
            // multiples of CHUNK, or at 0) are this thread's, as above.
            unsafe {
                attn512::transpose_keys(qkv, rows.start, t, h, hd, job.keys_t[l % job.sets]);
            }
        }
    }

    /// Layer `l`'s attention for the queries `rows` (over every row's keys), its output
    /// projection into the residual stream, and the MLP.
    fn attend_mlp_rows(&self, l: usize, job: &Job, rows: Range<usize>, scratch: &mut Scratch) {
        let (h, hd, nh, inter) = (self.hidden, self.head_dim, self.heads, self.inter);
        let layer = &self.layers[l];
        let t = job.ids.len();
        let m = rows.len();
        // SAFETY: see `embed_rows`; layer l's qkv and keys_t set was written in the previous
        // phase (before this phase's barrier, with 2 threads), and nobody writes it again
        // until the phase after this one.
        let x = unsafe { job.x.rows_mut(rows.clone()) };
        let xn = unsafe { job.xn.rows_mut(rows.clone()) };
        let attn = unsafe { job.attn.rows_mut(rows.clone()) };
        let mlp = unsafe { job.mlp.rows_mut(rows.clone()) };
        let qkv = unsafe { job.qkv[l % job.sets].all() };
        let window = match layer.kind {
            AttentionKind::Global => None,
            AttentionKind::Local => Some(self.half_window),
        };
        if self.fast_attention() {
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: as above.
                let keys_t = unsafe { job.keys_t[l % job.sets].all() };
                for head in 0..nh {
                    // SAFETY: AVX-512 F is present and hd fits (checked by usable).
                    unsafe {
                        attn512::attend_block(
                            qkv,
                            h,
                            hd,
                            head,
                            rows.clone(),
                            t,
                            window,
                            job.valid,
                            keys_t,
                            &mut scratch.scores,
                            attn,
                        )
                    };
                }
            }
        } else {
            scratch.scores.resize(QUERY_BLOCK * t, 0.0);
            for q0 in rows.clone().step_by(QUERY_BLOCK) {
                let q1 = (q0 + QUERY_BLOCK).min(rows.end);
                let (k0, k1) = match window {
                    None => (0, t),
                    Some(w) => (q0.saturating_sub(w), (q1 + w).min(t)),
                };
                for head in 0..nh {
                    attend_block(
                        qkv,
                        h,
                        hd,
                        head,
                        q0..q1,
                        k0..k1,
                        window,
                        job.valid,
                        &mut scratch.scores,
                        &mut attn[(q0 - rows.start) * h..],
                    );
                }
            }
        }
        // Output projection, accumulated into the residual stream.
        layer.wo.forward(attn, h, m, x, h, true, scratch);
        // MLP: x += Wo(act(input) · gate), (input, gate) = Wi(mlp_norm(x)).
        layer.mlp_norm.rows(x, xn, h);
        layer.wi.forward(xn, h, m, mlp, 2 * inter, false, scratch);
        for row in mlp.chunks_exact_mut(2 * inter) {
            let (input, gate) = row.split_at_mut(inter);
            activate(self.act, input);
            input.iter_mut().zip(gate.iter()).for_each(|(a, g)| *a *= g);
        }
        layer.mlp_wo.forward(mlp, 2 * inter, m, x, h, true, scratch);
    }

    /// The final norm for `rows` into xn, and the head (if any) into out.
    fn head_rows(&self, job: &Job, rows: Range<usize>, scratch: &mut Scratch) {
        let h = self.hidden;
        let m = rows.len();
        // SAFETY: see `embed_rows`.
        let x = unsafe { job.x.rows_mut(rows.clone()) };
        let xn = unsafe { job.xn.rows_mut(rows.clone()) };
        let attn = unsafe { job.attn.rows_mut(rows.clone()) };
        let mlp = unsafe { job.mlp.rows_mut(rows.clone()) };
        self.final_norm.rows(x, xn, h);
        let Some(head) = job.head else {
            return;
        };
        // dense → act → norm → classifier, per row; attn and mlp are free as scratch.
        head.dense.forward(xn, h, m, attn, h, false, scratch);
        activate(head.act, attn);
        // The MLP buffer (m × 2·inter) is free now; it holds m × h unless inter < h / 2.
        let mut own = Vec::new();
        let normed = if mlp.len() >= m * h {
            &mut mlp[..m * h]
        } else {
            own.resize(m * h, 0.0);
            &mut own[..]
        };
        head.norm.rows(attn, normed, h);
        let out_w = head.classifier.out;
        let out = unsafe { job.out.rows_mut(rows) };
        head.classifier
            .forward(normed, h, m, out, out_w, false, scratch);
    }
}

/// How many threads a `t`-token forward uses: 1 for short inputs, else up to 2
/// (`KOMPRESS_THREADS` lowers it). More would not help on the 2-core machines this targets
/// and makes every barrier wait for the slowest of more threads.
fn threads_for(t: usize) -> usize {
    if ONE_THREAD.with(|c| c.get()) {
        return 1;
    }
    let max = super::quant::threads().min(2);
    (t / MIN_TOKENS_PER_THREAD).clamp(1, max)
}

/// RoPE with transformers' `rotate_half`: `x · cos + rotate_half(x) · sin` on one head.
fn rotate_half(v: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = v.len() / 2;
    let (a, b) = v.split_at_mut(half);
    for (((a, b), c), s) in a.iter_mut().zip(b.iter_mut()).zip(cos).zip(sin) {
        let (x1, x2) = (*a, *b);
        *a = x1 * c - x2 * s;
        *b = x2 * c + x1 * s;
    }
}

/// Attention of query rows `q` against keys `k` for one head, written to `out` (the
/// attention rows starting at `q.start`, `hidden` floats apart).
///
/// `scores` becomes the `q × k` probability matrix: `(q·kᵀ) · scale` by gemm, then per row a
/// softmax over the keys inside the row's window (`|i − j| ≤ half_window`) that are real
/// tokens, every other key getting exactly 0; then `P · V` by gemm.
#[allow(clippy::too_many_arguments)]
fn attend_block(
    qkv: &[f32],
    h: usize,
    hd: usize,
    head: usize,
    q: Range<usize>,
    k: Range<usize>,
    half_window: Option<usize>,
    valid: Option<&[bool]>,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let (nq, nk) = (q.len(), k.len());
    let stride = 3 * h;
    let scale = 1.0 / (hd as f32).sqrt();
    let q_off = q.start * stride + head * hd;
    let k_off = k.start * stride + h + head * hd;
    let v_off = k.start * stride + 2 * h + head * hd;
    assert!(scores.len() >= nq * nk && out.len() >= (nq - 1) * h + (head + 1) * hd);
    assert!(qkv.len() >= (k.end.max(q.end) - 1) * stride + 3 * h);
    // SAFETY: every index gemm touches is inside qkv (asserted: rows < max(q.end, k.end),
    // columns inside one head), scores (nq × nk) and out (nq rows, this head's columns).
    unsafe {
        gemm::gemm(
            nq,
            nk,
            hd,
            scores.as_mut_ptr(),
            1,
            nk as isize,
            false,
            qkv.as_ptr().add(q_off),
            1,
            stride as isize,
            qkv.as_ptr().add(k_off),
            stride as isize,
            1,
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    for (qi, row) in q.clone().zip(scores.chunks_exact_mut(nk)) {
        // The row's window, relative to k.start.
        let (lo, hi) = match half_window {
            None => (0, nk),
            Some(w) => (
                qi.saturating_sub(w).max(k.start) - k.start,
                (qi + w + 1).min(k.end) - k.start,
            ),
        };
        row[..lo].fill(0.0);
        row[hi..].fill(0.0);
        softmax_masked(
            &mut row[lo..hi],
            valid.map(|v| &v[k.start + lo..k.start + hi]),
        );
    }
    // SAFETY: as above.
    unsafe {
        gemm::gemm(
            nq,
            hd,
            nk,
            out.as_mut_ptr().add(head * hd),
            1,
            h as isize,
            false,
            scores.as_ptr(),
            1,
            nk as isize,
            qkv.as_ptr().add(v_off),
            1,
            stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// See [`softmax_masked`].
#[inline(always)]
fn softmax_masked_generic(row: &mut [f32], valid: Option<&[bool]>) {
    if let Some(valid) = valid {
        for (s, ok) in row.iter_mut().zip(valid) {
            if !ok {
                *s = f32::NEG_INFINITY;
            }
        }
    }
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
    if max == f32::NEG_INFINITY {
        let u = 1.0 / row.len() as f32;
        row.fill(u);
        return;
    }
    exp_shifted_generic(row, max);
    let inv = 1.0 / sum_by(row, |v| v);
    row.iter_mut().for_each(|s| *s *= inv);
}

multiversion! {
    /// In-place softmax of `row`, with keys where `valid` is false getting 0. A row with no
    /// valid key (a padding query whose window holds only padding) becomes uniform, as
    /// transformers' equal `finfo.min` scores would make it.
    fn softmax_masked(row: &mut [f32], valid: Option<&[bool]>) => softmax_masked_generic
}

multiversion! {
    /// `row[i] = exp(row[i] − shift)` (tests; the forward runs it inside [`softmax_masked`]).
    #[cfg(test)]
    fn exp_shifted(row: &mut [f32], shift: f32) => exp_shifted_generic
}

#[inline(always)]
fn exp_shifted_generic(row: &mut [f32], shift: f32) {
    row.iter_mut().for_each(|s| *s = exp(*s - shift));
}

multiversion! {
    /// Applies `act` to every element of `xs`.
    fn activate(act: Activation, xs: &mut [f32]) => activate_generic
}

#[inline(always)]
fn activate_generic(act: Activation, xs: &mut [f32]) {
    match act {
        Activation::GeluErf => xs
            .iter_mut()
            .for_each(|x| *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2))),
        Activation::GeluTanh => xs.iter_mut().for_each(|x| {
            // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³)))
            let z = 0.797_884_6 * (*x + 0.044_715 * *x * *x * *x);
            *x = 0.5 * *x * (1.0 + tanh(z));
        }),
    }
}

/// The widest vector extension this CPU has, detected once.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Eq)]
enum Simd {
    Avx512,
    Avx2,
    Baseline,
}

#[cfg(target_arch = "x86_64")]
fn simd() -> Simd {
    static LEVEL: OnceLock<Simd> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
        {
            Simd::Avx512
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            Simd::Avx2
        } else {
            Simd::Baseline
        }
    })
}

/// `eˣ` without branches, so loops over it vectorize: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`
/// (Cody–Waite split of ln 2), `eʳ` by its Taylor series to `r⁷` (truncation error
/// `|r|⁸/8! < 1e-8` relative), then `2ⁿ` built in the exponent bits. Relative error ≈ 2
/// ulp. Inputs below −87 give 0 (`e⁻⁸⁷` ≈ 1.6e-38 is a masked key for softmax anyway); above
/// 88 the result saturates at e⁸⁸.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 = LN2_HI + LN2_LO; LN2_HI has 9 significant bits, so n · LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 · 2²³ rounds to an integer (ties to even) and leaves it in the low bits.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.0, 88.0);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // The low bits of t are n (two's complement); 2ⁿ has exponent field n + 127.
    let bits = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23;
    let y = p * f32::from_bits(bits);
    if x < -87.0 { 0.0 } else { y }
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7 in exact arithmetic, ≤ 5e-7
/// in `f32`):
/// `1 − (a₁t + a₂t² + a₃t³ + a₄t⁴ + a₅t⁵) · e^{−x²}`, `t = 1 / (1 + p·|x|)`, odd.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_8;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// `tanh(z) = 1 − 2 / (e^{2z} + 1)`, accurate to a few ulp of 1 (absolute), which is what
/// GELU's `1 + tanh` needs.
#[inline(always)]
fn tanh(z: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * z) + 1.0)
}

/// Splits `(batch, seq)` ids and an optional mask into per-sequence inputs and runs `f` on
/// each, concatenating the outputs into a `(batch, seq, width)` tensor.
///
/// A batch of several sequences of at least 256 tokens runs on 2 threads, each taking whole
/// sequences one after the other on one thread: no barrier between the threads until the
/// end, where a forward split by rows meets once per layer (and a barrier waits for
/// whichever thread the scheduler preempted).
pub(crate) fn run_batch(
    input_ids: &Tensor,
    attention_mask: Option<&Tensor>,
    width: usize,
    f: impl Fn(&[u32], Option<&[bool]>) -> Result<Vec<f32>> + Sync,
) -> Result<Tensor> {
    let (b, t) = input_ids.dims2()?;
    let ids: Vec<Vec<u32>> = input_ids.to_dtype(DType::U32)?.to_vec2()?;
    let masks: Option<Vec<Vec<bool>>> = match attention_mask {
        Some(m) => {
            if m.dims2()? != (b, t) {
                return Err(err(format!(
                    "attention mask {:?} for ids {:?}",
                    m.dims(),
                    input_ids.dims()
                )));
            }
            let m: Vec<Vec<f32>> = m.to_dtype(DType::F32)?.to_vec2()?;
            Some(
                m.into_iter()
                    .map(|row| row.into_iter().map(|v| v != 0.0).collect())
                    .collect(),
            )
        }
        None => None,
    };
    // Each thread takes the next sequence not yet taken (not a fixed half of them), so a
    // thread the machine deschedules holds up one sequence, not half the batch.
    let next = AtomicUsize::new(0);
    let run = || -> Vec<(usize, Result<Vec<f32>>)> {
        std::iter::from_fn(|| Some(next.fetch_add(1, Ordering::Relaxed)))
            .take_while(|&row| row < b)
            .map(|row| {
                let valid = masks
                    .as_ref()
                    .map(|m| m[row].as_slice())
                    .filter(|v| !v.iter().all(|&ok| ok));
                (row, f(&ids[row], valid))
            })
            .collect()
    };
    let mut outs = if b >= 2 && threads_for(t) >= 2 {
        std::thread::scope(|s| {
            let other = s.spawn(|| one_thread(run));
            let mut outs = one_thread(run);
            outs.extend(other.join().expect("forward thread panicked"));
            outs
        })
    } else {
        run()
    };
    outs.sort_by_key(|(row, _)| *row);
    let mut out = Vec::with_capacity(b * t * width);
    for (_, o) in outs {
        out.extend(o?);
    }
    Tensor::from_vec(out, (b, t, width), input_ids.device())
}

thread_local! {
    /// Set while this thread runs whole sequences of a batch split between threads
    /// ([`run_batch`]): its forwards then stay on this thread.
    static ONE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread's forwards kept on this thread.
fn one_thread<R>(f: impl FnOnce() -> R) -> R {
    let before = ONE_THREAD.with(|c| c.replace(true));
    let r = f();
    ONE_THREAD.with(|c| c.set(before));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_close_to_std() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (exp(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
            x += 0.0137;
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        // The vectorized slice version agrees with the scalar one.
        let mut row: Vec<f32> = (0..100).map(|i| i as f32 * -0.3).collect();
        exp_shifted(&mut row, 1.0);
        for (i, v) in row.iter().enumerate() {
            assert!((v - exp(i as f32 * -0.3 - 1.0)).abs() <= 1e-7);
        }
    }

    #[test]
    fn erf_and_gelu_are_close_to_f64() {
        let mut worst = 0f64;
        for i in -6000..6000 {
            let x = i as f32 / 1000.0;
            // erf in f64 via its relation to the complementary error function is not in std;
            // compare the GELU against a high-precision series instead.
            let want = erf_f64(x as f64);
            worst = worst.max((erf(x) as f64 - want).abs());
        }
        // The formula's 1.5e-7 plus f32 rounding of 1 − poly · e^{−x²}.
        assert!(worst < 1e-6, "erf abs error {worst}");
        let mut xs = vec![-3.0f32, -1.0, 0.0, 0.5, 2.0];
        activate(Activation::GeluErf, &mut xs);
        let want = [-0.004_049_7, -0.158_655_25, 0.0, 0.345_731_14, 1.954_499_7];
        for (a, b) in xs.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    /// The AVX-512 attention kernel and the portable gemm version agree, for global and
    /// banded attention, with padding, over a block of queries in the middle of the keys.
    #[test]
    fn attention_kernels_agree() {
        #[cfg(target_arch = "x86_64")]
        for hd in [16usize, 32, 64] {
            if !attn512::usable(hd) {
                eprintln!("no AVX-512 here: skipped");
                return;
            }
            let (heads, t) = (2, 150);
            let h = heads * hd;
            let mut state = 0x2468_ace1u32;
            let qkv: Vec<f32> = (0..t * 3 * h)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    (state % 2001) as f32 / 500.0 - 2.0
                })
                .collect();
            let valid: Vec<bool> = (0..t).map(|i| i % 7 != 3 && i < 140).collect();
            for window in [None, Some(16)] {
                let q = 37..101;
                let k = match window {
                    None => 0..t,
                    Some(w) => q.start - w..q.end + w,
                };
                let mut fast = vec![0f32; q.len() * h];
                let mut slow = vec![0f32; q.len() * h];
                // Stale values where no key is: the kernel must not read them.
                let mut keys_t = vec![f32::NAN; attn512::keys_t_len(t, h)];
                let shared = Shared::new(&mut keys_t, 1);
                // In two calls, as two chunks of a forward write them.
                for rows in [0..64, 64..t] {
                    // SAFETY: keys_t is sized for t; one thread.
                    unsafe {
                        attn512::transpose_keys(
                            &qkv[rows.start * 3 * h..rows.end * 3 * h],
                            rows.start,
                            t,
                            h,
                            hd,
                            shared,
                        )
                    };
                }
                let mut scores = Vec::new();
                for head in 0..heads {
                    // SAFETY: usable(hd) checked above.
                    unsafe {
                        attn512::attend_block(
                            &qkv,
                            h,
                            hd,
                            head,
                            q.clone(),
                            t,
                            window,
                            Some(&valid),
                            &keys_t,
                            &mut scores,
                            &mut fast,
                        )
                    };
                    let mut s = vec![0f32; q.len() * k.len()];
                    attend_block(
                        &qkv,
                        h,
                        hd,
                        head,
                        q.clone(),
                        k.clone(),
                        window,
                        Some(&valid),
                        &mut s,
                        &mut slow,
                    );
                }
                let worst = fast
                    .iter()
                    .zip(&slow)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst < 1e-5, "hd {hd} window {window:?}: {worst}");
            }
        }
    }

    /// A batch split between threads keeps the rows in order, and each row's forward stays
    /// on its thread.
    #[test]
    fn batch_rows_keep_order_and_one_thread_each() {
        let rows: Vec<Vec<u32>> = (0..5u32).map(|r| vec![r; 300]).collect();
        let ids = Tensor::new(rows, &candle_core::Device::Cpu).unwrap();
        let seen = Mutex::new(Vec::new());
        let out = run_batch(&ids, None, 2, |ids, _| {
            seen.lock().unwrap().push(threads_for(ids.len()));
            Ok(ids.iter().flat_map(|&i| [i as f32, -(i as f32)]).collect())
        })
        .unwrap();
        let out: Vec<Vec<Vec<f32>>> = out.to_vec3().unwrap();
        for (r, row) in out.iter().enumerate() {
            assert!(row.iter().all(|v| v == &[r as f32, -(r as f32)]), "row {r}");
        }
        if threads_for(300) >= 2 {
            assert_eq!(*seen.lock().unwrap(), [1; 5]);
        }
    }

    /// erf by its Taylor series (|x| ≤ 3) or continued fraction (beyond), in f64.
    fn erf_f64(x: f64) -> f64 {
        let a = x.abs();
        let v = if a < 3.0 {
            let (mut term, mut total, mut k) = (a, a, 0.0);
            while term.abs() > 1e-17 {
                k += 1.0;
                term *= -a * a / k;
                total += term / (2.0 * k + 1.0);
            }
            total * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(a) = e^{-a²}/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + …))))
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
        };
        v.copysign(x)
    }
}

/// Attention for one head and one block of queries with AVX-512, the same computation as
/// [`attend_block`] without gemm's packing and with 16 multiply-adds per instruction
/// instead of 8; rows of 4 queries touch only the keys their windows reach.
#[cfg(target_arch = "x86_64")]
mod attn512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// Queries per register tile.
    const R: usize = 4;
    /// Keys per register tile (two vectors).
    const KEYS: usize = 32;

    /// Whether this CPU and head size can use the kernel (head_dim a multiple of 16, ≤ 64:
    /// one query tile's output fits 16 registers; AVX-512 BW/VL for the padding mask).
    pub(super) fn usable(hd: usize) -> bool {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        hd.is_multiple_of(16)
            && hd <= 64
            && *HAS.get_or_init(|| {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
            })
    }

    /// Floats of the transposed keys of a `t`-token sequence with `h` = heads × head size:
    /// per head, `t / 16` groups (rounded up) and one of padding, each `head_dim × 16`.
    pub(super) fn keys_t_len(t: usize, h: usize) -> usize {
        (t.div_ceil(16) + 1) * 16 * h
    }

    /// Writes the keys of rows `r0..` (`qkv` holds those rows, `[q | k | v]` each) into the
    /// transposed layout the kernel reads: for head `hh` of a `t`-token sequence, groups of
    /// 16 keys, `keys_t[((hh · g + j / 16) · hd + d) · 16 + j % 16] = K[j][hh · hd + d]` with
    /// `g` groups per head (see [`keys_t_len`]). Transposed once per layer, not once per
    /// block of queries that reads them.
    ///
    /// # Safety
    /// `keys_t` holds [`keys_t_len`]`(t, h)` floats, and no other thread accesses the groups
    /// of these rows while this runs (`r0` a multiple of 16, the rows whole groups or the
    /// last ones).
    pub(super) unsafe fn transpose_keys(
        qkv: &[f32],
        r0: usize,
        t: usize,
        h: usize,
        hd: usize,
        keys_t: super::Shared,
    ) {
        let g = t.div_ceil(16) + 1;
        assert!(r0.is_multiple_of(16) && r0 + qkv.len() / (3 * h) <= t);
        assert!(keys_t.len >= keys_t_len(t, h));
        for (i, row) in qkv.chunks_exact(3 * h).enumerate() {
            let j = r0 + i;
            for (head, key) in row[h..2 * h].chunks_exact(hd).enumerate() {
                let base = ((head * g + j / 16) * hd) * 16 + j % 16;
                for (d, v) in key.iter().enumerate() {
                    // SAFETY: base + d · 16 < keys_t_len (asserted); exclusive by contract.
                    unsafe { *keys_t.ptr.add(base + d * 16) = *v };
                }
            }
        }
    }

    /// See [`super::attend_block`], for the queries `q` against all `t` keys (restricted to
    /// each query's window); `keys_t` holds every head's keys from [`transpose_keys`].
    ///
    /// # Safety
    /// `usable(hd)` (AVX-512 F/BW/VL present).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn attend_block(
        qkv: &[f32],
        h: usize,
        hd: usize,
        head: usize,
        q: Range<usize>,
        t: usize,
        half_window: Option<usize>,
        valid: Option<&[bool]>,
        keys_t: &[f32],
        scores: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        let stride = 3 * h;
        // Room for a 32-key tile starting at any multiple of 16 below t.
        let width = t.div_ceil(16) * 16 + KEYS;
        let g = t.div_ceil(16) + 1;
        assert!(qkv.len() >= t.max(q.end) * stride);
        assert!(out.len() >= (q.len() - 1) * h + (head + 1) * hd);
        assert!(keys_t.len() >= keys_t_len(t, h) && valid.is_none_or(|v| v.len() >= t));
        let keys_t = &keys_t[head * g * hd * 16..(head + 1) * g * hd * 16];
        scores.resize(R * width, 0.0);
        let ctx = Ctx {
            qkv,
            h,
            hd,
            head,
            q: q.clone(),
            k: 0..t,
            half_window,
            valid,
            width,
        };
        let mut q0 = q.start;
        while q0 < q.end {
            let rows = R.min(q.end - q0);
            // SAFETY: AVX-512 F (this function's feature); bounds as asserted above.
            unsafe {
                match (rows, hd / 16) {
                    (4, 4) => tile::<4, 4>(&ctx, q0, scores, keys_t, out),
                    (3, 4) => tile::<3, 4>(&ctx, q0, scores, keys_t, out),
                    (2, 4) => tile::<2, 4>(&ctx, q0, scores, keys_t, out),
                    (1, 4) => tile::<1, 4>(&ctx, q0, scores, keys_t, out),
                    (4, 3) => tile::<4, 3>(&ctx, q0, scores, keys_t, out),
                    (3, 3) => tile::<3, 3>(&ctx, q0, scores, keys_t, out),
                    (2, 3) => tile::<2, 3>(&ctx, q0, scores, keys_t, out),
                    (1, 3) => tile::<1, 3>(&ctx, q0, scores, keys_t, out),
                    (4, 2) => tile::<4, 2>(&ctx, q0, scores, keys_t, out),
                    (3, 2) => tile::<3, 2>(&ctx, q0, scores, keys_t, out),
                    (2, 2) => tile::<2, 2>(&ctx, q0, scores, keys_t, out),
                    (1, 2) => tile::<1, 2>(&ctx, q0, scores, keys_t, out),
                    (4, _) => tile::<4, 1>(&ctx, q0, scores, keys_t, out),
                    (3, _) => tile::<3, 1>(&ctx, q0, scores, keys_t, out),
                    (2, _) => tile::<2, 1>(&ctx, q0, scores, keys_t, out),
                    _ => tile::<1, 1>(&ctx, q0, scores, keys_t, out),
                }
            }
            q0 += rows;
        }
    }

    /// What every tile of one block shares.
    struct Ctx<'a> {
        qkv: &'a [f32],
        h: usize,
        hd: usize,
        head: usize,
        q: Range<usize>,
        k: Range<usize>,
        half_window: Option<usize>,
        valid: Option<&'a [bool]>,
        /// Row length of `scores` (keys rounded up, plus a tile).
        width: usize,
    }

    impl Ctx<'_> {
        /// Query `qi`'s window, relative to `k.start`.
        fn window(&self, qi: usize) -> (usize, usize) {
            match self.half_window {
                None => (0, self.k.len()),
                Some(w) => (
                    qi.saturating_sub(w).max(self.k.start) - self.k.start,
                    (qi + w + 1).min(self.k.end) - self.k.start,
                ),
            }
        }
    }

    /// Queries `q0..q0 + N` (all of them in `ctx.q`) for a head of `NV` · 16 dimensions;
    /// `N` and `NV` are constants so the accumulators stay in registers.
    ///
    /// # Safety
    /// AVX-512 F present; `keys_t` and `scores` sized by the caller for `ctx.width`.
    #[inline(always)]
    unsafe fn tile<const N: usize, const NV: usize>(
        ctx: &Ctx,
        q0: usize,
        scores: &mut [f32],
        keys_t: &[f32],
        out: &mut [f32],
    ) {
        let (qkv, h, hd, head, width) = (ctx.qkv, ctx.h, ctx.hd, ctx.head, ctx.width);
        let stride = 3 * h;
        let (lo, _) = ctx.window(q0);
        let (_, hi) = ctx.window(q0 + N - 1);
        let scale = 1.0 / (hd as f32).sqrt();
        unsafe {
            // Scores for keys from lo (rounded down to 16) to hi, in tiles of 32 that may run
            // past hi into the zero padding.
            let mut j = lo / 16 * 16;
            while j < hi {
                let mut acc = [[_mm512_setzero_ps(); 2]; N];
                let g0 = keys_t.as_ptr().add((j / 16) * hd * 16);
                let g1 = g0.add(hd * 16);
                for d in 0..hd {
                    let (k0, k1) = (
                        _mm512_loadu_ps(g0.add(d * 16)),
                        _mm512_loadu_ps(g1.add(d * 16)),
                    );
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let qv =
                            _mm512_set1_ps(*qkv.get_unchecked((q0 + r) * stride + head * hd + d));
                        acc[0] = _mm512_fmadd_ps(qv, k0, acc[0]);
                        acc[1] = _mm512_fmadd_ps(qv, k1, acc[1]);
                    }
                }
                let sc = _mm512_set1_ps(scale);
                for (r, acc) in acc.iter().enumerate() {
                    let dst = scores.as_mut_ptr().add(r * width + j);
                    _mm512_storeu_ps(dst, _mm512_mul_ps(acc[0], sc));
                    _mm512_storeu_ps(dst.add(16), _mm512_mul_ps(acc[1], sc));
                }
                j += KEYS;
            }
        }
        // Softmax per query over its own window, zeros elsewhere in lo..hi; left
        // unnormalized, its factor applied to the output instead (one pass less per row).
        let mut inv = [0f32; N];
        for (r, inv) in inv.iter_mut().enumerate() {
            let (wlo, whi) = ctx.window(q0 + r);
            let row = &mut scores[r * width..(r + 1) * width];
            row[lo..wlo].fill(0.0);
            row[whi..hi].fill(0.0);
            let k0 = ctx.k.start;
            // SAFETY: AVX-512 F/BW/VL present (the caller's contract).
            *inv = unsafe {
                exp_masked(
                    &mut row[wlo..whi],
                    ctx.valid.map(|v| &v[k0 + wlo..k0 + whi]),
                )
            };
        }
        // Output = P · V over keys lo..hi.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); NV]; N];
            for jj in lo..hi {
                let v = qkv
                    .as_ptr()
                    .add((ctx.k.start + jj) * stride + 2 * h + head * hd);
                let mut vs = [_mm512_setzero_ps(); NV];
                for (c, vv) in vs.iter_mut().enumerate() {
                    *vv = _mm512_loadu_ps(v.add(c * 16));
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let p = _mm512_set1_ps(*scores.get_unchecked(r * width + jj));
                    for (a, vv) in acc.iter_mut().zip(&vs) {
                        *a = _mm512_fmadd_ps(p, *vv, *a);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                let dst = out.as_mut_ptr().add((q0 - ctx.q.start + r) * h + head * hd);
                let inv = _mm512_set1_ps(inv[r]);
                for (c, a) in acc.iter().enumerate() {
                    _mm512_storeu_ps(dst.add(c * 16), _mm512_mul_ps(*a, inv));
                }
            }
        }
    }

    /// Lanes `0..n` of a 16-lane vector (`n ≤ 16`).
    #[inline(always)]
    fn lanes(n: usize) -> __mmask16 {
        if n >= 16 { 0xffff } else { (1u16 << n) - 1 }
    }

    /// [`super::exp`] on 16 lanes: the same range reduction and polynomial, with fused
    /// multiply-adds (so not bit-identical: ≤ 1 ulp apart).
    ///
    /// # Safety
    /// AVX-512 F present.
    #[inline(always)]
    unsafe fn exp16(x: __m512) -> __m512 {
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        const ROUND: f32 = 12_582_912.0;
        unsafe {
            let xc = _mm512_min_ps(
                _mm512_max_ps(x, _mm512_set1_ps(-87.0)),
                _mm512_set1_ps(88.0),
            );
            let round = _mm512_set1_ps(ROUND);
            let t = _mm512_fmadd_ps(xc, _mm512_set1_ps(std::f32::consts::LOG2_E), round);
            let n = _mm512_sub_ps(t, round);
            let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), xc);
            let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
            let mut p = _mm512_set1_ps(1.0 / 5040.0);
            for c in [
                1.0 / 720.0,
                1.0 / 120.0,
                1.0 / 24.0,
                1.0 / 6.0,
                0.5,
                1.0,
                1.0,
            ] {
                p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
            }
            let bits = _mm512_slli_epi32(
                _mm512_add_epi32(
                    _mm512_sub_epi32(
                        _mm512_castps_si512(t),
                        _mm512_set1_epi32(ROUND.to_bits() as i32),
                    ),
                    _mm512_set1_epi32(127),
                ),
                23,
            );
            let y = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
            let under = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(-87.0));
            _mm512_mask_mov_ps(y, under, _mm512_setzero_ps())
        }
    }

    /// Lanes of keys `c..c + 16` that are inside a row of `n` and real tokens.
    ///
    /// # Safety
    /// AVX-512 F/BW/VL present; `valid`, when given, holds `n` flags.
    #[inline(always)]
    unsafe fn keys(n: usize, valid: Option<&[bool]>, c: usize) -> __mmask16 {
        let m = lanes(n - c);
        match valid {
            None => m,
            // SAFETY: the bytes c.. of `valid` under mask m are in bounds; a bool is one
            // byte, 0 or 1.
            Some(v) => unsafe {
                let b = _mm_maskz_loadu_epi8(m, v.as_ptr().add(c) as *const i8);
                _mm_test_epi8_mask(b, b)
            },
        }
    }

    /// The numerators of [`super::softmax_masked`] in 16-lane steps: `row` becomes
    /// `exp(x − max)` over the keys it keeps (masked keys 0; a fully masked row all 1, the
    /// uniform fallback), and the factor that normalizes it is returned. Two passes over the
    /// row.
    ///
    /// # Safety
    /// AVX-512 F/BW/VL present; `valid`, when given, is as long as `row`.
    #[inline(always)]
    unsafe fn exp_masked(row: &mut [f32], valid: Option<&[bool]>) -> f32 {
        let n = row.len();
        let ptr = row.as_mut_ptr();
        unsafe {
            let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
            let mut vmax = ninf;
            for c in (0..n).step_by(16) {
                vmax = _mm512_max_ps(
                    vmax,
                    _mm512_mask_loadu_ps(ninf, keys(n, valid, c), ptr.add(c)),
                );
            }
            let max = _mm512_reduce_max_ps(vmax);
            if max == f32::NEG_INFINITY {
                row.fill(1.0);
                return 1.0 / n as f32;
            }
            let shift = _mm512_set1_ps(max);
            let mut sum = _mm512_setzero_ps();
            for c in (0..n).step_by(16) {
                let k = keys(n, valid, c);
                let e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, ptr.add(c)), shift));
                let e = _mm512_maskz_mov_ps(k, e);
                sum = _mm512_add_ps(sum, e);
                _mm512_mask_storeu_ps(ptr.add(c), lanes(n - c), e);
            }
            1.0 / _mm512_reduce_add_ps(sum)
        }
    }
}
