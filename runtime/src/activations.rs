//! Elementwise activations and helpers named as in `jax.nn` / `jax.numpy`: `relu`,
//! `relu6`, `gelu`, `silu`, `sigmoid`, `softplus`, `log_sigmoid`, `clamp` / `clip`,
//! `clamp_tensors`, `square`, `reciprocal`, `is_finite`, `is_nan`, `is_inf`.
//!
//! Each is a composite of primitives (select, compare, max/min, exp, log1p, tanh, erf,
//! arithmetic). The CPU backend fuses such a chain into one elementwise loop, so a
//! composite costs what a dedicated kernel would (one read, one write per element), and
//! autodiff differentiates it through the primitives' rules to any order. Where the
//! textbook formula overflows or loses its derivative (sigmoid at large `|x|`, softplus),
//! the composite is written in the stable form, with both branches of every `select`
//! computed on safe inputs so that no NaN reaches the derivative either.
//!
//! Kinks follow JAX: `relu'(0) = 0`, `relu6'` is 0 at 0 and 6; `clip` is
//! `minimum(maximum(x, lo), hi)` exactly as `jnp.clip`, so at a bound the derivative is
//! 0.5 (max/min split ties evenly, as in JAX).
//!
//! Transcendental activations of integer or bool tensors compute in f64; complex operands
//! of the activations that need an order are rejected with the method named.

use crate::error::{Result, RuntimeError};
use crate::reductions::{checked, float_of, real_float_of, rec, splat};
use crate::traced::TracedTensor;
use tenferro_ir::DType;

/// `x` with bools as i64 (for ops that compare or do arithmetic on integers).
#[track_caller]
fn numeric_of(x: &TracedTensor) -> Result<TracedTensor> {
    match x.dtype()? {
        DType::Bool => x.convert(DType::I64),
        DType::F32 | DType::F64 | DType::C32 | DType::C64 | DType::I32 | DType::I64 => {
            Ok(x.clone())
        }
    }
}

/// `x` as a real, integer (from bool) operand of `op`; complex is an error.
#[track_caller]
fn ordered_of(op: &str, x: &TracedTensor) -> Result<TracedTensor> {
    let ty = x.ty()?;
    if ty.dtype.is_complex() {
        return Err(RuntimeError::invalid_op(
            op,
            format!("operand {ty} is complex; {op} needs a real or integer operand"),
        ));
    }
    numeric_of(x)
}

/// The constant `v` shaped and typed like `x`.
#[track_caller]
fn like(x: &TracedTensor, v: f64) -> Result<TracedTensor> {
    let ty = x.ty()?;
    splat(ty.dtype, &ty.shape, v)
}

/// `a or b` for bool tensors of one shape.
#[track_caller]
fn or(a: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    let yes = like(a, 1.0)?;
    checked(TracedTensor::select(a, &yes, b))
}

/// The stable logistic: with `z = exp(-|x|)` (the sign flip done by a select, so the
/// derivative is ±1 everywhere, also at 0), `1/(1+z)` for `x >= 0` and `z/(1+z)`
/// otherwise. `z` is in (0, 1], so nothing overflows, and the derivative
/// `σ(x)(1-σ(x))` stays finite (0 at ±inf).
#[track_caller]
fn logistic_stable(x: &TracedTensor) -> Result<TracedTensor> {
    let zero = like(x, 0.0)?;
    let pos = x.greater_equal(&zero);
    let t = TracedTensor::select(&pos, &-x, x);
    let z = t.exp();
    let num = TracedTensor::select(&pos, &like(x, 1.0)?, &z);
    checked(&num / &(&z + 1.0))
}

impl TracedTensor {
    /// `max(x, 0)` (`jax.nn.relu`), written `where(x <= 0, 0, x)`: the derivative at 0 is
    /// 0 (as JAX), NaN propagates. Integer operands stay integer.
    #[track_caller]
    pub fn relu(&self) -> TracedTensor {
        rec((|| {
            let x = ordered_of("relu", self)?;
            let zero = like(&x, 0.0)?;
            checked(TracedTensor::select(&x.less_equal(&zero), &zero, &x))
        })())
    }

    /// `min(max(x, 0), 6)` (`jax.nn.relu6`); the derivative is 1 strictly inside (0, 6)
    /// and 0 elsewhere (also at 0 and 6, as JAX). NaN propagates.
    #[track_caller]
    pub fn relu6(&self) -> TracedTensor {
        rec((|| {
            let x = ordered_of("relu6", self)?;
            let zero = like(&x, 0.0)?;
            let six = like(&x, 6.0)?;
            let upper = TracedTensor::select(&x.greater_equal(&six), &six, &x);
            checked(TracedTensor::select(&x.less_equal(&zero), &zero, &upper))
        })())
    }

    /// The logistic sigmoid `1/(1+exp(-x))` (`jax.nn.sigmoid`), in the stable form (see
    /// the module docs): exactly 0 and 1 at `∓inf`, finite derivative everywhere.
    #[track_caller]
    pub fn sigmoid(&self) -> TracedTensor {
        rec(real_float_of("sigmoid", self).and_then(|x| logistic_stable(&x)))
    }

    /// `x · sigmoid(x)` (`jax.nn.silu`, a.k.a. swish).
    #[track_caller]
    pub fn silu(&self) -> TracedTensor {
        rec((|| {
            let x = real_float_of("silu", self)?;
            checked(&x * &logistic_stable(&x)?)
        })())
    }

