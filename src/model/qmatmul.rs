//! `y (+)= x · Wᵀ` against Q8_0 weights with integer dot products (AVX-512 VNNI).
//!
//! Why: once the candle overhead was gone, 75% of the fast forward's CPU time was the `gemm`
//! crate's F32 AVX2 micro-kernel on dequantized weights (8 multiply-adds per instruction;
//! gemm 0.19 uses AVX-512 only on nightly). VNNI instructions do 32 to 64 integer
//! multiply-adds into `i32` per instruction, and Q8_0 weights already are small integers.
//!
//! Scheme, per row of `x` and per block of 32 inputs: `d = max|x| / 127`, `q = round(x / d)`
//! as `i8` (ggml's Q8_0 × Q8_0); a weight block `(s, w)` then contributes `d · s · Σ q·w`,
//! summed exactly in `i32` and scaled in `f32`. `vpdpbusd` multiplies unsigned by signed
//! bytes, so `q` is stored as `u = q + 128` and `128 · Σ w` (kept per block in the packed
//! layout) is subtracted: one instruction per group of 4 inputs and 16 output columns.
//!
//! Why 8-bit activations: they halve the integer work of the 16-bit scheme this kernel used
//! before ([`Act::A16`], still here for comparisons: `KOMPRESS_ACT_BITS=16`), whose `q` was
//! split into the two bytes of `q + 32768` for two `vpdpbusd`. Measured (docs/bench.md): the
//! small config's forward CPU −20% at ~4,300 tokens and −27% at ~100. The cost is a rounding
//! error as large as the weights' own. On the shipped model and all 3,007 dev-corpus records
//! (313,848 words), 22 words' keep decisions differ from the F32 product on dequantized
//! weights (1 with 16 bits), and the pipeline's output differs in 6 words of one record;
//! `tests/model_parity.rs` holds the Q8_0-vs-F32 agreement on the fixtures to ≥ 99% (99.05%
//! measured; 99.70% with 16 bits) and on the amplified one to ≥ 97.5% (97.63%; 98.28%).
//!
//! Layout ([`Packed`]): the weights are repacked, 32 output columns at a time, into the
//! order the instruction consumes (for each group of 4 inputs: 32 columns × 4 `i8`), with the
//! 32 columns' scales and `32768 · Σ w` per block (the 16-bit scheme's term; the 8-bit one
//! uses it shifted right by 8, exactly). The packed copy is as large as the Q8_0
//! tensor (1 byte per weight, +1/4 for scales and sums). `kompress model convert` writes it
//! into the GGUF file next to the Q8_0 tensor, and the kernel then reads it in place from the
//! mapping: nothing to compute and no private copy at start-up, and the pages are shared by
//! every process using the model. For a file without it, the copy is built on a layer's first
//! use, so a process pays for packing once, not once per 512-token chunk.
//!
//! Only x86-64 CPUs with AVX-512 F/BW/VNNI use this; [`available`] says whether this one
//! does, and the caller falls back to dequantizing into F32 panels otherwise (also forced by
//! `KOMPRESS_Q8_KERNEL=f32`, for comparisons).

use anyhow::{Result, ensure};

use super::gguf::{GgufFile, Slab, TensorType, Value, WriteTensor};
use super::quant::{BLOCK, BLOCK_BYTES, QMatrix};

/// Output columns per packed panel: two 16-lane `i32` vectors.
const COLS: usize = 32;
/// Rows of `x` per micro-tile: 4 rows × 2 column vectors = 8 `i32` and 8 `f32` accumulators
/// (6 rows, 24 accumulators, measured ~15% slower).
const ROWS: usize = 4;

/// Whether this CPU runs the integer kernel (and `KOMPRESS_Q8_KERNEL=f32` does not forbid it).
pub fn available() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        if std::env::var("KOMPRESS_Q8_KERNEL").is_ok_and(|v| v == "f32") {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// Activation precision of a matrix product (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// 16 bits, two `vpdpbusd` per group of 4 inputs: within ~1e-5 relative of the F32
    /// product on dequantized weights.
    A16,
    /// 8 bits, one `vpdpbusd` per group: the forward's precision.
    A8,
}

