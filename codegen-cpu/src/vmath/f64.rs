//! Branch-free f64 lane kernels: one element in, one element out, written so that a loop
//! over them vectorises (no data-dependent branches; `if` only as a select between two
//! already computed values; integer work only on the bit patterns; every fused
//! multiply-add is an explicit `mul_add`, so results are the same on every ISA).
//!
//! Shared building blocks are also used by the f32 kernels ([`super::f32`]), which compute
//! in f64 with shorter polynomials.

use super::coeffs::{COS_C_F64, ERFC_P_F64, ERF_Y_F64, EXP_P_F64, EXP_Q_F64, LOG_T_F64, SIN_S_F64};

/// `1.5 * 2^52`: adding it rounds a float of magnitude < 2^51 to an integer, which then
/// sits in the low mantissa bits (two's complement for negatives).
pub(super) const SHIFT: f64 = 6755399441055744.0;
pub(super) const LOG2E: f64 = std::f64::consts::LOG2_E;
/// ln 2 rounded to f64 and the rest, for Cody–Waite reduction with FMA (the first step
/// `x - n*LN2_HI` is exact for every `n` the kernels produce).
pub(super) const LN2_HI: f64 = std::f64::consts::LN_2;
pub(super) const LN2_LO: f64 = 2.3190468138462996e-17;
/// ln 2 with 21 trailing zero bits, so `k * LN2_HI_SHORT` is exact for |k| < 2^21.
pub(super) const LN2_HI_SHORT: f64 = 0.6931471803691238;
pub(super) const LN2_LO_SHORT: f64 = 1.9082149292705877e-10;
/// π/2 as the sum of three f64 (Cody–Waite constants for the sin/cos reduction).
pub(super) const PIO2_1: f64 = std::f64::consts::FRAC_PI_2;
pub(super) const PIO2_2: f64 = 6.123233995736766e-17;
pub(super) const PIO2_3: f64 = -1.4973849048591698e-33;
pub(super) const FRAC_2_PI: f64 = std::f64::consts::FRAC_2_PI;
/// Largest |x| the sin/cos fast path reduces; larger arguments (and ±inf) go to std.
pub const SINCOS_FAST_LIMIT: f64 = 1073741824.0; // 2^30

/// `c[0] + c[1] t + ... + c[N-1] t^(N-1)` by Estrin's scheme: pairs `c[2i] + c[2i+1] t`,
/// then pairs of those with `t^2`, `t^4`, ...: the same number of FMAs as Horner but a
/// dependency chain of depth log2(N), which keeps more vectors in flight.
#[inline(always)]
pub(super) fn poly<const N: usize>(t: f64, c: &[f64; N]) -> f64 {
    let mut v = *c;
    let mut len = N;
    let mut p = t;
    while len > 1 {
        let half = len.div_ceil(2);
        for i in 0..half {
            v[i] = if 2 * i + 1 < len {
                v[2 * i + 1].mul_add(p, v[2 * i])
            } else {
                v[2 * i]
            };
        }
        len = half;
        p = p * p;
    }
    v[0]
}

/// `2^k` for an integral `k` in [-1022, 1023] held as a float: the integer lands in the
/// low mantissa bits of `k + 2^52 + 1023`, and shifting them into the exponent field
/// builds the power (no float→int conversion, which AVX2 lacks for 64-bit lanes).
#[inline(always)]
pub(super) fn pow2i(k: f64) -> f64 {
    f64::from_bits((k + (4503599627370496.0 + 1023.0)).to_bits() << 52)
}

/// Round to the nearest integer (ties to even) for |t| < 2^51, as a float.
#[inline(always)]
pub(super) fn round_int(t: f64) -> f64 {
    (t + SHIFT) - SHIFT
}

/// `x` clamped to `[lo, hi]`, NaN kept (a compare with NaN is false, so NaN passes).
#[inline(always)]
pub(super) fn clamp_keep_nan(x: f64, lo: f64, hi: f64) -> f64 {
    let x = if x > hi { hi } else { x };
    if x < lo {
        lo
    } else {
        x
    }
}

