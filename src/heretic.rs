//! The heretic set: adversarially dense (text, reference) pairs, built by a seeded
//! generator, and the seed's metrics computed on kompress's output for them.
//!
//! The seed's heretic eval (kompress-model.md §3.4) fed its model responses dense with
//! chemical formulas, CVE ids, hex addresses, flags and doses. This generator builds tool
//! outputs of the same density: chemical formulas and doses, CVE ids, memory addresses,
//! git and SHA-256 hashes, versions, mixed-case identifiers (`getHTTPResponse`,
//! `XMLHttpRequest`) and non-ASCII paths, in five kinds of output (a lab protocol run, a
//! vulnerability scan, a crash dump, a build log, a git log).
//!
//! Each text is its *salient* lines (the dense ones) interleaved with *filler* blocks:
//! repeated status lines, runs of similar lines, blank-line runs and spinner redraws,
//! written only with words that no must-keep rule protects. The reference is the text
//! with the filler removed, as the seed's generators (§3.3) build it: the salient lines,
//! verbatim and in order. So by construction every protected word of the text is in the
//! reference (`mk_in_ref = 1`), and filler is added until the text has at least 1.4 times
//! the reference's characters (the seed's filter).
//!
//! The generator is a small SplitMix64 PRNG of its own: the same seed gives the same set
//! on every platform and every version of every dependency.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;
use crate::domain::Domain;
use crate::metrics::{self, Retention};
use crate::pipeline::{self, Request};
use crate::scorer::Scorer;
use crate::tokens;

/// The seed `kompress eval` uses.
pub const SEED: u64 = 42;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// One item of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() - 1)]
    }

    /// `n` lower-case hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit((self.next_u64() % 16) as u32, 16).unwrap_or('0'))
            .collect()
    }
}

/// One heretic pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pair {
    /// `heretic-000042`.
    pub id: String,
    /// Which generator made it.
    pub kind: &'static str,
    /// The domain it is compressed as.
    pub domain: Domain,
    /// The dense text with filler.
    pub text: String,
    /// The text without its filler: the salient lines, verbatim, in order.
    pub reference: String,
}

/// The generators, with the domain their output is compressed as.
pub const KINDS: &[(&str, Domain)] = &[
    ("lab_protocol", Domain::BashOutput),
    ("vuln_scan", Domain::BashOutput),
    ("crash_dump", Domain::ErrorTrace),
    ("build_log", Domain::BuildLog),
    ("git_log", Domain::BashOutput),
];