impl Act {
    /// The forward's precision: [`Act::A8`], unless `KOMPRESS_ACT_BITS=16` (diagnostics, for
    /// comparisons; read once) asks for [`Act::A16`].
    pub fn forward() -> Act {
        static ACT: std::sync::OnceLock<Act> = std::sync::OnceLock::new();
        *ACT.get_or_init(|| match std::env::var("KOMPRESS_ACT_BITS").as_deref() {
            Ok("16") => Act::A16,
            _ => Act::A8,
        })
    }
}

/// Per-thread buffers, reused across calls.
#[derive(Default)]
pub struct Scratch {
    /// Quantized activations `q + 32768`, high and low bytes, `m × in` each.
    hi: Vec<u8>,
    lo: Vec<u8>,
    /// 8-bit activations `q + 128`, `m × in` (the 8-bit path).
    a8: Vec<u8>,
    /// Their scales, `m × in / 32`.
    xd: Vec<f32>,
}

/// A Q8_0 matrix `[out, in]` repacked for the kernel (see the module docs): computed at run
/// time from the Q8_0 tensor, or read in place from tensors `kompress model convert` wrote
/// next to it ([`Packed::from_file`]).
#[derive(Clone)]
pub struct Packed {
    rows: usize,
    cols: usize,
    /// Per panel of 32 output rows, per group of 4 inputs: 16 rows × 4 `i8` (one 64-byte
    /// vector, each row's 4 weights little-endian in a `u32`), then the other 16 rows;
    /// `vpdpbusd` multiplies each 4-byte lane with 4 activation bytes.
    data: Slab<u32>,
    /// Per panel, per block of 32 inputs: the 32 rows' scales.
    scales: Slab<f32>,
    /// Per panel, per block: `32768 · Σ w` of each of the 32 rows, the term the activations'
    /// `+32768` offset adds (see [`matmul`]).
    offsets: Slab<i32>,
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.is_mapped() { "mapped" } else { "owned" };
        write!(f, "Packed({}x{}, {at})", self.rows, self.cols)
    }
}

/// GGUF metadata key naming the layout of the pre-packed tensors in a file, and the value for
/// this one. A file with another value (a future layout) has its packed tensors ignored, and
/// the kernel packs at run time as for a file without them.
pub const LAYOUT_KEY: &str = "kompress.packed_layout";
pub const LAYOUT: &str = "q8_0-vnni-32x4-v1";
/// Suffixes of the three tensors that hold `NAME`'s packed form (`NAME.packed_q` …).
const SUFFIXES: [&str; 3] = ["packed_q", "packed_d", "packed_o"];

impl Packed {
    /// Repacks `w`. Without pre-packed tensors in the file this runs on a layer's first use,
    /// on the cold-start path: one pass over each row's blocks, 4 weights moved per store.
    pub fn new(w: &QMatrix) -> Self {
        Self::from_q8_0(w.bytes(), w.rows, w.cols)
    }

    /// Packs `rows × cols` Q8_0 blocks.
    pub fn from_q8_0(bytes: &[u8], rows: usize, cols: usize) -> Self {
        let (n, k) = (rows, cols);
        assert_eq!(bytes.len(), n * k / BLOCK * BLOCK_BYTES);
        let (panels, blocks) = (n.div_ceil(COLS), k / BLOCK);
        let mut data = vec![0u32; panels * k / 4 * COLS];
        let mut scales = vec![0f32; panels * blocks * COLS];
        let mut offsets = vec![0i32; panels * blocks * COLS];
        for (row, row_bytes) in bytes.chunks_exact(k / BLOCK * BLOCK_BYTES).enumerate() {
            let (panel, c) = (row / COLS, row % COLS);
            let data = &mut data[panel * k / 4 * COLS..(panel + 1) * k / 4 * COLS];
            let at = panel * blocks * COLS + c;
            for (b, block) in row_bytes.chunks_exact(BLOCK_BYTES).enumerate() {
                scales[at + b * COLS] =
                    half::f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32();
                let q = &block[2..];
                offsets[at + b * COLS] = 32768 * q.iter().map(|&v| v as i8 as i32).sum::<i32>();
                // Group g of block b holds inputs 4g..4g + 4 of the block, for all 32 rows.
                let groups = &mut data[b * BLOCK / 4 * COLS..(b + 1) * BLOCK / 4 * COLS];
                for (g, q) in q.chunks_exact(4).enumerate() {
                    groups[g * COLS + c] = u32::from_le_bytes([q[0], q[1], q[2], q[3]]);
                }
            }
        }
        Self {
            rows: n,
            cols: k,
            data: Slab::Owned(data),
            scales: Slab::Owned(scales),
            offsets: Slab::Owned(offsets),
        }
    }

