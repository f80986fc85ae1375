//! Q8_0 weights used in place from a memory-mapped GGUF file.
//!
//! Q8_0 (ggml's format): each row is cut into blocks of 32 weights, stored as an f16 scale `d`
//! followed by 32 `i8`s `q`; the weight is `d · q`. A [`QMatrix`] keeps only an `Arc` of the
//! mapping and an offset: the blocks are never copied to the heap.
//!
//! The matmul dequantizes a panel of [`PANEL`] output rows at a time into a small scratch
//! buffer (at most `PANEL × in` floats, L2-sized) and multiplies every input row by it with the
//! `gemm` crate's F32 micro-kernels (the ones candle uses). Dequantizing costs `out × in`
//! conversions per call against `tokens × out × in` multiply-adds, so it is amortised over the
//! 512-token chunks the scorer runs. Panels are split over the cores with `std::thread::scope`.

use std::sync::Arc;

use anyhow::{Result, ensure};
use half::f16;
use memmap2::Mmap;

/// Weights per block.
pub const BLOCK: usize = 32;
/// Bytes per block: f16 scale + 32 `i8`.
pub const BLOCK_BYTES: usize = 34;
/// Output rows dequantized at once.
const PANEL: usize = 64;

/// Quantizes `values` (a multiple of 32 long) to Q8_0 blocks, as ggml does
/// (`d = max|x| / 127`, `q = round(x / d)`).
pub fn quantize_q8_0(values: &[f32]) -> Vec<u8> {
    assert!(values.len().is_multiple_of(BLOCK));
    let mut out = Vec::with_capacity(values.len() / BLOCK * BLOCK_BYTES);
    for block in values.chunks_exact(BLOCK) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d == 0.0 { 0.0 } else { 1.0 / d };
        out.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
        out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
    }
    out
}

/// Dequantizes Q8_0 `blocks` into `out` (32 values per block).
#[inline]
pub fn dequantize_q8_0(blocks: &[u8], out: &mut [f32]) {
    debug_assert_eq!(blocks.len() / BLOCK_BYTES * BLOCK, out.len());
    for (b, o) in blocks
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(BLOCK))
    {
        let d = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
        for (o, q) in o.iter_mut().zip(&b[2..BLOCK_BYTES]) {
            *o = d * (*q as i8) as f32;
        }
    }
}

/// A `(rows, cols)` Q8_0 matrix in a mapped file: a linear weight `[out, in]` or an
/// embedding table `[vocab, hidden]`.
#[derive(Clone)]
pub struct QMatrix {
    map: Arc<Mmap>,
    offset: usize,
    pub rows: usize,
    pub cols: usize,
}

impl std::fmt::Debug for QMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QMatrix({}x{} Q8_0)", self.rows, self.cols)
    }
}

impl QMatrix {
    pub fn new(map: Arc<Mmap>, offset: usize, rows: usize, cols: usize) -> Result<Self> {
        ensure!(cols.is_multiple_of(BLOCK), "Q8_0 row length {cols}");
        ensure!(offset + rows * cols / BLOCK * BLOCK_BYTES <= map.len());
        Ok(Self {
            map,
            offset,
            rows,
            cols,
        })
    }

    fn row_bytes(&self) -> usize {
        self.cols / BLOCK * BLOCK_BYTES
    }