const FORMULAS: &[&str] = &[
    "H2SO4",
    "C8H10N4O2",
    "NaCl",
    "C6H12O6",
    "KMnO4",
    "Fe2O3",
    "CH3COOH",
    "NH4NO3",
    "C2H5OH",
    "Ca(OH)2",
    "HNO3",
    "NaHCO3",
    "C9H8O4",
    "KCl",
    "MgSO4",
    "H2O2",
    "C17H21NO4",
    "CuSO4",
];
const DOSE_UNITS: &[&str] = &["mg", "mL", "ug", "g/L", "mmol", "mg/kg", "IU"];
const PACKAGES: &[&str] = &[
    "openssl",
    "libxml2",
    "zlib",
    "curl",
    "glibc",
    "log4j-core",
    "lodash",
    "requests",
    "urllib3",
    "serde_json",
    "tokio",
    "jackson-databind",
    "pillow",
    "expat",
    "sqlite",
];
const SEVERITIES: &[&str] = &["LOW", "MEDIUM", "HIGH", "CRITICAL"];
const IDENTIFIERS: &[&str] = &[
    "getHTTPResponse",
    "XMLHttpRequest",
    "parseJSONBody",
    "IOError",
    "TokenExpiredError",
    "fooBar_baz",
    "iPhoneSync",
    "readUTF8Line",
    "SSLContextBuilder",
    "toISOString",
    "HashMap<K, V>",
    "OAuth2Client",
    "MyHTTPServer",
    "decodeBase64URL",
    "NSURLSession",
];
const PATHS: &[&str] = &[
    "/home/józef/projekt/src/źródło.rs",
    "/srv/データ/設定.py",
    r"C:\Users\Zoë\Документы\отчёт.txt",
    "/Users/Zoë/código/src/main.rs",
    "/opt/straße/lib/måler.so",
    "~/Desktop/naïve_café/notes.md",
    "/var/lib/服务/数据库.db",
    "/home/ola/prosjekt/øl/ærfugl.c",
    "/tmp/αβγ/δοκιμή.json",
    "D:\\Projekte\\Grüße\\main.cpp",
];
const AUTHORS: &[&str] = &[
    "José Müller <jose@example.com>",
    "Zoë Ødegård <zoe@example.org>",
    "Łukasz Żółw <lukasz@example.net>",
    "山田太郎 <taro@example.jp>",
    "Renée Dubois <renee@example.fr>",
];
const FILLER: &[&str] = &[
    "waiting for the file lock on the package cache",
    "still working on the request, please wait",
    "checking the dependency tree of the workspace",
    "reading the metadata of the local registry",
    "the server is warming up the cache",
    "scanning the project for source files",
    "loading the plugin list from the default location",
    "retrying the download of the package index",
    "collecting the build artifacts of the previous step",
    "uploading the coverage report to the dashboard",
    "sleeping for a moment before the next poll",
    "compacting the local database, this may take a while",
];
const FILLER_NOUNS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
];
const FILLER_VERBS: &[&str] = &[
    "fetching",
    "resolving",
    "unpacking",
    "verifying",
    "indexing",
];
const SPINNER: &[&str] = &["|", "/", "-", "\\"];

fn version(rng: &mut Rng) -> String {
    let v = format!(
        "{}.{}.{}",
        rng.range(0, 4),
        rng.range(0, 30),
        rng.range(0, 40)
    );
    match rng.range(0, 5) {
        0 => format!("v{v}"),
        1 => format!("{v}-rc.{}", rng.range(1, 5)),
        2 => format!("{v}+build.{}", rng.range(1, 99)),
        _ => v,
    }
}

fn cve(rng: &mut Rng) -> String {
    format!("CVE-{}-{}", rng.range(1999, 2026), rng.range(1000, 99999))
}

fn address(rng: &mut Rng) -> String {
    let digits = *rng.pick(&[8usize, 12, 16]);
    format!("0x{}", rng.hex(digits))
}

fn dose(rng: &mut Rng) -> String {
    format!(
        "{}.{}{}",
        rng.range(0, 500),
        rng.range(0, 9),
        rng.pick(DOSE_UNITS)
    )
}

