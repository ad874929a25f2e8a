//! The reductions of everyday array code, named as in `jax.numpy`: `sum_axes`, `mean`,
//! `var`, `std`, `max_axes`, `min_axes`, `prod_axes`, `logsumexp`, `softmax`,
//! `log_softmax`, `argmax`, `argmin`, `all`, `any`.
//!
//! ## Axes
//!
//! Axes are signed: `-1` is the last axis. `keepdims = true` keeps each reduced axis with
//! size 1 (a reshape: inserting unit axes does not move elements in column-major order).
//! As in NumPy, an empty axis list reduces nothing; the all-axes forms are separate
//! methods (`sum`, `mean`, `max`, `min`, `prod`, `argmax_all`, ...). A bad axis (out of
//! range, or listed twice) is recorded in the result, like any other invalid use: the
//! message names the method, the operand's type and the valid axes.
//!
//! ## Composites
//!
//! Every method here is a composite of primitives (reduce sum/max/min/prod, elementwise
//! ops, compare, select, iota, broadcast_in_dim, reshape, convert). Nothing is lost by
//! that: the CPU backend fuses the elementwise work into the reduction's loop (so
//! `logsumexp` makes one pass for the max and one fused `exp`-and-sum pass, as a
//! hand-written kernel would), autodiff differentiates the primitives with their own
//! rules (so the derivatives exist to any order, in JVP and VJP, traced and eager), and
//! the arithmetic is the textbook stable one (`mean` divides the sum once, `var` is the
//! two-pass `mean(|x - mean(x)|²)`, `logsumexp` subtracts the maximum).
//!
//! ## Dtypes
//!
//! `mean`, `var` and `std` of an integer or bool tensor are computed in the default
//! float, f64 (`mean` of i64 `[0, 1, 2, 3]` is `1.5`, as NumPy and JAX); `var`/`std` of a
//! complex tensor are real. `sum_axes`/`prod_axes` of bool count in i64; integer sums and
//! products keep their dtype and wrap (an i32 sum is i32, as `lax.reduce_sum`; `jnp.sum`
//! would widen it to i64: convert first for that); `max_axes` / `min_axes` of bool are
//! bool (any / all). Complex operands of ordered reductions (max, min, argmax, argmin,
//! logsumexp, softmax) are rejected. Empty reductions follow NumPy:
//! the sum of nothing is 0, the product 1, the max `-inf`, the mean and variance NaN
//! (0 / 0); `argmax`/`argmin` of an empty axis are errors.

use crate::error::{Result, RuntimeError};
use crate::traced::TracedTensor;
use tenferro_ir::{DType, Op, ReduceOp, TensorType};

pub(crate) use crate::ops::{checked, ok_or_recorded as rec};

/// The constant `v` of `dtype`, broadcast to `shape`.
#[track_caller]
pub(crate) fn splat(dtype: DType, shape: &[usize], v: f64) -> Result<TracedTensor> {
    let s = TracedTensor::full(&TensorType::scalar(dtype), v);
    if shape.is_empty() {
        Ok(s)
    } else {
        s.broadcast_in_dim(shape, &[])
    }
}

/// `x` in a float dtype: integers and bools become the default float f64, floats and
/// complex stay (the weak typing of a Rust float operand, and the dtype of `mean`).
#[track_caller]
pub(crate) fn float_of(x: &TracedTensor) -> Result<TracedTensor> {
    match x.dtype()? {
        DType::I32 | DType::I64 | DType::Bool => x.convert(DType::F64),
        DType::F32 | DType::F64 | DType::C32 | DType::C64 => Ok(x.clone()),
    }
}

/// `x` in a real float dtype (integers and bools become f64); complex is an error naming `op`.
#[track_caller]
pub(crate) fn real_float_of(op: &str, x: &TracedTensor) -> Result<TracedTensor> {
    let ty = x.ty()?;
    if ty.dtype.is_complex() {
        return Err(RuntimeError::invalid_op(
            op,
            format!("operand {ty} is complex; {op} needs a real operand (complex numbers are not ordered)"),
        ));
    }
    float_of(x)
}

