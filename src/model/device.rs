//! Where the forward pass runs: `--device cpu|cuda|auto` (config `device`, env
//! `KOMPRESS_DEVICE`).
//!
//! - `cpu` (the default): the fast CPU forward ([`super::cpu`]) on the memory-mapped Q8_0
//!   weights, used in place.
//! - `cuda`: the weights are dequantized to F32 on the first CUDA device and the candle
//!   forward ([`super::modernbert`]'s reference path, the one the parity tests pin) runs
//!   there. Only a binary built with `--features cuda` (which needs the CUDA toolkit's
//!   `nvcc`) can do this; any other build says so and how to rebuild.
//! - `auto`: CUDA when the binary has it and a device answers, else the CPU.
//!
//! The default stays `cpu` even in a CUDA build: the hook is a new process per tool call,
//! and creating a CUDA context costs far more than scoring a typical tool output on the
//! CPU. A GPU pays off for the pipe and `eval` on large inputs.

use anyhow::{Result, anyhow};
use candle_core::Device;

/// The `--device` choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The fast CPU forward on Q8_0 weights used in place.
    #[default]
    Cpu,
    /// The first CUDA device (needs a build with `--features cuda`).
    Cuda,
    /// CUDA when available, else the CPU.
    Auto,
}

impl std::str::FromStr for DeviceChoice {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            "auto" => Ok(Self::Auto),
            other => Err(anyhow!("unknown device {other:?} (cpu, cuda or auto)")),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Auto => "auto",
        })
    }
}

/// Whether this binary was built with the `cuda` feature.
pub const COMPILED_WITH_CUDA: bool = cfg!(feature = "cuda");

impl DeviceChoice {
    /// The device to load the model on: `None` for the fast CPU forward, `Some(device)` for
    /// F32 weights and the candle forward on `device`.
    pub fn resolve(self) -> Result<Option<Device>> {
        match self {
            Self::Cpu => Ok(None),
            Self::Cuda => cuda().map(Some),
            Self::Auto => Ok(cuda().ok()),
        }
    }
}

/// The first CUDA device, or why there is none.
fn cuda() -> Result<Device> {
    if !COMPILED_WITH_CUDA {
        return Err(anyhow!(
            "this kompress was built without CUDA: rebuild it with `cargo build --release \
             --features cuda` (needs the CUDA toolkit's nvcc), or use --device cpu"
        ));
    }
    // candle appends a backtrace to driver errors when RUST_BACKTRACE is set: keep the
    // message.
    Device::new_cuda(0).map_err(|e| {
        let message = e.to_string();
        let first = message.lines().next().unwrap_or_default();
        anyhow!("no usable CUDA device: {first}")
    })
}

/// A short name of where a model runs: `cpu` or `cuda:N`.
pub fn name(device: Option<&Device>) -> String {
    match device.map(Device::location) {
        None | Some(candle_core::DeviceLocation::Cpu) => "cpu".to_string(),
        Some(candle_core::DeviceLocation::Cuda { gpu_id }) => format!("cuda:{gpu_id}"),
        Some(candle_core::DeviceLocation::Metal { gpu_id }) => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for choice in [DeviceChoice::Cpu, DeviceChoice::Cuda, DeviceChoice::Auto] {
            assert_eq!(choice.to_string().parse::<DeviceChoice>().unwrap(), choice);
        }
        assert_eq!(" GPU ".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda);
        assert!("tpu".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn cpu_is_the_fast_path_and_auto_falls_back_to_it() {
        assert!(DeviceChoice::Cpu.resolve().unwrap().is_none());
        if !COMPILED_WITH_CUDA {
            assert!(DeviceChoice::Auto.resolve().unwrap().is_none());
            let err = DeviceChoice::Cuda.resolve().unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
        assert_eq!(name(None), "cpu");
        assert_eq!(name(Some(&Device::Cpu)), "cpu");
    }
}
