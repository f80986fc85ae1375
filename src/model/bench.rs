//! `kompress bench`: load time, throughput, cold start and memory of the model runtime.
//!
//! Without `--model`, a random-weight ModernBERT of the requested size is written as a
//! Hugging Face checkpoint in a temporary directory and converted with
//! [`super::convert::convert`], so the conversion path is exercised too. Every timing is the
//! median of `--runs` runs; the machine this was written on is a shared 2-core VM, so treat
//! absolute numbers as noisy and compare ratios from one run.
//!
//! Measured:
//! - load: `GgufFile` map + parse, and building the whole model from the mapping;
//! - throughput: forward passes over 512 tokens and over 4,096 tokens (8 chunks of 512, the
//!   scorer's chunking), F32 safetensors weights vs Q8_0 GGUF weights;
//! - cold start: a child process (`kompress bench --child`) from launch to its first line of
//!   output, scoring a ~100-token tool output with the Q8_0 model;
//! - memory: the child's peak RSS (`VmHWM`) at ~100 and ~4,096 tokens, and, while this process
//!   holds the same file mapped, how much of the child's RSS is shared file pages versus
//!   private memory (`/proc/self/smaps_rollup`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use serde_json::{Value, json};

use super::modernbert::{Config, ModernBertForTokenClassification, load_safetensors};
use super::weights::Weights;
use super::words::{ModelScorer, gapped_words};
use super::{GGUF_FILE, SAFETENSORS_FILE};

/// A ~100-token tool output (a compiler error), the cold-start input the issue's ≤ 10 ms
/// target is about.
const SAMPLE: &str = "error[E0308]: mismatched types\n  --> src/model/quant.rs:42:17\n   |\n42 |         let n: u32 = rows.len();\n   |                ---   ^^^^^^^^^^ expected `u32`, found `usize`\n   |                |\n   |                expected due to this\n   |\nerror: aborting due to 1 previous error\n\nFor more information about this error, try `rustc --explain E0308`.\n";

/// The same error with rustc's `help:` suggestion, ~146 tokens: the cold-start input of the
/// earlier tables in docs/bench.md (kept so their figures stay comparable), and repeated for
/// the ~4,500-token memory run.
const SAMPLE_LONG: &str = "error[E0308]: mismatched types\n  --> src/model/quant.rs:42:17\n   |\n42 |         let n: u32 = rows.len();\n   |                ---   ^^^^^^^^^^ expected `u32`, found `usize`\n   |                |\n   |                expected due to this\n   |\nhelp: you can convert a `usize` to a `u32` and panic if the converted value doesn't fit\n   |\n42 |         let n: u32 = rows.len().try_into().unwrap();\n   |                                ++++++++++++++++++++\n\nerror: aborting due to 1 previous error\n";

/// The sizes `bench` can build.
pub fn config_json(kind: &str) -> Result<Value> {
    let (hidden, layers, heads, inter) = match kind {
        "small" => (256, 6, 4, 512),
        "base" => (768, 22, 12, 1152),
        other => bail!("unknown config {other:?} (small or base)"),
    };
    Ok(json!({
        "architectures": ["ModernBertForTokenClassification"],
        "model_type": "modernbert",
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": inter,
        "vocab_size": 50368,
        "max_position_embeddings": 8192,
        "global_attn_every_n_layers": 3,
        "local_attention": 128,
        "global_rope_theta": 160000.0,
        "local_rope_theta": 10000.0,
        "norm_eps": 1e-5,
        "pad_token_id": 50283,
        "hidden_activation": "gelu",
        "classifier_activation": "gelu",
        "id2label": {"0": "drop", "1": "keep"},
    }))
}

/// xorshift64*: deterministic random weights without a dependency.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32) / (1u64 << 24) as f32
    }
    /// Uniform with standard deviation `std`.
    fn fill(&mut self, n: usize, std: f32) -> Vec<f32> {
        let a = std * 3f32.sqrt();
        (0..n).map(|_| (self.next_f32() * 2.0 - 1.0) * a).collect()
    }
}