/// One salient line of `kind`.
fn salient(kind: &str, rng: &mut Rng) -> String {
    let formula = *rng.pick(FORMULAS);
    let ident = *rng.pick(IDENTIFIERS);
    let path = *rng.pick(PATHS);
    match (kind, rng.range(0, 3)) {
        ("lab_protocol", 0) => format!(
            "dose: {} of {formula} per {}kg, never exceed {}/day",
            dose(rng),
            rng.range(40, 120),
            dose(rng)
        ),
        ("lab_protocol", 1) => format!(
            "mix {formula} ({}%) with {} at {}.{}M only under hood F-{}",
            rng.range(1, 99),
            rng.pick(FORMULAS),
            rng.range(0, 9),
            rng.range(1, 9),
            rng.range(1, 12)
        ),
        ("lab_protocol", 2) => format!(
            "WARNING sample {} at {address}: {formula} reacts with {} (see {})",
            rng.hex(8),
            rng.pick(FORMULAS),
            path,
            address = address(rng)
        ),
        ("lab_protocol", _) => format!(
            "result {formula}: pH {}.{} at {}C, logged to {path}",
            rng.range(1, 13),
            rng.range(0, 99),
            rng.range(4, 90)
        ),
        ("vuln_scan", 0) => format!(
            "{} {} -> {} {} {} sha256:{}",
            rng.pick(PACKAGES),
            version(rng),
            version(rng),
            cve(rng),
            rng.pick(SEVERITIES),
            rng.hex(64)
        ),
        ("vuln_scan", 1) => format!(
            "{} affects {} {} in {path}; fixed in {}",
            cve(rng),
            rng.pick(PACKAGES),
            version(rng),
            version(rng)
        ),
        ("vuln_scan", 2) => format!(
            "GHSA-{}-{}-{} {} {ident} must not be reachable from {}",
            rng.hex(4),
            rng.hex(4),
            rng.hex(4),
            rng.pick(SEVERITIES),
            address(rng)
        ),
        ("vuln_scan", _) => format!(
            "--fail-on={} set: {} and {} found (scan id {})",
            rng.pick(SEVERITIES).to_lowercase(),
            cve(rng),
            cve(rng),
            rng.hex(12)
        ),
        ("crash_dump", 0) => format!(
            "#{} {} in {ident} () at {path}:{}",
            rng.range(0, 30),
            address(rng),
            rng.range(1, 2000)
        ),
        ("crash_dump", 1) => format!(
            "Segmentation fault (core dumped) at {} in thread {}",
            address(rng),
            rng.range(1, 64)
        ),
        ("crash_dump", 2) => format!(
            "thread 'main' panicked at {path}:{}:{}: {ident} failed",
            rng.range(1, 900),
            rng.range(1, 80)
        ),
        ("crash_dump", _) => format!(
            "  rax={} rbx={} rip={} <{ident}+{}>",
            address(rng),
            address(rng),
            address(rng),
            rng.range(1, 400)
        ),
        ("build_log", 0) => format!("   Compiling {} {}", rng.pick(PACKAGES), version(rng)),
        ("build_log", 1) => format!(
            "error[E0{}]: the trait bound `{ident}: Send` is not satisfied --> {path}:{}:{}",
            rng.range(100, 799),
            rng.range(1, 500),
            rng.range(1, 80)
        ),
        ("build_log", 2) => format!(
            "warning: unused variable `{ident}` at src/{}.rs:{}:{}",
            rng.pick(FILLER_NOUNS),
            rng.range(1, 500),
            rng.range(1, 80)
        ),
        ("build_log", _) => format!(
            "    Finished `release` profile [optimized] target(s) in {}.{}s (x86_64-unknown-linux-gnu)",
            rng.range(0, 300),
            rng.range(0, 99)
        ),
        ("git_log", 0) => format!("commit {}", rng.hex(40)),
        ("git_log", 1) => format!("Author: {}", rng.pick(AUTHORS)),
        ("git_log", 2) => format!(
            "    Merge {} into release/{} ({path})",
            rng.hex(7),
            version(rng)
        ),
        (_, _) => format!(
            "    fix {ident} for {} ({}) and {formula} fixtures",
            cve(rng),
            version(rng)
        ),
    }
}

/// One filler block: lines that carry no protected word.
fn filler(rng: &mut Rng) -> String {
    match rng.range(0, 3) {
        0 => {
            let line = rng.pick(FILLER);
            format!("{line}\n").repeat(rng.range(4, 10))
        }
        1 => {
            let verb = rng.pick(FILLER_VERBS);
            let first = rng.range(0, FILLER_NOUNS.len() - 8);
            (first..first + rng.range(5, 8))
                .map(|i| format!("{verb} the index of crate {}\n", FILLER_NOUNS[i]))
                .collect()
        }
        2 => "\n".repeat(rng.range(3, 6)),
        _ => {
            let line = rng.pick(FILLER);
            let frames: Vec<String> = (0..rng.range(6, 16))
                .map(|i| format!("{line} {}", SPINNER[i % 4]))
                .collect();
            format!("{}\r{line} done\n", frames.join("\r"))
        }
    }
}

