//! A minimal GGUF (v3) reader and writer: only what kompress's model files need.
//!
//! Layout (little endian): magic `GGUF`, version, tensor count, metadata count; metadata as
//! `(key, type, value)`; tensor infos as `(name, n_dims, dims innermost first, type, offset)`;
//! padding to `general.alignment`; then the tensor data, each tensor at an aligned offset
//! from the start of the data section.
//!
//! The reader memory-maps the file and hands out byte ranges of the mapping: nothing is copied.
//! Quantized tensors are used in place by [`super::quant::QMatrix`], and other tensors as
//! typed slices of the mapping by [`Slab`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use memmap2::Mmap;

const MAGIC: &[u8; 4] = b"GGUF";
const VERSION: u32 = 3;
/// `general.alignment`'s default when a file does not say.
const DEFAULT_ALIGNMENT: usize = 32;
/// What the writer uses: a cache line, so the integer kernel's 64-byte loads of pre-packed
/// weights (see [`super::qmatmul::Packed`]) never straddle two lines.
pub const ALIGNMENT: usize = 64;

/// The ggml tensor types kompress reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorType {
    F32,
    F16,
    /// Blocks of 32 weights: an f16 scale then 32 `i8`s (34 bytes).
    Q8_0,
    I8,
    I32,
}

impl TensorType {
    fn code(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q8_0 => 8,
            Self::I8 => 24,
            Self::I32 => 26,
        }
    }

    fn from_code(code: u32) -> Result<Self> {
        Ok(match code {
            0 => Self::F32,
            1 => Self::F16,
            8 => Self::Q8_0,
            24 => Self::I8,
            26 => Self::I32,
            other => bail!("unsupported ggml tensor type {other}"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q8_0 => "Q8_0",
            Self::I8 => "I8",
            Self::I32 => "I32",
        }
    }

    /// Bytes taken by `elements` values (a multiple of the block size for Q8_0).
    pub fn byte_len(self, elements: usize) -> usize {
        match self {
            Self::F32 | Self::I32 => elements * 4,
            Self::F16 => elements * 2,
            Self::I8 => elements,
            Self::Q8_0 => elements / 32 * 34,
        }
    }
}

/// A metadata value (the subset kompress writes).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U32(u32),
    U64(u64),
    F32(f32),
    Bool(bool),
    String(String),
}

/// One tensor of a mapped file.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    /// Row-major shape, outermost first (`[out, in]` for a linear weight); GGUF stores the
    /// reverse.
    pub shape: Vec<usize>,
    pub dtype: TensorType,
    /// Absolute offset of the data in the file.
    pub offset: usize,
    pub len: usize,
}

impl TensorInfo {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A memory-mapped GGUF file.
pub struct GgufFile {
    map: Arc<Mmap>,
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: BTreeMap<String, TensorInfo>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        ensure!(
            self.pos + n <= self.bytes.len(),
            "truncated GGUF header at byte {}",
            self.pos
        );
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into()?))
    }
    fn string(&mut self) -> Result<String> {
        let len = self.u64()? as usize;
        Ok(String::from_utf8(self.take(len)?.to_vec())?)
    }
    /// Reads a value of `ty`; array and scalar types kompress does not use are skipped.
    fn value(&mut self, ty: u32) -> Result<Option<Value>> {
        Ok(match ty {
            0 | 1 | 7 => {
                let b = self.take(1)?[0];
                (ty == 7).then_some(Value::Bool(b != 0))
            }
            2 | 3 => {
                self.take(2)?;
                None
            }
            4 => Some(Value::U32(self.u32()?)),
            5 => {
                self.take(4)?;
                None
            }
            6 => Some(Value::F32(f32::from_bits(self.u32()?))),
            8 => Some(Value::String(self.string()?)),
            9 => {
                let inner = self.u32()?;
                let n = self.u64()?;
                for _ in 0..n {
                    self.value(inner)?;
                }
                None
            }
            10 => Some(Value::U64(self.u64()?)),
            11 | 12 => {
                self.take(8)?;
                None
            }
            other => bail!("unknown GGUF value type {other}"),
        })
    }
}