/// `e^x`. Reduction `x = n ln2 + r`, |r| <= ln2/2 (+ a rounding margin), `e^r = 1 + r +
/// r^2 P(r)`; the scale `2^n` is applied as two powers so that overflow gives inf and tiny
/// results round once into the subnormals.
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let xc = clamp_keep_nan(x, -750.0, 710.0);
    let n = xc.mul_add(LOG2E, SHIFT) - SHIFT;
    let r = (-n).mul_add(LN2_HI, xc);
    let r = (-n).mul_add(LN2_LO, r);
    let p = (r * r).mul_add(poly(r, &EXP_P_F64), r);
    let n1 = round_int(n * 0.5);
    let n2 = n - n1;
    let s1 = pow2i(n1);
    // s1 (1 + p) with one rounding: the same bits as (1 + p) * s1, one operation less.
    p.mul_add(s1, s1) * pow2i(n2)
}

/// Largest |x| for [`exp_fast`].
pub const EXP_FAST_LIMIT: f64 = 708.0;

/// `e^x` for |x| <= [`EXP_FAST_LIMIT`] (and NaN), where `2^n` is a normal float and one
/// scaling suffices: the same bits as [`exp`] there, fewer operations.
#[inline(always)]
pub fn exp_fast(x: f64) -> f64 {
    let n = x.mul_add(LOG2E, SHIFT) - SHIFT;
    let r = (-n).mul_add(LN2_HI, x);
    let r = (-n).mul_add(LN2_LO, r);
    let p = (r * r).mul_add(poly(r, &EXP_P_F64), r);
    let s = pow2i(n);
    p.mul_add(s, s)
}

/// `e^x - 1`. Same reduction as [`exp`]; `expm1(x) = 2^n expm1(r) + (2^n - 1)`, with the
/// rounding errors of the polynomial's last FMA and of the final sum recovered exactly
/// (TwoSum) and added once. Evaluated on `2^(n-1)` and doubled (exact) so that `n = 1024`
/// still overflows cleanly.
#[inline(always)]
pub fn expm1(x: f64) -> f64 {
    let xc = clamp_keep_nan(x, -60.0, 710.0);
    let n = round_int(xc * LOG2E);
    let r = (-n).mul_add(LN2_HI, xc);
    let r = (-n).mul_add(LN2_LO, r);
    let rsq = r * r;
    let q = poly(r, &EXP_Q_F64);
    let em = rsq.mul_add(q, r);
    let em_lo = rsq.mul_add(q, r - em); // r - em is exact (Sterbenz)
    let hs = pow2i(n - 1.0);
    let p = hs * em; // exact: a power of two times a normal float
    let c = hs - 0.5;
    let s = p + c;
    let bb = s - p;
    let err = (p - (s - bb)) + (c - bb);
    let y = 2.0 * (s + hs.mul_add(em_lo, err));
    // Tiny (and ±0, subnormal) x: expm1(x) = x; the halving above would lose a bit.
    if x.abs() < 5.551115123125783e-17 {
        x
    } else {
        y
    }
}

/// `log(x) + c + kadj ln2` for positive, finite, normal `x`, a tiny additive correction
/// `c` and an integral exponent adjustment `kadj` (fdlibm's
/// scheme: `x = 2^k m`, m in [sqrt(1/2), sqrt(2)), `f = m - 1`, `s = f/(2+f)`,
/// `log(1+f) = f - hfsq + s (hfsq + R(s^2))`). Garbage for other inputs.
#[inline(always)]
pub(super) fn log_core<const N: usize>(x: f64, c: f64, kadj: f64, t: &[f64; N]) -> f64 {
    // Offset so that the exponent field of `ix` is k + 1023 with m in [sqrt(1/2), sqrt(2)).
    const OFF: u64 = 0x3ff0_0000_0000_0000 - 0x3fe6_a09e_667f_3bcd;
    let ix = x.to_bits().wrapping_add(OFF);
    let kbits = ix >> 52;
    let k = f64::from_bits(0x4330_0000_0000_0000 | kbits) - (4503599627370496.0 + 1023.0) + kadj;
    let m = f64::from_bits((ix & 0x000f_ffff_ffff_ffff).wrapping_add(0x3fe6_a09e_667f_3bcd));
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let r = z * poly(z, t);
    let hfsq = 0.5 * f * f;
    k.mul_add(
        LN2_HI_SHORT,
        f - (hfsq - s.mul_add(hfsq + r, k.mul_add(LN2_LO_SHORT, c))),
    )
}

