//! Vector and matrix norms (`numpy.linalg.norm`, `torch.linalg.vector_norm` /
//! `matrix_norm`), composites of core ops and `linalg.svd` (nuclear and spectral norms).
//!
//! **Derivatives at zero.** Every norm is differentiable away from the points where it is
//! not; at the zero vector / matrix (and, for the p-norms, at zero entries) the derivative
//! these composites produce is the subgradient **0**, never NaN, at every order: the
//! square root / `1/p` power and the `|x|^p` terms are guarded with a "double where" (the
//! branch that is not taken is evaluated at a harmless point). JAX's `jnp.linalg.norm`
//! gives NaN for the 2-norm gradient at zero and PyTorch gives 0 for `vector_norm` but not
//! for every `ord`; here it is 0 for every `ord`, vector and matrix. The nuclear and
//! spectral (`Two`, `NegTwo`) norms return 0 and a zero derivative at the zero matrix;
//! elsewhere their derivatives are those of the singular values (so a repeated largest
//! singular value gives one valid subgradient, as `svdvals`' rule picks it).
//!
//! Vector p-norms are computed scaled by the (gradient-stopped) largest magnitude, so
//! `‖1e200·x‖` and `‖1e-200·x‖` neither overflow nor underflow; an infinite entry gives
//! `inf` (and NaN entries NaN), as NumPy.

use crate::ops::svd_op_with;
use crate::util::ok;
use tenferro_runtime::{DType, Result, RuntimeError, TracedTensor};

/// The `ord` of a matrix norm (`numpy.linalg.norm(x, ord, axis=(0, 1))`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatrixNorm {
    /// Frobenius: `sqrt(Σ |a_ij|²)`.
    Fro,
    /// Nuclear: the sum of the singular values.
    Nuc,
    /// `max_j Σ_i |a_ij|` (largest column sum).
    One,
    /// The largest singular value.
    Two,
    /// `max_i Σ_j |a_ij|` (largest row sum).
    Inf,
    /// `min_j Σ_i |a_ij|`.
    NegOne,
    /// The smallest singular value (`min(m, n)`-th).
    NegTwo,
    /// `min_i Σ_j |a_ij|`.
    NegInf,
}

/// The `ord` argument of [`TracedTensorLinalgExt::norm`], as NumPy's: a number (for
/// vectors any `p`, including `0` (count of nonzeros) and `±inf`; for matrices `±1`,
/// `±2`, `±inf`), or `"fro"` / `"nuc"` (matrices only).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormOrd {
    /// A number.
    P(f64),
    /// Frobenius (matrices).
    Fro,
    /// Nuclear (matrices).
    Nuc,
}

fn bad(op: &str, msg: String) -> RuntimeError {
    RuntimeError::invalid_op(op, msg)
}

fn normalize(op: &str, axes: &[isize], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let r = rank as isize;
        let n = if a < 0 { a + r } else { a };
        if n < 0 || n >= r {
            return Err(bad(
                op,
                format!("axis {a} is out of range for an operand of rank {rank}"),
            ));
        }
        if out.contains(&(n as usize)) {
            return Err(bad(op, format!("axis {a} is listed twice")));
        }
        out.push(n as usize);
    }
    Ok(out)
}

/// `x` as a float / complex tensor (integers and bools become f64, as NumPy).
fn float_operand(op: &str, x: &TracedTensor) -> Result<TracedTensor> {
    let d = x.dtype()?;
    if d.is_float() {
        Ok(x.clone())
    } else if d.is_int() || d == DType::Bool {
        x.convert(DType::F64)
    } else {
        Err(bad(op, format!("operand of dtype {d} has no norm")))
    }
}

fn scalar_like(x: &TracedTensor, v: f64) -> Result<TracedTensor> {
    x.full_like(v)
}

/// `select(pred, f(select(pred, x, safe)), other)`: `f` is only ever evaluated (and
/// differentiated) where `pred` holds, elsewhere at `safe`.
fn guarded(
    pred: &TracedTensor,
    x: &TracedTensor,
    safe: f64,
    f: impl Fn(&TracedTensor) -> TracedTensor,
    other: f64,
) -> Result<TracedTensor> {
    let xs = ok(TracedTensor::select(pred, x, &scalar_like(x, safe)?))?;
    let y = ok(f(&xs))?;
    ok(TracedTensor::select(pred, &y, &scalar_like(&y, other)?))
}