impl GgufFile {
    /// Maps and parses `path`; tensor data stays in the mapping.
    pub fn open(path: &Path) -> Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: kompress's own installed model file, which nothing rewrites while it is
        // mapped. Every tensor range is checked against the file length here, so a truncated
        // file is a load error; a file shrunk underneath a live mapping is the hazard every
        // mmap reader accepts.
        let map =
            unsafe { Mmap::map(&file) }.with_context(|| format!("mapping {}", path.display()))?;
        Self::parse(Arc::new(map)).with_context(|| format!("reading {}", path.display()))
    }

    fn parse(map: Arc<Mmap>) -> Result<Self> {
        let bytes: &[u8] = &map;
        let mut c = Cursor { bytes, pos: 0 };
        ensure!(c.take(4)? == MAGIC, "not a GGUF file");
        let version = c.u32()?;
        ensure!(
            version == 2 || version == 3,
            "unsupported GGUF version {version}"
        );
        let n_tensors = c.u64()? as usize;
        let n_kv = c.u64()? as usize;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string()?;
            let ty = c.u32()?;
            if let Some(v) = c.value(ty)? {
                metadata.insert(key, v);
            }
        }
        let alignment = match metadata.get("general.alignment") {
            Some(Value::U32(a)) => *a as usize,
            _ => DEFAULT_ALIGNMENT,
        };
        let mut infos = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = c.string()?;
            let n_dims = c.u32()? as usize;
            ensure!(n_dims <= 4, "{name}: {n_dims} dimensions");
            let mut shape = (0..n_dims)
                .map(|_| c.u64().map(|d| d as usize))
                .collect::<Result<Vec<_>>>()?;
            shape.reverse();
            let dtype = TensorType::from_code(c.u32()?)?;
            let offset = c.u64()? as usize;
            infos.push((name, shape, dtype, offset));
        }
        let data_start = c.pos.div_ceil(alignment) * alignment;
        let mut tensors = BTreeMap::new();
        for (name, shape, dtype, offset) in infos {
            let elements: usize = shape.iter().product();
            if dtype == TensorType::Q8_0 {
                ensure!(
                    shape.last().is_some_and(|d| d % 32 == 0),
                    "{name}: Q8_0 rows must be a multiple of 32"
                );
            }
            let len = dtype.byte_len(elements);
            let offset = data_start + offset;
            ensure!(
                offset + len <= bytes.len(),
                "{name}: data past the end of the file"
            );
            tensors.insert(
                name,
                TensorInfo {
                    shape,
                    dtype,
                    offset,
                    len,
                },
            );
        }
        Ok(Self {
            map,
            version,
            metadata,
            tensors,
        })
    }

    /// The whole mapping (shared with every [`super::quant::QMatrix`] made from it).
    pub fn mapping(&self) -> &Arc<Mmap> {
        &self.map
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    /// The bytes of a tensor, in the mapping.
    pub fn data(&self, info: &TensorInfo) -> &[u8] {
        &self.map[info.offset..info.offset + info.len]
    }

    pub fn file_len(&self) -> usize {
        self.map.len()
    }

    /// Tensor `name` as a slice of `T` in place, or `None` if the file has no such tensor.
    /// An error if it is there with another type or a misaligned offset.
    pub fn slab<T: bytemuck::Pod>(&self, name: &str, dtype: TensorType) -> Result<Option<Slab<T>>> {
        let Some(info) = self.tensor(name) else {
            return Ok(None);
        };
        ensure!(
            info.dtype == dtype,
            "{name}: {}, expected {}",
            info.dtype.name(),
            dtype.name()
        );
        // Checks both the offset's alignment and the length for `T`.
        bytemuck::try_cast_slice::<u8, T>(self.data(info))
            .map_err(|e| anyhow::anyhow!("{name}: {e:?} at file offset {}", info.offset))?;
        let slab = Slab::Mapped {
            map: self.map.clone(),
            offset: info.offset,
            len: info.len / size_of::<T>(),
            _t: std::marker::PhantomData,
        };
        Ok(Some(slab))
    }
}

