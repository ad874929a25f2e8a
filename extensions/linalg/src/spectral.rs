//! SVD-based composites: truncated SVDs (by rank or by tolerance), SVD with a regularised
//! derivative, the pseudo-inverse and least squares.
//!
//! **Truncation and static shapes.** A traced program has static shapes, so a rank
//! decided by the *values* (a tolerance) cannot shorten the factors. `svd_truncated(k)`
//! takes the rank at trace time and returns `[m,k]`, `[k]`, `[k,n]` factors;
//! `svd_rtol(rtol)` returns the full reduced factors with the discarded singular values
//! **set to zero** and the (data-dependent) rank, so `U diag(S) Vh` is the truncated
//! approximation and `S[i] != 0` marks the kept triplets (as the kept ones are `> rtol·s₀`,
//! which is `> 0` unless the matrix is zero).
//!
//! **Derivatives.** `svd_truncated` is `linalg.svd` with a `keep` attribute and its own
//! rule: the kept singular vectors' derivative is the full SVD derivative including the
//! coupling to the discarded subspace (the standard truncated-SVD adjoint), written with
//! the discarded part `A_D = A − U_k S_k V_kᴴ` itself — per kept triplet one solve with
//! `s_j² I − A_D A_Dᴴ` — and never with discarded singular vectors. So it is exact, and
//! smooth to any order, wherever `s_k` is strictly above the discarded singular values,
//! however those are repeated (the zeros of a rank-deficient matrix included). Kept
//! singular values that are repeated make the within-kept coupling infinite, as for
//! [`crate::TracedTensorLinalgExt::svd`].
//!
//! `svd_rtol`, `pinv` and `lstsq` (the rank is data-dependent, so the factors are full)
//! use `linalg.svd` with `safe_gaps`: exactly equal singular values are not coupled and an
//! exactly zero one is not divided by. Their first derivatives are exact where the rank
//! is locally constant (the null-space terms included); second derivatives are exact at
//! full rank, and finite but not exact at a rank-deficient input (the factored form has no
//! derivative of the repeated-zero singular vectors there).

use crate::ops::{matrix_type, svd_op_with, svd_truncated_op};
use crate::util::{adjoint, cast, mm, ok, rhs_as_matrix, spread};
use tenferro_runtime::{DType, Result, RuntimeError, TracedTensor};

fn bad(op: &str, msg: String) -> RuntimeError {
    RuntimeError::invalid_op(op, msg)
}

/// Reduced SVD with safe gaps (or a Lorentzian `eps`).
fn svd3(a: &TracedTensor, eps: f64) -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
    let mut f = svd_op_with(a, true, true, eps)?;
    let vh = f.pop().expect("three results");
    let s = f.pop().expect("three results");
    let u = f.pop().expect("three results");
    Ok((u, s, vh))
}

pub(crate) fn svd_with_eps(
    a: &TracedTensor,
    eps: f64,
) -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
    svd3(a, eps)
}

fn slice_axis(x: &TracedTensor, axis: usize, lo: usize, hi: usize) -> Result<TracedTensor> {
    let shape = x.shape()?;
    let mut start = vec![0; shape.len()];
    let mut lim = shape.clone();
    start[axis] = lo;
    lim[axis] = hi;
    x.slice(&start, &lim)
}

pub(crate) fn svd_truncated(
    a: &TracedTensor,
    k: usize,
) -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
    let mut f = svd_truncated_op(a, k)?;
    let vh = f.pop().expect("three results");
    let s = f.pop().expect("three results");
    let u = f.pop().expect("three results");
    Ok((u, s, vh))
}

/// The kept mask (real dtype of `s`, 1 / 0) of singular values `s > rtol · s₀`.
fn kept_mask(s: &TracedTensor, rtol: f64) -> Result<TracedTensor> {
    let sty = s.ty()?;
    let s0 = slice_axis(s, 0, 0, 1)?.broadcast_to(&sty.shape)?;
    let cut = ok(&s0 * rtol)?;
    cast(&s.greater(&cut), sty.dtype)
}

fn check_rtol(op: &str, rtol: f64) -> Result<()> {
    if !(rtol >= 0.0 && rtol.is_finite()) {
        return Err(bad(op, format!("rtol must be finite and >= 0, got {rtol}")));
    }
    Ok(())
}

pub(crate) fn svd_rtol(
    a: &TracedTensor,
    rtol: f64,
) -> Result<(TracedTensor, TracedTensor, TracedTensor, TracedTensor)> {
    matrix_type("svd_rtol", a)?;
    check_rtol("svd_rtol", rtol)?;
    let (u, s, vh) = svd3(a, 0.0)?;
    let w = kept_mask(&s, rtol)?;
    let rank = ok(w
        .stop_gradient()
        .sum_axes(&[0], false)
        .convert(DType::I64)?)?;
    let s = ok(&s * &w)?;
    Ok((u, s, vh, rank))
}