    /// Whether all of it is used in place from the mapped file.
    pub fn is_mapped(&self) -> bool {
        self.data.is_mapped() && self.scales.is_mapped() && self.offsets.is_mapped()
    }

    /// The tensors that store this packing of weight `name` in a GGUF file (read back by
    /// [`Packed::from_file`] when the file's [`LAYOUT_KEY`] is [`LAYOUT`]).
    pub fn tensors(&self, name: &str) -> Vec<WriteTensor> {
        let (panels, blocks) = (self.rows.div_ceil(COLS), self.cols / BLOCK);
        let [q, d, o] = SUFFIXES.map(|s| format!("{name}.{s}"));
        vec![
            WriteTensor {
                name: q,
                shape: vec![panels * COLS, self.cols],
                dtype: TensorType::I8,
                data: bytemuck::cast_slice(&self.data).to_vec(),
            },
            WriteTensor {
                name: d,
                shape: vec![panels * blocks, COLS],
                dtype: TensorType::F32,
                data: bytemuck::cast_slice(&self.scales).to_vec(),
            },
            WriteTensor {
                name: o,
                shape: vec![panels * blocks, COLS],
                dtype: TensorType::I32,
                data: bytemuck::cast_slice(&self.offsets).to_vec(),
            },
        ]
    }

    /// Weight `name`'s pre-packed tensors, used in place; `None` when the file has none or
    /// another layout. An error when they are there but do not fit a `rows × cols` matrix.
    pub fn from_file(
        file: &GgufFile,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Option<Self>> {
        match file.metadata.get(LAYOUT_KEY) {
            Some(Value::String(layout)) if layout == LAYOUT => {}
            _ => return Ok(None),
        }
        let [q, d, o] = SUFFIXES.map(|s| format!("{name}.{s}"));
        let (Some(data), Some(scales), Some(offsets)) = (
            file.slab::<u32>(&q, TensorType::I8)?,
            file.slab::<f32>(&d, TensorType::F32)?,
            file.slab::<i32>(&o, TensorType::I32)?,
        ) else {
            return Ok(None);
        };
        let (panels, blocks) = (rows.div_ceil(COLS), cols / BLOCK);
        ensure!(
            cols.is_multiple_of(BLOCK)
                && data.len() == panels * cols / 4 * COLS
                && scales.len() == panels * blocks * COLS
                && offsets.len() == panels * blocks * COLS,
            "{name}: packed tensors do not fit a {rows}x{cols} matrix"
        );
        Ok(Some(Self {
            rows,
            cols,
            data,
            scales,
            offsets,
        }))
    }

    /// Whether `name` is one of the tensors [`Packed::tensors`] writes.
    pub fn is_packed_tensor(name: &str) -> bool {
        SUFFIXES
            .iter()
            .any(|s| name.strip_suffix(s).is_some_and(|n| n.ends_with('.')))
    }
}

/// `y[r][0..w.rows] (+)= x[r] · Wᵀ` for `m` rows (`x_stride`, `y_stride` floats apart);
/// with `accumulate` false, `y` is overwritten, with activations rounded to `act`'s
/// precision. Call only when [`available`].
///
/// With [`Act::A16`], each 16-bit activation `q` enters as two unsigned bytes of `u = q + 32768`
/// (`u = 256·hi + lo`), so `Σ q·w = 256·Σ hi·w + Σ lo·w − 32768·Σ w`: two `vpdpbusd` (64
/// `u8 × i8` multiply-adds each) do the work of two `vpdpwssd` (32 `i16 × i16` each) on the
/// same inputs, without widening the weights to 16 bits first (one `vpmovsxbw` per 16
/// weights before). All sums are exact in `i32` (`|256·Σ hi·w| ≤ 256 · 32 · 255 · 128 <
/// 2³¹`), so the result is bit for bit the one of the `vpdpwssd` kernel it replaces.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    act: Act,
    w: &Packed,
    x: &[f32],
    x_stride: usize,
    m: usize,
    y: &mut [f32],
    y_stride: usize,
    accumulate: bool,
    s: &mut Scratch,
) {
    assert!(available(), "integer kernel on a CPU without AVX-512 VNNI");
    let (k, n) = (w.cols, w.rows);
    let blocks = k / BLOCK;
    assert!(m > 0 && x_stride >= k && x.len() >= (m - 1) * x_stride + k);
    assert!(y_stride >= n && y.len() >= (m - 1) * y_stride + n);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512 F/BW is present (asserted via `available`).
    unsafe {
        match act {
            Act::A16 => avx512::quantize_rows::<false>(x, x_stride, m, k, s),
            Act::A8 => avx512::quantize_rows::<true>(x, x_stride, m, k, s),
        }
    };
    for (panel, n0) in (0..n).step_by(COLS).enumerate() {
        let cols = COLS.min(n - n0);
        let p = Panel {
            data: &w.data[panel * k / 4 * COLS..(panel + 1) * k / 4 * COLS],
            scales: &w.scales[panel * blocks * COLS..(panel + 1) * blocks * COLS],
            offsets: &w.offsets[panel * blocks * COLS..(panel + 1) * blocks * COLS],
        };
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512 F/BW/VNNI (asserted); the scratch rows were sized for m
        // rows of k above, the panel slices are one whole panel, and y holds m rows of
        // y_stride ≥ n floats, of which columns n0..n0 + cols are written.
        unsafe {
            match act {
                Act::A16 => avx512::panel::<false>(s, &p, k, m, y, y_stride, n0, cols, accumulate),
                Act::A8 => avx512::panel::<true>(s, &p, k, m, y, y_stride, n0, cols, accumulate),
            }
        }
    }
}

