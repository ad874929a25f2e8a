//! Constructors a JAX / PyTorch user reaches for: `ones`, `*_like`, `eye`, `arange`,
//! `linspace`, `one_hot` (names and semantics of `jax.numpy` / `jax.nn`).
//!
//! `ones` and the `*_like` constructors are constants. `eye`, `arange`, `linspace` and
//! `one_hot` are **composites** of `iota`, `compare`, `convert`, elementwise arithmetic,
//! `broadcast_in_dim` and `concatenate` (no new primitive, so they fuse and run on every
//! backend); they are exact where jnp is (`eye`, `one_hot`, integer `arange`) and follow
//! jnp's formulas otherwise (`arange`: `start + i·step`; `linspace`:
//! `start·(1 - i/div) + stop·(i/div)`, the endpoint exactly `stop`).

use crate::error::{Result, RuntimeError};
use crate::structural::ok;
use crate::traced::TracedTensor;
use tenferro_ir::{CmpOp, DType, Tensor, TensorType};

#[track_caller]
fn bad(op: &str, msg: String) -> RuntimeError {
    RuntimeError::invalid_op(op, msg)
}

impl TracedTensor {
    /// Ones of type `ty`; errors as [`TracedTensor::full`], naming `ones`.
    #[track_caller]
    pub fn ones(ty: &TensorType) -> TracedTensor {
        match Tensor::try_full_for("ones", ty, 1.0) {
            Ok(t) => TracedTensor::from_tensor(t),
            Err(e) => TracedTensor::from_error(RuntimeError::Ir(e)),
        }
    }

    /// Zeros of this tensor's type (a constant; it does not depend on `self`'s value).
    #[track_caller]
    pub fn zeros_like(&self) -> Result<TracedTensor> {
        ok(TracedTensor::zeros(&self.ty()?))
    }

    /// Ones of this tensor's type (a constant).
    #[track_caller]
    pub fn ones_like(&self) -> Result<TracedTensor> {
        ok(TracedTensor::ones(&self.ty()?))
    }

    /// `v` (converted to the dtype) everywhere, of this tensor's type (a constant).
    #[track_caller]
    pub fn full_like(&self, v: f64) -> Result<TracedTensor> {
        ok(TracedTensor::full(&self.ty()?, v))
    }

    /// `jnp.eye(n, m, k, dtype)`: an `n × m` matrix (`m` defaults to `n`) with ones where
    /// `column - row == k` and zeros elsewhere. Composite: `iota`, `sub`, `compare`,
    /// `convert`. Errors (naming `eye`) for a dtype the conversion from bool does not
    /// reach.
    #[track_caller]
    pub fn eye(dtype: DType, n: usize, m: Option<usize>, k: i64) -> Result<TracedTensor> {
        let m = m.unwrap_or(n);
        let diff = ok(&TracedTensor::iota(DType::I64, &[n, m], 1)?
            - &TracedTensor::iota(DType::I64, &[n, m], 0)?)?;
        let mask = ok(diff.compare(CmpOp::Eq, &TracedTensor::scalar(k)))?;
        if dtype == DType::Bool {
            return Ok(mask);
        }
        mask.convert(dtype)
    }

    /// `jnp.arange(start, stop, step, dtype)`: `start + i·step` for
    /// `i = 0 .. ceil((stop - start) / step)` (no elements when that is ≤ 0), computed in
    /// `dtype`. Composite: `iota`, `mul`, `add`. Errors (naming `arange`) for a zero or
    /// non-finite argument, a bool dtype, or non-integral arguments with an integer dtype.
    #[track_caller]
    pub fn arange(dtype: DType, start: f64, stop: f64, step: f64) -> Result<TracedTensor> {
        let op = "arange";
        if !(start.is_finite() && stop.is_finite() && step.is_finite()) || step == 0.0 {
            return Err(bad(
                op,
                format!("start {start}, stop {stop}, step {step}: expected finite values and a nonzero step"),
            ));
        }
        if dtype == DType::Bool {
            return Err(bad(op, "dtype bool: expected a numeric dtype".to_string()));
        }
        if dtype.is_int() && [start, stop, step].iter().any(|v| v.fract() != 0.0) {
            return Err(bad(
                op,
                format!(
                    "start {start}, stop {stop}, step {step}: dtype {dtype} expects integral values"
                ),
            ));
        }
        let len = ((stop - start) / step).ceil();
        let len = if len > 0.0 { len as usize } else { 0 };
        let c = |v: f64| TracedTensor::from_tensor(Tensor::full(&TensorType::scalar(dtype), v));
        let i = TracedTensor::iota(dtype, &[len], 0)?;
        let y = if step == 1.0 { i } else { &i * &c(step) };
        ok(if start == 0.0 { y } else { &y + &c(start) })
    }

