//! Backend aliases and run-time device selection.
//!
//! | alias | backend | feature |
//! |---|---|---|
//! | [`Cpu`] | `NdArray` (measured faster than Flex on the mini encoder, see `docs/parity.md`), or `Flex` when `ndarray` is off | `ndarray` (default) / `flex` (default) |
//! | [`CpuAutodiff`] | `Autodiff<Cpu>` | same |
//! | `Wgpu` / `WgpuAutodiff` | `burn::backend::Wgpu` | `wgpu` |
//! | `Cuda` / `CudaAutodiff` | `burn::backend::Cuda` | `cuda` |

use crate::precision::Precision;
use std::str::FromStr;

use crate::error::Error;

/// The default CPU backend: NdArray.
#[cfg(feature = "ndarray")]
pub type Cpu = burn::backend::NdArray;
/// The default CPU backend: Flex (the `ndarray` feature is off).
#[cfg(all(not(feature = "ndarray"), feature = "flex"))]
pub type Cpu = burn::backend::Flex;

/// The default CPU backend with automatic differentiation (training).
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub type CpuAutodiff = burn::backend::Autodiff<Cpu>;

/// The NdArray CPU backend.
#[cfg(feature = "ndarray")]
pub type NdArray = burn::backend::NdArray;
/// The NdArray CPU backend with automatic differentiation.
#[cfg(feature = "ndarray")]
pub type NdArrayAutodiff = burn::backend::Autodiff<NdArray>;

/// The Flex CPU backend (pure Rust).
#[cfg(feature = "flex")]
pub type Flex = burn::backend::Flex;
/// The Flex CPU backend with automatic differentiation.
#[cfg(feature = "flex")]
pub type FlexAutodiff = burn::backend::Autodiff<Flex>;

/// The wgpu GPU backend.
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu;
/// The wgpu GPU backend with automatic differentiation.
#[cfg(feature = "wgpu")]
pub type WgpuAutodiff = burn::backend::Autodiff<Wgpu>;

/// The CUDA GPU backend.
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;
/// The CUDA GPU backend with automatic differentiation.
#[cfg(feature = "cuda")]
pub type CudaAutodiff = burn::backend::Autodiff<Cuda>;

/// A device family chosen at run time (`--device cpu|flex|ndarray|wgpu|cuda`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// [`Cpu`] (the default CPU backend).
    Cpu,
    /// [`Flex`] explicitly (feature `flex`).
    Flex,
    /// [`NdArray`] explicitly (feature `ndarray`).
    NdArray,
    /// `Wgpu` (feature `wgpu`).
    Wgpu,
    /// `Cuda` (feature `cuda`).
    Cuda,
}

impl DeviceKind {
    /// Whether the backend of this kind is compiled into this build.
    pub fn is_compiled(self) -> bool {
        match self {
            DeviceKind::Cpu => cfg!(any(feature = "flex", feature = "ndarray")),
            DeviceKind::Flex => cfg!(feature = "flex"),
            DeviceKind::NdArray => cfg!(feature = "ndarray"),
            DeviceKind::Wgpu => cfg!(feature = "wgpu"),
            DeviceKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// Whether this backend computes in `precision` ([`crate::precision`]): every backend in
    /// f32; bf16 and f16 on Flex and CUDA; f16 on wgpu (WGSL has no bf16; the adapter must
    /// support f16); not NdArray (f32 and f64 only), nor [`Cpu`] when it is NdArray.
    pub fn supports(self, precision: Precision) -> bool {
        let half = match self {
            DeviceKind::Cpu => !cfg!(feature = "ndarray"),
            DeviceKind::NdArray => false,
            DeviceKind::Flex | DeviceKind::Cuda => true,
            DeviceKind::Wgpu => precision == Precision::F16,
        };
        precision == Precision::F32 || half
    }

    /// The lowercase name (`cpu`, `flex`, `ndarray`, `wgpu`, `cuda`).
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Flex => "flex",
            DeviceKind::NdArray => "ndarray",
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Cuda => "cuda",
        }
    }

    fn feature(self) -> &'static str {
        match self {
            DeviceKind::Cpu | DeviceKind::NdArray => "ndarray",
            DeviceKind::Flex => "flex",
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Cuda => "cuda",
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceKind {
    type Err = Error;

    /// Parses `cpu`, `flex`, `ndarray`, `wgpu` or `cuda` (case-insensitive); errors if the name is unknown or its
    /// backend feature is not compiled in.
    fn from_str(s: &str) -> Result<Self, Error> {
        let kind = match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => DeviceKind::Cpu,
            "flex" => DeviceKind::Flex,
            "ndarray" => DeviceKind::NdArray,
            "wgpu" => DeviceKind::Wgpu,
            "cuda" => DeviceKind::Cuda,
            _ => return Err(Error::UnknownDevice(s.to_string())),
        };
        if !kind.is_compiled() {
            return Err(Error::BackendNotCompiled {
                device: kind.name(),
                feature: kind.feature(),
            });
        }
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_only_where_the_backend_has_half_tensors() {
        use DeviceKind::*;
        for kind in [Cpu, Flex, NdArray, Wgpu, Cuda] {
            assert!(kind.supports(Precision::F32), "{kind:?}");
        }
        for precision in [Precision::Bf16, Precision::F16] {
            assert!(!NdArray.supports(precision));
            assert!(Flex.supports(precision) && Cuda.supports(precision));
            assert_eq!(Cpu.supports(precision), !cfg!(feature = "ndarray"));
        }
        assert!(Wgpu.supports(Precision::F16) && !Wgpu.supports(Precision::Bf16));
    }

    #[test]
    fn parses_cpu_and_rejects_unknown() {
        assert_eq!("cpu".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        assert_eq!(" CPU ".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        #[cfg(feature = "flex")]
        assert_eq!("flex".parse::<DeviceKind>().unwrap(), DeviceKind::Flex);
        #[cfg(feature = "ndarray")]
        assert_eq!(
            "NdArray".parse::<DeviceKind>().unwrap(),
            DeviceKind::NdArray
        );
        let err = "tpu".parse::<DeviceKind>().unwrap_err();
        assert!(err.to_string().contains("tpu"), "{err}");
    }

    #[test]
    fn uncompiled_backend_is_a_clear_error() {
        for (name, compiled) in [
            ("wgpu", cfg!(feature = "wgpu")),
            ("cuda", cfg!(feature = "cuda")),
        ] {
            let parsed = name.parse::<DeviceKind>();
            if compiled {
                assert!(parsed.is_ok());
            } else {
                let msg = parsed.unwrap_err().to_string();
                assert!(msg.contains(&format!("`{name}` feature")), "{msg}");
            }
        }
    }
}
