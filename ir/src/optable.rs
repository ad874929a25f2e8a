//! The op table of the elementwise unary ops: each op is defined once here, with its text
//! name, method name, per-element semantics for every dtype it accepts, cost, exactness and
//! JVP rule. Everything else derives from this table: the typing rule (the dtypes with a
//! semantics are the dtypes it accepts), the reference evaluator, the CPU kernels' scalar
//! paths, the text form, the e-graph language, the tracing and eager methods, and the
//! autodiff rule. A new op is one entry in `unary_ops!`'s invocation below.
//!
//! Semantics are generic closures handed to an [`ElemMap`], so each kernel keeps its own
//! loop and the closure is inlined into it (the loops vectorise as if written by hand).

use crate::complex_math::{ComplexInverseTrig, ComplexTangent};
use crate::dtype::DType;
use num_complex::Complex;

/// The real special functions of the table on f32 and f64: libm's erf and erfc (std has
/// none) and an accurate logistic. f32 goes through f64 and rounds once (musl's `erfcf`
/// is up to about 2 ulp off; through f64 every f32 result is within half an ulp and a hair).
trait Special: Sized {
    fn erf_libm(self) -> Self;
    fn erfc_libm(self) -> Self;
    fn logistic(self) -> Self;
}

impl Special for f64 {
    #[inline(always)]
    fn erf_libm(self) -> f64 {
        libm::erf(self)
    }
    #[inline(always)]
    fn erfc_libm(self) -> f64 {
        libm::erfc(self)
    }
    /// `1 / (1 + e)` for x >= 0, `e / (1 + e)` below, with `e = e^{-|x|}` in (0, 1] (no
    /// overflow on either side); the denominator is kept exactly as `d + dl` and the
    /// quotient corrected once with an FMA residual, so the error is that of `e` (under an
    /// ulp) and one rounding.
    #[inline(always)]
    fn logistic(self) -> f64 {
        let e = (-self.abs()).exp();
        let d = 1.0 + e;
        let dl = (1.0 - d) + e; // exact: 1 >= e
        let num = if self < 0.0 { e } else { 1.0 };
        let q = num / d;
        q + ((-q).mul_add(d, num) - q * dl) / d
    }
}

impl Special for f32 {
    #[inline(always)]
    fn erf_libm(self) -> f32 {
        libm::erf(self as f64) as f32
    }
    #[inline(always)]
    fn erfc_libm(self) -> f32 {
        libm::erfc(self as f64) as f32
    }
    #[inline(always)]
    fn logistic(self) -> f32 {
        (self as f64).logistic() as f32
    }
}

/// A loop over elements: given the per-element function of an op, produce the result.
/// The reference evaluator maps whole vectors, kernels map tiles in place.
pub trait ElemMap<T, R> {
    /// The loop's result.
    type Out;
    /// Runs the loop with `f` as the per-element function.
    fn map<F: Fn(T) -> R + Copy>(self, f: F) -> Self::Out;
}

/// Builds derivative expressions for the JVP rules of the table. The autodiff crate
/// implements it on traced values, so a rule written here composes to any order.
pub trait RuleBuilder {
    /// A traced value.
    type V: Clone;
    /// `u(x)`.
    fn unary(&self, u: UnaryOp, x: &Self::V) -> Self::V;
    /// `x + y`.
    fn add(&self, x: &Self::V, y: &Self::V) -> Self::V;
    /// `x - y`.
    fn sub(&self, x: &Self::V, y: &Self::V) -> Self::V;
    /// `x * y`.
    fn mul(&self, x: &Self::V, y: &Self::V) -> Self::V;
    /// `x / y`.
    fn div(&self, x: &Self::V, y: &Self::V) -> Self::V;
    /// The constant `v` with the type of `like`.
    fn scalar(&self, like: &Self::V, v: f64) -> Self::V;
}

/// The kind of JVP rule a unary op has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryJvp {
    /// A tangent expression in the table (see [`UnaryOp::tangent`]).
    Tangent,
    /// The op is linear: its tangent is the op applied to the tangent.
    Linear,
    /// The rule depends on the dtype (abs, sign, conj, real, imag): written in the
    /// autodiff crate, whose match over these ops is exhaustive.
    Special,
    /// The derivative is zero everywhere it exists (floor, ceil, round, stop_gradient).
    Zero,
}

/// Where a unary op is smooth and finite on real operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// Every real number.
    All,
    /// `x > 0`.
    Positive,
    /// `x != 0` (a kink or jump at 0).
    NonZero,
    /// `-1 < x < 1`.
    OpenUnit,
    /// `x > 1`.
    AboveOne,
}

/// Whether a last-bit difference in the operand can change an op's result a lot (so
/// differential tests compare such results only on exact operands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sensitivity {
    /// Never: the op is well conditioned.
    Never,
    /// On complex operands (a branch cut: the sign of a zero imaginary part picks a side).
    Complex,
    /// Always (a jump, or a periodic function of a large argument).
    Always,
}

