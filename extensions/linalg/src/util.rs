//! Small traced building blocks shared by the derived ops and the AD rules: adjoints,
//! constant masks, diagonals, row / column scaling. All keep batch axes (axes 2..) intact.
#![cfg_attr(not(feature = "autodiff"), allow(dead_code))]

use crate::ops::is_complex;
use num_complex::{Complex32, Complex64};
use tenferro_ir::{CmpOp, DType, Tensor, TensorType};
use tenferro_runtime::{Result, RuntimeError, TracedTensor};

/// Turns a value with a recorded error into `Err`.
pub(crate) fn ok(t: TracedTensor) -> Result<TracedTensor> {
    match t.error() {
        Some(e) => Err(e),
        None => Ok(t),
    }
}

/// A host tensor of `dtype` from real column-major values.
pub(crate) fn real_tensor(dtype: DType, shape: Vec<usize>, v: Vec<f64>) -> Result<Tensor> {
    let t = match dtype {
        DType::F32 => Tensor::from_vec_col_major(shape, v.iter().map(|&x| x as f32).collect()),
        DType::F64 => Tensor::from_vec_col_major(shape, v),
        DType::C32 => Tensor::from_vec_col_major(
            shape,
            v.iter().map(|&x| Complex32::new(x as f32, 0.0)).collect(),
        ),
        DType::C64 => {
            Tensor::from_vec_col_major(shape, v.iter().map(|&x| Complex64::new(x, 0.0)).collect())
        }
        other => {
            return Err(RuntimeError::invalid_op(
                "linalg",
                format!("dtype {other} is not supported (need f32, f64, c32 or c64)"),
            ))
        }
    };
    Ok(t?)
}

/// The batch axes (2..) of a matrix type.
pub(crate) fn batch_of(ty: &TensorType) -> Vec<usize> {
    ty.shape[2..].to_vec()
}

/// A constant `rows x cols` matrix with entries `f(i, j)`, broadcast over `batch`.
pub(crate) fn const_matrix(
    dtype: DType,
    rows: usize,
    cols: usize,
    batch: &[usize],
    f: impl Fn(usize, usize) -> f64,
) -> Result<TracedTensor> {
    let mut v = Vec::with_capacity(rows * cols);
    for j in 0..cols {
        for i in 0..rows {
            v.push(f(i, j));
        }
    }
    let m = TracedTensor::from_tensor(real_tensor(dtype, vec![rows, cols], v)?);
    if batch.is_empty() {
        return Ok(m);
    }
    let shape: Vec<usize> = [rows, cols].iter().chain(batch).copied().collect();
    m.broadcast_in_dim(&shape, &[0, 1])
}

/// `x * mask` with a constant mask `f(i, j)` over the matrix axes, exactly zero where the
/// mask is: an `inf` or NaN in a discarded entry does not leak into the result.
pub(crate) fn masked(x: &TracedTensor, f: impl Fn(usize, usize) -> f64) -> Result<TracedTensor> {
    let ty = x.ty()?;
    let m = const_matrix(ty.dtype, ty.shape[0], ty.shape[1], &batch_of(&ty), f)?;
    let zero = x.full_like(0.0)?;
    let keep = ok(m.compare(CmpOp::Ne, &zero))?;
    ok(TracedTensor::select(&keep, &ok(x * &m)?, &zero))
}

/// Lower triangle of `x` (with the diagonal if `diag`).
pub(crate) fn tril(x: &TracedTensor, diag: bool) -> Result<TracedTensor> {
    masked(x, |i, j| if i > j || (diag && i == j) { 1.0 } else { 0.0 })
}

/// Upper triangle of `x` (with the diagonal if `diag`).
pub(crate) fn triu(x: &TracedTensor, diag: bool) -> Result<TracedTensor> {
    masked(x, |i, j| if i < j || (diag && i == j) { 1.0 } else { 0.0 })
}

/// The identity of `x`'s dtype, matrix size and batch (x square).
pub(crate) fn eye_like(x: &TracedTensor) -> Result<TracedTensor> {
    let ty = x.ty()?;
    const_matrix(
        ty.dtype,
        ty.shape[0],
        ty.shape[1],
        &batch_of(&ty),
        |i, j| {
            if i == j {
                1.0
            } else {
                0.0
            }
        },
    )
}

/// Conjugate transpose of the matrix axes.
pub(crate) fn adjoint(x: &TracedTensor) -> Result<TracedTensor> {
    let t = x.t()?;
    if is_complex(t.dtype()?) {
        ok(t.conj())
    } else {
        Ok(t)
    }
}

/// `(x + x^H) / 2`.
pub(crate) fn hermitian_part(x: &TracedTensor) -> Result<TracedTensor> {
    ok(&(x + &adjoint(x)?) * 0.5)
}

/// Batched matrix product.
pub(crate) fn mm(a: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    a.matmul(b)
}