    /// `jnp.linspace(start, stop, num, endpoint, dtype)`: `num` evenly spaced values
    /// from `start`, to `stop` inclusive when `endpoint` (then the last is exactly
    /// `stop`), computed as jnp does: `start·(1 - i/div) + stop·(i/div)` with
    /// `div = num - 1` (endpoint) or `num`. Float and complex dtypes compute in `dtype`;
    /// integer dtypes compute in f64 and convert (truncating, as jnp's `astype`). Composite:
    /// `iota`, elementwise arithmetic, `concatenate`. Errors (naming `linspace`) for a
    /// bool dtype or non-finite bounds.
    #[track_caller]
    pub fn linspace(
        dtype: DType,
        start: f64,
        stop: f64,
        num: usize,
        endpoint: bool,
    ) -> Result<TracedTensor> {
        let op = "linspace";
        if dtype == DType::Bool {
            return Err(bad(op, "dtype bool: expected a numeric dtype".to_string()));
        }
        if !(start.is_finite() && stop.is_finite()) {
            return Err(bad(
                op,
                format!("start {start}, stop {stop}: expected finite values"),
            ));
        }
        let cd = if dtype.is_int() { DType::F64 } else { dtype };
        let scalar = |v: f64| TracedTensor::from_tensor(Tensor::full(&TensorType::scalar(cd), v));
        let out = match num {
            0 => ok(TracedTensor::zeros(&TensorType::new(cd, vec![0])))?,
            1 => scalar(start).reshape(&[1])?,
            _ => {
                let div = if endpoint { num - 1 } else { num };
                let step = &TracedTensor::iota(cd, &[div], 0)? / &scalar(div as f64);
                let y = ok(&(&(&scalar(1.0) - &step) * &scalar(start)) + &(&step * &scalar(stop)))?;
                if endpoint {
                    TracedTensor::concatenate(&[&y, &scalar(stop).reshape(&[1])?], 0)?
                } else {
                    y
                }
            }
        };
        if cd == dtype {
            Ok(out)
        } else {
            out.convert(dtype)
        }
    }

    /// `jax.nn.one_hot(indices, num_classes, dtype)` of these integer (i64 or i32) indices: a new LAST
    /// axis of length `num_classes` with 1 at the index and 0 elsewhere; an index outside
    /// `0..num_classes` (negative included) gives a row of zeros. Composite:
    /// `broadcast_in_dim`, `iota`, `compare`, `convert`. Errors (naming `one_hot`) for
    /// indices that are not integers.
    #[track_caller]
    pub fn one_hot(&self, num_classes: usize, dtype: DType) -> Result<TracedTensor> {
        let ty = self.ty()?;
        let indices = self.as_index("one_hot", "indices")?;
        let r = ty.shape.len();
        let mut shape = ty.shape.clone();
        shape.push(num_classes);
        let dims: Vec<usize> = (0..r).collect();
        let b = indices.broadcast_in_dim(&shape, &dims)?;
        let mask = ok(b.compare(CmpOp::Eq, &TracedTensor::iota(DType::I64, &shape, r)?))?;
        if dtype == DType::Bool {
            return Ok(mask);
        }
        mask.convert(dtype)
    }
}