    /// All blocks, in the mapping.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.rows_bytes(0, self.rows)
    }

    /// The blocks of rows `start..end`, in the mapping.
    fn rows_bytes(&self, start: usize, end: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.map[self.offset + start * rb..self.offset + end * rb]
    }

    /// Dequantized rows `ids` (an embedding lookup), `ids.len() × cols`.
    pub fn gather(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut out = vec![0f32; ids.len() * self.cols];
        for (id, o) in ids.iter().zip(out.chunks_exact_mut(self.cols)) {
            let id = *id as usize;
            ensure!(id < self.rows, "token id {id} out of range {}", self.rows);
            dequantize_q8_0(self.rows_bytes(id, id + 1), o);
        }
        Ok(out)
    }

    /// Rows `start..end` dequantized into `out` (`(end − start) × cols` floats).
    pub fn dequantize_rows(&self, start: usize, end: usize, out: &mut [f32]) {
        assert!(start <= end && end <= self.rows && out.len() == (end - start) * self.cols);
        dequantize_q8_0(self.rows_bytes(start, end), out);
    }

    /// Drops this matrix's pages of the mapping from the process (`MADV_DONTNEED`), for when
    /// a copy is in use instead (the integer kernel's repacked weights): without this, a
    /// process that packed every matrix holds each weight twice, as a mapped file page and
    /// in the packed copy (+110 MB RSS for a 22-layer base model). The pages stay in the page
    /// cache, and any later read of the matrix faults them back in unchanged.
    pub fn release_pages(&self) {
        #[cfg(unix)]
        {
            let len = self.rows * self.row_bytes();
            // SAFETY: the mapping is a read-only map of a file, so dropping its pages loses
            // nothing: the next access re-reads the same bytes from the page cache, even for
            // a reader holding a slice into the range while this runs.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    self.offset,
                    len,
                )
            };
        }
    }

    /// All rows dequantized (tests and F32 comparisons only).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        dequantize_q8_0(self.rows_bytes(0, self.rows), &mut out);
        out
    }

    /// `y = x · Wᵀ`: `x` is `m × cols` row-major, the result `m × rows`.
    pub fn matmul_t(&self, x: &[f32], m: usize) -> Vec<f32> {
        assert_eq!(x.len(), m * self.cols);
        let n = self.rows;
        let mut y = vec![0f32; m * n];
        let panels = n.div_ceil(PANEL);
        let threads = threads().min(panels).max(1);
        // Each thread takes a contiguous range of panels and writes only its own columns of
        // `y`; the pointer is passed as usize because raw pointers are not Send.
        let y_ptr = y.as_mut_ptr() as usize;
        let run = |p0: usize, p1: usize| {
            let mut scratch = vec![0f32; PANEL * self.cols];
            for p in p0..p1 {
                let (r0, r1) = (p * PANEL, ((p + 1) * PANEL).min(n));
                let w = &mut scratch[..(r1 - r0) * self.cols];
                dequantize_q8_0(self.rows_bytes(r0, r1), w);
                // SAFETY: x is m×cols, w is (r1−r0)×cols, and the destination block
                // y[.., r0..r1] lies inside y (m×n) and belongs to this thread alone.
                unsafe {
                    gemm::gemm(
                        m,
                        r1 - r0,
                        self.cols,
                        (y_ptr as *mut f32).add(r0),
                        1,
                        n as isize,
                        false,
                        x.as_ptr(),
                        1,
                        self.cols as isize,
                        w.as_ptr(),
                        self.cols as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
        };
        if threads == 1 {
            run(0, panels);
        } else {
            std::thread::scope(|s| {
                let per = panels.div_ceil(threads);
                for t in 1..threads {
                    let (p0, p1) = ((t * per).min(panels), ((t + 1) * per).min(panels));
                    s.spawn(move || run(p0, p1));
                }
                run(0, per.min(panels));
            });
        }
        y
    }
}

/// Worker threads for the matmul: `KOMPRESS_THREADS`, else the available cores.
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("KOMPRESS_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_round_trips_within_half_a_step() {
        let values: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 32.0) / 7.0)
            .collect();
        let blocks = quantize_q8_0(&values);
        assert_eq!(blocks.len(), 2 * BLOCK_BYTES);
        let mut back = vec![0f32; 64];
        dequantize_q8_0(&blocks, &mut back);
        for (block, back) in values.chunks(32).zip(back.chunks(32)) {
            let step = block.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (v, b) in block.iter().zip(back) {
                // Half a step, plus the f16 rounding of the scale (2⁻¹¹ relative) times |q| ≤ 127.
                assert!((v - b).abs() <= step * (0.5 + 127.0 / 2048.0), "{v} vs {b}");
            }
        }
    }
}