    /// `log(1 + exp(x))` (`jax.nn.softplus`), stably as `max(x, 0) + log1p(exp(-|x|))`:
    /// no overflow, `softplus(x) = x` to rounding for large `x`, and the derivative is the
    /// sigmoid (0.5 at 0: the max's tie split plus a zero from `|x|'`).
    #[track_caller]
    pub fn softplus(&self) -> TracedTensor {
        rec((|| {
            let x = real_float_of("softplus", self)?;
            let zero = like(&x, 0.0)?;
            checked(&x.maximum(&zero) + &(-&x.abs()).exp().log1p())
        })())
    }

    /// `log(sigmoid(x)) = -softplus(-x)` (`jax.nn.log_sigmoid`), without underflow to
    /// `log(0)` for very negative `x`.
    #[track_caller]
    pub fn log_sigmoid(&self) -> TracedTensor {
        rec((|| {
            let x = real_float_of("log_sigmoid", self)?;
            checked(-(-&x).softplus())
        })())
    }

    /// The Gaussian error linear unit (`jax.nn.gelu`): `x/2 · (1 + erf(x/√2))` when
    /// `approximate` is false, else the tanh approximation
    /// `x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))` (JAX's default is `approximate=True`).
    #[track_caller]
    pub fn gelu(&self, approximate: bool) -> TracedTensor {
        rec((|| {
            let x = real_float_of("gelu", self)?;
            let inner = if approximate {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                let cube = &(&x * &x) * &x;
                (&(&x + &(&cube * 0.044715)) * c).tanh()
            } else {
                (&x * std::f64::consts::FRAC_1_SQRT_2).erf()
            };
            checked(&(&x * 0.5) * &(&inner + 1.0))
        })())
    }

    /// `jnp.clip(x, lo, hi)` = `minimum(maximum(x, lo), hi)`, with the bounds in `x`'s dtype
    /// (truncated for integer tensors). As in JAX, the derivative is 1 strictly between the
    /// bounds, 0.5 at a bound (the tie split of max/min) and 0 outside; `lo > hi` gives
    /// `hi`; NaN propagates.
    #[track_caller]
    pub fn clamp(&self, lo: f64, hi: f64) -> TracedTensor {
        rec((|| {
            let x = ordered_of("clamp", self)?;
            checked(x.maximum(&like(&x, lo)?).minimum(&like(&x, hi)?))
        })())
    }

    /// Alias of [`TracedTensor::clamp`] (the `jnp.clip` name).
    #[track_caller]
    pub fn clip(&self, lo: f64, hi: f64) -> TracedTensor {
        self.clamp(lo, hi)
    }

    /// `minimum(maximum(x, lo), hi)` with tensor bounds (broadcast and promoted as binary
    /// operators); differentiable in `x`, `lo` and `hi` (ties split 0.5, as JAX).
    #[track_caller]
    pub fn clamp_tensors(&self, lo: &TracedTensor, hi: &TracedTensor) -> TracedTensor {
        rec((|| {
            let x = ordered_of("clamp_tensors", self)?;
            checked(x.maximum(lo).minimum(hi))
        })())
    }

    /// `x · x` (`jnp.square`); bools become i64.
    #[track_caller]
    pub fn square(&self) -> TracedTensor {
        rec(numeric_of(self).map(|x| &x * &x))
    }

    /// `1 / x` (`jnp.reciprocal`); integers and bools compute in f64.
    #[track_caller]
    pub fn reciprocal(&self) -> TracedTensor {
        rec((|| {
            let x = float_of(self)?;
            checked(&like(&x, 1.0)? / &x)
        })())
    }

    /// Whether each element is finite (neither infinite nor NaN), bool. Integers and bools
    /// are always finite; a complex element is finite when both parts are.
    #[track_caller]
    pub fn is_finite(&self) -> TracedTensor {
        rec((|| {
            let x = numeric_of(self)?;
            let d = x.dtype()?;
            if d.is_int() {
                return checked(x.equal(&x));
            }
            // max(|re|, |im|) propagates NaN, and NaN < inf is false.
            let a = if d.is_complex() {
                x.real().abs().maximum(&x.imag().abs())
            } else {
                x.abs()
            };
            checked(a.less(&like(&a, f64::INFINITY)?))
        })())
    }

    /// Whether each element is NaN, bool (complex: either part NaN).
    #[track_caller]
    pub fn is_nan(&self) -> TracedTensor {
        rec((|| {
            let x = numeric_of(self)?;
            let x = if x.dtype()?.is_complex() {
                x.real().abs().maximum(&x.imag().abs())
            } else {
                x
            };
            checked(x.not_equal(&x))
        })())
    }

    /// Whether each element is `±inf`, bool (complex: either part infinite, as NumPy).
    #[track_caller]
    pub fn is_inf(&self) -> TracedTensor {
        rec((|| {
            let x = numeric_of(self)?;
            let d = x.dtype()?;
            if d.is_int() {
                return checked(x.not_equal(&x));
            }
            if d.is_complex() {
                let (re, im) = (x.real().abs(), x.imag().abs());
                let inf = like(&re, f64::INFINITY)?;
                return or(&re.equal(&inf), &im.equal(&inf));
            }
            let a = x.abs();
            checked(a.equal(&like(&a, f64::INFINITY)?))
        })())
    }
}