/// The result of a log-like kernel at the edges: `inf` stays `inf`, NaN stays NaN,
/// `x == zero_at` gives -inf and `x < zero_at` gives NaN.
#[inline(always)]
pub(super) fn log_edges(x: f64, zero_at: f64, y: f64) -> f64 {
    let y = if x < f64::INFINITY { y } else { x };
    if x > zero_at {
        y
    } else if x == zero_at {
        f64::NEG_INFINITY
    } else {
        f64::NAN
    }
}

/// Natural logarithm. Subnormal inputs are scaled by 2^54 first.
#[inline(always)]
pub fn log(x: f64) -> f64 {
    let sub = x < f64::MIN_POSITIVE;
    let xs = if sub { x * 18014398509481984.0 } else { x };
    let kadj = if sub { -54.0 } else { 0.0 };
    let y = log_core(xs, 0.0, kadj, &LOG_T_F64);
    log_edges(x, 0.0, y)
}

/// `ln(1 + x)`: the log of `u = 1 + x` plus the rounding error of `u` as a correction.
#[inline(always)]
pub fn log1p(x: f64) -> f64 {
    let u = 1.0 + x;
    let c = (x - (u - 1.0)) / u;
    let y = log_core(u, c, 0.0, &LOG_T_F64);
    let y = if x == 0.0 { x } else { y };
    log_edges(x, -1.0, y)
}

/// Result of the sin/cos argument reduction: `x = n π/2 + (hi + lo)` and the quadrant
/// bits `n mod 4` in the low bits of `q`.
pub(super) struct Reduced {
    pub hi: f64,
    pub lo: f64,
    pub q: u64,
}

/// Three-constant Cody–Waite reduction with the error of the second step kept in a
/// double-double, exact enough for |x| <= [`SINCOS_FAST_LIMIT`].
#[inline(always)]
pub(super) fn reduce_pio2(x: f64) -> Reduced {
    let t = x.mul_add(FRAC_2_PI, SHIFT);
    let n = t - SHIFT;
    let q = t.to_bits();
    let r1 = (-n).mul_add(PIO2_1, x); // exact
    let p = n * PIO2_2;
    let pe = n.mul_add(PIO2_2, -p); // n*PIO2_2 = p + pe exactly
    let r2 = r1 - p;
    let bb = r2 - r1;
    let e = (r1 - (r2 - bb)) + (-p - bb); // r1 - p = r2 + e exactly (TwoSum)
    let lo = (-n).mul_add(PIO2_3, e - pe);
    let hi = r2 + lo;
    let lo = lo - (hi - r2);
    Reduced { hi, lo, q }
}

/// sin of a reduced argument `hi + lo`, |hi| <= π/4 (+ a little).
#[inline(always)]
pub(super) fn sin_reduced(hi: f64, lo: f64) -> f64 {
    let z = hi * hi;
    let corr = lo * (-0.5f64).mul_add(z, 1.0);
    hi + (hi * z).mul_add(poly(z, &SIN_S_F64), corr)
}

/// cos of a reduced argument `hi + lo`, |hi| <= π/4 (+ a little).
#[inline(always)]
pub(super) fn cos_reduced(hi: f64, lo: f64) -> f64 {
    let z = hi * hi;
    let zl = hi.mul_add(hi, -z);
    let zl = (2.0 * hi).mul_add(lo, zl); // (hi+lo)^2 = z + zl
    let h = 0.5 * z;
    let w = 1.0 - h;
    let werr = (1.0 - w) - h; // exact
    w + (z * z).mul_add(poly(z, &COS_C_F64), (-0.5f64).mul_add(zl, werr))
}

/// Picks `±sin r` / `±cos r` by quadrant `q`: q mod 4 = 0, 1, 2, 3 gives
/// `s, c, -s, -c`.
#[inline(always)]
pub(super) fn by_quadrant(q: u64, s: f64, c: f64) -> f64 {
    let v = if q & 1 == 0 { s } else { c };
    f64::from_bits(v.to_bits() ^ ((q & 2) << 62))
}

