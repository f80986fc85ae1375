//! Where a model's weights come from, and the linear and embedding layers that may be
//! quantized.
//!
//! [`Weights`] is either a candle [`VarBuilder`] (F32 safetensors: training, parity tests) or a
//! memory-mapped GGUF file ([`GgufFile`]) whose Q8_0 matrices become [`QMatrix`]es used in
//! place; its F32 tensors (norms, biases, small heads) are copied into candle tensors (a few KB).
//! [`Lin`] and [`Emb`] hide the difference from `modernbert.rs`.
//!
//! A GGUF file can instead be loaded *onto a device* ([`Weights::open_gguf_on`]): every tensor
//! is dequantized to F32 and placed there, for the candle forward on CUDA (`--device cuda`).

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Shape, Storage, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::gguf::{GgufFile, TensorInfo, TensorType};
use super::qmatmul::Packed;
use super::quant::QMatrix;

/// A source of named weights, positioned at a prefix (like [`VarBuilder::pp`]).
#[derive(Clone)]
pub enum Weights<'a> {
    Vb(VarBuilder<'a>),
    /// `on`: `None` keeps Q8_0 matrices in place on the CPU (the fast forward); `Some(d)`
    /// dequantizes every tensor to F32 on `d` (the candle forward).
    Gguf {
        file: Arc<GgufFile>,
        prefix: String,
        on: Option<Device>,
    },
}

impl<'a> From<VarBuilder<'a>> for Weights<'a> {
    fn from(vb: VarBuilder<'a>) -> Self {
        Self::Vb(vb)
    }
}

impl From<Arc<GgufFile>> for Weights<'static> {
    fn from(file: Arc<GgufFile>) -> Self {
        Self::Gguf {
            file,
            prefix: String::new(),
            on: None,
        }
    }
}

impl Weights<'static> {
    /// Maps a GGUF model file.
    pub fn open_gguf(path: &Path) -> anyhow::Result<Self> {
        Self::open_gguf_on(path, None)
    }

    /// Maps a GGUF model file for `device` (see [`Weights::Gguf`]).
    pub fn open_gguf_on(path: &Path, device: Option<&Device>) -> anyhow::Result<Self> {
        Ok(Self::Gguf {
            file: Arc::new(GgufFile::open(path)?),
            prefix: String::new(),
            on: device.cloned(),
        })
    }
}

fn err(msg: String) -> candle_core::Error {
    candle_core::Error::Msg(msg)
}

impl<'a> Weights<'a> {
    pub fn pp<S: ToString>(&self, s: S) -> Self {
        match self {
            Self::Vb(vb) => Self::Vb(vb.pp(s)),
            Self::Gguf { file, prefix, on } => Self::Gguf {
                file: file.clone(),
                prefix: join(prefix, &s.to_string()),
                on: on.clone(),
            },
        }
    }

    pub fn prefix(&self) -> String {
        match self {
            Self::Vb(vb) => vb.prefix(),
            Self::Gguf { prefix, .. } => prefix.clone(),
        }
    }

    pub fn device(&self) -> Device {
        match self {
            Self::Vb(vb) => vb.device().clone(),
            Self::Gguf { on, .. } => on.clone().unwrap_or(Device::Cpu),
        }
    }

    /// Whether the layers built from these weights can run the fast CPU forward: CPU
    /// tensors, and Q8_0 matrices (if any) kept in place.
    pub fn runs_fast(&self) -> bool {
        match self {
            Self::Vb(vb) => vb.device().is_cpu(),
            Self::Gguf { on, .. } => on.is_none(),
        }
    }

    pub fn contains_tensor(&self, name: &str) -> bool {
        match self {
            Self::Vb(vb) => vb.contains_tensor(name),
            Self::Gguf { file, prefix, .. } => file.tensor(&join(prefix, name)).is_some(),
        }
    }

    fn info(&self, name: &str) -> Result<(&GgufFile, &TensorInfo, String)> {
        let Self::Gguf { file, prefix, .. } = self else {
            unreachable!("info on a VarBuilder")
        };
        let full = join(prefix, name);
        let info = file
            .tensor(&full)
            .ok_or_else(|| err(format!("cannot find tensor {full}")))?;
        Ok((file, info, full))
    }

    /// An F32 tensor of any shape (dequantized if stored as Q8_0).
    pub fn get_unchecked(&self, name: &str) -> Result<Tensor> {
        match self {
            Self::Vb(vb) => vb.get_unchecked(name),
            Self::Gguf { .. } => {
                let (file, info, full) = self.info(name)?;
                let data = file.data(info);
                let values: Vec<f32> = match info.dtype {
                    TensorType::F32 => data
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                    TensorType::F16 => data
                        .chunks_exact(2)
                        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                        .collect(),
                    TensorType::Q8_0 => {
                        let mut out = vec![0f32; info.elements()];
                        super::quant::dequantize_q8_0(data, &mut out);
                        out
                    }
                    TensorType::I8 | TensorType::I32 => {
                        return Err(err(format!(
                            "{full}: {} is not a weight",
                            info.dtype.name()
                        )));
                    }
                };
                Tensor::from_vec(values, info.shape.clone(), &self.device())
                    .map_err(|e| err(format!("{full}: {e}")))
            }
        }
    }