/// Values computed at run time, or a tensor of a mapped file used in place (checked for
/// alignment and length when made by [`GgufFile::slab`]).
#[derive(Clone)]
pub enum Slab<T> {
    Owned(Vec<T>),
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        /// In values of `T`.
        len: usize,
        _t: std::marker::PhantomData<T>,
    },
}

impl<T: bytemuck::Pod> std::ops::Deref for Slab<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Self::Owned(v) => v,
            Self::Mapped {
                map, offset, len, ..
            } => bytemuck::cast_slice(&map[*offset..*offset + len * size_of::<T>()]),
        }
    }
}

impl<T> Slab<T> {
    /// Whether the values are pages of the mapped file (shared between processes).
    pub fn is_mapped(&self) -> bool {
        matches!(self, Self::Mapped { .. })
    }
}

/// A tensor to write: row-major shape (outermost first) and its encoded bytes.
pub struct WriteTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: TensorType,
    pub data: Vec<u8>,
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Writes a GGUF v3 file with `general.alignment` = [`ALIGNMENT`].
pub fn write(path: &Path, metadata: &[(&str, Value)], tensors: &[WriteTensor]) -> Result<()> {
    let mut head = Vec::new();
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    head.extend_from_slice(&(metadata.len() as u64 + 1).to_le_bytes());
    put_string(&mut head, "general.alignment");
    head.extend_from_slice(&4u32.to_le_bytes());
    head.extend_from_slice(&(ALIGNMENT as u32).to_le_bytes());
    for (key, value) in metadata {
        put_string(&mut head, key);
        match value {
            Value::U32(v) => {
                head.extend_from_slice(&4u32.to_le_bytes());
                head.extend_from_slice(&v.to_le_bytes());
            }
            Value::U64(v) => {
                head.extend_from_slice(&10u32.to_le_bytes());
                head.extend_from_slice(&v.to_le_bytes());
            }
            Value::F32(v) => {
                head.extend_from_slice(&6u32.to_le_bytes());
                head.extend_from_slice(&v.to_le_bytes());
            }
            Value::Bool(v) => {
                head.extend_from_slice(&7u32.to_le_bytes());
                head.push(*v as u8);
            }
            Value::String(s) => {
                head.extend_from_slice(&8u32.to_le_bytes());
                put_string(&mut head, s);
            }
        }
    }
    let mut offset = 0usize;
    for t in tensors {
        ensure!(
            t.data.len() == t.dtype.byte_len(t.shape.iter().product()),
            "{}: {} bytes for shape {:?} {}",
            t.name,
            t.data.len(),
            t.shape,
            t.dtype.name()
        );
        put_string(&mut head, &t.name);
        head.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
        for d in t.shape.iter().rev() {
            head.extend_from_slice(&(*d as u64).to_le_bytes());
        }
        head.extend_from_slice(&t.dtype.code().to_le_bytes());
        head.extend_from_slice(&(offset as u64).to_le_bytes());
        offset = (offset + t.data.len()).div_ceil(ALIGNMENT) * ALIGNMENT;
    }
    head.resize(head.len().div_ceil(ALIGNMENT) * ALIGNMENT, 0);
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    w.write_all(&head)?;
    for t in tensors {
        w.write_all(&t.data)?;
        let pad = t.data.len().div_ceil(ALIGNMENT) * ALIGNMENT - t.data.len();
        w.write_all(&[0u8; ALIGNMENT][..pad])?;
    }
    w.flush()?;
    Ok(())
}