/// Writes a random-weight `ModernBertForTokenClassification` checkpoint (HF names) to `dir`.
pub fn write_random_checkpoint(kind: &str, dir: &Path, tokenizer_json: &Path) -> Result<()> {
    write_random_model(&config_json(kind)?, dir, 0.02)?;
    std::fs::copy(tokenizer_json, dir.join("tokenizer.json"))?;
    Ok(())
}

/// Writes `config.json` and random `model.safetensors` (matrices uniform with standard
/// deviation `std`, norms 1) for the config `cfg_json` to `dir`; no tokenizer.
pub fn write_random_model(cfg_json: &Value, dir: &Path, std: f32) -> Result<()> {
    let cfg = Config::from_json(&cfg_json.to_string())?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(cfg_json)?,
    )?;
    let (h, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let dev = Device::Cpu;
    let mut t: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut rand = |name: String, shape: (usize, usize), t: &mut BTreeMap<String, Tensor>| {
        let data = rng.fill(shape.0 * shape.1, std);
        t.insert(name, Tensor::from_vec(data, shape, &dev).expect("shape"));
    };
    let ones = |n: usize| Tensor::ones(n, candle_core::DType::F32, &dev).expect("ones");
    rand(
        "model.embeddings.tok_embeddings.weight".into(),
        (v, h),
        &mut t,
    );
    t.insert("model.embeddings.norm.weight".into(), ones(h));
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        if l > 0 {
            t.insert(format!("{p}.attn_norm.weight"), ones(h));
        }
        rand(format!("{p}.attn.Wqkv.weight"), (3 * h, h), &mut t);
        rand(format!("{p}.attn.Wo.weight"), (h, h), &mut t);
        t.insert(format!("{p}.mlp_norm.weight"), ones(h));
        rand(format!("{p}.mlp.Wi.weight"), (2 * i, h), &mut t);
        rand(format!("{p}.mlp.Wo.weight"), (h, i), &mut t);
    }
    t.insert("model.final_norm.weight".into(), ones(h));
    rand("head.dense.weight".into(), (h, h), &mut t);
    t.insert("head.norm.weight".into(), ones(h));
    rand("classifier.weight".into(), (2, h), &mut t);
    t.insert(
        "classifier.bias".into(),
        Tensor::zeros(2, candle_core::DType::F32, &dev)?,
    );
    candle_core::safetensors::save(&t.into_iter().collect(), dir.join(SAFETENSORS_FILE))?;
    Ok(())
}

/// The repository's `tokenizer.json` (see [`super::resolve_model_dir`] for where it is looked).
fn repo_tokenizer() -> Result<PathBuf> {
    let near_exe = std::env::current_exe().ok().and_then(|exe| {
        Some(
            exe.parent()?
                .parent()?
                .parent()?
                .join("model/tokenizer.json"),
        )
    });
    near_exe
        .into_iter()
        .chain([Path::new(env!("CARGO_MANIFEST_DIR")).join("model/tokenizer.json")])
        .find(|p| p.is_file())
        .context("no model/tokenizer.json next to the executable or the source tree")
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn time<R>(f: impl FnOnce() -> Result<R>) -> Result<(f64, R)> {
    let t0 = Instant::now();
    let r = f()?;
    Ok((t0.elapsed().as_secs_f64() * 1e3, r))
}

/// Fields of `/proc/self/status` and `/proc/self/smaps_rollup`, in kB.
pub fn memory_kb() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (file, keys) in [
        (
            "/proc/self/status",
            &["VmHWM", "VmRSS", "RssAnon", "RssFile"][..],
        ),
        (
            "/proc/self/smaps_rollup",
            &["Pss", "Shared_Clean", "Private_Clean", "Private_Dirty"][..],
        ),
    ] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines() {
            if let Some((k, rest)) = line.split_once(':')
                && keys.contains(&k)
                && let Some(kb) = rest.split_whitespace().next().and_then(|n| n.parse().ok())
            {
                out.insert(k.to_string(), kb);
            }
        }
    }
    out
}