/// Signed `axes` of an operand of type `ty`, normalised and sorted; errors name `op`,
/// the operand type and the valid range.
#[track_caller]
pub(crate) fn axes_of(op: &str, ty: &TensorType, axes: &[isize]) -> Result<Vec<usize>> {
    let r = ty.rank();
    let mut out: Vec<usize> = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = if a < 0 { a + r as isize } else { a };
        if n < 0 || n >= r as isize {
            return Err(RuntimeError::invalid_op(
                op,
                format!("axis {a} is out of range for operand {ty} (expected axes in -{r}..{r})"),
            ));
        }
        if out.contains(&(n as usize)) {
            return Err(RuntimeError::invalid_op(
                op,
                format!("axis {a} of operand {ty} is listed twice (as axis {n}); expected distinct axes in -{r}..{r}"),
            ));
        }
        out.push(n as usize);
    }
    out.sort_unstable();
    Ok(out)
}

/// The axes of a rank-`rank` shape not in `axes`.
#[track_caller]
pub(crate) fn kept_axes(rank: usize, axes: &[usize]) -> Vec<usize> {
    (0..rank).filter(|a| !axes.contains(a)).collect()
}

/// A reduced value broadcast back to the operand's `shape`.
#[track_caller]
pub(crate) fn expand(y: &TracedTensor, shape: &[usize], axes: &[usize]) -> Result<TracedTensor> {
    y.broadcast_in_dim(shape, &kept_axes(shape.len(), axes))
}

/// `y` (reduced over `axes` of `shape`) with the reduced axes kept as size 1 if `keepdims`.
#[track_caller]
fn keep(y: TracedTensor, shape: &[usize], axes: &[usize], keepdims: bool) -> Result<TracedTensor> {
    let y = checked(y)?;
    if !keepdims || axes.is_empty() {
        return Ok(y);
    }
    let kept: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    y.reshape(&kept)
}

/// The number of elements reduced over `axes` of `shape`.
#[track_caller]
fn count(shape: &[usize], axes: &[usize]) -> usize {
    axes.iter().map(|&a| shape[a]).product()
}

#[track_caller]
fn all_axes(x: &TracedTensor) -> Result<Vec<isize>> {
    Ok((0..x.shape()?.len() as isize).collect())
}

/// A shift for the stable `exp(x - shift)`: `stop_gradient(m)`, so the shift contributes
/// nothing to any derivative at any order; where `m` is `±inf` or NaN the shift is 0 (so
/// no `inf - inf`).
#[track_caller]
fn detached_shift(m: &TracedTensor) -> Result<TracedTensor> {
    let ty = m.ty()?;
    let inf = splat(ty.dtype, &ty.shape, f64::INFINITY)?;
    let zero = splat(ty.dtype, &ty.shape, 0.0)?;
    let finite = m.abs().less(&inf);
    checked(TracedTensor::select(&finite, &m.stop_gradient(), &zero))
}

/// The `op` reduction kinds of the `*_axes` methods.
#[track_caller]
fn reduce_kind(
    x: &TracedTensor,
    op: &str,
    kind: ReduceOp,
    axes: &[isize],
    keepdims: bool,
) -> TracedTensor {
    rec((|| {
        let ty = x.ty()?;
        let ax = axes_of(op, &ty, axes)?;
        let ordered = matches!(kind, ReduceOp::Max | ReduceOp::Min);
        if ordered && ty.dtype.is_complex() {
            return Err(RuntimeError::invalid_op(
                op,
                format!("operand {ty} is complex; {op} needs a real or integer operand (complex numbers are not ordered)"),
            ));
        }
        if let Some(&a) = ax.iter().find(|&&a| ordered && ty.shape[a] == 0) {
            return Err(RuntimeError::invalid_op(
                op,
                format!("axis {a} of operand {ty} is empty: a maximum or minimum of no elements is undefined (as in NumPy and jnp; `reduce_max` / `reduce_min` give the identity -inf / +inf)"),
            ));
        }
        let is_bool = ty.dtype == DType::Bool;
        let xin = if is_bool {
            x.convert(DType::I64)?
        } else {
            x.clone()
        };
        let mut y = checked(TracedTensor::apply1(
            Op::Reduce {
                kind,
                axes: ax.clone(),
            },
            &[&xin],
        ))?;
        if is_bool && ordered {
            let s = y.shape()?;
            y = y.not_equal(&splat(DType::I64, &s, 0.0)?);
        }
        keep(y, &ty.shape, &ax, keepdims)
    })())
}

