//! Integer-style and bitwise arithmetic as NumPy / JAX spell it: `atan2`, `fmod`,
//! `remainder` (the `%` operator), `floor_divide`, bitwise and logical `and` / `or` /
//! `xor` / `not` (the `&`, `|`, `^` operators) and shifts. Each is an op of the table or a
//! short composite of them, so derivatives, fusion and vmap come from the table.

use crate::ops::ok_or_recorded;
use crate::reductions::float_of;
use crate::Result;
use crate::{RuntimeError, TracedTensor};
use std::ops::{BitAnd, BitOr, BitXor, Rem};
use tenferro_ir::{BinaryOp, CmpOp, DType};

/// The promoted operands, their truncated remainder `fmod(x, y)`, and where Python's
/// floored remainder differs from it (nonzero, with a sign other than the divisor's).
#[track_caller]
fn floored(op: &str, a: &TracedTensor, b: &TracedTensor) -> Result<[TracedTensor; 4]> {
    let (x, y) = TracedTensor::unify(op, a, b)?;
    let r = x.fmod(&y);
    let zero = r.full_like(0.0)?;
    let signs_differ = r.less(&zero).not_equal(&y.less(&zero));
    let fix = r.not_equal(&zero).logical_and(&signs_differ);
    Ok([x, y, r, fix])
}

impl TracedTensor {
    /// `jnp.arctan2(self, other)`: the angle of the point `(other, self)` in `(-π, π]`,
    /// with broadcasting and promotion. Real floats (integers promote to f64).
    #[track_caller]
    pub fn atan2(&self, other: &TracedTensor) -> TracedTensor {
        self.float_binary(BinaryOp::Atan2, other)
    }

    /// `jnp.fmod` / `lax.rem`: `x - y·trunc(x / y)`, with the sign of `self` (C's
    /// `fmod`). Real floats and integers; an integer divisor of 0 gives 0.
    #[track_caller]
    pub fn fmod(&self, other: &TracedTensor) -> TracedTensor {
        self.binary(BinaryOp::Rem, other)
    }

    /// `jnp.remainder` and the `%` operator (Python's `%`, as NumPy, JAX and PyTorch):
    /// `x - y·floor(x / y)`, with the sign of the divisor `other`. Computed as JAX does,
    /// from [`TracedTensor::fmod`]: where the truncated remainder is nonzero and its sign
    /// differs from the divisor's, the divisor is added. Real floats and integers.
    #[track_caller]
    pub fn remainder(&self, other: &TracedTensor) -> TracedTensor {
        ok_or_recorded((|| {
            let [_, y, r, fix] = floored("remainder", self, other)?;
            Ok(TracedTensor::select(&fix, &(&r + &y), &r))
        })())
    }

    /// `jnp.floor_divide` (Python's `//`): `floor(x / y)`. Integers: the truncated
    /// quotient, less one where the remainder is nonzero and the signs differ (a divisor
    /// of 0 gives 0, as integer division and NumPy). Floats: `(x - fmod(x, y)) / y` (`x / y`
    /// for a zero divisor), less one where [`TracedTensor::remainder`] corrects the
    /// remainder, rounded (as JAX).
    #[track_caller]
    pub fn floor_divide(&self, other: &TracedTensor) -> TracedTensor {
        ok_or_recorded((|| {
            let [x, y, r, fix] = floored("floor_divide", self, other)?;
            let d = x.dtype()?;
            if d.is_complex() {
                return Err(RuntimeError::invalid_op(
                    "floor_divide",
                    format!(
                        "operands {} are complex: floor division needs real numbers",
                        x.ty()?
                    ),
                ));
            }
            let (zero, one) = (r.full_like(0.0)?, r.full_like(1.0)?);
            if d.is_int() || d == DType::Bool {
                let q = &x / &y;
                return Ok(TracedTensor::select(&fix, &(&q - &one), &q));
            }
            // A zero divisor divides `x` itself (inf or NaN, as `x / 0`).
            let corrected = TracedTensor::select(&y.equal(&zero), &x, &(&x - &r));
            let q = &corrected / &y;
            Ok(TracedTensor::select(&fix, &(&q - &one), &q).round())
        })())
    }

    /// `jnp.bitwise_and` and the `&` operator: bitwise on integers, logical on bools.
    #[track_caller]
    pub fn bitwise_and(&self, other: &TracedTensor) -> TracedTensor {
        self.bitwise(BinaryOp::And, other)
    }

    /// `jnp.bitwise_or` and the `|` operator: bitwise on integers, logical on bools.
    #[track_caller]
    pub fn bitwise_or(&self, other: &TracedTensor) -> TracedTensor {
        self.bitwise(BinaryOp::Or, other)
    }

    /// `jnp.bitwise_xor` and the `^` operator: bitwise on integers, logical on bools.
    #[track_caller]
    pub fn bitwise_xor(&self, other: &TracedTensor) -> TracedTensor {
        self.bitwise(BinaryOp::Xor, other)
    }

    /// `lax.shift_left` on integers: 0 where the shift is outside `0..width`.
    #[track_caller]
    pub fn shift_left(&self, other: &TracedTensor) -> TracedTensor {
        self.binary(BinaryOp::ShiftLeft, other)
    }

