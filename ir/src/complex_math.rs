//! Complex inverse trigonometric and hyperbolic functions (asin, acos, atan, asinh, acosh,
//! atanh) with C99 Annex G semantics: the sign of a zero part picks the side of a branch
//! cut, infinities and NaNs give Annex G's special values, and every finite operand gets a
//! result within a few ulp (no cancellation for large, tiny or near-±1 operands).
//!
//! asin and acos follow Hull, Fairgrieve & Tang ("Implementing the complex arcsine and
//! arccosine functions using exception handling", ACM TOMS 1997); atanh follows Kahan's
//! "Branch cuts for complex elementary functions". The others are derived exactly from
//! these: `asinh(z) = swap(asin(swap z))`, `atan(z) = swap(atanh(swap z))` with
//! `swap(x + iy) = y + ix`, and acosh from acos. Each is computed on the first quadrant and
//! the signs restored by the function's symmetries, so `f(conj z) = conj f(z)` holds
//! exactly. f32 operands are computed in f64 and rounded once.
//!
//! Also the complex tangent and hyperbolic tangent ([`ComplexTangent`]), by Kahan's
//! algorithm, which stays finite where the textbook formula overflows to NaN.

use num_complex::Complex;
use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, LN_2, PI};

/// Complex inverse trigonometric and hyperbolic functions on the principal branches, with
/// C99 Annex G semantics (`casin`, `cacos`, `catan`, `casinh`, `cacosh`, `catanh`).
pub trait ComplexInverseTrig: Sized {
    /// Arcsine; the cuts are the real axis outside [-1, 1].
    fn casin(self) -> Self;
    /// Arccosine; the cuts are the real axis outside [-1, 1].
    fn cacos(self) -> Self;
    /// Arctangent; the cuts are the imaginary axis outside [-i, i].
    fn catan(self) -> Self;
    /// Inverse hyperbolic sine; the cuts are the imaginary axis outside [-i, i].
    fn casinh(self) -> Self;
    /// Inverse hyperbolic cosine; the cut is the real axis below 1.
    fn cacosh(self) -> Self;
    /// Inverse hyperbolic tangent; the cuts are the real axis outside [-1, 1].
    fn catanh(self) -> Self;
}

/// `x + iy ↦ y + ix` (`i · conj(z)`): conjugates asin into asinh and atanh into atan.
fn swap(z: Complex<f64>) -> Complex<f64> {
    Complex::new(z.im, z.re)
}

/// 2^-28: below it in both parts, `asin z = z` to within an ulp (the next term is z³/6).
const ASIN_SMALL: f64 = f64::from_bits((1023 - 28) << 52);
/// 2^64: above it in either part, `asin z = atan2(x, y) + i·ln(2|z|)` to O(1/|z|²).
const ASIN_LARGE: f64 = 18_446_744_073_709_551_616.0;
/// 2^-450: below it, `y²` is negligible next to `|1 - x|` wherever it matters, and the
/// first-order forms in `y` apply (the general ones would lose `y²` to underflow).
const TINY_Y: f64 = f64::from_bits((1023 - 450) << 52);
/// Hull et al.'s crossovers: above `A = 1.5` the imaginary part is `ln(A + √(A² - 1))`,
/// above `B = 0.6417` the real part goes through `atan` instead of `asin(B)`.
const A_CROSSOVER: f64 = 1.5;
const B_CROSSOVER: f64 = 0.6417;

/// The parts of `asin(x + iy)` and `acos(x + iy)` for `x, y >= 0` (or NaN): the real part
/// of asin, the real part of acos, and the imaginary part of asin (acos's is its negation).
struct AsinParts {
    asin_re: f64,
    acos_re: f64,
    im: f64,
}

