//! Gather, scatter_add and iota. Gather along `axis` views the operand as
//! `[pre, n, post]` (`pre` = product of the faster axes, `post` of the slower ones) and the
//! result as `[pre, m, post]` (`m` = number of indices): each (index, post) pair moves one
//! contiguous run of `pre` elements. Indices are clamped into `[0, n - 1]` (and into
//! `[0, i64::MAX]` for an axis longer than that). An empty operand or result moves nothing,
//! whatever the extents of its other axes.

use crate::buffer::with_slice;
use crate::error::internal;
use tenferro_ir::tensor::try_vec_with_capacity;
use tenferro_ir::{DType, Data, Element, TensorType};
use tenferro_runtime::Result;

/// Product of `dims`, saturating at `usize::MAX` (only an empty shape's partial products
/// can overflow, and those are never used to address an element).
fn product(dims: &[usize]) -> usize {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .unwrap_or(usize::MAX)
}

/// Number of elements of a `[a, b, c]` view (0 when any extent is 0), `None` when it
/// overflows.
fn volume(a: usize, b: usize, c: usize) -> Option<usize> {
    if a == 0 || b == 0 || c == 0 {
        return Some(0);
    }
    a.checked_mul(b)?.checked_mul(c)
}

/// Geometry of a gather / scatter_add.
#[derive(Clone, Debug)]
pub(crate) struct GatherPlan {
    pre: usize,
    n: usize,
    post: usize,
    m: usize,
}

impl GatherPlan {
    pub(crate) fn new(x_shape: &[usize], indices: &TensorType, axis: usize) -> GatherPlan {
        GatherPlan {
            pre: product(&x_shape[..axis]),
            n: x_shape[axis],
            post: product(&x_shape[axis + 1..]),
            m: indices.numel(),
        }
    }

    /// `i` clamped into `[0, n - 1]` (an axis longer than `i64::MAX` clamps at
    /// `i64::MAX`, an empty one, which the typing rule rejects, at 0).
    fn clamp(&self, i: i64) -> usize {
        let hi = i64::try_from(self.n.saturating_sub(1)).unwrap_or(i64::MAX);
        i.clamp(0, hi) as usize
    }

    /// `true` when the operand holds no element (nothing to read or update).
    fn operand_is_empty(&self) -> bool {
        self.pre == 0 || self.n == 0 || self.post == 0
    }

    fn gather_into<T: Copy>(&self, x: &[T], idx: &[i64], out: &mut Vec<T>) {
        let pre = self.pre;
        for k in 0..self.post {
            for &i in idx {
                let src = pre * (self.clamp(i) + self.n * k);
                out.extend_from_slice(&x[src..src + pre]);
            }
        }
    }
}

/// `x` gathered along the planned axis at `idx` (i64).
pub(crate) fn gather(name: &str, plan: &GatherPlan, x: &Data, idx: &Data) -> Result<Data> {
    let Data::I64(idx) = idx else {
        return Err(internal(name, "non-i64 indices"));
    };
    if idx.len() != plan.m {
        return Err(internal(name, "index count differs from the plan"));
    }
    let len = volume(plan.pre, plan.m, plan.post)
        .ok_or_else(|| internal(name, "result element count overflows"))?;
    Ok(with_slice!(x, v: T => {
        let mut out: Vec<T> = try_vec_with_capacity(name, len)?;
        if len > 0 {
            plan.gather_into(v, idx, &mut out);
        }
        T::into_data(out)
    }))
}

/// `base` with `upd` added at the gathered positions, one update at a time in
/// column-major order of `upd`.
pub(crate) fn scatter_add(
    name: &str,
    plan: &GatherPlan,
    base: &Data,
    idx: &Data,
    upd: &Data,
) -> Result<Data> {
    let Data::I64(idx) = idx else {
        return Err(internal(name, "non-i64 indices"));
    };
    fn scatter<T: Copy>(
        plan: &GatherPlan,
        base: &[T],
        idx: &[i64],
        upd: &[T],
        add: impl Fn(T, T) -> T,
    ) -> Vec<T> {
        let mut out = base.to_vec();
        if plan.operand_is_empty() {
            return out;
        }
        let pre = plan.pre;
        for k in 0..plan.post {
            for (j, &i) in idx.iter().enumerate() {
                let dst = pre * (plan.clamp(i) + plan.n * k);
                let src = pre * (j + plan.m * k);
                for (o, &u) in out[dst..dst + pre].iter_mut().zip(&upd[src..src + pre]) {
                    *o = add(*o, u);
                }
            }
        }
        out
    }
    Ok(match (base, upd) {
        (Data::F32(b), Data::F32(u)) => Data::F32(scatter(plan, b, idx, u, |p, q| p + q)),
        (Data::F64(b), Data::F64(u)) => Data::F64(scatter(plan, b, idx, u, |p, q| p + q)),
        (Data::C32(b), Data::C32(u)) => Data::C32(scatter(plan, b, idx, u, |p, q| p + q)),
        (Data::C64(b), Data::C64(u)) => Data::C64(scatter(plan, b, idx, u, |p, q| p + q)),
        (Data::I32(b), Data::I32(u)) => Data::I32(scatter(plan, b, idx, u, i32::wrapping_add)),
        (Data::I64(b), Data::I64(u)) => Data::I64(scatter(plan, b, idx, u, i64::wrapping_add)),
        _ => return Err(internal(name, "unsupported or mismatched dtypes")),
    })
}

/// `[pre, n, post]` values equal to the index along the middle axis.
pub(crate) fn iota(name: &str, dtype: DType, pre: usize, n: usize, post: usize) -> Result<Data> {
    let len =
        volume(pre, n, post).ok_or_else(|| internal(name, "result element count overflows"))?;
    fn fill<T: Copy>(
        name: &str,
        len: usize,
        (pre, n, post): (usize, usize, usize),
        of: impl Fn(usize) -> T,
    ) -> Result<Vec<T>> {
        let mut out = try_vec_with_capacity(name, len)?;
        if len > 0 {
            for _ in 0..post {
                for j in 0..n {
                    out.extend(std::iter::repeat_n(of(j), pre));
                }
            }
        }
        Ok(out)
    }
    let g = (pre, n, post);
    Ok(match dtype {
        DType::F32 => Data::F32(fill(name, len, g, |j| j as f32)?),
        DType::F64 => Data::F64(fill(name, len, g, |j| j as f64)?),
        DType::C32 => Data::C32(fill(name, len, g, |j| {
            num_complex::Complex32::new(j as f32, 0.0)
        })?),
        DType::C64 => Data::C64(fill(name, len, g, |j| {
            num_complex::Complex64::new(j as f64, 0.0)
        })?),
        DType::I32 => Data::I32(fill(name, len, g, |j| j as i32)?),
        DType::I64 => Data::I64(fill(name, len, g, |j| j as i64)?),
        DType::Bool => return Err(internal(name, "bool iota")),
    })
}
