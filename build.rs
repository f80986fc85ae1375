//! Writes the cl100k_base vocabulary, sorted by bytes, for `src/tokens.rs` to search in place.
//!
//! `bpe-openai` (a build dependency only) embeds the vocabulary; it is read here once, at
//! build time, because loading it at run time (deserializing its automaton) cost ~25 ms of
//! every hook process. Layout, integers `u32` little-endian:
//!
//! ```text
//! n  offsets[n + 1]  ranks[n]  index[65537]  bytes
//! ```
//!
//! where entry `i` (in byte order) is `bytes[offsets[i]..offsets[i + 1]]` with rank (token id)
//! `ranks[i]`, and the entries whose first two bytes are `k` (`b0 · 256 + b1`, `b1 = 0` for a
//! one-byte entry) are `index[k]..index[k + 1]`: a lookup searches ~10 entries, not 100,000.

use std::io::Write;

fn main() {
    let bpe = &bpe_openai::cl100k_base().bpe;
    let n = bpe.num_tokens() as u32;
    let mut tokens: Vec<(&[u8], u32)> = (0..n).map(|id| (bpe.token_bytes(id), id)).collect();
    tokens.sort_unstable();
    let mut out = Vec::new();
    out.extend_from_slice(&n.to_le_bytes());
    let mut offset = 0u32;
    out.extend_from_slice(&offset.to_le_bytes());
    for (bytes, _) in &tokens {
        offset += bytes.len() as u32;
        out.extend_from_slice(&offset.to_le_bytes());
    }
    for (_, rank) in &tokens {
        out.extend_from_slice(&rank.to_le_bytes());
    }
    let key = |b: &[u8]| usize::from(b[0]) << 8 | usize::from(b.get(1).copied().unwrap_or(0));
    let mut next = 0;
    for k in 0..=1 << 16 {
        while next < tokens.len() && key(tokens[next].0) < k {
            next += 1;
        }
        out.extend_from_slice(&(next as u32).to_le_bytes());
    }
    for (bytes, _) in &tokens {
        out.extend_from_slice(bytes);
    }
    let path = std::path::Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("cl100k.bin");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&out))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    // A position-dependent executable on Linux: a PIE's ~18,000 relocations (the pointers
    // in the tables of clap, regex and the model code) are applied at every start, and
    // writing them faults in ~80 pages, ~0.3 ms of every hook call. Not with `crt-static`:
    // glibc's static start code is position-independent, and `-no-pie` there crashes.
    let crt_static = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|features| features.split(',').any(|f| f == "crt-static"));
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu && !crt_static {
        println!("cargo::rustc-link-arg-bins=-no-pie");
        static_unwinder();
    }
    println!("cargo::rerun-if-changed=build.rs");
}

/// Link GCC's unwinder statically: Rust's standard library asks for `-lgcc_s`, and
/// loading `libgcc_s.so` at every start (its constructor runs a dozen `cpuid`s, each
/// ~6 µs under a hypervisor) cost ~0.15 ms of every hook call. `libgcc_eh.a` is the same
/// unwinder as an archive (GCC's runtime library exception allows linking it); offered
/// under the name `libgcc_s.a` in a directory searched first, the linker takes it.
/// Panics still unwind (the hook catches them to pass the output through). Where the
/// compiler has no `libgcc_eh.a`, or the build is a cross build, nothing changes.
fn static_unwinder() {
    // The host's compiler knows the host's archive only: leave cross builds as they are.
    if std::env::var("HOST").ok() != std::env::var("TARGET").ok() {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let Ok(out) = std::process::Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let archive = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !archive.is_absolute() || !archive.is_file() {
        return;
    }
    let dir = std::path::Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("static-unwinder");
    if std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::copy(&archive, dir.join("libgcc_s.a")))
        .is_ok()
    {
        println!("cargo::rustc-link-search=native={}", dir.display());
    }
}