/// Per-element cost class, for the cost model and the fusion heuristics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemCost {
    /// A few instructions (neg, abs, conj).
    Cheap,
    /// A division or square root.
    Moderate,
    /// A transcendental function (exp, log, sin, erf): tens of instructions.
    Transcendental,
}

impl ElemCost {
    /// Estimated flops per element.
    pub fn flops(self) -> f64 {
        match self {
            ElemCost::Cheap => 1.0,
            ElemCost::Moderate => 4.0,
            ElemCost::Transcendental => 20.0,
        }
    }
}

macro_rules! sem_real {
    ($m:ident, $t:ty, none) => {
        None
    };
    ($m:ident, $t:ty, (|$x:ident| $e:expr)) => {
        Some($m.map(|$x: $t| -> $t { $e }))
    };
}

macro_rules! sem_complex {
    ($m:ident, $t:ty, none) => {
        None
    };
    ($m:ident, $t:ty, (|$x:ident| $e:expr)) => {
        Some($m.map(|$x: Complex<$t>| -> Complex<$t> { $e }))
    };
}

macro_rules! sem_to_real {
    ($m:ident, $t:ty, none) => {
        None
    };
    ($m:ident, $t:ty, (|$x:ident| $e:expr)) => {
        Some($m.map(|$x: Complex<$t>| -> $t { $e }))
    };
}

macro_rules! sem_int {
    ($m:ident, $t:ty, none) => {
        None
    };
    ($m:ident, $t:ty, (|$x:ident| $e:expr)) => {
        Some($m.map(|$x: $t| -> $t { $e }))
    };
}

macro_rules! has {
    (none) => {
        false
    };
    ($other:tt) => {
        true
    };
    ((|$x:ident| $e:expr)) => {
        true
    };
}

macro_rules! jvp_kind {
    (zero) => {
        UnaryJvp::Zero
    };
    (linear) => {
        UnaryJvp::Linear
    };
    (special) => {
        UnaryJvp::Special
    };
    ((|$b:ident, $x:ident, $y:ident, $d:ident| $e:expr)) => {
        UnaryJvp::Tangent
    };
}

macro_rules! jvp_tangent {
    ($op:expr, $bb:ident, $xx:ident, $yy:ident, $dd:ident, zero) => {
        None
    };
    ($op:expr, $bb:ident, $xx:ident, $yy:ident, $dd:ident, linear) => {
        Some($bb.unary($op, $dd))
    };
    ($op:expr, $bb:ident, $xx:ident, $yy:ident, $dd:ident, special) => {
        None
    };
    ($op:expr, $bb:ident, $xx:ident, $yy:ident, $dd:ident, (|$b:ident, $x:ident, $y:ident, $d:ident| $e:expr)) => {{
        #[allow(unused)]
        let ($b, $x, $y, $d) = ($bb, $xx, $yy, $dd);
        Some($e)
    }};
}