/// User + system CPU time of this process so far, in ms (less noisy than wall time on a
/// shared machine).
pub fn cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// `kompress bench --child`: load the model in `dir`, score [`SAMPLE`] (or, with `long`,
/// [`SAMPLE_LONG`]) repeated `repeat` times, print the kept words (the first output) and then
/// a JSON line of timings and memory.
pub fn child(dir: &Path, repeat: usize, long: bool) -> Result<()> {
    use std::io::Write;
    let t0 = Instant::now();
    let scorer = ModelScorer::load(dir)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let text = if long { SAMPLE_LONG } else { SAMPLE }.repeat(repeat.max(1));
    let words = gapped_words(&text);
    let (t1, c1) = (Instant::now(), cpu_ms());
    let scores = scorer.score_gapped(
        &words,
        std::time::Instant::now() + std::time::Duration::from_secs(3600),
    )?;
    let score_ms = t1.elapsed().as_secs_f64() * 1e3;
    let score_cpu_ms = cpu_ms() - c1;
    let tokens: usize = scorer.chunks(&words).iter().map(|c| c.ids.len()).sum();
    let kept = words
        .iter()
        .zip(&scores)
        .filter(|(_, s)| **s >= 0.5)
        .count();
    let mut out = std::io::stdout().lock();
    writeln!(out, "kept {kept} of {} words", words.len())?;
    out.flush()?;
    let stats = json!({"load_ms": load_ms, "score_ms": score_ms, "score_cpu_ms": score_cpu_ms, "tokens": tokens, "memory_kb": memory_kb()});
    writeln!(out, "{stats}")?;
    Ok(())
}

/// One cold-start child: which input, which forward, how many threads.
#[derive(Clone, Copy)]
struct ChildRun {
    /// Copies of the sample.
    repeat: usize,
    /// [`SAMPLE_LONG`] instead of [`SAMPLE`].
    long: bool,
    /// With [`Forward::Candle`] the child runs the candle reference forward
    /// (`KOMPRESS_FORWARD=candle`).
    forward: Forward,
    /// `KOMPRESS_THREADS` for the child (`None`: unset, the default).
    threads: Option<usize>,
}

/// Spawns `kompress bench --child` for `run`, returning (ms to first line, its JSON line
/// with `startup_ms` added: the time to first output not spent loading or scoring, i.e.
/// process start-up, the dynamic loader and writing the line).
fn spawn_child(dir: &Path, run: ChildRun) -> Result<(f64, Value)> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    match run.forward {
        Forward::Candle => cmd.env("KOMPRESS_FORWARD", "candle"),
        Forward::Fast => cmd.env_remove("KOMPRESS_FORWARD"),
    };
    match run.threads {
        Some(n) => cmd.env("KOMPRESS_THREADS", n.to_string()),
        None => cmd.env_remove("KOMPRESS_THREADS"),
    };
    cmd.args(["bench", "--child", "--repeat", &run.repeat.to_string()]);
    if run.long {
        cmd.arg("--long-sample");
    }
    let t0 = Instant::now();
    let mut child = cmd
        .arg("--model")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let first = lines.next().context("child printed nothing")??;
    let first_ms = t0.elapsed().as_secs_f64() * 1e3;
    let stats_line = lines.next().context("child printed no stats")??;
    let status = child.wait()?;
    if !status.success() || !first.starts_with("kept") {
        bail!("child failed: {status}, {first}");
    }
    let mut stats: Value = serde_json::from_str(&stats_line)?;
    let inside =
        stats["load_ms"].as_f64().unwrap_or(0.0) + stats["score_ms"].as_f64().unwrap_or(0.0);
    stats["startup_ms"] = json!(first_ms - inside);
    Ok((first_ms, stats))
}

/// Random ids of length `n` with `[CLS]`/`[SEP]`-like ends, inside the vocabulary.
fn random_ids(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|_| (rng.next_f32() * (vocab.min(50_000) as f32)) as u32)
        .collect()
}

/// Which forward a measurement runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Forward {
    /// [`super::cpu`]: own buffers and kernels (what the scorer uses).
    Fast,
    /// The candle reference forward in [`super::modernbert`] (the previous runtime).
    Candle,
}

impl Forward {
    fn run(self, model: &ModernBertForTokenClassification, ids: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Fast => model.forward(ids, None)?,
            Self::Candle => model.forward_reference(ids, None)?,
        })
    }
}