/// NumPy's default relative tolerance `max(m, n) · ε`.
fn default_rtol(a: &TracedTensor) -> Result<f64> {
    let ty = a.ty()?;
    let eps = match ty.dtype.real() {
        DType::F32 => f32::EPSILON as f64,
        _ => f64::EPSILON,
    };
    Ok(ty.shape[0].max(ty.shape[1]) as f64 * eps)
}

/// `1/s` where `s > rtol · s₀`, else 0 (double where: finite derivatives), and the mask.
fn pinv_diag(s: &TracedTensor, rtol: f64) -> Result<(TracedTensor, TracedTensor)> {
    let w = kept_mask(s, rtol)?;
    let safe = ok(&ok(s * &w)? + &ok(1.0 - &w)?)?;
    Ok((ok(&w / &safe)?, w))
}

pub(crate) fn pinv(a: &TracedTensor, rtol: Option<f64>) -> Result<TracedTensor> {
    let ty = matrix_type("pinv", a)?;
    let rtol = match rtol {
        Some(r) => r,
        None => default_rtol(a)?,
    };
    check_rtol("pinv", rtol)?;
    let (u, s, vh) = svd3(a, 0.0)?;
    let (sinv, _) = pinv_diag(&s, rtol)?;
    let v = adjoint(&vh)?;
    let vs = ok(&v * &spread(&cast(&sinv, ty.dtype)?, &v.shape()?, 1)?)?;
    mm(&vs, &adjoint(&u)?)
}

/// The results of [`crate::TracedTensorLinalgExt::lstsq`], as `numpy.linalg.lstsq`.
#[derive(Clone, Debug)]
pub struct Lstsq<T> {
    /// The minimum-norm least-squares solution `X = A⁺ B` (`[n, k, batch..]`, or `[n,
    /// batch..]` for a vector right-hand side).
    pub solution: T,
    /// Squared 2-norms of the residual columns `Σ_i |B - A X|²` (`[k, batch..]` or
    /// `[batch..]`), always computed (NumPy returns an empty array when the rank is below
    /// `n` or `m <= n`; a static shape cannot depend on the rank).
    pub residuals: T,
    /// The effective rank (i64, `[batch..]`): singular values `> rcond · s₀`.
    pub rank: T,
    /// The singular values of `A` (real, descending, `[min(m, n), batch..]`).
    pub singular_values: T,
}

pub(crate) fn lstsq(
    a: &TracedTensor,
    b: &TracedTensor,
    rcond: Option<f64>,
) -> Result<Lstsq<TracedTensor>> {
    let ta = matrix_type("lstsq", a)?;
    let tb0 = b.ty()?;
    let (b, vector_shape) = rhs_as_matrix(b, ta.rank())?;
    let vector = vector_shape.is_some();
    let tb = matrix_type("lstsq", &b)?;
    if tb.shape[0] != ta.shape[0] || tb.shape[2..] != ta.shape[2..] {
        return Err(bad(
            "lstsq",
            format!("matrix {ta} and right-hand side {tb0} do not match: need B of shape [{}, k, batch..] or [{}, batch..] with the batch axes {:?}", ta.shape[0], ta.shape[0], &ta.shape[2..]),
        ));
    }
    let dtype = tenferro_runtime::ops::promote(ta.dtype, tb.dtype);
    let a = cast(a, dtype)?;
    let b = cast(&b, dtype)?;
    let rcond = match rcond {
        Some(r) => r,
        None => default_rtol(&a)?,
    };
    check_rtol("lstsq", rcond)?;
    let (u, s, vh) = svd3(&a, 0.0)?;
    let (sinv, w) = pinv_diag(&s, rcond)?;
    let uhb = mm(&adjoint(&u)?, &b)?; // [r, k, batch..]
    let scaled = ok(&uhb * &spread(&cast(&sinv, dtype)?, &uhb.shape()?, 0)?)?;
    let x = mm(&adjoint(&vh)?, &scaled)?;
    let res = ok(&b - &mm(&a, &x)?)?;
    let res = ok(res.abs().square().sum_axes(&[0], false))?;
    let rank = ok(w
        .stop_gradient()
        .sum_axes(&[0], false)
        .convert(DType::I64)?)?;
    let (x, res) = if vector {
        let xs: Vec<usize> = std::iter::once(ta.shape[1])
            .chain(tb0.shape[1..].iter().copied())
            .collect();
        (x.reshape(&xs)?, res.reshape(&tb0.shape[1..])?)
    } else {
        (x, res)
    };
    Ok(Lstsq {
        solution: x,
        residuals: res,
        rank,
        singular_values: s,
    })
}
