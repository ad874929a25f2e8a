//! Branch-free f32 lane kernels. Each widens to f64, runs the f64 scheme with shorter
//! polynomials (relative error below 2^-31, see `coeffs.rs`) and rounds once back to f32,
//! so f32 subnormals, overflow and underflow need no special handling: the final `as f32`
//! rounds them correctly.

use super::coeffs::{COS_C_F32, ERFC_Q_F32, ERF_Y_F32, EXP_Q_F32, LOG_T_F32, SIN_S_F32};
use super::f64::{
    by_quadrant, clamp_keep_nan, log_core, log_edges, poly, pow2i, round_int, FRAC_2_PI, LN2_HI,
    LN2_LO, LOG2E, PIO2_1, PIO2_2, SHIFT,
};

/// Largest |x| the f32 sin/cos fast path reduces; larger arguments go to std.
pub const SINCOS_FAST_LIMIT: f32 = 1073741824.0; // 2^30

/// The short sin/cos tier of f32 is the fast kernel (its reduction is already short).
pub const SINCOS_SHORT_LIMIT: f32 = SINCOS_FAST_LIMIT;

/// sin, short tier: [`sin_fast`].
#[inline(always)]
pub fn sin_short(x: f32) -> f32 {
    sin_fast(x)
}

/// cos, short tier: [`cos_fast`].
#[inline(always)]
pub fn cos_short(x: f32) -> f32 {
    cos_fast(x)
}

/// sincos, short tier: [`sincos_fast`].
#[inline(always)]
pub fn sincos_short(x: f32) -> (f32, f32) {
    sincos_fast(x)
}

/// `e^x - 1` in f64 for |x| <= 30-ish arguments coming from f32 (no tiny-x fix-up).
#[inline(always)]
fn expm1_wide(x: f64) -> f64 {
    let xc = clamp_keep_nan(x, -30.0, 100.0);
    let n = round_int(xc * LOG2E);
    let r = (-n).mul_add(LN2_HI, xc);
    let r = (-n).mul_add(LN2_LO, r);
    let em = (r * r).mul_add(poly(r, &EXP_Q_F32), r);
    let scale = pow2i(n);
    scale.mul_add(em, scale - 1.0)
}

/// `e^x` in f64 to about 2^-31 relative, for `x` in [-1022 ln 2, 1023 ln 2] (or NaN).
#[inline(always)]
fn exp_wide(x: f64) -> f64 {
    let n = round_int(x * LOG2E);
    let r = (-n).mul_add(LN2_HI, x);
    let r = (-n).mul_add(LN2_LO, r);
    let p = (r * r).mul_add(poly(r, &EXP_Q_F32), r);
    (1.0 + p) * pow2i(n)
}

/// `e^x`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_wide(clamp_keep_nan(x as f64, -150.0, 100.0)) as f32
}

/// Largest |x| for [`exp_fast`].
pub const EXP_FAST_LIMIT: f32 = 100.0;

/// `e^x` for |x| <= [`EXP_FAST_LIMIT`] (and NaN): [`exp`] without the clamp.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    exp_wide(x as f64) as f32
}

/// `e^x - 1`.
#[inline(always)]
pub fn expm1(x: f32) -> f32 {
    let y = expm1_wide(x as f64) as f32;
    if x == 0.0 {
        x
    } else {
        y
    }
}

/// Natural logarithm.
#[inline(always)]
pub fn log(x: f32) -> f32 {
    let xw = x as f64;
    let y = log_core(xw, 0.0, 0.0, &LOG_T_F32);
    log_edges(xw, 0.0, y) as f32
}

/// `ln(1 + x)`.
#[inline(always)]
pub fn log1p(x: f32) -> f32 {
    let xw = x as f64;
    let u = 1.0 + xw;
    let c = (xw - (u - 1.0)) / u;
    let y = log_core(u, c, 0.0, &LOG_T_F32);
    let y = log_edges(xw, -1.0, y) as f32;
    if x == 0.0 {
        x
    } else {
        y
    }
}

/// `(sin r, cos r, quadrant)` of `x = n π/2 + r`, two-constant reduction (exact enough for
/// f32 results when |x| <= [`SINCOS_FAST_LIMIT`]).
#[inline(always)]
fn sincos_wide(x: f64) -> (f64, f64, u64) {
    let t = x.mul_add(FRAC_2_PI, SHIFT);
    let n = t - SHIFT;
    let r = (-n).mul_add(PIO2_1, x);
    let r = (-n).mul_add(PIO2_2, r);
    let z = r * r;
    let s = (r * z).mul_add(poly(z, &SIN_S_F32), r);
    let c = (z * z).mul_add(poly(z, &COS_C_F32), (-0.5f64).mul_add(z, 1.0));
    (s, c, t.to_bits())
}