impl TracedTensor {
    /// Sum over signed `axes` (`jnp.sum(x, axis, keepdims)`); bool counts in i64, integers
    /// keep their dtype.
    #[track_caller]
    pub fn sum_axes(&self, axes: &[isize], keepdims: bool) -> TracedTensor {
        reduce_kind(self, "sum_axes", ReduceOp::Sum, axes, keepdims)
    }

    /// Product over signed `axes`; 1 for an empty reduction.
    #[track_caller]
    pub fn prod_axes(&self, axes: &[isize], keepdims: bool) -> TracedTensor {
        reduce_kind(self, "prod_axes", ReduceOp::Prod, axes, keepdims)
    }

    /// Maximum over signed `axes` (real, integer or bool operands); NaN-propagating. An
    /// empty reduced axis is an error, as `jnp.max` ([`TracedTensor::reduce_max`] gives
    /// `-inf` there). Its derivative is the mean of the tangents at the maxima (as JAX).
    #[track_caller]
    pub fn max_axes(&self, axes: &[isize], keepdims: bool) -> TracedTensor {
        reduce_kind(self, "max_axes", ReduceOp::Max, axes, keepdims)
    }

    /// Minimum over signed `axes`; NaN-propagating; an empty reduced axis is an error (as
    /// [`TracedTensor::max_axes`]).
    #[track_caller]
    pub fn min_axes(&self, axes: &[isize], keepdims: bool) -> TracedTensor {
        reduce_kind(self, "min_axes", ReduceOp::Min, axes, keepdims)
    }

    /// Maximum of all elements (a scalar).
    #[track_caller]
    pub fn max(&self) -> TracedTensor {
        rec(all_axes(self).map(|a| self.max_axes(&a, false)))
    }

    /// Minimum of all elements (a scalar).
    #[track_caller]
    pub fn min(&self) -> TracedTensor {
        rec(all_axes(self).map(|a| self.min_axes(&a, false)))
    }

    /// Product of all elements (a scalar).
    #[track_caller]
    pub fn prod(&self) -> TracedTensor {
        rec(all_axes(self).map(|a| self.prod_axes(&a, false)))
    }

    /// Mean over signed `axes`: the sum divided once by the element count. Integer and
    /// bool operands give f64; an empty reduction gives NaN (0 / 0, as NumPy).
    #[track_caller]
    pub fn mean_axes(&self, axes: &[isize], keepdims: bool) -> TracedTensor {
        rec((|| {
            let ty = self.ty()?;
            let ax = axes_of("mean_axes", &ty, axes)?;
            let x = float_of(self)?;
            let d = x.dtype()?;
            let n = count(&ty.shape, &ax) as f64;
            let s = x.reduce_sum(&ax);
            let y = &s / &splat(d, &[], n)?;
            keep(y, &ty.shape, &ax, keepdims)
        })())
    }

    /// Mean of all elements (a scalar); f64 for integer and bool operands.
    #[track_caller]
    pub fn mean(&self) -> TracedTensor {
        rec(all_axes(self).map(|a| self.mean_axes(&a, false)))
    }

    /// Variance over signed `axes` with `ddof` delta degrees of freedom (`jnp.var`):
    /// `Σ|x - mean|² / (n - ddof)`, two-pass (no cancellation of `E[x²] - E[x]²`). Real
    /// for complex operands; f64 for integers; `n <= ddof` divides by 0 (inf or NaN, as
    /// NumPy).
    #[track_caller]
    pub fn var_axes(&self, axes: &[isize], ddof: usize, keepdims: bool) -> TracedTensor {
        rec((|| {
            let ty = self.ty()?;
            let ax = axes_of("var_axes", &ty, axes)?;
            let x = float_of(self)?;
            let d = x.dtype()?;
            let n = count(&ty.shape, &ax);
            let mu = &x.reduce_sum(&ax) / &splat(d, &[], n as f64)?;
            let dev = &x - &expand(&mu, &ty.shape, &ax)?;
            let sq = if d.is_complex() {
                let (re, im) = (dev.real(), dev.imag());
                &(&re * &re) + &(&im * &im)
            } else {
                &dev * &dev
            };
            let denom = n.saturating_sub(ddof) as f64;
            let y = &sq.reduce_sum(&ax) / &splat(d.real(), &[], denom)?;
            keep(y, &ty.shape, &ax, keepdims)
        })())
    }