/// Hull, Fairgrieve & Tang's arcsine on the first quadrant. With `r = |z + 1|`,
/// `s = |z - 1|`, `A = (r + s) / 2 >= 1` and `B = x / A <= 1`:
/// `asin z = asin B + i·ln(A + √(A² - 1))`, `acos z = acos B - i·ln(A + √(A² - 1))`, where
/// `A - 1` and `A - x` are computed without cancellation.
fn asin_parts(x: f64, y: f64) -> AsinParts {
    let parts = |asin_re, acos_re, im| AsinParts {
        asin_re,
        acos_re,
        im,
    };
    if x.is_nan() || y.is_nan() {
        return if x.is_infinite() || y.is_infinite() {
            parts(f64::NAN, f64::NAN, f64::INFINITY)
        } else if x == 0.0 {
            parts(x, FRAC_PI_2, f64::NAN)
        } else {
            parts(f64::NAN, f64::NAN, f64::NAN)
        };
    }
    if x.is_infinite() || y.is_infinite() {
        return match (x.is_infinite(), y.is_infinite()) {
            (true, true) => parts(FRAC_PI_4, FRAC_PI_4, f64::INFINITY),
            (true, false) => parts(FRAC_PI_2, 0.0, f64::INFINITY),
            _ => parts(0.0, FRAC_PI_2, f64::INFINITY),
        };
    }
    if x >= ASIN_LARGE || y >= ASIN_LARGE {
        // A = |z|(1 + O(1/|z|²)); halving keeps hypot finite up to f64::MAX.
        let im = (x * 0.5).hypot(y * 0.5).ln() + 2.0 * LN_2;
        return parts(x.atan2(y), y.atan2(x), im);
    }
    if x < ASIN_SMALL && y < ASIN_SMALL {
        return parts(x, FRAC_PI_2 - x, y);
    }
    if y < TINY_Y {
        // First order in y: asin(x + iy) = asin x + i·y/√(1 - x²) for x < 1; at and
        // beyond 1 the imaginary part is acosh x (√y at x = 1).
        return if x < 1.0 {
            parts(x.asin(), x.acos(), y / ((1.0 - x) * (1.0 + x)).sqrt())
        } else if x == 1.0 {
            let r = y.sqrt();
            parts(FRAC_PI_2, r, r)
        } else {
            let w = ((x - 1.0) * (x + 1.0)).sqrt();
            parts(FRAC_PI_2, y / w, ((x - 1.0) + w).ln_1p())
        };
    }
    let r = (x + 1.0).hypot(y);
    let s = (x - 1.0).hypot(y);
    let a = 0.5 * (r + s);
    let b = x / a;
    let y2 = y * y;
    let im = if a <= A_CROSSOVER {
        // A - 1 from r - (x + 1) = y²/(r + x + 1) and s - |1 - x| = y²/(s + |1 - x|).
        let am1 = if x < 1.0 {
            0.5 * (y2 / (r + x + 1.0) + y2 / (s + (1.0 - x)))
        } else {
            0.5 * (y2 / (r + x + 1.0) + s + (x - 1.0))
        };
        (am1 + (am1 * (a + 1.0)).sqrt()).ln_1p()
    } else {
        (a + (a * a - 1.0).sqrt()).ln()
    };
    if b <= B_CROSSOVER {
        return parts(b.asin(), b.acos(), im);
    }
    // B near 1: asin B = atan(x / √(A² - x²)), with A - x free of cancellation.
    let amx = if x <= 1.0 {
        0.5 * (y2 / (r + x + 1.0) + s + (1.0 - x))
    } else {
        0.5 * (y2 / (r + x + 1.0) + y2 / (s + (x - 1.0)))
    };
    let d = ((a + x) * amx).sqrt();
    parts(x.atan2(d), d.atan2(x), im)
}

/// `v` with the sign of `s`, or `v` as it is when `s` is a NaN: a NaN's sign is no part of
/// its value (IEEE 754 leaves it open for arithmetic results, and the order of a sum's
/// operands changes it), so it must not pick the sign of a result (C99 Annex G leaves the
/// signs it would pick unspecified).
fn signed_like(v: f64, s: f64) -> f64 {
    if s.is_nan() {
        v
    } else {
        v.copysign(s)
    }
}

fn asin64(z: Complex<f64>) -> Complex<f64> {
    let p = asin_parts(z.re.abs(), z.im.abs());
    Complex::new(signed_like(p.asin_re, z.re), signed_like(p.im, z.im))
}

fn acos64(z: Complex<f64>) -> Complex<f64> {
    let p = asin_parts(z.re.abs(), z.im.abs());
    // acos(-z) = π - acos z, and acos(conj z) = conj(acos z).
    let re = if z.re.is_sign_negative() {
        PI - p.acos_re
    } else {
        p.acos_re
    };
    Complex::new(re, -signed_like(p.im, z.im))
}

fn asinh64(z: Complex<f64>) -> Complex<f64> {
    swap(asin64(swap(z)))
}

fn acosh64(z: Complex<f64>) -> Complex<f64> {
    // acosh z = ±i·acos z, the sign making the real part non-negative; the imaginary
    // part's sign follows z's (acosh(conj z) = conj(acosh z)).
    let w = acos64(z);
    Complex::new(w.im.abs(), signed_like(w.re, z.im))
}

/// 2^500: above it in either part, `atanh z = 1/z ± iπ/2` to O(1/|z|²).
const ATANH_LARGE: f64 = f64::from_bits((1023 + 500) << 52);
/// 2^-500: when both `|1 - x|` and `y` are below it, `|1 - z|²` would underflow.
const ATANH_NEAR_ONE: f64 = f64::from_bits((1023 - 500) << 52);