/// The vector norm over `axes` (all axes if empty), computed with the reduced axes kept.
fn vector_norm_keep(x: &TracedTensor, ord: f64, axes: &[isize]) -> Result<TracedTensor> {
    let op = "vector_norm";
    if ord.is_nan() {
        return Err(bad(op, "ord is NaN".into()));
    }
    let x = float_operand(op, x)?;
    let a = ok(x.abs())?; // real; d|x| = 0 at x = 0
    let rank = a.ty()?.rank();
    let axes: Vec<isize> = if axes.is_empty() {
        (0..rank as isize).collect()
    } else {
        normalize(op, axes, rank)?
            .into_iter()
            .map(|v| v as isize)
            .collect()
    };
    if ord == f64::INFINITY {
        return ok(a.max_axes(&axes, true));
    }
    if ord == f64::NEG_INFINITY {
        return ok(a.min_axes(&axes, true));
    }
    if ord == 0.0 {
        let nz = a.not_equal(&scalar_like(&a, 0.0)?);
        return ok(nz
            .convert(a.dtype()?)?
            .stop_gradient()
            .sum_axes(&axes, true));
    }
    if ord == 1.0 {
        return ok(a.sum_axes(&axes, true));
    }
    // Scale by the largest magnitude (gradient stopped: the norm does not depend on it).
    // (`reduce_max`: an empty reduction gives 0 here, not an error.)
    let ua: Vec<usize> = axes.iter().map(|&v| v as usize).collect();
    let m = ok(a.reduce_max(&ua).stop_gradient())?;
    let kept: Vec<usize> = (a.shape()?.iter().enumerate())
        .map(|(i, &n)| if ua.contains(&i) { 1 } else { n })
        .collect();
    let m = m.reshape(&kept)?;
    let m_fin = ok(TracedTensor::select(
        &m.is_finite(),
        &m,
        &scalar_like(&m, 0.0)?,
    ))?;
    let usable = m_fin.greater(&scalar_like(&m, 0.0)?);
    let ms = ok(TracedTensor::select(&usable, &m, &scalar_like(&m, 1.0)?))?;
    let b = ok(&a / &ms)?;
    let bzero = scalar_like(&b, 0.0)?;
    let nz = b.not_equal(&bzero);
    let n = if ord == 2.0 {
        let s = ok((&b * &b).sum_axes(&axes, true))?;
        guarded(
            &s.not_equal(&scalar_like(&s, 0.0)?),
            &s,
            1.0,
            |v| v.sqrt(),
            0.0,
        )?
    } else if ord > 0.0 {
        let t = guarded(&nz, &b, 1.0, |v| v.powf(ord), 0.0)?;
        let s = ok(t.sum_axes(&axes, true))?;
        guarded(
            &s.not_equal(&scalar_like(&s, 0.0)?),
            &s,
            1.0,
            |v| v.powf(1.0 / ord),
            0.0,
        )?
    } else {
        // p < 0: 0 if any entry is 0 (as NumPy's sum(|x|^p)^(1/p) with inf), else the
        // formula, evaluated away from zeros.
        let t = guarded(&nz, &b, 1.0, |v| v.powf(ord), 0.0)?;
        let s = ok(t.sum_axes(&axes, true))?;
        let zeros = ok(b.equal(&bzero).convert(b.dtype()?)?.sum_axes(&axes, true))?;
        let fine = zeros.equal(&scalar_like(&zeros, 0.0)?);
        guarded(&fine, &s, 1.0, |v| v.powf(1.0 / ord), 0.0)?
    };
    let n = ok(&ms * &n)?;
    // An infinite entry: the norm is inf (the scaled sum was NaN). Not `is_inf`: the
    // maximum of no entries is -inf, and the norm of nothing is the formula's 0.
    let inf = m.equal(&scalar_like(&m, f64::INFINITY)?);
    ok(TracedTensor::select(&inf, &m, &n))
}

fn drop_axes(x: TracedTensor, axes: &[isize], keepdims: bool) -> Result<TracedTensor> {
    if keepdims {
        return Ok(x);
    }
    let rank = x.ty()?.rank();
    let axes: Vec<isize> = if axes.is_empty() {
        (0..rank as isize).collect()
    } else {
        axes.to_vec()
    };
    x.squeeze(&axes)
}

pub(crate) fn vector_norm(
    x: &TracedTensor,
    ord: f64,
    axes: &[isize],
    keepdims: bool,
) -> Result<TracedTensor> {
    let n = vector_norm_keep(x, ord, axes)?;
    drop_axes(n, axes, keepdims)
}

