//! The one place fused kernels call real transcendental functions (exp, log, sin, cos,
//! tanh, rsqrt, expm1, log1p) over a tile. Until the vectorised `vmath` module lands this
//! is a tight per-element loop over the standard library, bit-identical to the reference
//! evaluator.

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
    )
}

macro_rules! std_unary {
    ($name:ident, $inplace:ident, $t:ty) => {
        /// `dst[i] = u(src[i])` for a transcendental `u` (see [`is_transcendental`]).
        pub(crate) fn $name(u: UnaryOp, src: &[$t], dst: &mut [$t]) {
            let f: fn($t) -> $t = scalar_fn!(u, $t);
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = f(x);
            }
        }

        /// `buf[i] = u(buf[i])` for a transcendental `u`.
        pub(crate) fn $inplace(u: UnaryOp, buf: &mut [$t]) {
            let f: fn($t) -> $t = scalar_fn!(u, $t);
            for d in buf.iter_mut() {
                *d = f(*d);
            }
        }
    };
}

macro_rules! scalar_fn {
    ($u:expr, $t:ty) => {
        match $u {
            UnaryOp::Exp => <$t>::exp,
            UnaryOp::Log => <$t>::ln,
            UnaryOp::Sin => <$t>::sin,
            UnaryOp::Cos => <$t>::cos,
            UnaryOp::Tanh => <$t>::tanh,
            UnaryOp::Rsqrt => |x: $t| 1.0 / x.sqrt(),
            UnaryOp::Expm1 => <$t>::exp_m1,
            UnaryOp::Log1p => <$t>::ln_1p,
            // Callers route only transcendentals here; the identity keeps this total.
            _ => |x: $t| x,
        }
    };
}

std_unary!(unary_f64, unary_f64_inplace, f64);
std_unary!(unary_f32, unary_f32_inplace, f32);