/// Kahan's inverse hyperbolic tangent on the first quadrant (`x, y >= 0` or NaN):
/// `Re = ¼·log1p(4x / |1 - z|²)`, `Im = ½·atan2(2y, (1 - x)(1 + x) - y²)`, with the
/// large-|z| and `z ≈ 1` regions handled apart.
fn atanh_first_quadrant(x: f64, y: f64) -> Complex<f64> {
    if x.is_nan() || y.is_nan() {
        return if y == f64::INFINITY {
            Complex::new(0.0, FRAC_PI_2)
        } else if x == f64::INFINITY || x == 0.0 {
            Complex::new(0.0, f64::NAN)
        } else {
            Complex::new(f64::NAN, f64::NAN)
        };
    }
    if x.is_infinite() || y.is_infinite() {
        return Complex::new(0.0, FRAC_PI_2);
    }
    if x > ATANH_LARGE || y > ATANH_LARGE {
        // Re(1/z) = x / (x² + y²), scaled by the larger part.
        let re = if x >= y {
            1.0 / (x + y * (y / x))
        } else {
            (x / y) / (y + x * (x / y))
        };
        return Complex::new(re, FRAC_PI_2);
    }
    let one_minus_x = 1.0 - x;
    let re = if one_minus_x.abs() < ATANH_NEAR_ONE && y < ATANH_NEAR_ONE {
        // ½·ln(|1 + z| / |1 - z|), the ratio far above 1: no cancellation.
        0.5 * ((1.0 + x).hypot(y).ln() - one_minus_x.hypot(y).ln())
    } else {
        let d = one_minus_x * one_minus_x + y * y;
        0.25 * (4.0 * x / d).ln_1p()
    };
    let im = 0.5 * (2.0 * y).atan2(one_minus_x.mul_add(1.0 + x, -(y * y)));
    Complex::new(re, im)
}

fn atanh64(z: Complex<f64>) -> Complex<f64> {
    let w = atanh_first_quadrant(z.re.abs(), z.im.abs());
    Complex::new(signed_like(w.re, z.re), signed_like(w.im, z.im))
}

fn atan64(z: Complex<f64>) -> Complex<f64> {
    swap(atanh64(swap(z)))
}

/// Runs the f64 function `f` on a c32 operand and rounds the result once (every f32 value
/// is an f64 far from f64's overflow and underflow thresholds).
fn via_f64(z: Complex<f32>, f: fn(Complex<f64>) -> Complex<f64>) -> Complex<f32> {
    let w = f(Complex::new(z.re as f64, z.im as f64));
    Complex::new(w.re as f32, w.im as f32)
}

/// Runs the f64 function `f` on a c64 operand.
fn direct(z: Complex<f64>, f: fn(Complex<f64>) -> Complex<f64>) -> Complex<f64> {
    f(z)
}

/// Implements [`ComplexInverseTrig`] for `Complex<$t>`, each function running the f64
/// one through `$run` ([`direct`] or [`via_f64`]).
macro_rules! impl_complex_inverse_trig {
    ($t:ty, $run:ident) => {
        impl ComplexInverseTrig for Complex<$t> {
            fn casin(self) -> Self {
                $run(self, asin64)
            }
            fn cacos(self) -> Self {
                $run(self, acos64)
            }
            fn catan(self) -> Self {
                $run(self, atan64)
            }
            fn casinh(self) -> Self {
                $run(self, asinh64)
            }
            fn cacosh(self) -> Self {
                $run(self, acosh64)
            }
            fn catanh(self) -> Self {
                $run(self, atanh64)
            }
        }
    };
}

impl_complex_inverse_trig!(f64, direct);
impl_complex_inverse_trig!(f32, via_f64);

/// Complex tangent and hyperbolic tangent with C99 Annex G semantics (`ctan`, `ctanh`):
/// finite for every finite operand (the textbook `sinh(2x) / (cosh(2x) + cos(2y))`
/// overflows to NaN once `cosh(2x)` does, where the true value is ±1).
pub trait ComplexTangent: Sized {
    /// Tangent, `-i · tanh(i z)`.
    fn ctan(self) -> Self;
    /// Hyperbolic tangent.
    fn ctanh(self) -> Self;
}