/// One packed panel of 32 output rows.
struct Panel<'a> {
    data: &'a [u32],
    scales: &'a [f32],
    offsets: &'a [i32],
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{BLOCK, COLS, Panel, ROWS, Scratch};
    use std::arch::x86_64::*;

    /// Quantizes `m` rows of `k` floats (`stride` apart) per block of 32 with a scale each,
    /// `q = round(x / d)` (ties to even by `vcvtps2dq`): with `A8` to 8 bits (`d = max|x| /
    /// 127`, `q + 128` stored in `a8`), else to 16 bits (`d = max|x| / 32767`, the high and
    /// low bytes of `q + 32768` stored in `hi` and `lo`).
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn quantize_rows<const A8: bool>(
        x: &[f32],
        stride: usize,
        m: usize,
        k: usize,
        s: &mut Scratch,
    ) {
        if A8 {
            s.a8.resize(m * k, 0);
        } else {
            s.hi.resize(m * k, 0);
            s.lo.resize(m * k, 0);
        }
        s.xd.resize(m * k / BLOCK, 0.0);
        let blocks = k / BLOCK;
        let (qmax, offset) = if A8 { (127.0, 128) } else { (32767.0, 32768) };
        let offset = _mm512_set1_epi32(offset);
        let low = _mm512_set1_epi32(0xff);
        for r in 0..m {
            let row = &x[r * stride..r * stride + k];
            for b in 0..blocks {
                // SAFETY: b · 32 + 32 ≤ k for the row of x and the rows of a8, hi and lo.
                unsafe {
                    let src = row.as_ptr().add(b * BLOCK);
                    let (v0, v1) = (_mm512_loadu_ps(src), _mm512_loadu_ps(src.add(16)));
                    let amax =
                        _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
                    let d = amax / qmax;
                    let id = _mm512_set1_ps(if d == 0.0 { 0.0 } else { 1.0 / d });
                    *s.xd.get_unchecked_mut(r * blocks + b) = d;
                    let at = r * k + b * BLOCK;
                    for (half, v) in [v0, v1].into_iter().enumerate() {
                        let u = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, id)), offset);
                        let at = at + half * 16;
                        if A8 {
                            // |x / d| ≤ 127 up to rounding: saturate so 127.5 cannot wrap.
                            let u = _mm512_cvtusepi32_epi8(u);
                            _mm_storeu_si128(s.a8.as_mut_ptr().add(at) as *mut _, u);
                        } else {
                            let hi = _mm512_cvtepi32_epi8(_mm512_srli_epi32(u, 8));
                            let lo = _mm512_cvtepi32_epi8(_mm512_and_si512(u, low));
                            _mm_storeu_si128(s.hi.as_mut_ptr().add(at) as *mut _, hi);
                            _mm_storeu_si128(s.lo.as_mut_ptr().add(at) as *mut _, lo);
                        }
                    }
                }
            }
        }
    }

    /// Rows `r0..r0 + R` × the panel's 32 columns, returned as float accumulators, 8-bit
    /// activations: `Σ q·w = Σ u·w − 128·Σ w` with `u = q + 128`, where `128·Σ w` is the
    /// packed `32768·Σ w` shifted right by 8 (exact). The integer accumulators start at
    /// `−128·Σ w`, so one `vpdpbusd` per group and column vector is all the integer work.
    ///
    /// # Safety
    /// As [`tile`], with `s.a8` holding the quantized rows.
    #[inline(always)]
    unsafe fn tile8<const R: usize>(
        s: &Scratch,
        p: &Panel,
        k: usize,
        r0: usize,
    ) -> [[__m512; 2]; R] {
        let blocks = k / BLOCK;
        debug_assert!(s.a8.len() >= (r0 + R) * k && p.data.len() >= k / 4 * COLS);
        unsafe {
            let mut f = [[_mm512_setzero_ps(); 2]; R];
            // Two blocks' integer sums at a time, as independent chains (measured 3–7%
            // faster than one block at a time; 6 or 8 rows per tile were slower than 4,
            // the compiler spilling accumulators).
            let mut b = 0;
            while b + 2 <= blocks {
                blocks8::<R, 2>(s, p, k, r0, b, &mut f);
                b += 2;
            }
            if b < blocks {
                blocks8::<R, 1>(s, p, k, r0, b, &mut f);
            }
            f
        }
    }

    /// `NB` blocks from `b0` of rows `r0..r0 + R` into the float accumulators `f`: the
    /// blocks' integer sums run interleaved, as independent chains.
    ///
    /// # Safety
    /// As [`tile8`], with `b0 + NB ≤ k / 32`.
    #[inline(always)]
    unsafe fn blocks8<const R: usize, const NB: usize>(
        s: &Scratch,
        p: &Panel,
        k: usize,
        r0: usize,
        b0: usize,
        f: &mut [[__m512; 2]; R],
    ) {
        let blocks = k / BLOCK;
        unsafe {
            let packed = p.data.as_ptr();
            let a8 = s.a8.as_ptr();
            let z = _mm512_setzero_si512();
            let mut acc = [[[z; 2]; R]; NB];
            for (bb, acc) in acc.iter_mut().enumerate() {
                let b = b0 + bb;
                let o0 = _mm512_loadu_si512(p.offsets.as_ptr().add(b * COLS) as *const _);
                let o1 = _mm512_loadu_si512(p.offsets.as_ptr().add(b * COLS + 16) as *const _);
                let n0v = _mm512_sub_epi32(z, _mm512_srai_epi32(o0, 8));
                let n1v = _mm512_sub_epi32(z, _mm512_srai_epi32(o1, 8));
                *acc = [[n0v, n1v]; R];
            }
            for g in 0..BLOCK / 4 {
                for (bb, acc) in acc.iter_mut().enumerate() {
                    let b = b0 + bb;
                    let group = packed.add((b * BLOCK / 4 + g) * COLS);
                    let w0 = _mm512_loadu_si512(group as *const _);
                    let w1 = _mm512_loadu_si512(group.add(16) as *const _);
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let at = (r0 + r) * k + b * BLOCK + g * 4;
                        let a = _mm512_set1_epi32((a8.add(at) as *const i32).read_unaligned());
                        acc[0] = _mm512_dpbusd_epi32(acc[0], a, w0);
                        acc[1] = _mm512_dpbusd_epi32(acc[1], a, w1);
                    }
                }
            }
            for (bb, acc) in acc.iter().enumerate() {
                let b = b0 + bb;
                let s0 = _mm512_loadu_ps(p.scales.as_ptr().add(b * COLS));
                let s1 = _mm512_loadu_ps(p.scales.as_ptr().add(b * COLS + 16));
                for r in 0..R {
                    let d = _mm512_set1_ps(*s.xd.get_unchecked((r0 + r) * blocks + b));
                    f[r][0] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(acc[r][0]),
                        _mm512_mul_ps(s0, d),
                        f[r][0],
                    );
                    f[r][1] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(acc[r][1]),
                        _mm512_mul_ps(s1, d),
                        f[r][1],
                    );
                }
            }
        }
    }

    /// Writes (or adds) a tile's `R × 32` results to `y`'s columns `n0..n0 + cols`.
    ///
    /// # Safety
    /// AVX-512 F present; `y` holds rows `r0..r0 + R` of `y_stride` floats with those columns.
    #[inline(always)]
    unsafe fn store<const R: usize>(
        f: &[[__m512; 2]; R],
        y: &mut [f32],
        r0: usize,
        y_stride: usize,
        n0: usize,
        cols: usize,
        accumulate: bool,
    ) {
        unsafe {
            for (r, f) in f.iter().enumerate() {
                let out = y.as_mut_ptr().add((r0 + r) * y_stride + n0);
                for (c, v) in f.iter().enumerate() {
                    let lanes = cols.saturating_sub(c * 16).min(16);
                    if lanes == 0 {
                        break;
                    }
                    let mask: __mmask16 = if lanes == 16 {
                        0xffff
                    } else {
                        (1u16 << lanes) - 1
                    };
                    let p = out.add(c * 16);
                    let v = if accumulate {
                        _mm512_add_ps(*v, _mm512_maskz_loadu_ps(mask, p))
                    } else {
                        *v
                    };
                    _mm512_mask_storeu_ps(p, mask, v);
                }
            }
        }
    }

    /// All row tiles of one packed panel, with 8-bit activations (`A8`) or 16-bit ones.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn panel<const A8: bool>(
        s: &Scratch,
        p: &Panel,
        k: usize,
        m: usize,
        y: &mut [f32],
        y_stride: usize,
        n0: usize,
        cols: usize,
        accumulate: bool,
    ) {
        /// One tile of `R` rows from `r0`.
        ///
        /// # Safety
        /// As [`tile`] / [`tile8`].
        #[allow(clippy::too_many_arguments)]
        #[inline(always)]
        unsafe fn one<const A8: bool, const R: usize>(
            s: &Scratch,
            p: &Panel,
            k: usize,
            r0: usize,
            y: &mut [f32],
            y_stride: usize,
            n0: usize,
            cols: usize,
            accumulate: bool,
        ) {
            let f = unsafe {
                if A8 {
                    tile8::<R>(s, p, k, r0)
                } else {
                    tile::<R>(s, p, k, r0)
                }
            };
            // SAFETY: y holds rows r0..r0 + R with columns n0..n0 + cols (the caller's).
            unsafe { store::<R>(&f, y, r0, y_stride, n0, cols, accumulate) };
        }
        let mut r = 0;
        // SAFETY (all calls): see `tile`; r + R ≤ m.
        unsafe {
            while r + ROWS <= m {
                one::<A8, ROWS>(s, p, k, r, y, y_stride, n0, cols, accumulate);
                r += ROWS;
            }
            match m - r {
                3 => one::<A8, 3>(s, p, k, r, y, y_stride, n0, cols, accumulate),
                2 => one::<A8, 2>(s, p, k, r, y, y_stride, n0, cols, accumulate),
                1 => one::<A8, 1>(s, p, k, r, y, y_stride, n0, cols, accumulate),
                _ => {}
            }
        }
    }

    /// Rows `r0..r0 + R` × the panel's 32 columns, returned as float accumulators, 16-bit
    /// activations.
    ///
    /// # Safety
    /// AVX-512 F/BW/VNNI present; `s` holds quantized rows `r0..r0 + R` of width `k`, `p` a
    /// packed panel for `k`.
    #[inline(always)]
    unsafe fn tile<const R: usize>(
        s: &Scratch,
        p: &Panel,
        k: usize,
        r0: usize,
    ) -> [[__m512; 2]; R] {
        let blocks = k / BLOCK;
        debug_assert!(s.hi.len() >= (r0 + R) * k && p.data.len() >= k / 4 * COLS);
        unsafe {
            let mut f = [[_mm512_setzero_ps(); 2]; R];
            let packed = p.data.as_ptr();
            for b in 0..blocks {
                let mut hi = [[_mm512_setzero_si512(); 2]; R];
                let mut lo = [[_mm512_setzero_si512(); 2]; R];
                for g in 0..BLOCK / 4 {
                    let group = packed.add((b * BLOCK / 4 + g) * COLS);
                    let w0 = _mm512_loadu_si512(group as *const _);
                    let w1 = _mm512_loadu_si512(group.add(16) as *const _);
                    for r in 0..R {
                        let at = (r0 + r) * k + b * BLOCK + g * 4;
                        let h = _mm512_set1_epi32(
                            (s.hi.as_ptr().add(at) as *const i32).read_unaligned(),
                        );
                        let l = _mm512_set1_epi32(
                            (s.lo.as_ptr().add(at) as *const i32).read_unaligned(),
                        );
                        hi[r][0] = _mm512_dpbusd_epi32(hi[r][0], h, w0);
                        hi[r][1] = _mm512_dpbusd_epi32(hi[r][1], h, w1);
                        lo[r][0] = _mm512_dpbusd_epi32(lo[r][0], l, w0);
                        lo[r][1] = _mm512_dpbusd_epi32(lo[r][1], l, w1);
                    }
                }
                let s0 = _mm512_loadu_ps(p.scales.as_ptr().add(b * COLS));
                let s1 = _mm512_loadu_ps(p.scales.as_ptr().add(b * COLS + 16));
                let o0 = _mm512_loadu_si512(p.offsets.as_ptr().add(b * COLS) as *const _);
                let o1 = _mm512_loadu_si512(p.offsets.as_ptr().add(b * COLS + 16) as *const _);
                for r in 0..R {
                    // Σ q·w = 256·Σ hi·w + Σ lo·w − 32768·Σ w, exactly.
                    let a0 = _mm512_sub_epi32(
                        _mm512_add_epi32(_mm512_slli_epi32(hi[r][0], 8), lo[r][0]),
                        o0,
                    );
                    let a1 = _mm512_sub_epi32(
                        _mm512_add_epi32(_mm512_slli_epi32(hi[r][1], 8), lo[r][1]),
                        o1,
                    );
                    let d = _mm512_set1_ps(*s.xd.get_unchecked((r0 + r) * blocks + b));
                    f[r][0] =
                        _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0), _mm512_mul_ps(s0, d), f[r][0]);
                    f[r][1] =
                        _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1), _mm512_mul_ps(s1, d), f[r][1]);
                }
            }
            f
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::quant::quantize_q8_0;

    /// The integer kernel matches a plain F32 matmul of the dequantized weights to within the
    /// 16-bit activation rounding.
    #[test]
    fn matches_dequantized_f32() {
        if !available() {
            eprintln!("no AVX-512 VNNI here: skipped");
            return;
        }
        let (n, k, m) = (45, 96, 7);
        let mut rnd = uniform(0x1234_5678);
        let w: Vec<f32> = (0..n * k).map(|_| rnd()).collect();
        let x: Vec<f32> = (0..m * k).map(|_| rnd() * 3.0).collect();
        let dir = tempfile_bytes(&quantize_q8_0(&w));
        let q = QMatrix::new(dir, 0, n, k).unwrap();
        let wd = q.dequantize();
        let mut y = vec![1.0f32; m * (n + 3)];
        let mut s = Scratch::default();
        matmul(
            Act::A16,
            &Packed::new(&q),
            &x,
            k,
            m,
            &mut y,
            n + 3,
            true,
            &mut s,
        );
        for r in 0..m {
            for c in 0..n {
                let want: f32 = (0..k).map(|i| x[r * k + i] * wd[c * k + i]).sum::<f32>() + 1.0;
                let got = y[r * (n + 3) + c];
                // Activation rounding: ≤ half a step (max|x|/65534) per input, times |w| ≤ 1.
                assert!(
                    (got - want).abs() < 2e-3,
                    "row {r} col {c}: {got} vs {want}"
                );
            }
            // Columns past n are untouched.
            assert_eq!(y[r * (n + 3) + n..(r + 1) * (n + 3)], [1.0; 3]);
        }
    }

    /// The 8-bit path matches the F32 matmul of the dequantized weights to within the 8-bit
    /// activation rounding (half a step of the block's `max|x| / 127` per input, times `|w|`),
    /// for every tile height and row counts that leave every remainder tile.
    #[test]
    fn matches_dequantized_f32_8bit() {
        if !available() {
            eprintln!("no AVX-512 VNNI here: skipped");
            return;
        }
        let (n, k) = (45, 96);
        let mut rnd = uniform(0x1234_5678);
        let w: Vec<f32> = (0..n * k).map(|_| rnd()).collect();
        let x: Vec<f32> = (0..19 * k).map(|_| rnd() * 3.0).collect();
        let dir = tempfile_bytes(&quantize_q8_0(&w));
        let q = QMatrix::new(dir, 0, n, k).unwrap();
        let wd = q.dequantize();
        let packed = Packed::new(&q);
        let mut worst = 0f32;
        {
            for m in [1, 5, 7, 19] {
                let mut y = vec![1.0f32; m * (n + 3)];
                let mut s = Scratch::default();
                matmul(Act::A8, &packed, &x, k, m, &mut y, n + 3, true, &mut s);
                for r in 0..m {
                    let xr = &x[r * k..(r + 1) * k];
                    for c in 0..n {
                        let wr = &wd[c * k..(c + 1) * k];
                        let want: f32 = xr.iter().zip(wr).map(|(a, b)| a * b).sum::<f32>() + 1.0;
                        // Half a step of max|x|/127 per input: max|x|/254 · Σ|w| per block.
                        let tol: f32 = xr
                            .chunks_exact(BLOCK)
                            .zip(wr.chunks_exact(BLOCK))
                            .map(|(xb, wb)| {
                                let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
                                amax / 254.0 * wb.iter().map(|v| v.abs()).sum::<f32>()
                            })
                            .sum::<f32>()
                            + 1e-3;
                        let got = y[r * (n + 3) + c];
                        worst = worst.max((got - want).abs() / tol);
                        assert!(
                            (got - want).abs() <= tol,
                            "m {m}: row {r} col {c}: {got} vs {want} (tol {tol})"
                        );
                    }
                    assert_eq!(y[r * (n + 3) + n..(r + 1) * (n + 3)], [1.0; 3]);
                }
            }
        }
        eprintln!("8-bit: worst error {worst:.3} of the bound");
    }

    /// Each output row gets the same bits whether its rows run in full tiles or in the
    /// remainder tiles, so how a forward splits rows (threads, batches) never changes a score.
    #[test]
    fn rows_score_alike_in_any_tile() {
        if !available() {
            return;
        }
        let (n, k, m) = (70, 128, 23);
        let mut rnd = uniform(0x9e37_79b9);
        let w: Vec<f32> = (0..n * k).map(|_| rnd()).collect();
        let x: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
        let q = QMatrix::new(tempfile_bytes(&quantize_q8_0(&w)), 0, n, k).unwrap();
        let packed = Packed::new(&q);
        for act in [Act::A8, Act::A16] {
            let run = |rows: std::ops::Range<usize>| {
                let mut y = vec![0f32; rows.len() * n];
                let x = &x[rows.start * k..rows.end * k];
                let mut s = Scratch::default();
                matmul(act, &packed, x, k, rows.len(), &mut y, n, false, &mut s);
                y
            };
            let all = run(0..m);
            let pieces: Vec<f32> = [0..1, 1..3, 3..6, 6..10, 10..23]
                .into_iter()
                .flat_map(run)
                .collect();
            assert_eq!(all, pieces, "{act:?}");
        }
    }

    /// A reproducible stream of values in [−1, 1] (xorshift32).
    fn uniform(mut state: u32) -> impl FnMut() -> f32 {
        move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 2001) as f32 / 1000.0 - 1.0
        }
    }

    fn tempfile_bytes(bytes: &[u8]) -> std::sync::Arc<memmap2::Mmap> {
        use std::io::Write;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        // SAFETY: a private temporary file nothing else writes.
        std::sync::Arc::new(unsafe { memmap2::Mmap::map(&f).unwrap() })
    }
}