    /// Variance of all elements (a scalar), with `ddof` delta degrees of freedom.
    #[track_caller]
    pub fn var(&self, ddof: usize) -> TracedTensor {
        rec(all_axes(self).map(|a| self.var_axes(&a, ddof, false)))
    }

    /// Standard deviation over signed `axes`: `sqrt(var_axes)`. Its derivative at a zero
    /// variance is NaN (`0 · inf`), as JAX's.
    #[track_caller]
    pub fn std_axes(&self, axes: &[isize], ddof: usize, keepdims: bool) -> TracedTensor {
        self.var_axes(axes, ddof, keepdims).sqrt()
    }

    /// Standard deviation of all elements (a scalar).
    #[track_caller]
    pub fn std(&self, ddof: usize) -> TracedTensor {
        self.var(ddof).sqrt()
    }

    /// `log Σ exp(x)` over signed `axes` (`jax.nn.logsumexp`), stably: with `m` the max,
    /// `log Σ exp(x - m) + m`, no overflow for any finite input. The shift is detached from
    /// autodiff (see the module docs), so the gradient is exactly the softmax
    /// `exp(x - m) / Σ exp(x - m)`, with 0 (not NaN) at `-inf` entries. A `-inf` maximum
    /// (every entry `-inf`, or nothing to reduce) gives `-inf`; `+inf` gives `+inf`; NaN
    /// propagates. Integers are summed in f64; complex operands are rejected.
    #[track_caller]
    pub fn logsumexp(&self, axes: &[isize], keepdims: bool) -> TracedTensor {
        rec((|| {
            let op = "logsumexp";
            let ty = self.ty()?;
            let ax = axes_of(op, &ty, axes)?;
            let x = real_float_of(op, self)?;
            let s = detached_shift(&checked(x.reduce_max(&ax))?)?;
            let e = (&x - &expand(&s, &ty.shape, &ax)?).exp();
            let y = &e.reduce_sum(&ax).log() + &s;
            keep(y, &ty.shape, &ax, keepdims)
        })())
    }

    /// `exp(x) / Σ exp(x)` along signed `axis` (`jax.nn.softmax`), computed as
    /// `exp(x - m) / Σ exp(x - m)` with the max `m` detached from autodiff (it cancels
    /// mathematically). `-inf` entries get 0; a row of only `-inf` is NaN (0 / 0, as JAX).
    #[track_caller]
    pub fn softmax(&self, axis: isize) -> TracedTensor {
        rec((|| {
            let op = "softmax";
            let ty = self.ty()?;
            let ax = axes_of(op, &ty, &[axis])?;
            let x = real_float_of(op, self)?;
            let s = detached_shift(&checked(x.reduce_max(&ax))?)?;
            let e = (&x - &expand(&s, &ty.shape, &ax)?).exp();
            checked(&e / &expand(&e.reduce_sum(&ax), &ty.shape, &ax)?)
        })())
    }

    /// `x - logsumexp(x)` along signed `axis` (`jax.nn.log_softmax`), as
    /// `(x - m) - log Σ exp(x - m)`: no overflow, and `-inf` entries stay `-inf`.
    #[track_caller]
    pub fn log_softmax(&self, axis: isize) -> TracedTensor {
        rec((|| {
            let op = "log_softmax";
            let ty = self.ty()?;
            let ax = axes_of(op, &ty, &[axis])?;
            let x = real_float_of(op, self)?;
            let s = detached_shift(&checked(x.reduce_max(&ax))?)?;
            let z = &x - &expand(&s, &ty.shape, &ax)?;
            let lse = z.exp().reduce_sum(&ax).log();
            checked(&z - &expand(&lse, &ty.shape, &ax)?)
        })())
    }

