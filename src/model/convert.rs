//! `kompress model convert` and `kompress model info`.
//!
//! `convert` turns a Hugging Face checkpoint directory (`config.json`, `model.safetensors`,
//! `tokenizer.json`) into the directory kompress loads: `config.json` and `tokenizer.json`
//! copied, `tokenizer.ktok` compiled ([`super::tokenizer::compile_file`]) and
//! `model.q8_0.gguf`: the big matrices (embeddings, `Wqkv`, `Wo`, `Wi`, `head.dense`) as Q8_0,
//! the linear ones also pre-packed for the integer kernel ([`super::qmatmul::Packed`]);
//! norms, biases, small heads and convolutions as F32.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use serde_json::json;

use super::gguf::{self, GgufFile, TensorType, Value, WriteTensor};
use super::modernbert::Config;
use super::qmatmul::{self, Packed};
use super::quant::{BLOCK, quantize_q8_0};
use super::tokenizer::{COMPILED_FILE, compile_file};
use super::{GGUF_FILE, SAFETENSORS_FILE};

/// Smallest matrix worth quantizing; smaller ones (classifier rows) stay F32.
const MIN_QUANT_ELEMENTS: usize = 4096;

/// Whether a tensor is stored as Q8_0.
pub fn quantizes(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2
        && shape[1].is_multiple_of(BLOCK)
        && shape[0] * shape[1] >= MIN_QUANT_ELEMENTS
        && name.ends_with(".weight")
        && !name.contains("norm")
        && !name.starts_with("classifier")
        && !name.starts_with("token_head")
}

/// Whether a Q8_0 tensor also gets the integer kernel's pre-packed form: every linear
/// weight; not the embedding table, which is only gathered from, row by row.
fn packs(name: &str) -> bool {
    !name.contains("embeddings")
}

/// Quantizes `tensors` (F32 values by name) as [`quantizes`] says.
fn encode(tensors: &BTreeMap<String, Tensor>) -> Result<Vec<WriteTensor>> {
    let mut out = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let shape = t.dims().to_vec();
        let values: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let (dtype, data) = if quantizes(name, &shape) {
            (TensorType::Q8_0, quantize_q8_0(&values))
        } else {
            (
                TensorType::F32,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        };
        out.push(WriteTensor {
            name: name.clone(),
            shape,
            dtype,
            data,
        });
    }
    Ok(out)
}

/// What [`write_gguf`] wrote, by kind of tensor.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub q8_0: usize,
    pub f32: usize,
    /// Q8_0 matrices stored pre-packed as well.
    pub packed: usize,
}

/// Writes the model's GGUF file: `tensors` as given, plus the pre-packed form of each Q8_0
/// linear weight ([`Packed::tensors`]), so the integer kernel uses the mapped file in place
/// instead of repacking in every process. Written to a temporary name and renamed, so a
/// process that has the old file mapped keeps its pages.
pub fn write_gguf(path: &Path, cfg_json: &str, mut tensors: Vec<WriteTensor>) -> Result<Written> {
    let mut written = Written::default();
    let mut extra = Vec::new();
    for t in &tensors {
        match t.dtype {
            TensorType::Q8_0 => {
                written.q8_0 += 1;
                if packs(&t.name) {
                    let [rows, cols] = t.shape[..] else {
                        bail!("{}: Q8_0 tensor of shape {:?}", t.name, t.shape);
                    };
                    extra.extend(Packed::from_q8_0(&t.data, rows, cols).tensors(&t.name));
                    written.packed += 1;
                }
            }
            _ => written.f32 += 1,
        }
    }
    tensors.extend(extra);
    let tmp = path.with_extension("gguf.tmp");
    gguf::write(
        &tmp,
        &[
            ("general.architecture", Value::String("modernbert".into())),
            ("general.file_type", Value::U32(7)), // ggml's MOSTLY_Q8_0
            ("kompress.config_json", Value::String(cfg_json.into())),
            (qmatmul::LAYOUT_KEY, Value::String(qmatmul::LAYOUT.into())),
        ],
        &tensors,
    )?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(written)
}

