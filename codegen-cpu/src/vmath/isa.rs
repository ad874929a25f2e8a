//! The instruction-set builds of the kernels ([`Isa`]) and which ops have a polynomial
//! kernel. Imports no other vmath module; `dispatch` and the vmath facade import it.

use tenferro_ir::{DType, UnaryOp};

/// An instruction-set build of the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// x86-64 with AVX-512 (F, DQ, VL) and FMA: the AVX2 kernels on 512-bit vectors.
    Avx512,
    /// x86-64 with AVX2 and FMA.
    Avx2Fma,
    /// The baseline build for the compilation target.
    Portable,
    /// Rust's std functions element by element for the transcendentals (the other ops as
    /// in [`Isa::Portable`]): what [`Isa::detect`] picks where the baseline build has no
    /// hardware FMA, since there every `mul_add` of the portable build is a libm call
    /// (a software fma without FMA hardware), several times slower than std.
    Std,
}

impl Isa {
    /// The fastest build this CPU runs: AVX2+FMA if available, else the portable build
    /// where it compiles `mul_add` to an FMA instruction, else std.
    pub fn detect() -> Isa {
        if Isa::Avx512.is_available() {
            Isa::Avx512
        } else if Isa::Avx2Fma.is_available() {
            Isa::Avx2Fma
        } else if PORTABLE_HAS_FMA {
            Isa::Portable
        } else {
            Isa::Std
        }
    }

    /// Whether this CPU can run the build.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable | Isa::Std => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512dq")
                    && is_x86_feature_detected!("avx512vl")
                    && Isa::Avx2Fma.is_available()
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2Fma | Isa::Avx512 => false,
        }
    }

    /// `self` if available, else [`Isa::Portable`].
    pub(super) fn or_portable(self) -> Isa {
        if self.is_available() {
            self
        } else {
            Isa::Portable
        }
    }
}

/// Whether the portable build's `mul_add` is an inline FMA instruction (rather than a call
/// to libm's `fma`).
const PORTABLE_HAS_FMA: bool = cfg!(any(target_arch = "aarch64", target_feature = "fma"));

/// Whether `op` on `dtype` (f32 or f64) has a polynomial kernel here, faster than a loop
/// over the scalar function. Fused kernels route exactly these ops here; any other op runs
/// as a loop over the op table's semantics. (erfc has an f32 kernel only: f64 erfc needs
/// relative accuracy in its tail that this scheme does not reach within 2 ulp.)
pub fn has_polynomial_kernel(op: UnaryOp, dtype: DType) -> bool {
    let real = matches!(dtype, DType::F32 | DType::F64);
    match op {
        UnaryOp::Exp
        | UnaryOp::Log
        | UnaryOp::Sin
        | UnaryOp::Cos
        | UnaryOp::Tanh
        | UnaryOp::Expm1
        | UnaryOp::Log1p
        | UnaryOp::Erf
        | UnaryOp::Logistic => real,
        UnaryOp::Erfc => dtype == DType::F32,
        _ => false,
    }
}
