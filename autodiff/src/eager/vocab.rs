//! The everyday reductions and activations on [`EagerTensor`]: the same names and
//! semantics as the `TracedTensor` methods of `tenferro_runtime::reductions` and
//! `tenferro_runtime::activations` (each wraps the traced composite, cached by its name
//! and parameters), but they run at once and return `Result`.

use super::context::OpKey;
use super::tensor::EagerTensor;
use crate::error::Result;
use tenferro_runtime::TracedTensor;

/// A traced value with a recorded error as `Err`.
fn ok(t: TracedTensor) -> tenferro_runtime::Result<Vec<TracedTensor>> {
    match t.error() {
        Some(e) => Err(e),
        None => Ok(vec![t]),
    }
}

/// The cache-key integers of signed axes, a count first (so lists of different lengths
/// followed by other parameters cannot collide).
fn axes_key(axes: &[isize], rest: &[i64]) -> Vec<i64> {
    let mut k = Vec::with_capacity(axes.len() + rest.len() + 1);
    k.push(axes.len() as i64);
    k.extend(axes.iter().map(|&a| a as i64));
    k.extend_from_slice(rest);
    k
}

/// Methods without parameters: `name => traced method`.
macro_rules! plain {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        impl EagerTensor {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Result<EagerTensor> {
                    self.ctx.apply_traced1(
                        OpKey::named(stringify!($name), Vec::new()),
                        &[self],
                        |t| ok(t[0].$name()),
                    )
                }
            )*
        }
    };
}

/// Elementwise methods of two tensors: `name => traced method`.
macro_rules! pairwise {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        impl EagerTensor {
            $(
                $(#[$doc])*
                pub fn $name(&self, other: &EagerTensor) -> Result<EagerTensor> {
                    self.ctx.apply_traced1(
                        OpKey::named(stringify!($name), Vec::new()),
                        &[self, other],
                        |t| ok(t[0].$name(&t[1])),
                    )
                }
            )*
        }
    };
}

pairwise! {
    /// `jnp.arctan2(self, other)`; see `TracedTensor::atan2`.
    atan2;
    /// `jnp.fmod`: the remainder with the sign of `self`.
    fmod;
    /// `jnp.remainder` (the `%` operator): the remainder with the sign of `other`.
    remainder;
    /// `jnp.floor_divide`: `floor(self / other)`.
    floor_divide;
    /// Bitwise and on integers, logical on bools (the `&` operator).
    bitwise_and;
    /// Bitwise or on integers, logical on bools (the `|` operator).
    bitwise_or;
    /// Bitwise exclusive or on integers, logical on bools (the `^` operator).
    bitwise_xor;
    /// `lax.shift_left` on integers.
    shift_left;
    /// `lax.shift_right_logical` on integers.
    shift_right_logical;
    /// `jnp.logical_and` on truth values (a bool result).
    logical_and;
    /// `jnp.logical_or` on truth values.
    logical_or;
    /// `jnp.logical_xor` on truth values.
    logical_xor;
}

impl EagerTensor {
    /// `self % v` (`scalar_on_left`: `v % self`) with a Rust float, weakly typed; see
    /// `tenferro_runtime::arith::remainder_scalar`.
    pub fn remainder_scalar(&self, v: f64, scalar_on_left: bool) -> Result<EagerTensor> {
        self.ctx.apply_traced1(
            OpKey::named(
                "remainder_scalar",
                vec![v.to_bits() as i64, scalar_on_left as i64],
            ),
            &[self],
            |t| {
                ok(tenferro_runtime::arith::remainder_scalar(
                    &t[0],
                    v,
                    scalar_on_left,
                ))
            },
        )
    }
}

/// Reductions over signed axes with `keepdims`.
macro_rules! over_axes {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        impl EagerTensor {
            $(
                $(#[$doc])*
                pub fn $name(&self, axes: &[isize], keepdims: bool) -> Result<EagerTensor> {
                    self.ctx.apply_traced1(
                        OpKey::named(stringify!($name), axes_key(axes, &[keepdims as i64])),
                        &[self],
                        |t| ok(t[0].$name(axes, keepdims)),
                    )
                }
            )*
        }
    };
}

plain! {
    /// Mean of all elements (f64 for integer operands); see `TracedTensor::mean`.
    mean;
    /// Maximum of all elements.
    max;
    /// Minimum of all elements.
    min;
    /// Product of all elements.
    prod;
    /// Flat (column-major) index of the maximum; see `TracedTensor::argmax_all`.
    argmax_all;
    /// Flat (column-major) index of the minimum.
    argmin_all;
    /// `max(x, 0)`, derivative 0 at 0.
    relu;
    /// `min(max(x, 0), 6)`.
    relu6;
    /// Stable logistic sigmoid.
    sigmoid;
    /// `x · sigmoid(x)`.
    silu;
    /// Stable `log(1 + exp(x))`.
    softplus;
    /// `-softplus(-x)`.
    log_sigmoid;
    /// `x · x`.
    square;
    /// `1 / x`.
    reciprocal;
    /// Finite elements (bool).
    is_finite;
    /// NaN elements (bool).
    is_nan;
    /// `jnp.logical_not`: the negated truth value (a bool result).
    logical_not;
    /// Infinite elements (bool).
    is_inf;
}