/// The tensors of an existing kompress GGUF file, bytes unchanged, without any pre-packed
/// ones (they are derived again): what an older convert wrote.
pub fn read_gguf_tensors(path: &Path) -> Result<Vec<WriteTensor>> {
    let file = GgufFile::open(path)?;
    Ok(file
        .tensors
        .iter()
        .filter(|(name, _)| !Packed::is_packed_tensor(name))
        .map(|(name, info)| WriteTensor {
            name: name.clone(),
            shape: info.shape.clone(),
            dtype: info.dtype,
            data: file.data(info).to_vec(),
        })
        .collect())
}

/// `kompress model convert IN_DIR OUT_DIR`. `IN_DIR` is a Hugging Face checkpoint directory,
/// or a kompress model directory (a `model.q8_0.gguf` and no `model.safetensors`), whose
/// tensors are then kept byte for byte and written again in the current layout (the
/// pre-packed tensors added). `OUT_DIR` may be `IN_DIR`.
pub fn convert(in_dir: &Path, out_dir: &Path) -> Result<String> {
    let start = Instant::now();
    let cfg_path = in_dir.join("config.json");
    let cfg_json = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("reading {}", cfg_path.display()))?;
    Config::from_json(&cfg_json).with_context(|| format!("parsing {}", cfg_path.display()))?;
    let st = in_dir.join(SAFETENSORS_FILE);
    let (tensors, source) = if st.is_file() || !in_dir.join(GGUF_FILE).is_file() {
        let tensors: BTreeMap<String, Tensor> = candle_core::safetensors::load(&st, &Device::Cpu)
            .with_context(|| format!("reading {}", st.display()))?
            .into_iter()
            .collect();
        (encode(&tensors)?, "quantized from")
    } else {
        (read_gguf_tensors(&in_dir.join(GGUF_FILE))?, "repacked from")
    };
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let same_dir = in_dir.canonicalize()? == out_dir.canonicalize()?;
    // A checkpoint without a tokenizer (test fixtures) converts; loading it for scoring then
    // needs one copied in.
    let tok = in_dir.join("tokenizer.json");
    let tok_note = if same_dir {
        "config and tokenizer left in place".to_string()
    } else {
        std::fs::write(out_dir.join("config.json"), &cfg_json)?;
        if tok.is_file() {
            std::fs::copy(&tok, out_dir.join("tokenizer.json"))?;
            compile_file(&tok, &out_dir.join(COMPILED_FILE))?;
            format!("config.json, tokenizer.json, {COMPILED_FILE}")
        } else {
            "config.json (no tokenizer.json in the checkpoint)".to_string()
        }
    };
    let gguf_path = out_dir.join(GGUF_FILE);
    let w = write_gguf(&gguf_path, &cfg_json, tensors)?;
    let size = std::fs::metadata(&gguf_path)?.len();
    Ok(format!(
        "wrote {} ({source} {}; {:.1} MiB: {} Q8_0 + {} F32 tensors, {} Q8_0 pre-packed), {tok_note} in {:.2} s",
        gguf_path.display(),
        in_dir.display(),
        size as f64 / (1 << 20) as f64,
        w.q8_0,
        w.f32,
        w.packed,
        start.elapsed().as_secs_f64()
    ))
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// `kompress model info`: a JSON description of a model directory.
pub fn info(dir: &Path) -> Result<serde_json::Value> {
    let cfg = Config::from_file(&dir.join("config.json"))?;
    let gguf_path = dir.join(GGUF_FILE);
    let mut weights = json!(null);
    if gguf_path.is_file() {
        let t0 = Instant::now();
        let file = GgufFile::open(&gguf_path)?;
        let map_ms = t0.elapsed().as_secs_f64() * 1e3;
        let mut types: BTreeMap<&str, usize> = BTreeMap::new();
        let (mut params, mut n_tensors, mut prepacked) = (0usize, 0usize, 0usize);
        for (name, t) in &file.tensors {
            if Packed::is_packed_tensor(name) {
                continue;
            }
            n_tensors += 1;
            *types.entry(t.dtype.name()).or_default() += 1;
            params += t.elements();
            if let [rows, cols] = t.shape[..]
                && t.dtype == TensorType::Q8_0
                && Packed::from_file(&file, name, rows, cols)?.is_some()
            {
                prepacked += 1;
            }
        }
        let layout = match file.metadata.get(qmatmul::LAYOUT_KEY) {
            Some(Value::String(l)) => json!(l),
            _ => json!(null),
        };
        drop(file);
        let t0 = Instant::now();
        let scorer = super::words::ModelScorer::load_weights(
            dir,
            &gguf_path,
            Box::new(super::tokenizer::Tokenizer::from_model_dir(dir)?),
            None,
        )?;
        let load_ms = t0.elapsed().as_secs_f64() * 1e3;
        drop(scorer);
        weights = json!({
            "file": GGUF_FILE,
            "bytes": file_size(&gguf_path),
            "tensors": n_tensors,
            "types": types,
            "parameters": params,
            "prepacked": prepacked,
            "packed_layout": layout,
            "map_ms": map_ms,
            "load_ms": load_ms,
        });
    }
    let head = if weights.is_null() {
        "unknown"
    } else {
        let file = GgufFile::open(&gguf_path)?;
        if file.tensor("token_head.weight").is_some() {
            "kompress dual"
        } else {
            "token classification"
        }
    };
    let lines_path = dir.join(crate::scorer::LINES_FILE);
    let lines = match std::fs::read(&lines_path) {
        Err(_) => json!(null),
        Ok(bytes) => match super::forest::Forest::from_packed(&bytes, crate::select::features::NAMES) {
            Ok(f) => json!({
                "file": crate::scorer::LINES_FILE,
                "bytes": bytes.len(),
                "trees": f.trees(),
                "prices": f.prices,
                "train_repos": f.meta["train_repos"],
                "calibration_repos": f.meta["calibration_repos"],
            }),
            Err(e) => json!({ "file": crate::scorer::LINES_FILE, "error": format!("{e:#}") }),
        },
    };
    Ok(json!({
        "dir": dir.display().to_string(),
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "intermediate_size": cfg.intermediate_size,
        "vocab_size": cfg.vocab_size,
        "local_attention": cfg.local_attention,
        "max_position_embeddings": cfg.max_position_embeddings,
        "num_labels": cfg.num_labels(),
        "head": head,
        "gguf": weights,
        "safetensors_bytes": file_size(&dir.join(SAFETENSORS_FILE)),
        "tokenizer_ktok_bytes": file_size(&dir.join(COMPILED_FILE)),
        "lines": lines,
    }))
}