/// Defines [`UnaryOp`] and its table from one entry per op.
macro_rules! unary_ops {
    ($(
        $(#[$doc:meta])*
        $var:ident {
            name: $name:ident,
            cost: $cost:ident,
            exact: $exact:literal,
            domain: $domain:ident,
            sensitive: $sensitive:ident,
            real: $real:tt,
            complex: $cplx:tt,
            complex_to_real: $c2r:tt,
            int: $int:tt,
            jvp: $jvp:tt,
        }
    )*) => {
        /// Elementwise unary operations (the op table in [`crate::optable`]). Operand and
        /// result have the same shape.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum UnaryOp {
            $( $(#[$doc])* $var, )*
        }

        impl UnaryOp {
            /// Every unary op, in table order.
            pub const ALL: [UnaryOp; <[&str]>::len(&[$(stringify!($var)),*])] = [$(UnaryOp::$var),*];

            /// Name in the text form; also the method name on traced and eager tensors.
            pub fn name(self) -> &'static str {
                match self { $(UnaryOp::$var => stringify!($name),)* }
            }

            /// Per-element cost class.
            pub fn cost(self) -> ElemCost {
                match self { $(UnaryOp::$var => ElemCost::$cost,)* }
            }

            /// `true` when the result is exact (no rounding): such ops keep property
            /// tests bit-exact under any algebraic rewrite.
            pub fn is_exact(self) -> bool {
                match self { $(UnaryOp::$var => $exact,)* }
            }

            /// Where the op is smooth and finite on reals (for generators of test inputs).
            pub fn domain(self) -> Domain {
                match self { $(UnaryOp::$var => Domain::$domain,)* }
            }

            /// Whether a last-bit change of the operand can change the result a lot.
            pub fn sensitivity(self) -> Sensitivity {
                match self { $(UnaryOp::$var => Sensitivity::$sensitive,)* }
            }

            /// The kind of JVP rule.
            pub fn jvp_kind(self) -> UnaryJvp {
                match self { $(UnaryOp::$var => jvp_kind!($jvp),)* }
            }

            /// The output tangent of `y = op(x)` for the operand tangent `d`, built with
            /// `b`; `None` for [`UnaryJvp::Special`] and [`UnaryJvp::Zero`] rules.
            pub fn tangent<B: RuleBuilder>(
                self,
                b: &B,
                x: &B::V,
                y: &B::V,
                d: &B::V,
            ) -> Option<B::V> {
                match self {
                    $(UnaryOp::$var => jvp_tangent!(UnaryOp::$var, b, x, y, d, $jvp),)*
                }
            }

            /// Whether the op accepts operands of `dtype` (it has a semantics for it).
            pub fn accepts(self, dtype: DType) -> bool {
                let (real, cplx, c2r, int) = match self {
                    $(UnaryOp::$var => (
                        has!($real),
                        has!($cplx),
                        has!($c2r),
                        has!($int),
                    ),)*
                };
                match dtype {
                    DType::F32 | DType::F64 => real,
                    DType::C32 | DType::C64 => cplx || c2r,
                    DType::I32 | DType::I64 => int,
                    DType::Bool => false,
                }
            }

            /// The result dtype for an operand of `dtype` (complex → real for abs, real and
            /// imag), or `None` when the op does not accept `dtype`.
            pub fn result_dtype(self, dtype: DType) -> Option<DType> {
                if !self.accepts(dtype) {
                    return None;
                }
                let c2r = match self {
                    $(UnaryOp::$var => has!($c2r),)*
                };
                Some(if dtype.is_complex() && c2r { dtype.real() } else { dtype })
            }

            /// Runs `m` with the op's f64 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_f64<M: ElemMap<f64, f64>>(self, m: M) -> Option<M::Out> {
                match self { $(UnaryOp::$var => sem_real!(m, f64, $real),)* }
            }

            /// Runs `m` with the op's f32 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_f32<M: ElemMap<f32, f32>>(self, m: M) -> Option<M::Out> {
                match self { $(UnaryOp::$var => sem_real!(m, f32, $real),)* }
            }

            /// Runs `m` with the op's c64 → c64 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_c64<M: ElemMap<Complex<f64>, Complex<f64>>>(self, m: M) -> Option<M::Out> {
                match self { $(UnaryOp::$var => sem_complex!(m, f64, $cplx),)* }
            }

            /// Runs `m` with the op's c32 → c32 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_c32<M: ElemMap<Complex<f32>, Complex<f32>>>(self, m: M) -> Option<M::Out> {
                match self { $(UnaryOp::$var => sem_complex!(m, f32, $cplx),)* }
            }

            /// Runs `m` with the op's c64 → f64 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_c64_to_real<M: ElemMap<Complex<f64>, f64>>(self, m: M) -> Option<M::Out> {
                match self { $(UnaryOp::$var => sem_to_real!(m, f64, $c2r),)* }
            }

            /// Runs `m` with the op's c32 → f32 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_c32_to_real<M: ElemMap<Complex<f32>, f32>>(self, m: M) -> Option<M::Out> {
                match self { $(UnaryOp::$var => sem_to_real!(m, f32, $c2r),)* }
            }

            /// Runs `m` with the op's i64 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_i64<M: ElemMap<i64, i64>>(self, m: M) -> Option<M::Out> {
                match self { $(UnaryOp::$var => sem_int!(m, i64, $int),)* }
            }

            /// Runs `m` with the op's i32 semantics (the i64 semantics at 32 bits); `None`
            /// if the op has none.
            #[inline(always)]
            pub fn map_i32<M: ElemMap<i32, i32>>(self, m: M) -> Option<M::Out> {
                match self { $(UnaryOp::$var => sem_int!(m, i32, $int),)* }
            }
        }

        /// Calls `$callback!` with `$(#[doc])* method => Variant;` for every unary op, so
        /// the tracing and eager method surfaces derive from the table.
        #[macro_export]
        macro_rules! for_each_unary_op {
            ($callback:ident) => {
                $callback! { $( $(#[$doc])* $name => $var; )* }
            };
        }
    };
}

/// The real sign: -1, 0 (keeping the sign of zero) or 1; NaN stays NaN.
macro_rules! real_sign {
    ($x:ident) => {
        if $x > 0.0 {
            1.0
        } else if $x < 0.0 {
            -1.0
        } else {
            $x
        }
    };
}

unary_ops! {
    /// `-x`. Numeric dtypes.
    Neg {
        name: neg, cost: Cheap, exact: true,
        domain: All, sensitive: Never,
        real: (|x| -x),
        complex: (|z| -z),
        complex_to_real: none,
        int: (|a| a.wrapping_neg()),
        jvp: linear,
    }
    /// `e^x`. Float and complex.
    Exp {
        name: exp, cost: Transcendental, exact: false,
        domain: All, sensitive: Never,
        real: (|x| x.exp()),
        complex: (|z| z.exp()),
        complex_to_real: none,
        int: none,
        jvp: (|b, x, y, d| b.mul(d, y)),
    }
    /// Natural log. Float and complex.
    Log {
        name: log, cost: Transcendental, exact: false,
        domain: Positive, sensitive: Complex,
        real: (|x| x.ln()),
        complex: (|z| z.ln()),
        complex_to_real: none,
        int: none,
        jvp: (|b, x, y, d| b.div(d, x)),
    }
    /// Sine.
    Sin {
        name: sin, cost: Transcendental, exact: false,
        domain: All, sensitive: Always,
        real: (|x| x.sin()),
        complex: (|z| z.sin()),
        complex_to_real: none,
        int: none,
        jvp: (|b, x, y, d| b.mul(d, &b.unary(UnaryOp::Cos, x))),
    }
    /// Cosine.
    Cos {
        name: cos, cost: Transcendental, exact: false,
        domain: All, sensitive: Always,
        real: (|x| x.cos()),
        complex: (|z| z.cos()),
        complex_to_real: none,
        int: none,
        jvp: (|b, x, y, d| b.mul(d, &b.unary(UnaryOp::Neg, &b.unary(UnaryOp::Sin, x)))),
    }
    /// Hyperbolic tangent; complex operands by Kahan's algorithm, finite for every finite
    /// operand (`tenferro_ir::complex_math`).
    Tanh {
        name: tanh, cost: Transcendental, exact: false,
        domain: All, sensitive: Never,
        real: (|x| x.tanh()),
        complex: (|z| z.ctanh()),
        complex_to_real: none,
        int: none,
        // tanh' = 1 - tanh².
        jvp: (|b, x, y, d| b.mul(d, &b.sub(&b.scalar(x, 1.0), &b.mul(y, y)))),
    }
    /// Principal square root. Float and complex.
    Sqrt {
        name: sqrt, cost: Moderate, exact: false,
        domain: Positive, sensitive: Complex,
        real: (|x| x.sqrt()),
        complex: (|z| z.sqrt()),
        complex_to_real: none,
        int: none,
        // sqrt' = 0.5 / sqrt(x): +inf at 0 (as JAX).
        jvp: (|b, x, y, d| b.mul(d, &b.div(&b.scalar(x, 0.5), y))),
    }
    /// `1/sqrt(x)`. Float and complex.
    Rsqrt {
        name: rsqrt, cost: Moderate, exact: false,
        domain: Positive, sensitive: Complex,
        real: (|x| 1.0 / x.sqrt()),
        complex: (|z| Complex::new(1.0, 0.0) / z.sqrt()),
        complex_to_real: none,
        int: none,
        // rsqrt' = -0.5 · rsqrt(x) / x.
        jvp: (|b, x, y, d| b.mul(d, &b.mul(&b.scalar(x, -0.5), &b.div(y, x)))),
    }
    /// `|x|`; the result of a complex operand is real (c64 → f64). Numeric dtypes.
    Abs {
        name: abs, cost: Cheap, exact: true,
        domain: NonZero, sensitive: Never,
        real: (|x| x.abs()),
        complex: none,
        complex_to_real: (|z| z.norm()),
        int: (|a| a.wrapping_abs()),
        jvp: special,
    }
    /// `-1, 0, 1` for reals (NaN stays NaN), `z/|z|` (0 at 0) for complex. Numeric dtypes.
    Sign {
        name: sign, cost: Cheap, exact: true,
        domain: NonZero, sensitive: Always,
        real: (|x| real_sign!(x)),
        complex: (|z| {
            let n = z.norm();
            if n == 0.0 {
                Complex::new(0.0, 0.0)
            } else {
                Complex::new(z.re / n, z.im / n)
            }
        }),
        complex_to_real: none,
        int: (|a| a.signum()),
        jvp: special,
    }
    /// `e^x - 1`, accurate near 0.
    Expm1 {
        name: expm1, cost: Transcendental, exact: false,
        domain: All, sensitive: Never,
        real: (|x| x.exp_m1()),
        complex: (|z| z.exp() - Complex::new(1.0, 0.0)),
        complex_to_real: none,
        int: none,
        jvp: (|b, x, y, d| b.mul(d, &b.add(y, &b.scalar(x, 1.0)))),
    }
    /// `ln(1 + x)`, accurate near 0.
    Log1p {
        name: log1p, cost: Transcendental, exact: false,
        domain: Positive, sensitive: Complex,
        real: (|x| x.ln_1p()),
        complex: (|z| (Complex::new(1.0, 0.0) + z).ln()),
        complex_to_real: none,
        int: none,
        jvp: (|b, x, y, d| b.div(d, &b.add(x, &b.scalar(x, 1.0)))),
    }
    /// The error function `2/√π ∫₀ˣ e^{-t²} dt` (libm's f64 erf, within 1 ulp; f32
    /// through it). Real floats.
    Erf {
        name: erf, cost: Transcendental, exact: false,
        domain: All, sensitive: Never,
        real: (|x| x.erf_libm()),
        complex: none,
        complex_to_real: none,
        int: none,
        // erf' = 2/√π · e^{-x²}.
        jvp: (|b, x, y, d| b.mul(d, &b.mul(
            &b.scalar(x, std::f64::consts::FRAC_2_SQRT_PI),
            &b.unary(UnaryOp::Exp, &b.unary(UnaryOp::Neg, &b.mul(x, x))),
        ))),
    }
    /// The complementary error function `1 - erf(x)`, accurate where erf is near 1
    /// (libm's f64 erfc; f32 through it). Real floats.
    Erfc {
        name: erfc, cost: Transcendental, exact: false,
        domain: All, sensitive: Never,
        real: (|x| x.erfc_libm()),
        complex: none,
        complex_to_real: none,
        int: none,
        // erfc' = -2/√π · e^{-x²}.
        jvp: (|b, x, y, d| b.mul(d, &b.mul(
            &b.scalar(x, -std::f64::consts::FRAC_2_SQRT_PI),
            &b.unary(UnaryOp::Exp, &b.unary(UnaryOp::Neg, &b.mul(x, x))),
        ))),
    }
    /// Tangent. Float and complex; complex operands as `-i · tanh(i z)` by Kahan's
    /// algorithm (`tenferro_ir::complex_math`).
    Tan {
        name: tan, cost: Transcendental, exact: false,
        domain: OpenUnit, sensitive: Always,
        real: (|x| x.tan()),
        complex: (|z| z.ctan()),
        complex_to_real: none,
        int: none,
        // tan' = 1 + tan².
        jvp: (|b, x, y, d| b.mul(d, &b.add(&b.scalar(x, 1.0), &b.mul(y, y)))),
    }
    /// Arcsine (principal branch). Float and complex; complex
    /// operands follow C99 Annex G (`tenferro_ir::complex_math`).
    Asin {
        name: asin, cost: Transcendental, exact: false,
        domain: OpenUnit, sensitive: Always,
        real: (|x| x.asin()),
        complex: (|z| z.casin()),
        complex_to_real: none,
        int: none,
        // asin' = 1 / sqrt(1 - x²).
        jvp: (|b, x, y, d| b.mul(d, &b.unary(UnaryOp::Rsqrt, &b.sub(&b.scalar(x, 1.0), &b.mul(x, x))))),
    }
    /// Arccosine (principal branch). Float and complex; complex
    /// operands follow C99 Annex G (`tenferro_ir::complex_math`).
    Acos {
        name: acos, cost: Transcendental, exact: false,
        domain: OpenUnit, sensitive: Always,
        real: (|x| x.acos()),
        complex: (|z| z.cacos()),
        complex_to_real: none,
        int: none,
        // acos' = -1 / sqrt(1 - x²).
        jvp: (|b, x, y, d| b.mul(d, &b.unary(UnaryOp::Neg, &b.unary(UnaryOp::Rsqrt, &b.sub(&b.scalar(x, 1.0), &b.mul(x, x)))))),
    }
    /// Arctangent (principal branch). Float and complex; complex
    /// operands follow C99 Annex G (`tenferro_ir::complex_math`).
    Atan {
        name: atan, cost: Transcendental, exact: false,
        domain: All, sensitive: Complex,
        real: (|x| x.atan()),
        complex: (|z| z.catan()),
        complex_to_real: none,
        int: none,
        // atan' = 1 / (1 + x²).
        jvp: (|b, x, y, d| b.div(d, &b.add(&b.scalar(x, 1.0), &b.mul(x, x)))),
    }
    /// Hyperbolic sine. Float and complex.
    Sinh {
        name: sinh, cost: Transcendental, exact: false,
        domain: All, sensitive: Never,
        real: (|x| x.sinh()),
        complex: (|z| z.sinh()),
        complex_to_real: none,
        int: none,
        jvp: (|b, x, y, d| b.mul(d, &b.unary(UnaryOp::Cosh, x))),
    }
    /// Hyperbolic cosine. Float and complex.
    Cosh {
        name: cosh, cost: Transcendental, exact: false,
        domain: All, sensitive: Never,
        real: (|x| x.cosh()),
        complex: (|z| z.cosh()),
        complex_to_real: none,
        int: none,
        jvp: (|b, x, y, d| b.mul(d, &b.unary(UnaryOp::Sinh, x))),
    }
    /// Inverse hyperbolic sine. Float and complex; complex
    /// operands follow C99 Annex G (`tenferro_ir::complex_math`).
    Asinh {
        name: asinh, cost: Transcendental, exact: false,
        domain: All, sensitive: Complex,
        real: (|x| x.asinh()),
        complex: (|z| z.casinh()),
        complex_to_real: none,
        int: none,
        // asinh' = 1 / sqrt(x² + 1).
        jvp: (|b, x, y, d| b.mul(d, &b.unary(UnaryOp::Rsqrt, &b.add(&b.mul(x, x), &b.scalar(x, 1.0))))),
    }
    /// Inverse hyperbolic cosine (x ≥ 1 on reals). Float and complex; complex
    /// operands follow C99 Annex G (`tenferro_ir::complex_math`).
    Acosh {
        name: acosh, cost: Transcendental, exact: false,
        domain: AboveOne, sensitive: Always,
        real: (|x| x.acosh()),
        complex: (|z| z.cacosh()),
        complex_to_real: none,
        int: none,
        // acosh' = 1 / (sqrt(x - 1) · sqrt(x + 1)) (as JAX: right on the complex plane).
        jvp: (|b, x, y, d| b.div(d, &b.mul(
            &b.unary(UnaryOp::Sqrt, &b.sub(x, &b.scalar(x, 1.0))),
            &b.unary(UnaryOp::Sqrt, &b.add(x, &b.scalar(x, 1.0))),
        ))),
    }
    /// Inverse hyperbolic tangent (|x| < 1 on reals). Float and complex; complex
    /// operands follow C99 Annex G (`tenferro_ir::complex_math`).
    Atanh {
        name: atanh, cost: Transcendental, exact: false,
        domain: OpenUnit, sensitive: Always,
        real: (|x| x.atanh()),
        complex: (|z| z.catanh()),
        complex_to_real: none,
        int: none,
        // atanh' = 1 / (1 - x²).
        jvp: (|b, x, y, d| b.div(d, &b.sub(&b.scalar(x, 1.0), &b.mul(x, x)))),
    }
    /// The logistic sigmoid `1 / (1 + e^{-x})` (jax.nn.sigmoid / lax.logistic); for
    /// real x it is computed without overflow on either side, within about 1 ulp. Float
    /// and complex.
    Logistic {
        name: logistic, cost: Transcendental, exact: false,
        domain: All, sensitive: Never,
        real: (|x| x.logistic()),
        complex: (|z| Complex::new(1.0, 0.0) / (Complex::new(1.0, 0.0) + (-z).exp())),
        complex_to_real: none,
        int: none,
        // σ' = σ (1 - σ).
        jvp: (|b, x, y, d| b.mul(d, &b.mul(y, &b.sub(&b.scalar(x, 1.0), y)))),
    }
    /// Cube root (real; `cbrt(-8) = -2`). Real floats.
    Cbrt {
        name: cbrt, cost: Transcendental, exact: false,
        domain: Positive, sensitive: Never,
        real: (|x| x.cbrt()),
        complex: none,
        complex_to_real: none,
        int: none,
        // cbrt' = 1 / (3 cbrt(x)²) (as JAX).
        jvp: (|b, x, y, d| b.div(d, &b.mul(&b.scalar(x, 3.0), &b.mul(y, y)))),
    }
    /// Largest integer not above x. Real floats; zero derivative (as JAX).
    Floor {
        name: floor, cost: Cheap, exact: true,
        domain: All, sensitive: Always,
        real: (|x| x.floor()),
        complex: none,
        complex_to_real: none,
        int: none,
        jvp: zero,
    }
    /// Smallest integer not below x. Real floats; zero derivative (as JAX).
    Ceil {
        name: ceil, cost: Cheap, exact: true,
        domain: All, sensitive: Always,
        real: (|x| x.ceil()),
        complex: none,
        complex_to_real: none,
        int: none,
        jvp: zero,
    }
    /// Nearest integer, ties to even (as jnp.round). Real floats; zero derivative.
    Round {
        name: round, cost: Cheap, exact: true,
        domain: All, sensitive: Always,
        real: (|x| x.round_ties_even()),
        complex: none,
        complex_to_real: none,
        int: none,
        jvp: zero,
    }
    /// The identity with a zero derivative at every order (jax.lax.stop_gradient).
    StopGradient {
        name: stop_gradient, cost: Cheap, exact: true,
        domain: All, sensitive: Never,
        real: (|x| x),
        complex: (|z| z),
        complex_to_real: none,
        int: (|a| a),
        jvp: zero,
    }
    /// Complex conjugate; identity on reals. Numeric dtypes.
    Conj {
        name: conj, cost: Cheap, exact: true,
        domain: All, sensitive: Never,
        real: (|x| x),
        complex: (|z| z.conj()),
        complex_to_real: none,
        int: (|a| a),
        jvp: special,
    }
    /// Real part; complex → real, identity on reals.
    Real {
        name: real, cost: Cheap, exact: true,
        domain: All, sensitive: Never,
        real: (|x| x),
        complex: none,
        complex_to_real: (|z| z.re),
        int: (|a| a),
        jvp: special,
    }
    /// Imaginary part; complex → real, zeros on reals.
    Imag {
        name: imag, cost: Cheap, exact: true,
        domain: All, sensitive: Never,
        real: (|x| {
            let _ = x;
            0.0
        }),
        complex: none,
        complex_to_real: (|z| z.im),
        int: (|a| {
            let _ = a;
            0
        }),
        jvp: special,
    }
}

// ---------------------------------------------------------------------------------------
// Binary ops.

/// A loop over pairs of elements, given the per-element function of a binary op.
pub trait ElemMap2<T> {
    /// The loop's result.
    type Out;
    /// Runs the loop with `f` as the per-element function.
    fn map<F: Fn(T, T) -> T + Copy>(self, f: F) -> Self::Out;
}

macro_rules! sem2 {
    ($m:ident, $t:ty, none) => {
        None
    };
    ($m:ident, $t:ty, (|$x:ident, $y:ident| $e:expr)) => {
        Some($m.map(|$x: $t, $y: $t| -> $t { $e }))
    };
}

/// Defines [`BinaryOp`] and its table from one entry per op.
macro_rules! binary_ops {
    ($(
        $(#[$doc:meta])*
        $var:ident {
            name: $name:ident,
            cost: $cost:ident,
            real: $real:tt,
            complex: $cplx:tt,
            int: $int:tt,
        }
    )*) => {
        /// Elementwise binary operations (the op table in [`crate::optable`]). Both
        /// operands and the result have one type (tracing inserts broadcasts and converts;
        /// the IR never broadcasts implicitly).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum BinaryOp {
            $( $(#[$doc])* $var, )*
        }

        impl BinaryOp {
            /// Every binary op, in table order.
            pub const ALL: [BinaryOp; <[&str]>::len(&[$(stringify!($var)),*])] = [$(BinaryOp::$var),*];

            /// Name in the text form.
            pub fn name(self) -> &'static str {
                match self { $(BinaryOp::$var => stringify!($name),)* }
            }

            /// Per-element cost class.
            pub fn cost(self) -> ElemCost {
                match self { $(BinaryOp::$var => ElemCost::$cost,)* }
            }

            /// Whether the op accepts operands of `dtype` (it has a semantics for it).
            pub fn accepts(self, dtype: DType) -> bool {
                let (real, cplx, int) = match self {
                    $(BinaryOp::$var => (has!($real), has!($cplx), has!($int)),)*
                };
                match dtype {
                    DType::F32 | DType::F64 => real,
                    DType::C32 | DType::C64 => cplx,
                    DType::I32 | DType::I64 => int,
                    DType::Bool => false,
                }
            }

            /// Runs `m` with the op's f64 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_f64<M: ElemMap2<f64>>(self, m: M) -> Option<M::Out> {
                match self { $(BinaryOp::$var => sem2!(m, f64, $real),)* }
            }

            /// Runs `m` with the op's f32 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_f32<M: ElemMap2<f32>>(self, m: M) -> Option<M::Out> {
                match self { $(BinaryOp::$var => sem2!(m, f32, $real),)* }
            }

            /// Runs `m` with the op's c64 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_c64<M: ElemMap2<Complex<f64>>>(self, m: M) -> Option<M::Out> {
                match self { $(BinaryOp::$var => sem2!(m, Complex<f64>, $cplx),)* }
            }

            /// Runs `m` with the op's c32 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_c32<M: ElemMap2<Complex<f32>>>(self, m: M) -> Option<M::Out> {
                match self { $(BinaryOp::$var => sem2!(m, Complex<f32>, $cplx),)* }
            }

            /// Runs `m` with the op's i64 semantics; `None` if the op has none.
            #[inline(always)]
            pub fn map_i64<M: ElemMap2<i64>>(self, m: M) -> Option<M::Out> {
                match self { $(BinaryOp::$var => sem2!(m, i64, $int),)* }
            }

            /// Runs `m` with the op's i32 semantics (the i64 semantics at 32 bits); `None`
            /// if the op has none.
            #[inline(always)]
            pub fn map_i32<M: ElemMap2<i32>>(self, m: M) -> Option<M::Out> {
                match self { $(BinaryOp::$var => sem2!(m, i32, $int),)* }
            }
        }
    };
}

