//! Devices (`cpu`, `cuda`, `cuda:N`, `auto`) and dtypes (`f32`, `f16`, `bf16`).

use super::RuntimeError;
use tch::{Cuda, Device, Kind};

/// Parses a `--device` value. `auto` picks `cuda:0` when CUDA is available, else the CPU.
/// Asking for CUDA where there is none (or an index beyond the devices present) is an
/// error, never a silent fallback.
///
/// ```no_run
/// assert_eq!(resnetc::runtime::parse_device("cpu").unwrap(), tch::Device::Cpu);
/// ```
pub fn parse_device(s: &str) -> Result<Device, RuntimeError> {
    let s = s.trim();
    let index = match s.to_ascii_lowercase().as_str() {
        "cpu" => return Ok(Device::Cpu),
        "auto" => {
            return Ok(if Cuda::is_available() {
                Device::Cuda(0)
            } else {
                Device::Cpu
            })
        }
        "cuda" | "gpu" => 0,
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => i,
            _ => return Err(RuntimeError::UnknownDevice(s.to_string())),
        },
    };
    if !Cuda::is_available() {
        return Err(RuntimeError::DeviceUnavailable {
            requested: s.to_string(),
            reason: "libtorch found no CUDA device (use --device cpu or auto)".into(),
        });
    }
    let count = Cuda::device_count().max(0) as usize;
    if index >= count {
        return Err(RuntimeError::DeviceUnavailable {
            requested: s.to_string(),
            reason: format!(
                "there {} {count} CUDA device{} (cuda:0..cuda:{})",
                if count == 1 { "is" } else { "are" },
                if count == 1 { "" } else { "s" },
                count.saturating_sub(1)
            ),
        });
    }
    Ok(Device::Cuda(index))
}

/// Floating-point type the network computes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DType {
    /// 32-bit floats (every device).
    #[default]
    F32,
    /// IEEE half precision (CUDA only).
    F16,
    /// bfloat16 (CUDA only).
    BF16,
}

impl DType {
    /// Parses `f32`, `f16` or `bf16` (also `float32`, `half`, `float16`, `bfloat16`).
    pub fn parse(s: &str) -> Result<DType, RuntimeError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" | "float" | "fp32" => Ok(DType::F32),
            "f16" | "float16" | "half" | "fp16" => Ok(DType::F16),
            "bf16" | "bfloat16" => Ok(DType::BF16),
            _ => Err(RuntimeError::UnknownDtype(s.to_string())),
        }
    }

    /// The libtorch kind.
    pub fn kind(self) -> Kind {
        match self {
            DType::F32 => Kind::Float,
            DType::F16 => Kind::Half,
            DType::BF16 => Kind::BFloat16,
        }
    }

    /// Checks that this dtype can run on `device`: half types need CUDA.
    pub fn check_device(self, device: Device) -> Result<(), RuntimeError> {
        match (self, device) {
            (DType::F32, _) | (_, Device::Cuda(_)) => Ok(()),
            (dtype, device) => Err(RuntimeError::DtypeOnDevice { dtype, device }),
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        })
    }
}

impl std::str::FromStr for DType {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DType::parse(s)
    }
}

/// A device in the words `--device` uses (`cpu`, `cuda:0`).
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_dtypes() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device(" CPU ").unwrap(), Device::Cpu);
        assert!(matches!(
            parse_device("tpu"),
            Err(RuntimeError::UnknownDevice(_))
        ));
        assert!(matches!(
            parse_device("cuda:x"),
            Err(RuntimeError::UnknownDevice(_))
        ));
        if !Cuda::is_available() {
            assert_eq!(parse_device("auto").unwrap(), Device::Cpu);
            assert!(matches!(
                parse_device("cuda:1"),
                Err(RuntimeError::DeviceUnavailable { .. })
            ));
            assert!(matches!(
                parse_device("cuda"),
                Err(RuntimeError::DeviceUnavailable { .. })
            ));
        }
        assert_eq!(DType::parse("bf16").unwrap(), DType::BF16);
        assert_eq!(DType::parse("half").unwrap(), DType::F16);
        assert!(DType::parse("f8").is_err());
        assert!(DType::F16.check_device(Device::Cpu).is_err());
        assert!(DType::BF16.check_device(Device::Cuda(0)).is_ok());
        assert!(DType::F32.check_device(Device::Cpu).is_ok());
    }
}