/// Wall and CPU milliseconds (medians) of forwarding `tokens` ids as chunks of 512, for the
/// fast and the candle forward. Runs alternate between the two, so both see the same load
/// on a shared machine and their ratio is meaningful even when absolute times are not.
///
/// With `batched`, the chunks (all 512 tokens long) go in as one `(chunks, 512)` batch, which
/// the fast forward splits between 2 threads by whole chunks (`cpu::run_batch`) instead of
/// splitting each chunk's rows.
fn forward_ms(
    model: &ModernBertForTokenClassification,
    tokens: usize,
    runs: usize,
    batched: bool,
) -> Result<[(f64, f64); 2]> {
    let vocab = model.encoder().config().vocab_size;
    let mut chunks: Vec<Tensor> = (0..tokens.div_ceil(512))
        .map(|c| {
            let n = (tokens - c * 512).min(512);
            Tensor::new(random_ids(n, vocab, 7 + c as u64).as_slice(), &Device::Cpu)?.unsqueeze(0)
        })
        .collect::<candle_core::Result<_>>()?;
    if batched {
        chunks = vec![Tensor::cat(&chunks, 0)?];
    }
    let paths = [Forward::Fast, Forward::Candle];
    // One untimed warm-up pass each (page faults, thread start-up).
    for p in paths {
        p.run(model, &chunks[0])?;
    }
    let mut times = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for _ in 0..runs {
        for (p, (wall, cpu)) in paths.iter().zip(&mut times) {
            let c0 = cpu_ms();
            let (ms, _) = time(|| {
                for c in &chunks {
                    p.run(model, c)?;
                }
                Ok(())
            })?;
            wall.push(ms);
            cpu.push(cpu_ms() - c0);
        }
    }
    Ok(times.map(|(wall, cpu)| (median(wall), median(cpu))))
}

fn load_q8(dir: &Path, cfg: &Config) -> Result<ModernBertForTokenClassification> {
    Ok(ModernBertForTokenClassification::load(
        cfg,
        Weights::open_gguf(&dir.join(GGUF_FILE))?,
    )?)
}