/// `info` as text.
pub fn info_text(v: &serde_json::Value) -> String {
    let mut s = format!(
        "model dir   {}\nconfig      hidden {} · layers {} · heads {} · intermediate {} · vocab {} · \
         window {} · head {}\n",
        v["dir"].as_str().unwrap_or(""),
        v["hidden_size"],
        v["num_hidden_layers"],
        v["num_attention_heads"],
        v["intermediate_size"],
        v["vocab_size"],
        v["local_attention"],
        v["head"].as_str().unwrap_or(""),
    );
    let g = &v["gguf"];
    if g.is_null() {
        s.push_str("weights     no model.q8_0.gguf\n");
    } else {
        s.push_str(&format!(
            "weights     {} · {:.1} MiB · {} tensors {} · {:.2}M parameters · {} Q8_0 pre-packed\nload        mmap+parse {:.2} ms · full model {:.2} ms\n",
            GGUF_FILE,
            g["bytes"].as_f64().unwrap_or(0.0) / (1 << 20) as f64,
            g["tensors"],
            g["types"],
            g["parameters"].as_f64().unwrap_or(0.0) / 1e6,
            g["prepacked"],
            g["map_ms"].as_f64().unwrap_or(0.0),
            g["load_ms"].as_f64().unwrap_or(0.0),
        ));
    }
    if let Some(b) = v["safetensors_bytes"].as_f64() {
        s.push_str(&format!(
            "safetensors {SAFETENSORS_FILE} · {:.1} MiB\n",
            b / (1 << 20) as f64
        ));
    }
    if let Some(b) = v["tokenizer_ktok_bytes"].as_f64() {
        s.push_str(&format!(
            "tokenizer   {COMPILED_FILE} · {:.1} MiB\n",
            b / (1 << 20) as f64
        ));
    }
    let l = &v["lines"];
    if l.is_null() {
        s.push_str("line model  none (no lines.bin): no whole lines are dropped\n");
    } else if let Some(e) = l["error"].as_str() {
        s.push_str(&format!("line model  unusable: {e}\n"));
    } else {
        let prices: Vec<String> = l["prices"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
            .unwrap_or_default();
        s.push_str(&format!(
            "line model  {} · {} trees · {:.0} KB · prices {}\n",
            l["file"].as_str().unwrap_or(""),
            l["trees"],
            l["bytes"].as_f64().unwrap_or(0.0) / 1e3,
            prices.join(", ")
        ));
    }
    s
}

/// `kompress model …`.
#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Turn a Hugging Face checkpoint directory (config.json, model.safetensors,
    /// tokenizer.json) into a kompress model directory (model.q8_0.gguf, tokenizer.ktok, …).
    /// Given a kompress model directory instead, rewrite its GGUF file in the current layout
    /// (weights unchanged); OUT_DIR may be the same directory.
    Convert {
        hf_dir: std::path::PathBuf,
        out_dir: std::path::PathBuf,
    },
    /// Describe a model directory (default: the one kompress would load).
    Info {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The model directory (else KOMPRESS_MODEL, the data dir, the repository's model/).
        #[arg(long, value_name = "DIR")]
        model: Option<std::path::PathBuf>,
    },
    /// Print the share of output lines the agent used later, per kind of command, under
    /// the label rules in force and the alternatives (horizon, what counts as known).
    LabelStats {
        /// Whole agent trajectories (`.jsonl` or `.jsonl.gz`).
        #[arg(long, value_name = "FILE")]
        trajectories: std::path::PathBuf,
    },
    /// Pack a line model trained by `training/line_model.py` (JSON) into the file kompress
    /// loads (`lines.bin` of a model directory).
    PackLines {
        /// The trained forest (`training/runs/lines/lines.json`).
        #[arg(long, value_name = "FILE")]
        from: std::path::PathBuf,
        /// Where to write the packed file.
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
    },
    /// Write the line model's training data: features and use labels of every line of a
    /// trajectories file's step outputs (see `training/line_model.py`).
    LineData {
        /// Whole agent trajectories (`.jsonl` or `.jsonl.gz`).
        #[arg(long, value_name = "FILE")]
        trajectories: std::path::PathBuf,
        /// Where to write the JSON Lines.
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
    },
}

/// Runs a `kompress model` subcommand.
pub fn main(command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Convert { hf_dir, out_dir } => {
            println!("{}", convert(&hf_dir, &out_dir)?);
        }
        ModelCommand::Info { json, model } => {
            let Some((dir, source)) = super::resolve_model_dir(model.as_deref()) else {
                bail!(
                    "no model found (--model, KOMPRESS_MODEL, the data directory, the repository's model/)"
                );
            };
            let mut v = info(&dir)?;
            v["source"] = json!(format!("{source:?}"));
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", info_text(&v));
            }
        }
        ModelCommand::LabelStats { trajectories } => {
            use crate::usage::{Rules, line_use_table, read};
            let all = read(&trajectories)?;
            let d = Rules::DEFAULT;
            let rules = [
                Rules { horizon: 1, ..d },
                Rules { horizon: 3, ..d },
                d,
                Rules { horizon: 10, ..d },
                Rules { horizon: usize::MAX, ..d },
                Rules { earlier_known: false, ..d },
                Rules { patch: false, ..d },
            ];
            print!("{}", line_use_table(&all, &rules, crate::select::data::MIN_CHARS));
        }
        ModelCommand::PackLines { from, out } => {
            let bytes = std::fs::read(&from)
                .with_context(|| format!("cannot read {}", from.display()))?;
            let forest = super::forest::Forest::from_json(&bytes, crate::select::features::NAMES)
                .with_context(|| format!("{} is not a usable line model", from.display()))?;
            let packed = forest.to_packed();
            std::fs::write(&out, &packed)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "{}: {} trees, {} items, {} bytes (from {} bytes of JSON)",
                out.display(),
                forest.trees(),
                forest.vocab.iter().count(),
                packed.len(),
                bytes.len()
            );
        }
        ModelCommand::LineData { trajectories, out } => {
            crate::select::data::write(&trajectories, &out)?;
        }
    }
    Ok(())
}