macro_rules! ieee_minmax {
    ($max:ident, $min:ident, $t:ty) => {
        /// IEEE 754-2019 maximum: NaN-propagating (the first NaN wins), `-0 < +0`.
        #[inline(always)]
        pub fn $max(x: $t, y: $t) -> $t {
            if x.is_nan() {
                x
            } else if y.is_nan() {
                y
            } else if x > y {
                x
            } else if y > x {
                y
            } else if x.is_sign_negative() {
                y
            } else {
                x
            }
        }
        /// IEEE 754-2019 minimum: NaN-propagating (the first NaN wins), `-0 < +0`.
        #[inline(always)]
        pub fn $min(x: $t, y: $t) -> $t {
            if x.is_nan() {
                x
            } else if y.is_nan() {
                y
            } else if x < y {
                x
            } else if y < x {
                y
            } else if x.is_sign_negative() {
                x
            } else {
                y
            }
        }
    };
}
ieee_minmax!(max_f32, min_f32, f32);
ieee_minmax!(max_f64, min_f64, f64);

/// The IEEE maximum and minimum of one float type.
pub trait IeeeMinMax: Copy {
    /// [`max_f64`] / [`max_f32`].
    fn ieee_max(self, y: Self) -> Self;
    /// [`min_f64`] / [`min_f32`].
    fn ieee_min(self, y: Self) -> Self;
}