/// Benchmarks one model directory; returns the results as JSON.
pub fn bench_dir(dir: &Path, label: &str, runs: usize, with_f32: bool) -> Result<Value> {
    super::tune_allocator();
    let cfg = Config::from_file(&dir.join("config.json"))?;
    let gguf_bytes = std::fs::metadata(dir.join(GGUF_FILE))?.len();
    eprintln!("[{label}] load");
    let mut map_ms = Vec::new();
    let mut load_ms = Vec::new();
    for _ in 0..runs.max(5) {
        map_ms.push(time(|| super::gguf::GgufFile::open(&dir.join(GGUF_FILE)))?.0);
        load_ms.push(time(|| load_q8(dir, &cfg))?.0);
    }
    let q8 = load_q8(dir, &cfg)?;
    let mut throughput = BTreeMap::new();
    let mut forward_cpu_ms = BTreeMap::new();
    let mut record = |key: String, tokens: usize, [fast, candle]: [(f64, f64); 2]| {
        throughput.insert(key.clone(), tokens as f64 / fast.0 * 1e3);
        throughput.insert(format!("{key}_candle"), tokens as f64 / candle.0 * 1e3);
        forward_cpu_ms.insert(key.clone(), fast.1);
        forward_cpu_ms.insert(format!("{key}_candle"), candle.1);
    };
    for tokens in [512usize, 4096] {
        eprintln!("[{label}] Q8_0 forward {tokens} (fast and candle)");
        record(
            format!("q8_0_{tokens}"),
            tokens,
            forward_ms(&q8, tokens, runs, false)?,
        );
    }
    eprintln!("[{label}] Q8_0 forward 4096 as one batch of 8 (fast and candle)");
    record(
        "q8_0_4096_batch".into(),
        4096,
        forward_ms(&q8, 4096, runs, true)?,
    );
    // Cold start and memory with this process holding the same mapping (pages resident).
    // Children alternate, so each kind sees the same load: the ~100-token sample with the
    // default threads, the same on one thread, the same on the candle forward, and the
    // ~146-token sample of the earlier tables.
    eprintln!("[{label}] cold start (fast, one thread, candle, ~146 tokens)");
    let run = |long, forward, threads| ChildRun {
        repeat: 1,
        long,
        forward,
        threads,
    };
    let kinds = [
        ("", run(false, Forward::Fast, None)),
        ("_1thread", run(false, Forward::Fast, Some(1))),
        ("_candle", run(false, Forward::Candle, None)),
        ("_146", run(true, Forward::Fast, None)),
    ];
    let mut cold: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut cold_cpu: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut child_stats = vec![Value::Null; kinds.len()];
    for _ in 0..runs.max(5) {
        for (i, (_, r)) in kinds.iter().enumerate() {
            let (ms, stats) = spawn_child(dir, *r)?;
            cold[i].push(ms);
            cold_cpu[i].push(stats["score_cpu_ms"].as_f64().unwrap_or(f64::NAN));
            child_stats[i] = stats;
        }
    }
    let big_run = |forward| ChildRun {
        repeat: 4096 / 130,
        long: true,
        forward,
        threads: None,
    };
    let (_, big) = spawn_child(dir, big_run(Forward::Fast))?;
    let (_, big_candle) = spawn_child(dir, big_run(Forward::Candle))?;
    let mut cold_json = serde_json::Map::new();
    for (i, (suffix, _)) in kinds.iter().enumerate() {
        let mut stats = child_stats[i].clone();
        // The last child's figures, with the score CPU replaced by the median of all runs.
        stats["score_cpu_ms"] = json!(median(cold_cpu[i].clone()));
        cold_json.insert(
            format!("cold_start_ms{suffix}"),
            json!(median(cold[i].clone())),
        );
        cold_json.insert(format!("child_100{suffix}"), stats);
    }
    let mut f32_load_ms = Value::Null;
    if with_f32 && dir.join(SAFETENSORS_FILE).is_file() {
        drop(q8);
        let (ms, f32m) = time(|| {
            let vb = load_safetensors(&[dir.join(SAFETENSORS_FILE)], &Device::Cpu)?;
            Ok(ModernBertForTokenClassification::load(&cfg, vb)?)
        })?;
        f32_load_ms = json!(ms);
        for tokens in [512usize, 4096] {
            eprintln!("[{label}] F32 forward {tokens} (fast and candle)");
            record(
                format!("f32_{tokens}"),
                tokens,
                forward_ms(&f32m, tokens, runs, false)?,
            );
        }
    }
    let mut out = json!({
        "label": label,
        "hidden": cfg.hidden_size,
        "layers": cfg.num_hidden_layers,
        "intermediate": cfg.intermediate_size,
        "gguf_bytes": gguf_bytes,
        "safetensors_bytes": std::fs::metadata(dir.join(SAFETENSORS_FILE)).ok().map(|m| m.len()),
        "map_ms": median(map_ms),
        "load_ms": median(load_ms),
        "f32_load_ms": f32_load_ms,
        "tokens_per_s": throughput,
        "forward_cpu_ms": forward_cpu_ms,
        "child_4096": big,
        "child_4096_candle": big_candle,
        "threads": super::quant::threads(),
        "runs": runs,
    });
    if let Some(o) = out.as_object_mut() {
        o.extend(cold_json);
    }
    Ok(out)
}