/// sin for |x| <= [`SINCOS_FAST_LIMIT`] (and NaN); larger inputs must take the std path.
#[inline(always)]
pub fn sin_fast(x: f32) -> f32 {
    let (s, c, q) = sincos_wide(x as f64);
    let y = by_quadrant(q, s, c) as f32;
    if x == 0.0 {
        x
    } else {
        y
    }
}

/// `(sin x, cos x)` for |x| <= [`SINCOS_FAST_LIMIT`] (and NaN) from one reduction; the
/// same bits as [`sin_fast`] and [`cos_fast`].
#[inline(always)]
pub fn sincos_fast(x: f32) -> (f32, f32) {
    let (s, c, q) = sincos_wide(x as f64);
    let sin = by_quadrant(q, s, c) as f32;
    let sin = if x == 0.0 { x } else { sin };
    (sin, by_quadrant(q.wrapping_add(1), s, c) as f32)
}

/// cos for |x| <= [`SINCOS_FAST_LIMIT`] (and NaN); larger inputs must take the std path.
#[inline(always)]
pub fn cos_fast(x: f32) -> f32 {
    let (s, c, q) = sincos_wide(x as f64);
    by_quadrant(q.wrapping_add(1), s, c) as f32
}

/// The short tanh tier of f32 is the single kernel.
pub const TANH_SHORT_LIMIT: f32 = f32::INFINITY;

/// tanh, short tier: [`tanh`].
#[inline(always)]
pub fn tanh_short(x: f32) -> f32 {
    tanh(x)
}

/// `tanh x = -e / (2 + e)` with `e = expm1(-2|x|)`, in f64, sign restored.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = clamp_keep_nan((x as f64).abs(), 0.0, 20.0);
    let e = expm1_wide(-2.0 * a);
    let t = (-e / (2.0 + e)) as f32;
    t.copysign(x)
}

/// The short erf tier of f32 is the single kernel.
pub const ERF_SHORT_LIMIT: f32 = f32::INFINITY;

/// erf, short tier: [`erf`].
#[inline(always)]
pub fn erf_short(x: f32) -> f32 {
    erf(x)
}

/// `erf(x) = x + x y(x²)` in f64 for |x| < 1.
#[inline(always)]
fn erf_small_wide(x: f64) -> f64 {
    x.mul_add(poly(x * x, &ERF_Y_F32), x)
}

/// `erfc(a)` in f64 for `1 <= a <= 11` (or NaN), to about 2^-30 relative:
/// `e^{-a²} t Q(t - 16/39)` with `t = 2 / (2 + a)` (`a²` is exact for an f32 `a`).
#[inline(always)]
fn erfc_tail_wide(a: f64) -> f64 {
    let t = 2.0 / (2.0 + a);
    exp_wide(-a * a) * t * poly(t - 16.0 / 39.0, &ERFC_Q_F32)
}

/// The error function, in f64 and rounded once: [`erf_small_wide`] for |x| < 1, else
/// `±(1 - erfc(|x|))` with |x| clamped to 11 (where it rounds to ±1).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let xw = x as f64;
    let tail = (1.0 - erfc_tail_wide(clamp_keep_nan(xw.abs(), 1.0, 11.0))).copysign(xw);
    let y = if xw.abs() < 1.0 {
        erf_small_wide(xw)
    } else {
        tail
    };
    y as f32
}

/// The complementary error function, in f64 and rounded once (so the tail keeps f32's
/// relative accuracy down into its subnormals): `1 - erf(x)` for |x| < 1, else
/// `erfc(|x|)` or `2 - erfc(|x|)` with |x| clamped to 11 (where erfc rounds to 0 or 2).
#[inline(always)]
pub fn erfc(x: f32) -> f32 {
    let xw = x as f64;
    let tail = erfc_tail_wide(clamp_keep_nan(xw.abs(), 1.0, 11.0));
    let tail = if xw < 0.0 { 2.0 - tail } else { tail };
    let y = if xw.abs() < 1.0 {
        1.0 - erf_small_wide(xw)
    } else {
        tail
    };
    y as f32
}

/// The short logistic tier of f32 is the single kernel.
pub const LOGISTIC_SHORT_LIMIT: f32 = f32::INFINITY;

/// logistic, short tier: [`logistic`].
#[inline(always)]
pub fn logistic_short(x: f32) -> f32 {
    logistic(x)
}

/// The logistic sigmoid, in f64 and rounded once: `1 / (1 + e)` or `e / (1 + e)` with
/// `e = e^{-|x|}` (argument clamped to -150, where the result rounds to 0).
#[inline(always)]
pub fn logistic(x: f32) -> f32 {
    let xw = x as f64;
    let e = exp_wide(clamp_keep_nan(-xw.abs(), -150.0, 0.0));
    let num = if xw < 0.0 { e } else { 1.0 };
    (num / (1.0 + e)) as f32
}