/// `tanh(x + iy)` by Kahan's algorithm ("Branch cuts for complex elementary functions"):
/// with `t = tan y`, `β = 1 + t²`, `s = sinh x`, `ρ = √(1 + s²)`,
/// `tanh z = (β ρ s + i t) / (1 + β s²)`; for `|x| ≥ 22`, where `e^{-2|x|}` is below half
/// an ulp of 1, `±1 + i · 4 sin y cos y e^{-2|x|}` (no overflow). Annex G's special values
/// for infinite and NaN parts.
fn tanh64(z: Complex<f64>) -> Complex<f64> {
    let (x, y) = (z.re, z.im);
    if x.is_nan() {
        // tanh(NaN + i0) = NaN + i0; any other imaginary part gives NaN + iNaN.
        return Complex::new(x, if y == 0.0 { y } else { x });
    }
    if x.is_infinite() {
        // tanh(±inf + iy) = ±1 + i0, the zero carrying the sign of sin(2y) when y is finite.
        let im = if y.is_finite() {
            0.0f64.copysign(y.sin() * y.cos())
        } else {
            0.0
        };
        return Complex::new(1.0f64.copysign(x), im);
    }
    if !y.is_finite() {
        // tanh(±0 + i inf) = ±0 + iNaN; other finite x: NaN + iNaN.
        let re = if x == 0.0 { x } else { f64::NAN };
        return Complex::new(re, f64::NAN);
    }
    if x.abs() >= 22.0 {
        let e = (-x.abs()).exp();
        return Complex::new(1.0f64.copysign(x), 4.0 * y.sin() * y.cos() * e * e);
    }
    let t = y.tan();
    let beta = 1.0 + t * t;
    let s = x.sinh();
    let rho = (1.0 + s * s).sqrt();
    let denom = 1.0 + beta * s * s;
    Complex::new(beta * rho * s / denom, t / denom)
}

/// `tan z = -i · tanh(i z)`: with `tanh(-y + ix) = a + ib`, `tan(x + iy) = b - ia`.
fn tan64(z: Complex<f64>) -> Complex<f64> {
    let w = tanh64(Complex::new(-z.im, z.re));
    Complex::new(w.im, -w.re)
}

impl ComplexTangent for Complex<f64> {
    fn ctan(self) -> Self {
        tan64(self)
    }
    fn ctanh(self) -> Self {
        tanh64(self)
    }
}

impl ComplexTangent for Complex<f32> {
    fn ctan(self) -> Self {
        via_f64(self, tan64)
    }
    fn ctanh(self) -> Self {
        via_f64(self, tanh64)
    }
}

#[cfg(test)]
mod tangent_tests {
    use super::*;

    fn close(a: Complex<f64>, b: Complex<f64>, tol: f64) -> bool {
        (a - b).norm() <= tol * b.norm().max(1e-300)
    }

    #[test]
    fn tanh_and_tan_match_the_textbook_formula_where_it_is_accurate() {
        for &(x, y) in &[
            (0.3, 0.7),
            (-1.2, 2.5),
            (3.0, -0.4),
            (-0.01, 1e-3),
            (10.0, 1.0),
            (0.0, 1.2),
        ] {
            let z = Complex::new(x, y);
            assert!(close(z.ctanh(), z.tanh(), 1e-14), "tanh {z}");
            assert!(close(z.ctan(), z.tan(), 1e-14), "tan {z}");
        }
    }

    #[test]
    fn large_real_parts_give_plus_or_minus_one_not_nan() {
        // The textbook formula gives NaN here (sinh and cosh of 2x overflow).
        assert!(Complex::new(800.0f64, 1.0).tanh().re.is_nan());
        assert_eq!(Complex::new(800.0, 1.0).ctanh(), Complex::new(1.0, 0.0));
        assert_eq!(Complex::new(-400.0, -2.0).ctanh().re, -1.0);
        // tan with a large imaginary part tends to ±i.
        let t = Complex::new(1.0, 800.0).ctan();
        assert_eq!((t.re, t.im), (0.0, 1.0));
        let t32 = Complex::<f32>::new(0.5, -60.0).ctan();
        assert_eq!((t32.re, t32.im), (0.0, -1.0));
        // |x| just above the cut-over agrees with the exact formula's limit.
        let w = Complex::new(22.5, 0.3).ctanh();
        assert_eq!(w.re, 1.0);
        assert!(w.im > 0.0 && w.im < 1e-18, "{w}");
    }

    #[test]
    fn annex_g_special_values() {
        let inf = f64::INFINITY;
        let nan = f64::NAN;
        let t = Complex::new(inf, 1.0).ctanh();
        assert_eq!((t.re, t.im.to_bits()), (1.0, 0.0f64.to_bits()));
        let t = Complex::new(-inf, 2.0).ctanh(); // sin(2)cos(2) < 0
        assert_eq!((t.re, t.im.to_bits()), (-1.0, (-0.0f64).to_bits()));
        let t = Complex::new(inf, nan).ctanh();
        assert_eq!(t.re, 1.0);
        let t = Complex::new(nan, 0.0).ctanh();
        assert!(t.re.is_nan() && t.im == 0.0);
        let t = Complex::new(0.0, inf).ctanh();
        assert!(t.re == 0.0 && t.im.is_nan());
        let t = Complex::new(1.0, nan).ctanh();
        assert!(t.re.is_nan() && t.im.is_nan());
        // Signed zeros pass through.
        let t = Complex::new(-0.0f64, 0.0).ctanh();
        assert_eq!((t.re.to_bits(), t.im.to_bits()), ((-0.0f64).to_bits(), 0));
    }
}