/// A markdown table of `results`: one row per measurement, one column per model; forward
/// figures as `fast (candle, ×ratio)`.
pub fn markdown(results: &[Value]) -> String {
    let mib = |v: &Value| {
        v.as_f64()
            .map_or("–".into(), |b| format!("{:.1}", b / 1048576.0))
    };
    let num = |v: &Value, d: usize| v.as_f64().map_or("–".into(), |x| format!("{x:.d$}"));
    let mb = |v: &Value| {
        v.as_f64()
            .map_or("–".into(), |kb| format!("{:.1}", kb / 1024.0))
    };
    // "new (old, ×speed-up)"; `higher_is_better` picks the ratio's direction.
    let pair = |new: &Value, old: &Value, d: usize, higher_is_better: bool| match (
        new.as_f64(),
        old.as_f64(),
    ) {
        (Some(n), Some(o)) if n > 0.0 && o > 0.0 => {
            let ratio = if higher_is_better { n / o } else { o / n };
            format!("{n:.d$} ({o:.d$}, ×{ratio:.1})")
        }
        _ => num(new, d),
    };
    type Cell<'a> = Box<dyn Fn(&Value) -> String + 'a>;
    let mut rows: Vec<(String, Cell)> = vec![
        (
            "GGUF (Q8_0) MiB".into(),
            Box::new(|r: &Value| mib(&r["gguf_bytes"])),
        ),
        (
            "F32 safetensors MiB".into(),
            Box::new(|r: &Value| mib(&r["safetensors_bytes"])),
        ),
        (
            "GGUF map + parse ms".into(),
            Box::new(|r: &Value| num(&r["map_ms"], 2)),
        ),
        (
            "Q8_0 model load ms".into(),
            Box::new(|r: &Value| num(&r["load_ms"], 2)),
        ),
        (
            "F32 model load ms".into(),
            Box::new(|r: &Value| num(&r["f32_load_ms"], 0)),
        ),
    ];
    for (w, name) in [("q8_0", "Q8_0"), ("f32", "F32")] {
        for t in [512, 4096] {
            let key = format!("{w}_{t}");
            let (k1, k2) = (key.clone(), format!("{key}_candle"));
            rows.push((
                format!("{name} tokens/s, {t} tokens: fast (candle, ×)"),
                Box::new(move |r: &Value| {
                    pair(&r["tokens_per_s"][&k1], &r["tokens_per_s"][&k2], 0, true)
                }),
            ));
            let (k1, k2) = (key.clone(), format!("{key}_candle"));
            rows.push((
                format!("{name} forward CPU ms, {t} tokens: fast (candle, ×)"),
                Box::new(move |r: &Value| {
                    pair(
                        &r["forward_cpu_ms"][&k1],
                        &r["forward_cpu_ms"][&k2],
                        0,
                        false,
                    )
                }),
            ));
        }
    }
    rows.push((
        "Q8_0 tokens/s, 4,096 tokens as one batch of 8: fast (candle, ×)".into(),
        Box::new(|r: &Value| {
            pair(
                &r["tokens_per_s"]["q8_0_4096_batch"],
                &r["tokens_per_s"]["q8_0_4096_batch_candle"],
                0,
                true,
            )
        }),
    ));
    rows.push((
        "Q8_0 forward CPU ms, 4,096 tokens as one batch of 8: fast (candle, ×)".into(),
        Box::new(|r: &Value| {
            pair(
                &r["forward_cpu_ms"]["q8_0_4096_batch"],
                &r["forward_cpu_ms"]["q8_0_4096_batch_candle"],
                0,
                false,
            )
        }),
    ));
    // Cold start on the ~100-token sample: the default against the candle forward and
    // against one thread (the second thread's gain), wall time to first output and the
    // child's scoring CPU.
    for (name, other) in [("candle", "_candle"), ("one thread", "_1thread")] {
        rows.push((
            format!("cold start ms, launch → first output, ~100 tokens: fast ({name}, ×)"),
            Box::new(move |r: &Value| {
                pair(
                    &r["cold_start_ms"],
                    &r[format!("cold_start_ms{other}")],
                    1,
                    false,
                )
            }),
        ));
        rows.push((
            format!("child score CPU ms, ~100 tokens: fast ({name}, ×)"),
            Box::new(move |r: &Value| {
                pair(
                    &r["child_100"]["score_cpu_ms"],
                    &r[format!("child_100{other}")]["score_cpu_ms"],
                    1,
                    false,
                )
            }),
        ));
    }
    rows.push((
        "cold start ms, ~146 tokens (earlier tables' input) / its score CPU ms".into(),
        Box::new(|r: &Value| {
            format!(
                "{} / {}",
                num(&r["cold_start_ms_146"], 1),
                num(&r["child_100_146"]["score_cpu_ms"], 1)
            )
        }),
    ));
    rows.push((
        "child load ms / start-up ms (first output − load − score), ~100 tokens".into(),
        Box::new(|r: &Value| {
            format!(
                "{} / {}",
                num(&r["child_100"]["load_ms"], 2),
                num(&r["child_100"]["startup_ms"], 1)
            )
        }),
    ));
    for (label, key) in [("~100", "child_100"), ("~4,500", "child_4096")] {
        rows.push((
            format!("child peak RSS MB, {label} tokens: fast (candle)"),
            Box::new(move |r: &Value| {
                format!(
                    "{} ({})",
                    mb(&r[key]["memory_kb"]["VmHWM"]),
                    mb(&r[format!("{key}_candle")]["memory_kb"]["VmHWM"])
                )
            }),
        ));
    }
    rows.push((
        "2nd process: private MB / shared-clean MB".into(),
        Box::new(|r: &Value| {
            let c1 = &r["child_100"]["memory_kb"];
            let private = c1["Private_Clean"].as_f64().unwrap_or(0.0)
                + c1["Private_Dirty"].as_f64().unwrap_or(0.0);
            format!("{:.1} / {}", private / 1024.0, mb(&c1["Shared_Clean"]))
        }),
    ));
    let mut s = String::from("| |");
    for r in results {
        s.push_str(&format!(
            " {} (h{} L{} i{}) |",
            r["label"].as_str().unwrap_or(""),
            r["hidden"],
            r["layers"],
            r["intermediate"]
        ));
    }
    s.push_str("\n|---|");
    s.push_str(&"---|".repeat(results.len()));
    s.push('\n');
    for (name, f) in &rows {
        s.push_str(&format!("| {name} |"));
        for r in results {
            s.push_str(&format!(" {} |", f(r)));
        }
        s.push('\n');
    }
    s
}