/// sin for |x| <= [`SINCOS_FAST_LIMIT`] (and NaN); other inputs give garbage and must take
/// the std fallback.
#[inline(always)]
pub fn sin_fast(x: f64) -> f64 {
    let red = reduce_pio2(x);
    let s = sin_reduced(red.hi, red.lo);
    let c = cos_reduced(red.hi, red.lo);
    let y = by_quadrant(red.q, s, c);
    // sin x = x to within half an ulp below 2^-27; this keeps -0 and subnormals exact.
    if x.abs() < 7.450580596923828e-9 {
        x
    } else {
        y
    }
}

/// `(sin x, cos x)` for |x| <= [`SINCOS_FAST_LIMIT`] (and NaN) from one reduction; the
/// same bits as [`sin_fast`] and [`cos_fast`].
#[inline(always)]
pub fn sincos_fast(x: f64) -> (f64, f64) {
    let red = reduce_pio2(x);
    let s = sin_reduced(red.hi, red.lo);
    let c = cos_reduced(red.hi, red.lo);
    let sin = by_quadrant(red.q, s, c);
    let sin = if x.abs() < 7.450580596923828e-9 {
        x
    } else {
        sin
    };
    (sin, by_quadrant(red.q.wrapping_add(1), s, c))
}

/// cos for |x| <= [`SINCOS_FAST_LIMIT`] (and NaN); see [`sin_fast`].
#[inline(always)]
pub fn cos_fast(x: f64) -> f64 {
    let red = reduce_pio2(x);
    let s = sin_reduced(red.hi, red.lo);
    let c = cos_reduced(red.hi, red.lo);
    by_quadrant(red.q.wrapping_add(1), s, c)
}

/// Largest |x| for the short sin/cos tier ([`sincos_short`]): blocks whose lanes all lie
/// within it skip the double-double reduction.
pub const SINCOS_SHORT_LIMIT: f64 = 1048576.0; // 2^20

/// Three-constant Cody–Waite reduction by π/2 with plain FMAs: `x = n π/2 + r`. The first
/// step is exact; the second and third round once each, so `r` is within about 1 ulp of
/// the true remainder (enough for |x| <= [`SINCOS_SHORT_LIMIT`], checked by the sweeps).
#[inline(always)]
fn reduce_pio2_short(x: f64) -> (f64, u64) {
    let t = x.mul_add(FRAC_2_PI, SHIFT);
    let n = t - SHIFT;
    let r = (-n).mul_add(PIO2_1, x);
    let r = (-n).mul_add(PIO2_2, r);
    let r = (-n).mul_add(PIO2_3, r);
    (r, t.to_bits())
}

/// `(sin r, cos r)` of a reduced argument known to a single float, |r| <= π/4 (+ a little).
#[inline(always)]
fn sincos_poly_short(r: f64) -> (f64, f64) {
    let z = r * r;
    let s = (r * z).mul_add(poly(z, &SIN_S_F64), r);
    let h = 0.5 * z;
    let w = 1.0 - h;
    let werr = (1.0 - w) - h; // exact
    let c = w + (z * z).mul_add(poly(z, &COS_C_F64), werr);
    (s, c)
}

/// `(sin x, cos x)` for |x| <= [`SINCOS_SHORT_LIMIT`] (and NaN): the short tier.
#[inline(always)]
pub fn sincos_short(x: f64) -> (f64, f64) {
    let (r, q) = reduce_pio2_short(x);
    let (s, c) = sincos_poly_short(r);
    let sin = by_quadrant(q, s, c);
    // Only ±0 needs keeping: every other tiny x already gives sin x = x.
    let sin = if x == 0.0 { x } else { sin };
    (sin, by_quadrant(q.wrapping_add(1), s, c))
}

/// sin for |x| <= [`SINCOS_SHORT_LIMIT`] (and NaN); the same bits as [`sincos_short`].
#[inline(always)]
pub fn sin_short(x: f64) -> f64 {
    sincos_short(x).0
}