impl IeeeMinMax for f64 {
    #[inline(always)]
    fn ieee_max(self, y: f64) -> f64 {
        max_f64(self, y)
    }
    #[inline(always)]
    fn ieee_min(self, y: f64) -> f64 {
        min_f64(self, y)
    }
}

impl IeeeMinMax for f32 {
    #[inline(always)]
    fn ieee_max(self, y: f32) -> f32 {
        max_f32(self, y)
    }
    #[inline(always)]
    fn ieee_min(self, y: f32) -> f32 {
        min_f32(self, y)
    }
}

/// The shifts of one integer type, on its own bit width (as lax).
pub trait IntShift: Copy {
    /// `self << y`; 0 when `y` is outside `0..BITS`.
    fn shift_left(self, y: Self) -> Self;
    /// `self >> y` filling with zeros (the bits read as unsigned); 0 when `y` is outside
    /// `0..BITS`.
    fn shift_right_logical(self, y: Self) -> Self;
}

macro_rules! int_shift {
    ($t:ty, $u:ty) => {
        impl IntShift for $t {
            #[inline(always)]
            fn shift_left(self, y: $t) -> $t {
                if (0..<$t>::BITS as $t).contains(&y) {
                    self.wrapping_shl(y as u32)
                } else {
                    0
                }
            }
            #[inline(always)]
            fn shift_right_logical(self, y: $t) -> $t {
                if (0..<$t>::BITS as $t).contains(&y) {
                    ((self as $u) >> (y as u32)) as $t
                } else {
                    0
                }
            }
        }
    };
}
int_shift!(i64, u64);
int_shift!(i32, u32);

