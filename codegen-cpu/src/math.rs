//! The one place fused kernels call real transcendental functions over a tile: the
//! branch-free vectorised kernels of [`crate::vmath`] (within 2 ulp of the standard library).
//! Imports only `vmath`; `schedule` and the tile kernels import it.

use crate::vmath;
use tenferro_ir::{DType, UnaryOp};

/// `true` for the real unary ops routed through this module on `dtype`: those with a
/// polynomial kernel in vmath. Every other op runs on the op table's scalar semantics.
pub(crate) fn is_transcendental(u: UnaryOp, dtype: DType) -> bool {
    vmath::has_polynomial_kernel(u, dtype)
}

/// `dst[i] = u(src[i])` (equal lengths).
pub(crate) fn unary_f64(u: UnaryOp, src: &[f64], dst: &mut [f64]) {
    vmath::unary_f64(u, src, dst)
}

/// `dst[i] = u(src[i])` (equal lengths).
pub(crate) fn unary_f32(u: UnaryOp, src: &[f32], dst: &mut [f32]) {
    vmath::unary_f32(u, src, dst)
}

/// `buf[i] = u(buf[i])`.
pub(crate) fn unary_f64_inplace(u: UnaryOp, buf: &mut [f64]) {
    vmath::unary_f64_inplace(u, buf)
}

/// `buf[i] = u(buf[i])`.
pub(crate) fn unary_f32_inplace(u: UnaryOp, buf: &mut [f32]) {
    vmath::unary_f32_inplace(u, buf)
}

/// `s[i] = sin(x[i])`, `c[i] = cos(x[i])` (equal lengths): the same bits as `Sin` and `Cos`
/// through [`unary_f64`], from one argument reduction.
pub(crate) fn sincos_f64(x: &[f64], s: &mut [f64], c: &mut [f64]) {
    vmath::sincos_f64(x, s, c)
}

/// f32 [`sincos_f64`].
pub(crate) fn sincos_f32(x: &[f32], s: &mut [f32], c: &mut [f32]) {
    vmath::sincos_f32(x, s, c)
}

/// How far (in ulps of the result) a fused kernel of `u` on `dtype` may be from the op
/// table's scalar semantics, which the reference evaluator and the unfused kernels use:
/// 2 for the vmath polynomial kernels (exp, log, sin, cos, tanh, expm1, log1p, erf and
/// logistic on f32 and f64, erfc on f32; see [`vmath::has_polynomial_kernel`]) and the
/// complex `abs` / `sign` (a vectorised `sqrt(re² + im²)` instead of `hypot`), 0 (same
/// bits) for every other op.
pub fn fused_ulps(u: UnaryOp, dtype: DType) -> u32 {
    let poly = is_transcendental(u, dtype);
    let complex_norm = dtype.is_complex() && matches!(u, UnaryOp::Abs | UnaryOp::Sign);
    if poly || complex_norm {
        2
    } else {
        0
    }
}