over_axes! {
    /// Sum over signed axes; see `TracedTensor::sum_axes`.
    sum_axes;
    /// Mean over signed axes (f64 for integer operands).
    mean_axes;
    /// Maximum over signed axes.
    max_axes;
    /// Minimum over signed axes.
    min_axes;
    /// Product over signed axes.
    prod_axes;
    /// Stable `log Σ exp` over signed axes; its gradient is the softmax.
    logsumexp;
    /// Whether every element over the axes is nonzero (bool).
    all;
    /// Whether any element over the axes is nonzero (bool).
    any;
}

impl EagerTensor {
    /// Variance over signed axes with `ddof`; see `TracedTensor::var_axes`.
    pub fn var_axes(&self, axes: &[isize], ddof: usize, keepdims: bool) -> Result<EagerTensor> {
        self.ctx.apply_traced1(
            OpKey::named("var_axes", axes_key(axes, &[ddof as i64, keepdims as i64])),
            &[self],
            |t| ok(t[0].var_axes(axes, ddof, keepdims)),
        )
    }

    /// Variance of all elements with `ddof`.
    pub fn var(&self, ddof: usize) -> Result<EagerTensor> {
        self.ctx
            .apply_traced1(OpKey::named("var", vec![ddof as i64]), &[self], |t| {
                ok(t[0].var(ddof))
            })
    }

    /// Standard deviation over signed axes with `ddof`.
    pub fn std_axes(&self, axes: &[isize], ddof: usize, keepdims: bool) -> Result<EagerTensor> {
        self.ctx.apply_traced1(
            OpKey::named("std_axes", axes_key(axes, &[ddof as i64, keepdims as i64])),
            &[self],
            |t| ok(t[0].std_axes(axes, ddof, keepdims)),
        )
    }

    /// Standard deviation of all elements with `ddof`.
    pub fn std(&self, ddof: usize) -> Result<EagerTensor> {
        self.ctx
            .apply_traced1(OpKey::named("std", vec![ddof as i64]), &[self], |t| {
                ok(t[0].std(ddof))
            })
    }

    /// Stable softmax along a signed axis.
    pub fn softmax(&self, axis: isize) -> Result<EagerTensor> {
        self.ctx
            .apply_traced1(OpKey::named("softmax", vec![axis as i64]), &[self], |t| {
                ok(t[0].softmax(axis))
            })
    }

    /// Stable log-softmax along a signed axis.
    pub fn log_softmax(&self, axis: isize) -> Result<EagerTensor> {
        self.ctx.apply_traced1(
            OpKey::named("log_softmax", vec![axis as i64]),
            &[self],
            |t| ok(t[0].log_softmax(axis)),
        )
    }

    /// Index (i64) of the maximum along a signed axis (first on ties, first NaN wins).
    pub fn argmax(&self, axis: isize, keepdims: bool) -> Result<EagerTensor> {
        self.ctx.apply_traced1(
            OpKey::named("argmax", vec![axis as i64, keepdims as i64]),
            &[self],
            |t| ok(t[0].argmax(axis, keepdims)),
        )
    }

    /// Index (i64) of the minimum along a signed axis (first on ties, first NaN wins).
    pub fn argmin(&self, axis: isize, keepdims: bool) -> Result<EagerTensor> {
        self.ctx.apply_traced1(
            OpKey::named("argmin", vec![axis as i64, keepdims as i64]),
            &[self],
            |t| ok(t[0].argmin(axis, keepdims)),
        )
    }

    /// GELU, exact (`erf`) or the tanh approximation.
    pub fn gelu(&self, approximate: bool) -> Result<EagerTensor> {
        self.ctx.apply_traced1(
            OpKey::named("gelu", vec![approximate as i64]),
            &[self],
            |t| ok(t[0].gelu(approximate)),
        )
    }

    /// `minimum(maximum(x, lo), hi)` with scalar bounds (as `jnp.clip`).
    pub fn clamp(&self, lo: f64, hi: f64) -> Result<EagerTensor> {
        self.ctx.apply_traced1(
            OpKey::named("clamp", vec![lo.to_bits() as i64, hi.to_bits() as i64]),
            &[self],
            |t| ok(t[0].clamp(lo, hi)),
        )
    }

    /// Alias of [`EagerTensor::clamp`].
    pub fn clip(&self, lo: f64, hi: f64) -> Result<EagerTensor> {
        self.clamp(lo, hi)
    }

    /// `minimum(maximum(x, lo), hi)` with tensor bounds (broadcast and promoted).
    pub fn clamp_tensors(&self, lo: &EagerTensor, hi: &EagerTensor) -> Result<EagerTensor> {
        self.ctx.apply_traced1(
            OpKey::named("clamp_tensors", Vec::new()),
            &[self, lo, hi],
            |t| ok(t[0].clamp_tensors(&t[1], &t[2])),
        )
    }
}
