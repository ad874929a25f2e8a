//! Sorting and scans on [`TracedTensor`]: `argsort`, `sort`, `top_k`, and the cumulative
//! reductions `cumsum`, `cumprod`, `cummax`, `cummin` (with [`TracedTensor::cumulative`]
//! for the reversed scans).
//!
//! `argsort` is the IR primitive [`Op::Argsort`]: a stable sort in the order of
//! `jnp.sort` (`-0.0 == 0.0`, NaN after every number, NaNs equal among themselves);
//! `descending = true` is `jnp.argsort(x, descending=True)`: largest first, NaN first,
//! equal keys still in their original order. Complex operands are an error. `sort` and
//! `top_k` gather the operand with the permutation ([`take_along`], built from the
//! `gather` primitive on the flattened operand), so gradients flow through the gather to
//! the selected elements.
//!
//! The scans are the IR primitive [`Op::Cumulative`]: element `i` is the sequential
//! reduction of elements `0..=i` (of `i..n` for a reversed scan); `cummax` / `cummin`
//! propagate NaN. Methods return a value that records an error (see
//! [`TracedTensor::error`]) for a bad axis or dtype.

use crate::axes::normalize_axis;
use crate::error::{Result, RuntimeError};
use crate::ops::{checked, ok_or_recorded};
use crate::traced::TracedTensor;
use tenferro_ir::{col_major_strides, BinaryOp, DType, Op, ReduceOp, Tensor};

/// An i64 constant `v` of shape `shape` (a scalar broadcast).
#[track_caller]
fn i64_splat(shape: &[usize], v: i64) -> TracedTensor {
    let s = TracedTensor::from_tensor(Tensor::scalar(v));
    if shape.is_empty() {
        s
    } else {
        TracedTensor::apply1(
            Op::BroadcastInDim {
                shape: shape.to_vec(),
                dims: vec![],
            },
            &[&s],
        )
    }
}

/// `x` reversed along `axis` (a gather with the constant indices `n-1, ..., 0`).
#[track_caller]
pub fn reverse_axis(x: &TracedTensor, axis: usize) -> TracedTensor {
    ok_or_recorded((|| {
        let ty = x.ty()?;
        if axis >= ty.rank() {
            return Err(RuntimeError::invalid_op(
                "reverse_axis",
                format!("axis {axis} is out of range for operand {ty}"),
            ));
        }
        let n = ty.shape[axis];
        if n <= 1 {
            return Ok(x.clone());
        }
        let idx: Vec<i64> = (0..n as i64).rev().collect();
        let idx = TracedTensor::from_vec_col_major(vec![n], idx);
        checked(TracedTensor::apply1(Op::Gather { axis }, &[x, &idx]))
    })())
}

/// `take_along_axis(x, indices, axis)` (NumPy's): `indices` (i64, or i32 converted to
/// i64) has `x`'s shape except
/// along `axis`, and the result, of `indices`' shape, is `x` at index `indices[..]` along
/// `axis` and at the same position on the other axes. Indices are clamped into
/// `0..x.shape[axis]` (as `gather`). Built as one `gather` of the flattened `x` at linear
/// offsets, so it is linear in `x` (its transpose is a `scatter_add`).
#[track_caller]
pub fn take_along(x: &TracedTensor, indices: &TracedTensor, axis: usize) -> TracedTensor {
    ok_or_recorded(take_along_impl(x, indices, axis))
}

#[track_caller]
fn take_along_impl(x: &TracedTensor, indices: &TracedTensor, axis: usize) -> Result<TracedTensor> {
    const OP: &str = "take_along_axis";
    let xt = x.ty()?;
    let it = indices.ty()?;
    if axis >= xt.rank() {
        return Err(RuntimeError::invalid_op(
            OP,
            format!("axis {axis} is out of range for operand {xt}"),
        ));
    }
    let same_rank = it.rank() == xt.rank();
    if !it.dtype.is_int()
        || !same_rank
        || (0..xt.rank()).any(|a| a != axis && it.shape[a] != xt.shape[a])
    {
        return Err(RuntimeError::invalid_op(
            OP,
            format!(
                "indices {it} must be integers (i64 or i32) with the shape of operand {xt} except on axis {axis}"
            ),
        ));
    }
    let indices = &indices.as_index(OP, "indices")?;
    let it = it.with_dtype(DType::I64);
    if it.numel() == 0 {
        return Ok(TracedTensor::full(&it.with_dtype(xt.dtype), 0.0));
    }
    let n = xt.shape[axis];
    if n == 0 {
        return Err(RuntimeError::invalid_op(
            OP,
            format!("cannot take from empty axis {axis} of operand {xt}"),
        ));
    }
    if xt.rank() == 1 {
        return checked(TracedTensor::apply1(Op::Gather { axis: 0 }, &[x, indices]));
    }
    let strides = col_major_strides(&xt.shape);
    let bin = |b: BinaryOp, p: &TracedTensor, q: &TracedTensor| {
        TracedTensor::apply1(Op::Binary(b), &[p, q])
    };
    // Clamp along the axis so an index never reaches into another line.
    let clamped = bin(
        BinaryOp::Min,
        &bin(BinaryOp::Max, indices, &i64_splat(&it.shape, 0)),
        &i64_splat(&it.shape, n as i64 - 1),
    );
    let mut offset = bin(
        BinaryOp::Mul,
        &clamped,
        &i64_splat(&it.shape, strides[axis] as i64),
    );
    for a in (0..xt.rank()).filter(|&a| a != axis && xt.shape[a] > 1) {
        let pos = TracedTensor::apply1(
            Op::Iota {
                ty: it.clone(),
                dim: a,
            },
            &[],
        );
        let term = bin(
            BinaryOp::Mul,
            &pos,
            &i64_splat(&it.shape, strides[a] as i64),
        );
        offset = bin(BinaryOp::Add, &offset, &term);
    }
    let flat = TracedTensor::apply1(
        Op::Reshape {
            shape: vec![xt.numel()],
        },
        &[x],
    );
    checked(TracedTensor::apply1(
        Op::Gather { axis: 0 },
        &[&flat, &offset],
    ))
}