/// `n` pairs from `seed`, the same on every run.
pub fn generate(seed: u64, n: usize) -> Vec<Pair> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let (kind, domain) = *rng.pick(KINDS);
            let lines: Vec<String> = (0..rng.range(3, 6))
                .map(|_| salient(kind, &mut rng))
                .collect();
            // Filler blocks before each salient line (index i) or after the last (lines.len()).
            let mut blocks: Vec<Vec<String>> = vec![Vec::new(); lines.len() + 1];
            let reference: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let ref_chars = reference.chars().count();
            let mut text_chars = ref_chars;
            while text_chars * 10 < ref_chars * 14 || blocks.iter().all(Vec::is_empty) {
                let block = filler(&mut rng);
                text_chars += block.chars().count();
                let at = rng.range(0, lines.len());
                blocks[at].push(block);
            }
            let mut text = String::new();
            for (at, block) in blocks.iter().enumerate() {
                block.iter().for_each(|b| text.push_str(b));
                if let Some(line) = lines.get(at) {
                    text.push_str(line);
                    text.push('\n');
                }
            }
            Pair {
                id: format!("heretic-{i:06}"),
                kind,
                domain,
                text,
                reference,
            }
        })
        .collect()
}

/// What kompress did to one heretic pair.
#[derive(Clone, Debug, Serialize)]
pub struct Scored {
    /// The pair's id.
    pub id: String,
    /// The pair's generator.
    pub kind: &'static str,
    /// cl100k tokens of the text.
    pub tokens_in: usize,
    /// cl100k tokens of kompress's output (the text itself on passthrough).
    pub tokens_out: usize,
    /// cl100k tokens of the reference.
    pub tokens_ref: usize,
    /// kompress changed the text.
    pub replaced: bool,
    /// `exact_pct` of kompress's output with the must-keep override.
    pub exact: f64,
    /// `exact_pct` of kompress's output without the override (see [`evaluate`]).
    pub exact_without: f64,
    /// `exact_pct` of the reference.
    pub exact_ref: f64,
    /// `exact_pct` of the head+tail truncation to kompress's token budget.
    pub exact_head_tail: f64,
    /// Word-level must-keep retention of kompress's output.
    pub retention: Retention,
    /// Word-level must-keep retention of the head+tail truncation.
    pub retention_head_tail: Retention,
}

/// The seed's metrics over a group of heretic pairs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Pairs.
    pub pairs: usize,
    /// Pairs kompress changed.
    pub replaced: usize,
    /// Mean keep_rate of kompress's output.
    pub keep_rate: f64,
    /// Mean keep_rate of the reference (what removing exactly the filler gives).
    pub keep_rate_ref: f64,
    /// Mean exact_pct with the override.
    pub exact_pct: f64,
    /// Mean exact_pct without the override.
    pub exact_pct_without: f64,
    /// `exact_pct − exact_pct_without`.
    pub override_delta: f64,
    /// Mean exact_pct of the head+tail truncation to kompress's budget.
    pub exact_pct_head_tail: f64,
    /// mk_in_ref of the pairs themselves (pooled).
    pub mk_in_ref: f64,
    /// Pooled word-level retention of kompress's output.
    pub retention: f64,
    /// Pooled word-level retention of the head+tail truncation.
    pub retention_head_tail: f64,
    /// Pairs whose text/reference character ratio is under 1.3 (must be 0).
    pub ratio_violations: usize,
}