    /// An F32 tensor of the given shape.
    pub fn get<S: Into<Shape>>(&self, shape: S, name: &str) -> Result<Tensor> {
        let shape = shape.into();
        match self {
            Self::Vb(vb) => vb.get(shape, name),
            Self::Gguf { prefix, .. } => {
                let t = self.get_unchecked(name)?;
                if t.shape() != &shape {
                    return Err(err(format!(
                        "{}: shape {:?}, expected {shape:?}",
                        join(prefix, name),
                        t.shape()
                    )));
                }
                Ok(t)
            }
        }
    }

    /// A Q8_0 matrix in place, or `None` when the tensor is stored otherwise or is to be
    /// dequantized onto a device.
    fn qmatrix(&self, rows: usize, cols: usize, name: &str) -> Result<Option<QMatrix>> {
        let Self::Gguf { on: None, .. } = self else {
            return Ok(None);
        };
        let (file, info, full) = self.info(name)?;
        if info.dtype != TensorType::Q8_0 {
            return Ok(None);
        }
        if info.shape != [rows, cols] {
            return Err(err(format!(
                "{full}: shape {:?}, expected [{rows}, {cols}]",
                info.shape
            )));
        }
        QMatrix::new(file.mapping().clone(), info.offset, rows, cols)
            .map(Some)
            .map_err(|e| err(format!("{full}: {e}")))
    }

    /// The integer kernel's pre-packed form of Q8_0 matrix `w` (tensor `name`), if the file
    /// has one (see [`Packed::from_file`]).
    fn packed(&self, w: &QMatrix, name: &str) -> Result<Option<Packed>> {
        let (file, _, full) = self.info(name)?;
        Packed::from_file(file, &full, w.rows, w.cols).map_err(|e| err(format!("{e:#}")))
    }

    /// A linear layer `in_dim → out_dim` (weight `[out, in]`), with a `bias` if asked.
    pub fn linear(&self, in_dim: usize, out_dim: usize, bias: bool) -> Result<Lin> {
        let b = if bias {
            Some(self.get(out_dim, "bias")?)
        } else {
            None
        };
        // KOMPRESS_DEQUANT (diagnostics): dequantize Q8_0 weights to candle F32 linears, to
        // separate weight rounding from the in-place kernel.
        Ok(match self.qmatrix(out_dim, in_dim, "weight")? {
            Some(w) if std::env::var_os("KOMPRESS_DEQUANT").is_some() => Lin::F32(Linear::new(
                Tensor::from_vec(w.dequantize(), (out_dim, in_dim), &Device::Cpu)?,
                b,
            )),
            Some(w) => Lin::Q8 {
                packed: self.packed(&w, "weight")?,
                w,
                bias: b,
            },
            None => Lin::F32(Linear::new(self.get((out_dim, in_dim), "weight")?, b)),
        })
    }

    /// An embedding table `[vocab, hidden]`.
    pub fn embedding(&self, vocab: usize, hidden: usize) -> Result<Emb> {
        Ok(match self.qmatrix(vocab, hidden, "weight")? {
            Some(w) => Emb::Q8(w),
            None => Emb::F32(Embedding::new(self.get((vocab, hidden), "weight")?, hidden)),
        })
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Runs `f` on the F32 data of a contiguous CPU tensor without copying it.
fn with_f32<R>(xs: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let xs = if xs.dtype() == DType::F32 {
        xs.contiguous()?
    } else {
        xs.to_dtype(DType::F32)?.contiguous()?
    };
    let (storage, layout) = xs.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => {
            let data = cpu.as_slice::<f32>()?;
            let start = layout.start_offset();
            Ok(f(&data[start..start + xs.elem_count()]))
        }
        _ => Err(err("quantized layers run on the CPU only".into())),
    }
}

/// A linear layer with F32 (candle) or Q8_0 (mapped) weights.
#[derive(Clone, Debug)]
pub enum Lin {
    F32(Linear),
    /// `packed`: the integer kernel's layout of `w`, when the file has it.
    Q8 {
        w: QMatrix,
        bias: Option<Tensor>,
        packed: Option<Packed>,
    },
}

impl Module for Lin {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(l) => l.forward(xs),
            Self::Q8 { w, bias, .. } => {
                let dims = xs.dims();
                let last = *dims.last().unwrap_or(&0);
                if last != w.cols {
                    return Err(err(format!("input width {last}, weight {:?}", w)));
                }
                let m = xs.elem_count() / last.max(1);
                let y = with_f32(xs, |x| w.matmul_t(x, m))?;
                let mut out_dims = dims.to_vec();
                *out_dims.last_mut().expect("at least 1-d") = w.rows;
                let y = Tensor::from_vec(y, out_dims, xs.device())?;
                match bias {
                    Some(b) => y.broadcast_add(b),
                    None => Ok(y),
                }
            }
        }
    }
}

/// A token embedding with F32 (candle) or Q8_0 (mapped) weights.
#[derive(Clone, Debug)]
pub enum Emb {
    F32(Embedding),
    Q8(QMatrix),
}

impl Module for Emb {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(e) => e.forward(ids),
            Self::Q8(w) => {
                let flat: Vec<u32> = ids.flatten_all()?.to_dtype(DType::U32)?.to_vec1()?;
                let rows = w.gather(&flat).map_err(|e| err(e.to_string()))?;
                let mut dims = ids.dims().to_vec();
                dims.push(w.cols);
                Tensor::from_vec(rows, dims, ids.device())
            }
        }
    }
}