impl TracedTensor {
    /// The stable sort permutation along `axis` (negative counts from the end), i64 of
    /// this shape: `sort(x) = take_along_axis(x, argsort(x))`. See the module docs for the
    /// order (NaN last ascending, first descending; ties keep their order).
    #[track_caller]
    pub fn argsort(&self, axis: isize, descending: bool) -> TracedTensor {
        ok_or_recorded((|| {
            let axis = normalize_axis("argsort", axis, self.ty()?.rank())?;
            checked(TracedTensor::apply1(
                Op::Argsort { axis, descending },
                &[self],
            ))
        })())
    }

    /// The elements sorted along `axis` (the [`TracedTensor::argsort`] permutation applied
    /// with a gather; differentiable: the tangent is permuted the same way).
    #[track_caller]
    pub fn sort(&self, axis: isize, descending: bool) -> TracedTensor {
        ok_or_recorded((|| {
            let a = normalize_axis("sort", axis, self.ty()?.rank())?;
            let perm = checked(self.argsort(axis, descending))?;
            checked(take_along(self, &perm, a))
        })())
    }

    /// The `k` largest elements along the last axis and their indices (i64), largest
    /// first, as `jax.lax.top_k`: equal values by increasing index; NaN counts as larger
    /// than every number (the order of a descending [`TracedTensor::argsort`]). `k` must
    /// not exceed the last axis's size. Values are differentiable.
    #[track_caller]
    pub fn top_k(&self, k: usize) -> (TracedTensor, TracedTensor) {
        let r = (|| {
            let ty = self.ty()?;
            if ty.rank() == 0 {
                return Err(RuntimeError::invalid_op(
                    "top_k",
                    format!("operand {ty} has no last axis"),
                ));
            }
            let last = ty.rank() - 1;
            if k > ty.shape[last] {
                return Err(RuntimeError::invalid_op(
                    "top_k",
                    format!("k = {k} exceeds the size of the last axis of operand {ty}"),
                ));
            }
            let perm = checked(self.argsort(-1, true))?;
            let mut limits = ty.shape.clone();
            limits[last] = k;
            let idx = checked(TracedTensor::apply1(
                Op::Slice {
                    starts: vec![0; ty.rank()],
                    limits,
                },
                &[&perm],
            ))?;
            let values = checked(take_along(self, &idx, last))?;
            Ok((values, idx))
        })();
        match r {
            Ok(p) => p,
            Err(e) => (
                TracedTensor::from_error(e.clone()),
                TracedTensor::from_error(e),
            ),
        }
    }

    /// Inclusive scan of `kind` along `axis` (negative counts from the end); `reverse`
    /// scans from the last element to the first (element `i` combines `i..n`). Complex
    /// operands are allowed for sum and product; bool operands are an error.
    #[track_caller]
    pub fn cumulative(&self, kind: ReduceOp, axis: isize, reverse: bool) -> TracedTensor {
        ok_or_recorded((|| {
            let name = kind.cumulative_name();
            let axis = normalize_axis(name, axis, self.ty()?.rank())?;
            checked(TracedTensor::apply1(
                Op::Cumulative {
                    kind,
                    axis,
                    reverse,
                },
                &[self],
            ))
        })())
    }

    /// Cumulative sum along `axis` (`jnp.cumsum`).
    #[track_caller]
    pub fn cumsum(&self, axis: isize) -> TracedTensor {
        self.cumulative(ReduceOp::Sum, axis, false)
    }

    /// Cumulative product along `axis` (`jnp.cumprod`).
    #[track_caller]
    pub fn cumprod(&self, axis: isize) -> TracedTensor {
        self.cumulative(ReduceOp::Prod, axis, false)
    }

    /// Running maximum along `axis` (`jax.lax.cummax`); NaN propagates.
    #[track_caller]
    pub fn cummax(&self, axis: isize) -> TracedTensor {
        self.cumulative(ReduceOp::Max, axis, false)
    }

    /// Running minimum along `axis` (`jax.lax.cummin`); NaN propagates.
    #[track_caller]
    pub fn cummin(&self, axis: isize) -> TracedTensor {
        self.cumulative(ReduceOp::Min, axis, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenferro_ir::TensorType;

    #[test]
    fn typing_and_errors() {
        let x = TracedTensor::input(DType::F64, &[3, 4]);
        assert_eq!(x.argsort(-1, false).ty().unwrap().dtype, DType::I64);
        assert_eq!(x.sort(0, true).shape().unwrap(), vec![3, 4]);
        let (v, i) = x.top_k(2);
        assert_eq!(v.ty().unwrap(), TensorType::new(DType::F64, vec![3, 2]));
        assert_eq!(i.ty().unwrap(), TensorType::new(DType::I64, vec![3, 2]));
        assert!(x.top_k(5).0.error().is_some());
        assert!(x.argsort(2, false).error().is_some());
        assert_eq!(x.cumsum(1).ty().unwrap(), x.ty().unwrap());
        let z = TracedTensor::input(DType::C64, &[3]);
        assert!(z
            .argsort(0, false)
            .error()
            .unwrap()
            .to_string()
            .contains("argsort"));
        assert!(z.cummax(0).error().unwrap().to_string().contains("cummax"));
        assert!(z.cumprod(0).error().is_none());
        let b = TracedTensor::input(DType::Bool, &[3]);
        assert!(b.cumsum(0).error().is_some());
    }
}