/// cos for |x| <= [`SINCOS_SHORT_LIMIT`] (and NaN); the same bits as [`sincos_short`].
#[inline(always)]
pub fn cos_short(x: f64) -> f64 {
    let (r, q) = reduce_pio2_short(x);
    let (s, c) = sincos_poly_short(r);
    by_quadrant(q.wrapping_add(1), s, c)
}

/// `e^x - 1` for `x <= 0` (or NaN) as an unevaluated sum `hi + lo`, accurate to about
/// 2^-56 relative: the rounding errors of the polynomial's last FMA and of the scaling are
/// recovered exactly (Sterbenz: the subtracted values are within a factor 2).
#[inline(always)]
fn expm1_neg_dd(x: f64) -> (f64, f64) {
    expm1_neg_dd_core(if x < -60.0 { -60.0 } else { x })
}

/// The reduction `x = n ln2 + r` (|x| <= 708) and `e^r - 1 = em + em_lo`, the rounding
/// error of the polynomial's last FMA kept in `em_lo` (`r - em` is exact, Sterbenz).
/// Returns `(n, r1, r, em, em_lo)` with `r1 = x - n LN2_HI` (exact) and `r = r1 - n LN2_LO`.
#[inline(always)]
fn expm1_reduced(x: f64) -> (f64, f64, f64, f64, f64) {
    let n = x.mul_add(LOG2E, SHIFT) - SHIFT;
    let r1 = (-n).mul_add(LN2_HI, x);
    let r = (-n).mul_add(LN2_LO, r1);
    let rsq = r * r;
    let q = poly(r, &EXP_Q_F64);
    let em = rsq.mul_add(q, r);
    let em_lo = rsq.mul_add(q, r - em);
    (n, r1, r, em, em_lo)
}

/// [`expm1_neg_dd`] for `-60 <= x <= 0` (or NaN), without the clamp.
#[inline(always)]
fn expm1_neg_dd_core(x: f64) -> (f64, f64) {
    let (n, _, _, em, em_lo) = expm1_reduced(x);
    let scale = pow2i(n);
    let sm1 = scale - 1.0; // exact: n <= 0
    let hi = scale.mul_add(em, sm1);
    let lo = scale.mul_add(em, sm1 - hi);
    (hi, scale.mul_add(em_lo, lo))
}

/// `tanh |x| = -e / (2 + e)` from `e + el = expm1(-2|x|)`, the quotient corrected once with
/// an FMA residual, with the sign of `x`.
#[inline(always)]
fn tanh_from_expm1(x: f64, e: f64, el: f64) -> f64 {
    let d = 2.0 + e;
    let dl = ((2.0 - d) + e) + el; // 2 + e + el = d + dl
    let inv = 1.0 / d;
    let q = -e * inv;
    let resid = (-q).mul_add(d, -e) - el - q * dl;
    resid.mul_add(inv, q).copysign(x)
}

/// `tanh x = -e / (2 + e)` with `e = expm1(-2|x|)` carried as a double-double, the
/// quotient corrected once with an FMA residual, sign restored.
#[inline(always)]
pub fn tanh(x: f64) -> f64 {
    let a = x.abs();
    let (e, el) = expm1_neg_dd(-2.0 * a);
    let t = tanh_from_expm1(x, e, el);
    // tanh x = x to within half an ulp below 2^-27 (keeps -0 and subnormals exact).
    if a < 7.450580596923828e-9 {
        x
    } else {
        t
    }
}

/// Largest |x| for [`tanh_short`].
pub const TANH_SHORT_LIMIT: f64 = 19.0;

/// tanh for |x| <= [`TANH_SHORT_LIMIT`] (and NaN): [`tanh`] without the clamp of the
/// exponential's argument and without the tiny-argument select (tiny x already give x).
#[inline(always)]
pub fn tanh_short(x: f64) -> f64 {
    let (e, el) = expm1_neg_dd_core(-2.0 * x.abs());
    tanh_from_expm1(x, e, el)
}

/// Largest |x| (exclusive) for [`erf_short`]: blocks whose lanes all lie below it skip the
/// tail kernel.
pub const ERF_SHORT_LIMIT: f64 = 1.0;

