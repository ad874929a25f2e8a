//! The one place fused kernels call real transcendental functions (exp, log, sin, cos,
//! tanh, rsqrt, expm1, log1p) over a tile: the branch-free vectorised kernels of
//! [`crate::vmath`] (within 2 ulp of the standard library).

use crate::vmath;
use tenferro_ir::UnaryOp;

/// `true` for the real unary ops routed through this module.
pub(crate) fn is_transcendental(u: UnaryOp) -> bool {
    matches!(
        u,
        UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Sin
            | UnaryOp::Cos
            | UnaryOp::Tanh
            | UnaryOp::Rsqrt
            | UnaryOp::Expm1
            | UnaryOp::Log1p
    ) && vmath::is_vectorised(u)
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