binary_ops! {
    /// `x + y`.
    Add {
        name: add, cost: Cheap,
        real: (|x, y| x + y),
        complex: (|x, y| x + y),
        int: (|x, y| x.wrapping_add(y)),
    }
    /// `x - y`.
    Sub {
        name: sub, cost: Cheap,
        real: (|x, y| x - y),
        complex: (|x, y| x - y),
        int: (|x, y| x.wrapping_sub(y)),
    }
    /// `x * y`.
    Mul {
        name: mul, cost: Cheap,
        real: (|x, y| x * y),
        complex: (|x, y| x * y),
        int: (|x, y| x.wrapping_mul(y)),
    }
    /// Division; integer division truncates toward zero (division by zero gives 0).
    Div {
        name: div, cost: Moderate,
        real: (|x, y| x / y),
        complex: (|x, y| x / y),
        int: (|x, y| if y == 0 { 0 } else { x.wrapping_div(y) }),
    }
    /// `x^y`. Float and complex (`exp(y·ln x)` for complex).
    Pow {
        name: pow, cost: Transcendental,
        real: (|x, y| x.powf(y)),
        complex: (|x, y| x.powc(y)),
        int: none,
    }
    /// Elementwise maximum, NaN-propagating. Real dtypes only.
    Max {
        name: maximum, cost: Cheap,
        real: (|x, y| x.ieee_max(y)),
        complex: none,
        int: (|x, y| x.max(y)),
    }
    /// Elementwise minimum, NaN-propagating. Real dtypes only.
    Min {
        name: minimum, cost: Cheap,
        real: (|x, y| x.ieee_min(y)),
        complex: none,
        int: (|x, y| x.min(y)),
    }
    /// `atan2(x, y)`: the angle of the point `(y, x)`, as lax.atan2 (x is the
    /// numerator). Real floats.
    Atan2 {
        name: atan2, cost: Transcendental,
        real: (|x, y| x.atan2(y)),
        complex: none,
        int: none,
    }
    /// C's `fmod` (as lax.rem): `x - y·trunc(x/y)`, the sign of x. Integers: truncated
    /// remainder, 0 for a zero divisor (as integer division).
    Rem {
        name: rem, cost: Moderate,
        real: (|x, y| x % y),
        complex: none,
        int: (|x, y| if y == 0 { 0 } else { x.wrapping_rem(y) }),
    }
    /// Bitwise and. Integers only (no derivative).
    And {
        name: and, cost: Cheap,
        real: none,
        complex: none,
        int: (|x, y| x & y),
    }
    /// Bitwise or. Integers only (no derivative).
    Or {
        name: or, cost: Cheap,
        real: none,
        complex: none,
        int: (|x, y| x | y),
    }
    /// Bitwise exclusive or. Integers only (no derivative).
    Xor {
        name: xor, cost: Cheap,
        real: none,
        complex: none,
        int: (|x, y| x ^ y),
    }
    /// `x << y` on the bit pattern of the dtype's width (64 or 32 bits); 0 when `y` is
    /// outside `0..width` (as lax). Integers only.
    ShiftLeft {
        name: shift_left, cost: Cheap,
        real: none,
        complex: none,
        int: (|x, y| x.shift_left(y)),
    }
    /// `x >> y` filling with zeros (the bit pattern of the dtype's width read as
    /// unsigned); 0 when `y` is outside `0..width` (as lax). Integers only.
    ShiftRightLogical {
        name: shift_right_logical, cost: Cheap,
        real: none,
        complex: none,
        int: (|x, y| x.shift_right_logical(y)),
    }
}