/// erf for |x| < [`ERF_SHORT_LIMIT`] (and NaN): `x + x y(x²)` with one rounding (FMA),
/// which keeps ±0 and subnormals exact.
#[inline(always)]
pub fn erf_short(x: f64) -> f64 {
    x.mul_add(poly(x * x, &ERF_Y_F64), x)
}

/// The error function. |x| < 1: [`erf_short`]; 1 <= |x| <= 6: `1 - e^{-x²} P(|x| - 3.5)`,
/// with `x² = hi + lo` split exactly (FMA) and `e^{-x²} = e^{-hi} (1 - lo)`; beyond 6 the
/// argument is clamped to 6, where the expression rounds to ±1.
#[inline(always)]
pub fn erf(x: f64) -> f64 {
    let a = clamp_keep_nan(x.abs(), 1.0, 6.0);
    let hi = a * a;
    let lo = a.mul_add(a, -hi);
    let erfc = exp_fast(-hi) * poly(a - 3.5, &ERFC_P_F64);
    let erfc = (-lo).mul_add(erfc, erfc);
    let tail = (1.0 - erfc).copysign(x);
    if x.abs() < ERF_SHORT_LIMIT {
        erf_short(x)
    } else {
        tail
    }
}

/// `e^x` for `-708 <= x <= 0` (or NaN) as an unevaluated sum `hi + lo`, to about 2^-60
/// relative: [`expm1_reduced`] with the rounding error of `r` recovered too (`r1 - r` is
/// exact where that error matters), and the scaling's rounding error kept exactly.
#[inline(always)]
fn exp_neg_dd(x: f64) -> (f64, f64) {
    let (n, r1, r, em, em_lo) = expm1_reduced(x);
    let r_lo = (-n).mul_add(LN2_LO, r1 - r); // r1 - n LN2_LO = r + r_lo
    let s = pow2i(n);
    let hi = em.mul_add(s, s);
    let lo = em.mul_add(s, s - hi); // exact: s - hi is exact (Sterbenz)
    (hi, s.mul_add(em_lo + r_lo, lo))
}

/// Largest |x| for [`logistic_short`].
pub const LOGISTIC_SHORT_LIMIT: f64 = 708.0;

/// `σ(|x|) = 1 / (1 + e)` or `σ(-|x|) = e / (1 + e)` from `e = e^{-|x|} = eh + el` in
/// (0, 1]: the denominator kept exactly as `d + dl`, the quotient corrected once with an
/// FMA residual, so the error is essentially one rounding.
#[inline(always)]
fn logistic_from_exp(x: f64, eh: f64, el: f64) -> f64 {
    let d = 1.0 + eh;
    let dl = ((1.0 - d) + eh) + el; // (1 - d) + eh is exact: 1 >= eh
    let neg = x < 0.0;
    let num = if neg { eh } else { 1.0 };
    let num_lo = if neg { el } else { 0.0 };
    let inv = 1.0 / d;
    let q = num * inv;
    let resid = ((-q).mul_add(d, num) + num_lo) - q * dl;
    resid.mul_add(inv, q)
}

/// The logistic sigmoid for |x| <= [`LOGISTIC_SHORT_LIMIT`] (and NaN).
#[inline(always)]
pub fn logistic_short(x: f64) -> f64 {
    let (eh, el) = exp_neg_dd(-x.abs());
    logistic_from_exp(x, eh, el)
}

/// The logistic sigmoid `1 / (1 + e^{-x})`: [`logistic_short`], and for x < -708 (where
/// `σ(x) = e^x` to within far less than an ulp, down through the subnormals to 0) [`exp`];
/// for x > 708 the short kernel's clamped argument already gives exactly 1.
#[inline(always)]
pub fn logistic(x: f64) -> f64 {
    let a = clamp_keep_nan(x.abs(), 0.0, LOGISTIC_SHORT_LIMIT);
    let (eh, el) = exp_neg_dd(-a);
    let y = logistic_from_exp(x, eh, el);
    if x < -LOGISTIC_SHORT_LIMIT {
        exp(x)
    } else {
        y
    }
}