    #[track_caller]
    fn arg_extremum(&self, op: &str, kind: ReduceOp, axis: isize, keepdims: bool) -> TracedTensor {
        rec((|| {
            let ty = self.ty()?;
            let ax = axes_of(op, &ty, &[axis])?;
            let a = ax[0];
            let n = ty.shape[a];
            if n == 0 {
                return Err(RuntimeError::invalid_op(
                    op,
                    format!("axis {axis} of operand {ty} is empty (expected at least one element along the reduced axis)"),
                ));
            }
            if ty.dtype.is_complex() {
                return Err(RuntimeError::invalid_op(
                    op,
                    format!("operand {ty} is complex; {op} needs a real, integer or bool operand (complex numbers are not ordered)"),
                ));
            }
            let x = if ty.dtype == DType::Bool {
                self.convert(DType::I64)?
            } else {
                self.clone()
            };
            let m = checked(TracedTensor::apply1(
                Op::Reduce {
                    kind,
                    axes: ax.clone(),
                },
                &[&x],
            ))?;
            let mut hit = x.equal(&expand(&m, &ty.shape, &ax)?);
            if x.dtype()?.is_float() {
                // The extremum is NaN when any element is: then the hits are the NaNs.
                let yes = splat(DType::Bool, &ty.shape, 1.0)?;
                hit = TracedTensor::select(&x.not_equal(&x), &yes, &hit);
            }
            let idx = TracedTensor::iota(DType::I64, &ty.shape, a)?;
            let none = splat(DType::I64, &ty.shape, n as f64)?;
            let first = TracedTensor::select(&hit, &idx, &none).reduce_min(&ax);
            keep(first, &ty.shape, &ax, keepdims)
        })())
    }

    /// Index (i64) of the maximum along signed `axis` (`jnp.argmax`): the first one on
    /// ties; NaN counts as the maximum, so any NaN gives the index of the first NaN (as
    /// JAX). An empty axis is an error.
    #[track_caller]
    pub fn argmax(&self, axis: isize, keepdims: bool) -> TracedTensor {
        self.arg_extremum("argmax", ReduceOp::Max, axis, keepdims)
    }

    /// Index (i64) of the minimum along signed `axis` (`jnp.argmin`): the first one on
    /// ties; any NaN gives the index of the first NaN (as JAX).
    #[track_caller]
    pub fn argmin(&self, axis: isize, keepdims: bool) -> TracedTensor {
        self.arg_extremum("argmin", ReduceOp::Min, axis, keepdims)
    }

    #[track_caller]
    fn flat(&self) -> Result<TracedTensor> {
        let n: usize = self.shape()?.iter().product();
        self.reshape(&[n])
    }

    /// `jnp.argmax(x)` (no axis): the index of the maximum in the flattened tensor, a
    /// scalar i64. Flattening is column-major (this library's layout), so for a `[2, 3]`
    /// operand element `(i, j)` has flat index `i + 2·j` (JAX, row-major, would say
    /// `3·i + j`).
    #[track_caller]
    pub fn argmax_all(&self) -> TracedTensor {
        rec(self
            .flat()
            .map_err(|e| RuntimeError::invalid_op("argmax_all", e.to_string()))
            .map(|f| f.argmax(0, false)))
    }

    /// `jnp.argmin(x)` (no axis): as [`TracedTensor::argmax_all`] for the minimum.
    #[track_caller]
    pub fn argmin_all(&self) -> TracedTensor {
        rec(self
            .flat()
            .map_err(|e| RuntimeError::invalid_op("argmin_all", e.to_string()))
            .map(|f| f.argmin(0, false)))
    }

    #[track_caller]
    fn truth(&self, op: &str, every: bool, axes: &[isize], keepdims: bool) -> TracedTensor {
        rec((|| {
            let ty = self.ty()?;
            let ax = axes_of(op, &ty, axes)?;
            // Nonzero elements, counted in i64.
            let c = self.truth_value()?.convert(DType::I64)?.reduce_sum(&ax);
            let cs = c.shape()?;
            let y = if every {
                c.equal(&splat(DType::I64, &cs, count(&ty.shape, &ax) as f64)?)
            } else {
                c.greater(&splat(DType::I64, &cs, 0.0)?)
            };
            keep(y, &ty.shape, &ax, keepdims)
        })())
    }

    /// Whether every element over signed `axes` is true (nonzero for numeric operands;
    /// NaN is nonzero), as `jnp.all`; bool. True for an empty reduction. Computed as the
    /// count of nonzero elements (an i64 sum) compared with the number of elements.
    #[track_caller]
    pub fn all(&self, axes: &[isize], keepdims: bool) -> TracedTensor {
        self.truth("all", true, axes, keepdims)
    }

    /// Whether any element over signed `axes` is true (nonzero), as `jnp.any`; bool.
    /// False for an empty reduction.
    #[track_caller]
    pub fn any(&self, axes: &[isize], keepdims: bool) -> TracedTensor {
        self.truth("any", false, axes, keepdims)
    }
}