/// `Re diag(Uᴴ X)` `[k, batch..]` for `u`, `x` `[m, k, batch..]`: `Re Σᵢ conj(u[i, j]) x[i, j]`,
/// an elementwise product and a sum instead of the `k × k` matrix product.
pub(crate) fn re_diag_adjoint_mm(u: &TracedTensor, x: &TracedTensor) -> Result<TracedTensor> {
    let uc = if is_complex(u.dtype()?) {
        u.conj()
    } else {
        u.clone()
    };
    ok((&uc * x).reduce_sum(&[0]).real())
}

/// The diagonal `[k, batch..]` of `x` `[m, n, batch..]`, `k = min(m, n)`.
pub(crate) fn diag_part(x: &TracedTensor) -> Result<TracedTensor> {
    let ty = x.ty()?;
    let (m, n) = (ty.shape[0], ty.shape[1]);
    let k = m.min(n);
    let sq = if m == n {
        x.clone()
    } else {
        let mut lim = ty.shape.clone();
        lim[0] = k;
        lim[1] = k;
        x.slice(&vec![0; ty.rank()], &lim)?
    };
    let e = eye_like(&sq)?;
    ok((&sq * &e).reduce_sum(&[1]))
}

/// The `[k, k, batch..]` diagonal matrix of `v` `[k, batch..]`.
pub(crate) fn diag_embed(v: &TracedTensor) -> Result<TracedTensor> {
    let ty = v.ty()?;
    let k = ty.shape[0];
    let shape: Vec<usize> = [k, k].iter().chain(&ty.shape[1..]).copied().collect();
    let dims: Vec<usize> = std::iter::once(0).chain(2..ty.rank() + 1).collect();
    let b = v.broadcast_in_dim(&shape, &dims)?;
    let e = eye_like(&b)?;
    ok(&b * &e)
}

/// `v` `[k, batch..]` broadcast along matrix axis `axis` of a `[rows, cols, batch..]` shape:
/// `axis = 1` gives entries `v[j]` (scales columns), `axis = 0` gives `v[i]` (scales rows).
pub(crate) fn spread(v: &TracedTensor, shape: &[usize], axis: usize) -> Result<TracedTensor> {
    let r = v.ty()?.rank();
    let dims: Vec<usize> = std::iter::once(axis).chain(2..r + 1).collect();
    v.broadcast_in_dim(shape, &dims)
}

/// Converts `x` to `dtype` if needed.
pub(crate) fn cast(x: &TracedTensor, dtype: DType) -> Result<TracedTensor> {
    if x.dtype()? == dtype {
        Ok(x.clone())
    } else {
        x.convert(dtype)
    }
}

/// A right-hand side as a matrix: a vector right-hand side `[n, batch..]` of a matrix of
/// rank `matrix_rank` becomes `[n, 1, batch..]`. Returns it and, for a vector, the shape
/// to give the solution back ([`restore_rhs`]).
pub(crate) fn rhs_as_matrix(
    b: &TracedTensor,
    matrix_rank: usize,
) -> Result<(TracedTensor, Option<Vec<usize>>)> {
    let tb = b.ty()?;
    if tb.rank() + 1 != matrix_rank {
        return Ok((b.clone(), None));
    }
    let mut s = vec![tb.shape[0], 1];
    s.extend_from_slice(&tb.shape[1..]);
    Ok((b.reshape(&s)?, Some(tb.shape)))
}

/// A solution in the shape of its right-hand side (see [`rhs_as_matrix`]).
pub(crate) fn restore_rhs(
    x: TracedTensor,
    vector_shape: &Option<Vec<usize>>,
) -> Result<TracedTensor> {
    match vector_shape {
        Some(s) => x.reshape(s),
        None => Ok(x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenferro_cpu::CpuBackend;
    use tenferro_runtime::{GraphCompiler, GraphExecutor};

    fn run(t: &TracedTensor) -> Vec<f64> {
        let p = GraphCompiler::new().compile(t).unwrap();
        let out = GraphExecutor::new(CpuBackend::new()).run(&p).unwrap();
        out.to_vec::<f64>().unwrap()
    }

    #[test]
    fn masked_entries_are_exact_zeros_even_when_not_finite() {
        // column-major 2x2 [[1, inf], [nan, -4]]
        let x =
            TracedTensor::from_vec_col_major(vec![2, 2], vec![1.0, f64::NAN, f64::INFINITY, -4.0]);
        let l = run(&tril(&x, true).unwrap());
        assert_eq!(l[0], 1.0);
        assert!(l[1].is_nan());
        assert_eq!((l[2], l[3]), (0.0, -4.0));
        let u = run(&triu(&x, false).unwrap());
        assert_eq!(
            u.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            [0, 0, f64::INFINITY.to_bits(), 0]
        );
        let half = run(&masked(&x, |i, j| if i == j { 0.5 } else { 0.0 }).unwrap());
        assert_eq!(half, [0.5, 0.0, 0.0, -2.0]);
    }
}