/// `kompress bench`.
pub fn main(
    model: Option<&Path>,
    configs: &[String],
    runs: usize,
    json_out: bool,
    keep: Option<&Path>,
) -> Result<()> {
    let runs = runs.max(1);
    let mut results = Vec::new();
    if let Some(dir) = model {
        results.push(bench_dir(dir, "model", runs, true)?);
    } else {
        let tok = repo_tokenizer()?;
        for kind in configs {
            let root = match keep {
                Some(k) => k.join(kind),
                None => std::env::temp_dir()
                    .join(format!("kompress-bench-{kind}-{}", std::process::id())),
            };
            let (hf, out) = (root.join("hf"), root.join("model"));
            eprintln!(
                "[{kind}] writing a random checkpoint and converting it in {}",
                root.display()
            );
            write_random_checkpoint(kind, &hf, &tok)?;
            eprintln!("[{kind}] {}", super::convert::convert(&hf, &out)?);
            std::fs::copy(hf.join(SAFETENSORS_FILE), out.join(SAFETENSORS_FILE))?;
            std::fs::remove_dir_all(&hf)?;
            let r = bench_dir(&out, kind, runs, true);
            if keep.is_none() {
                let _ = std::fs::remove_dir_all(&root);
            }
            results.push(r?);
        }
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", markdown(&results));
    }
    Ok(())
}

/// `kompress bench` arguments.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Benchmark this model directory instead of random-weight ones.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Random-weight sizes to build: small (hidden 256, 6 layers) and/or base (768, 22).
    #[arg(long, value_name = "NAME", default_values_t = vec!["small".to_string(), "base".to_string()])]
    pub config: Vec<String>,
    /// Timed runs per measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print JSON instead of a markdown table.
    #[arg(long)]
    pub json: bool,
    /// Internal: the cold-start child (load, score the sample, print, report memory).
    #[arg(long, hide = true)]
    pub child: bool,
    /// Internal: how many copies of the sample the child scores.
    #[arg(long, hide = true, default_value_t = 1)]
    pub repeat: usize,
    /// Internal: the child scores the ~146-token sample instead of the ~100-token one.
    #[arg(long, hide = true)]
    pub long_sample: bool,
    /// Keep the random-weight model directories under DIR/<config>/model (for profiling).
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// Runs `kompress bench`.
pub fn cli_main(args: BenchArgs) -> Result<()> {
    if args.child {
        let (dir, _) = super::resolve_model_dir(args.model.as_deref()).context("no model")?;
        return child(&dir, args.repeat, args.long_sample);
    }
    main(
        args.model.as_deref(),
        &args.config,
        args.runs,
        args.json,
        args.keep.as_deref(),
    )
}