/// Compress every pair with [`pipeline::compress`] in-process, as its generator's domain,
/// with the default configuration and `scorer` (the installed model, or `None`: rules
/// only), and score the outputs.
///
/// The heretic texts have no hook payload, so they skip the hook's JSON wrapping and go
/// straight through the same pipeline the hook calls. The run "without the override" lets
/// the model pass drop words on the model's scores alone (`Request::unprotected`); without
/// a model nothing drops words, so it is the same run and `override_delta` is exactly 0.
pub fn evaluate(pairs: &[Pair], scorer: Option<&dyn Scorer>) -> Vec<Scored> {
    // The set measures what the word model's protection keeps, so the model pass runs on
    // every pair's domain, including those where it is off by default.
    let mut config = Config::default();
    for &domain in Domain::ALL {
        config.domains.insert(
            domain,
            crate::domain::Settings {
                model: true,
                ..domain.settings()
            },
        );
    }
    let run = |pair: &Pair, unprotected: bool| {
        let request = Request {
            text: &pair.text,
            domain: Some(pair.domain),
            unprotected,
            ..Request::default()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        match pipeline::compress(&request, &config, scorer, deadline) {
            Ok(c) => (c.text, true),
            Err(_) => (pair.text.clone(), false),
        }
    };
    pairs
        .iter()
        .map(|pair| {
            let (out, replaced) = run(pair, false);
            let without = if scorer.is_some() {
                run(pair, true).0
            } else {
                out.clone()
            };
            let tokens_out = tokens::count(&out);
            let truncated = metrics::head_tail(&pair.text, tokens_out);
            Scored {
                id: pair.id.clone(),
                kind: pair.kind,
                tokens_in: tokens::count(&pair.text),
                tokens_out,
                tokens_ref: tokens::count(&pair.reference),
                replaced,
                exact: metrics::exact_pct(&pair.text, &out),
                exact_without: metrics::exact_pct(&pair.text, &without),
                exact_ref: metrics::exact_pct(&pair.text, &pair.reference),
                exact_head_tail: metrics::exact_pct(&pair.text, &truncated),
                retention: metrics::retention(&pair.text, &out),
                retention_head_tail: metrics::retention(&pair.text, &truncated),
            }
        })
        .collect()
}

/// Summaries per generator kind and over all pairs.
pub fn summarize(pairs: &[Pair], scored: &[Scored]) -> (BTreeMap<String, Summary>, Summary) {
    let mut kinds: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in scored.iter().enumerate() {
        kinds.entry(s.kind.to_string()).or_default().push(i);
    }
    let group = |idx: &[usize]| -> Summary {
        let ps: Vec<&Pair> = idx.iter().map(|&i| &pairs[i]).collect();
        let ss: Vec<&Scored> = idx.iter().map(|&i| &scored[i]).collect();
        let col = |f: &dyn Fn(&Scored) -> f64| ss.iter().map(|s| f(s)).collect::<Vec<f64>>();
        let exact = col(&|s| s.exact);
        let without = col(&|s| s.exact_without);
        Summary {
            pairs: ss.len(),
            replaced: ss.iter().filter(|s| s.replaced).count(),
            keep_rate: metrics::mean(&col(&|s| metrics::keep_rate(s.tokens_in, s.tokens_out))),
            keep_rate_ref: metrics::mean(&col(&|s| metrics::keep_rate(s.tokens_in, s.tokens_ref))),
            exact_pct: metrics::mean(&exact),
            exact_pct_without: metrics::mean(&without),
            override_delta: metrics::override_delta(&exact, &without),
            exact_pct_head_tail: metrics::mean(&col(&|s| s.exact_head_tail)),
            mk_in_ref: metrics::mk_in_ref(
                ps.iter().map(|p| (p.text.as_str(), p.reference.as_str())),
            ),
            retention: Retention::sum(ss.iter().map(|s| s.retention)).rate(),
            retention_head_tail: Retention::sum(ss.iter().map(|s| s.retention_head_tail)).rate(),
            ratio_violations: ps
                .iter()
                .filter(|p| p.text.chars().count() * 10 < p.reference.chars().count() * 13)
                .count(),
        }
    };
    let per = kinds
        .iter()
        .map(|(k, idx)| (k.clone(), group(idx)))
        .collect();
    let all: Vec<usize> = (0..scored.len()).collect();
    (per, group(&all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protect;

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        // SplitMix64's first output for seed 0 (reference value).
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let x = r.range(3, 6);
            assert!((3..=6).contains(&x));
        }
        assert_eq!(r.hex(40).len(), 40);
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(generate(SEED, 200), generate(SEED, 200));
        assert_ne!(generate(SEED, 50), generate(SEED + 1, 50));
        // A prefix of a larger set is the smaller set.
        assert_eq!(generate(SEED, 300)[..100], generate(SEED, 100)[..]);
    }

    #[test]
    fn filler_carries_no_protected_word() {
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            let block = filler(&mut rng);
            assert!(protect::protected_words(&block).is_empty(), "{block:?}");
        }
    }

    #[test]
    fn every_pair_keeps_its_must_keep_words_in_the_reference() {
        let pairs = generate(SEED, 3000);
        let mut kinds = std::collections::BTreeSet::new();
        for pair in &pairs {
            kinds.insert(pair.kind);
            let reference_words: std::collections::BTreeSet<&str> =
                protect::words(&pair.reference).map(protect::core).collect();
            for word in protect::protected_words(&pair.text) {
                assert!(
                    reference_words.contains(word),
                    "{}: `{word}` not in the reference",
                    pair.id
                );
            }
            let (t, r) = (pair.text.chars().count(), pair.reference.chars().count());
            assert!(t * 10 >= r * 13, "{}: ratio {t}/{r} under 1.3", pair.id);
            assert!(t >= 200, "{}: {t} chars", pair.id);
            // Dense: every reference line has a protected word.
            for line in pair.reference.lines() {
                assert!(
                    !protect::protected_words(line).is_empty(),
                    "{}: {line}",
                    pair.id
                );
            }
        }
        assert_eq!(kinds.len(), KINDS.len());
        let (_, all) = summarize(&pairs, &[]);
        assert_eq!(all.pairs, 0);
        assert_eq!(
            metrics::mk_in_ref(
                pairs
                    .iter()
                    .map(|p| (p.text.as_str(), p.reference.as_str()))
            ),
            1.0
        );
    }

    #[test]
    fn the_set_covers_every_dense_class() {
        let text: String = generate(SEED, 500).into_iter().map(|p| p.text).collect();
        for needle in [
            "CVE-",
            "0x",
            "sha256:",
            "H2SO4",
            "getHTTPResponse",
            "ó",
            "データ",
            "-rc.",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
    }

    #[test]
    fn the_override_is_what_keeps_must_keep_words_from_a_model_that_drops_everything() {
        let pairs = generate(SEED, 40);
        let rules = summarize(&pairs, &evaluate(&pairs, None)).1;
        let dropper = crate::scorer::FixedScorer(0.0);
        let (_, all) = summarize(&pairs, &evaluate(&pairs, Some(&dropper)));
        assert!(
            all.keep_rate < rules.keep_rate,
            "the model pass drops words"
        );
        assert!(
            all.exact_pct >= rules.exact_pct,
            "{} < {}",
            all.exact_pct,
            rules.exact_pct
        );
        assert!(
            all.override_delta > 0.2,
            "override_delta {}",
            all.override_delta
        );
    }

    #[test]
    fn evaluation_on_a_small_set() {
        let pairs = generate(SEED, 60);
        let scored = evaluate(&pairs, None);
        let (per, all) = summarize(&pairs, &scored);
        assert_eq!(all.pairs, 60);
        assert!(!per.is_empty());
        assert_eq!(all.mk_in_ref, 1.0);
        assert_eq!(all.override_delta, 0.0);
        assert_eq!(all.ratio_violations, 0);
        assert!(all.keep_rate <= 1.0 && all.keep_rate_ref < 1.0);
        for s in &scored {
            assert!(s.tokens_out <= s.tokens_in);
            assert_eq!(s.exact_ref, 1.0);
        }
    }
}