    /// `lax.shift_right_logical` on integers (zeros shifted in): 0 where the shift is
    /// outside `0..width`.
    #[track_caller]
    pub fn shift_right_logical(&self, other: &TracedTensor) -> TracedTensor {
        self.binary(BinaryOp::ShiftRightLogical, other)
    }

    /// `jnp.logical_and`: `self && other` on the truth values of any dtype (nonzero is true), a
    /// bool result.
    #[track_caller]
    pub fn logical_and(&self, other: &TracedTensor) -> TracedTensor {
        ok_or_recorded((|| {
            let (a, b) = (self.truth_value()?, other.truth_value()?);
            Ok(TracedTensor::select(&a, &b, &a))
        })())
    }

    /// `jnp.logical_or`: `self || other` on truth values, a bool result.
    #[track_caller]
    pub fn logical_or(&self, other: &TracedTensor) -> TracedTensor {
        ok_or_recorded((|| {
            let (a, b) = (self.truth_value()?, other.truth_value()?);
            Ok(TracedTensor::select(&a, &a, &b))
        })())
    }

    /// `jnp.logical_xor`: truth values that differ, a bool result.
    #[track_caller]
    pub fn logical_xor(&self, other: &TracedTensor) -> TracedTensor {
        ok_or_recorded((|| {
            Ok(self.truth_value()?.not_equal(&other.truth_value()?))
        })())
    }

    /// `jnp.logical_not`: the negated truth value (zero is false), a bool result.
    #[track_caller]
    pub fn logical_not(&self) -> TracedTensor {
        ok_or_recorded((|| {
            let t = self.truth_value()?;
            Ok(t.equal(&t.full_like(0.0)?))
        })())
    }

    /// The truth value: `self` for bool, `self != 0` otherwise (NaN is true, as NumPy).
    #[track_caller]
    pub(crate) fn truth_value(&self) -> Result<TracedTensor> {
        if self.dtype()? == DType::Bool {
            return Ok(self.clone());
        }
        Ok(self.compare(CmpOp::Ne, &self.full_like(0.0)?))
    }

    /// A bitwise op: the table's integer op, or its logical version on two bools.
    #[track_caller]
    fn bitwise(&self, op: BinaryOp, other: &TracedTensor) -> TracedTensor {
        let both_bool = matches!(
            (self.dtype(), other.dtype()),
            (Ok(DType::Bool), Ok(DType::Bool))
        );
        if !both_bool {
            return self.binary(op, other);
        }
        match op {
            BinaryOp::And => self.logical_and(other),
            BinaryOp::Or => self.logical_or(other),
            _ => self.logical_xor(other),
        }
    }

    /// A float-only table op: integer and bool operands promote to f64 first (as
    /// `jnp.arctan2` of integers).
    #[track_caller]
    fn float_binary(&self, op: BinaryOp, other: &TracedTensor) -> TracedTensor {
        ok_or_recorded((|| Ok(float_of(self)?.binary(op, &float_of(other)?)))())
    }
}

macro_rules! tensor_operators {
    ($($trait:ident $method:ident $via:ident;)*) => {$(
        impl $trait<&TracedTensor> for &TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: &TracedTensor) -> TracedTensor { self.$via(rhs) }
        }
        impl $trait<TracedTensor> for TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: TracedTensor) -> TracedTensor { self.$via(&rhs) }
        }
        impl $trait<&TracedTensor> for TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: &TracedTensor) -> TracedTensor { self.$via(rhs) }
        }
        impl $trait<TracedTensor> for &TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: TracedTensor) -> TracedTensor { self.$via(&rhs) }
        }
    )*};
}

tensor_operators! {
    Rem rem remainder;
    BitAnd bitand bitwise_and;
    BitOr bitor bitwise_or;
    BitXor bitxor bitwise_xor;
}

/// `x % v` and `v % x` with a Rust float, weakly typed as the arithmetic operators: it
/// takes a float tensor's dtype and promotes an integer or bool tensor to f64.
#[track_caller]
pub fn remainder_scalar(x: &TracedTensor, v: f64, scalar_on_left: bool) -> TracedTensor {
    ok_or_recorded((|| {
        let x = float_of(x)?;
        let s = x.splat_like(v)?;
        Ok(if scalar_on_left {
            s.remainder(&x)
        } else {
            x.remainder(&s)
        })
    })())
}

impl Rem<f64> for &TracedTensor {
    type Output = TracedTensor;
    #[track_caller]
    fn rem(self, rhs: f64) -> TracedTensor {
        remainder_scalar(self, rhs, false)
    }
}

impl Rem<f64> for TracedTensor {
    type Output = TracedTensor;
    #[track_caller]
    fn rem(self, rhs: f64) -> TracedTensor {
        remainder_scalar(&self, rhs, false)
    }
}

impl Rem<&TracedTensor> for f64 {
    type Output = TracedTensor;
    #[track_caller]
    fn rem(self, rhs: &TracedTensor) -> TracedTensor {
        remainder_scalar(rhs, self, true)
    }
}
