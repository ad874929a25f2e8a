//! Vectorised, branch-free math kernels for the real unary ops on f64 and f32 slices.
//!
//! Every kernel is a loop over a lane function with no data-dependent branch (an `if` is
//! only a select between two computed values), so LLVM vectorises it. The loops are
//! compiled several times: inside `#[target_feature]` functions for AVX-512 (8 f64 lanes)
//! and for AVX2+FMA (4 lanes), chosen at run time by [`Isa::detect`], and for the baseline
//! target as the portable fallback. Fused multiply-adds are explicit `mul_add`s, so every
//! build gives identical bits. Where the baseline build's `mul_add` would be a libm call
//! (x86-64 without FMA: a software fma), `detect` picks [`Isa::Std`] instead.
//!
//! Tiers: exp, sin, cos and tanh check each block of 64 elements once and run a shorter
//! kernel when every lane lies in its range (the other blocks take the general kernel,
//! and sin/cos lanes beyond 2^30 take std). A tier may change the last bit of a result, so
//! an element's result can depend on the other elements of its 64-element block; every
//! tier meets the accuracy contract, and the same slice always gives the same bits.
//!
//! Schemes (coefficients fitted by `fit_coeffs.py`, see `coeffs.rs`):
//! - `exp`: Cody–Waite reduction `x = n ln2 + r` (FMA, two constants), `e^r = 1 + r +
//!   r² P(r)` with P of degree 9, scaling by `2^n` built in the exponent bits and applied
//!   in the last FMA. Blocks with some |x| > 708 use a variant that scales in two steps
//!   (overflow to inf, results rounded once into the subnormals).
//! - `expm1`: the same reduction with a degree-10 polynomial and the rounding errors of
//!   the last steps recovered exactly.
//! - `log`, `log1p`: `x = 2^k m`, m in [√½, √2), `s = f/(2+f)`, `log(1+f) = f - f²/2 +
//!   s (f²/2 + R(s²))`; `log1p` adds the rounding error of `1 + x` as a correction.
//! - `sin`, `cos`: reduction by π/2, both quadrant polynomials, a select by quadrant.
//!   Short tier (all |x| <= 2^20): three Cody–Waite constants in plain FMAs (remainder
//!   within about 1 ulp). General tier (|x| <= 2^30): three constants with the remainder
//!   kept as a double-double. Beyond (and ±inf): std, only for the lanes that need it.
//!   [`sincos_f64`] gives both from one reduction.
//! - `tanh`: `-e / (2 + e)` with `e = expm1(-2|x|)` as a double-double, one FMA
//!   correction of the quotient; the short tier (all |x| <= 19) skips the clamp and the
//!   tiny-argument select.
//! - `erf`: |x| < 1: `x + x y(x²)` (one FMA); 1 <= |x| <= 6: `1 - e^{-x²} P(|x| - 3.5)`
//!   with `x²` split exactly; beyond, ±1. Short tier: blocks with every |x| < 1.
//! - `erfc` (f32 only): `1 - erf` for |x| < 1, else `e^{-x²} t Q(t)`, `t = 2/(2+|x|)`
//!   (and `2 - erfc(|x|)` for negative x). f64 erfc runs the op table's semantics.
//! - `logistic`: `1/(1+e)` or `e/(1+e)` with `e = e^{-|x|}` (no overflow) as a
//!   double-double, the quotient corrected with an FMA residual; below -708, `e^x`. Short
//!   tier: blocks with every |x| <= 708.
//! - every other op: a loop over the op table's semantics (the same bits as std).
//! - f32: computed in f64 with shorter polynomials and rounded once.
//!
//! Accuracy (tested in `tests/integration/vmath_accuracy.rs`, including every tier and its
//! boundaries): within 2 ulp of the op table's scalar semantics (Rust's std functions,
//! libm's erf and erfc) over the whole domain, including ±0, ±inf, NaN, subnormals,
//! overflow and underflow.
//!
//! Modules: `isa` (the builds), `coeffs`, the lane kernels `f64` and `f32` (which uses
//! `f64`'s building blocks), and `dispatch` (the slice drivers per build, importing those);
//! this facade imports them all and none imports it.

mod coeffs;
mod dispatch;
pub mod f32;
pub mod f64;
mod isa;
pub(crate) use dispatch::TableLoop;
pub use isa::{has_polynomial_kernel, Isa};