/// Matrix norm over the matrix axes (0, 1), keeping them as length-1 axes.
fn matrix_norm_keep(x: &TracedTensor, ord: MatrixNorm) -> Result<TracedTensor> {
    let op = "matrix_norm";
    let x = float_operand(op, x)?;
    let ty = x.ty()?;
    if ty.rank() < 2 {
        return Err(bad(
            op,
            format!("operand {ty} must have rank >= 2 (matrices on the first two axes)"),
        ));
    }
    let fro = vector_norm_keep(&x, 2.0, &[0, 1])?;
    let col_sums = |x: &TracedTensor| -> Result<TracedTensor> { ok(x.abs().sum_axes(&[0], true)) };
    let row_sums = |x: &TracedTensor| -> Result<TracedTensor> { ok(x.abs().sum_axes(&[1], true)) };
    let sv = |pick: &dyn Fn(&TracedTensor) -> Result<TracedTensor>| -> Result<TracedTensor> {
        let (m, n) = (ty.shape[0], ty.shape[1]);
        if m == 0 || n == 0 {
            return Ok(fro.clone());
        }
        // Safe gaps: the zero matrix's repeated zeros give finite derivatives at every order.
        let s = svd_op_with(&x, false, true, 0.0)?.remove(0); // [k, batch..]
        let v = pick(&s)?; // [1, batch..]
        let v = v.expand_dims(1)?;
        let nonzero = fro.not_equal(&scalar_like(&fro, 0.0)?);
        ok(TracedTensor::select(&nonzero, &v, &scalar_like(&v, 0.0)?))
    };
    match ord {
        MatrixNorm::Fro => Ok(fro),
        MatrixNorm::One => ok(col_sums(&x)?.max_axes(&[1], true)),
        MatrixNorm::NegOne => ok(col_sums(&x)?.min_axes(&[1], true)),
        MatrixNorm::Inf => ok(row_sums(&x)?.max_axes(&[0], true)),
        MatrixNorm::NegInf => ok(row_sums(&x)?.min_axes(&[0], true)),
        MatrixNorm::Nuc => sv(&|s| ok(s.sum_axes(&[0], true))),
        MatrixNorm::Two => sv(&|s| {
            let mut lim = s.shape()?;
            lim[0] = 1;
            s.slice(&vec![0; lim.len()], &lim)
        }),
        MatrixNorm::NegTwo => sv(&|s| {
            let lim = s.shape()?;
            let mut start = vec![0; lim.len()];
            start[0] = lim[0] - 1;
            s.slice(&start, &lim)
        }),
    }
}

pub(crate) fn matrix_norm(
    x: &TracedTensor,
    ord: MatrixNorm,
    keepdims: bool,
) -> Result<TracedTensor> {
    let n = matrix_norm_keep(x, ord)?;
    drop_axes(n, &[0, 1], keepdims)
}

pub(crate) fn norm(
    x: &TracedTensor,
    ord: Option<NormOrd>,
    axes: Option<&[isize]>,
    keepdims: bool,
) -> Result<TracedTensor> {
    let op = "norm";
    let rank = x.ty()?.rank();
    let axes: Vec<usize> = match axes {
        Some(a) => normalize(op, a, rank)?,
        None => {
            if ord.is_none() {
                // The 2-norm of all entries (flattened), as NumPy.
                return vector_norm(x, 2.0, &[], keepdims);
            }
            (0..rank).collect()
        }
    };
    match axes.len() {
        1 => {
            let p = match ord {
                None => 2.0,
                Some(NormOrd::P(p)) => p,
                Some(o) => {
                    return Err(bad(
                        op,
                        format!("ord {o:?} is a matrix norm; a vector norm (one axis) needs a number"),
                    ))
                }
            };
            vector_norm(x, p, &[axes[0] as isize], keepdims)
        }
        2 => {
            let m = match ord {
                None | Some(NormOrd::Fro) => MatrixNorm::Fro,
                Some(NormOrd::Nuc) => MatrixNorm::Nuc,
                Some(NormOrd::P(p)) if p == 1.0 => MatrixNorm::One,
                Some(NormOrd::P(p)) if p == -1.0 => MatrixNorm::NegOne,
                Some(NormOrd::P(p)) if p == 2.0 => MatrixNorm::Two,
                Some(NormOrd::P(p)) if p == -2.0 => MatrixNorm::NegTwo,
                Some(NormOrd::P(p)) if p == f64::INFINITY => MatrixNorm::Inf,
                Some(NormOrd::P(p)) if p == f64::NEG_INFINITY => MatrixNorm::NegInf,
                Some(NormOrd::P(p)) => {
                    return Err(bad(
                        op,
                        format!("ord {p} is not a matrix norm (use ±1, ±2, ±inf, Fro or Nuc)"),
                    ))
                }
            };
            // Move the two axes to the front (the matrix axes), the rest keep their order.
            let mut perm = axes.clone();
            perm.extend((0..rank).filter(|i| !axes.contains(i)));
            let xt = if perm.iter().enumerate().all(|(i, &p)| i == p) {
                x.clone()
            } else {
                x.transpose(&perm)?
            };
            let n = matrix_norm(&xt, m, false)?;
            if !keepdims {
                return Ok(n);
            }
            let mut shape = x.shape()?;
            shape[axes[0]] = 1;
            shape[axes[1]] = 1;
            n.reshape(&shape)
        }
        k => Err(bad(
            op,
            format!("norm over {k} axes: give one axis (vector norm) or two (matrix norm); with ord and no axes the operand must have rank 1 or 2"),
        )),
    }
}