use tenferro_ir::UnaryOp;

fn check_lengths(op: UnaryOp, src: usize, dst: usize) {
    assert_eq!(
        src, dst,
        "vmath {op:?}: source has {src} elements but destination has {dst}"
    );
}

/// `dst[i] = op(src[i])` on f64, with the fastest build for this CPU.
///
/// # Panics
/// If `dst.len() != src.len()`.
pub fn unary_f64(op: UnaryOp, src: &[f64], dst: &mut [f64]) {
    unary_f64_on(Isa::detect(), op, src, dst)
}

/// `dst[i] = op(src[i])` on f32, with the fastest build for this CPU.
///
/// # Panics
/// If `dst.len() != src.len()`.
pub fn unary_f32(op: UnaryOp, src: &[f32], dst: &mut [f32]) {
    unary_f32_on(Isa::detect(), op, src, dst)
}

/// `buf[i] = op(buf[i])` on f64.
pub fn unary_f64_inplace(op: UnaryOp, buf: &mut [f64]) {
    unary_f64_inplace_on(Isa::detect(), op, buf)
}

/// `buf[i] = op(buf[i])` on f32.
pub fn unary_f32_inplace(op: UnaryOp, buf: &mut [f32]) {
    unary_f32_inplace_on(Isa::detect(), op, buf)
}

/// [`unary_f64`] with a chosen build (falls back to [`Isa::Portable`] if `isa` is not
/// available); for tests and benchmarks.
pub fn unary_f64_on(isa: Isa, op: UnaryOp, src: &[f64], dst: &mut [f64]) {
    check_lengths(op, src.len(), dst.len());
    dispatch::f64_on(isa.or_portable(), op, src, dst)
}

/// [`unary_f32`] with a chosen build (see [`unary_f64_on`]).
pub fn unary_f32_on(isa: Isa, op: UnaryOp, src: &[f32], dst: &mut [f32]) {
    check_lengths(op, src.len(), dst.len());
    dispatch::f32_on(isa.or_portable(), op, src, dst)
}

/// [`unary_f64_inplace`] with a chosen build (see [`unary_f64_on`]).
pub fn unary_f64_inplace_on(isa: Isa, op: UnaryOp, buf: &mut [f64]) {
    dispatch::f64_inplace_on(isa.or_portable(), op, buf)
}

/// [`unary_f32_inplace`] with a chosen build (see [`unary_f64_on`]).
pub fn unary_f32_inplace_on(isa: Isa, op: UnaryOp, buf: &mut [f32]) {
    dispatch::f32_inplace_on(isa.or_portable(), op, buf)
}

/// `sin_dst[i] = sin(src[i])`, `cos_dst[i] = cos(src[i])` from one argument reduction:
/// the same bits as [`unary_f64`] with `Sin` and `Cos`, for about the cost of one.
///
/// # Panics
/// If the three lengths differ.
pub fn sincos_f64(src: &[f64], sin_dst: &mut [f64], cos_dst: &mut [f64]) {
    sincos_f64_on(Isa::detect(), src, sin_dst, cos_dst)
}

/// f32 [`sincos_f64`].
pub fn sincos_f32(src: &[f32], sin_dst: &mut [f32], cos_dst: &mut [f32]) {
    sincos_f32_on(Isa::detect(), src, sin_dst, cos_dst)
}

/// [`sincos_f64`] with a chosen build (see [`unary_f64_on`]).
pub fn sincos_f64_on(isa: Isa, src: &[f64], sin_dst: &mut [f64], cos_dst: &mut [f64]) {
    check_lengths(UnaryOp::Sin, src.len(), sin_dst.len());
    check_lengths(UnaryOp::Cos, src.len(), cos_dst.len());
    dispatch::sincos_f64_on(isa.or_portable(), src, sin_dst, cos_dst)
}

/// [`sincos_f32`] with a chosen build (see [`unary_f64_on`]).
pub fn sincos_f32_on(isa: Isa, src: &[f32], sin_dst: &mut [f32], cos_dst: &mut [f32]) {
    check_lengths(UnaryOp::Sin, src.len(), sin_dst.len());
    check_lengths(UnaryOp::Cos, src.len(), cos_dst.len());
    dispatch::sincos_f32_on(isa.or_portable(), src, sin_dst, cos_dst)
}
