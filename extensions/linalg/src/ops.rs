//! The linalg primitives: their names, attributes and typing (checked when traced). Every
//! user-facing operation of [`crate::TracedTensorLinalgExt`] is one of these or is built
//! from them with core ops.
//!
//! | primitive | operands | results | attributes |
//! |---|---|---|---|
//! | `linalg.cholesky` | A `[n,n,b..]` | L (lower, from A's lower triangle) | — |
//! | `linalg.triangular_solve` | A `[n,n,b..]`, B | X with `op(A) X = B` (left) or `X op(A) = B` | `lower`, `left`, `adjoint`, `unit_diagonal` |
//! | `linalg.solve` | A `[n,n,b..]`, B `[n,k,b..]` | X with `op(A) X = B` | `adjoint` |
//! | `linalg.lu` | A `[m,n,b..]` | P `[m,m]`, L `[m,k]`, U `[k,n]` with `A = P L U`, `k = min(m,n)`; sign of P `[b..]` | — |
//! | `linalg.qr` | A `[m,n,b..]` | Q `[m,k]`, R `[k,n]`, `k = min(m,n)` (`m` with `complete`), `diag(R) >= 0` real | `complete` |
//! | `linalg.svd` | A `[m,n,b..]` | U `[m,k]`, S `[k]` (real, descending), Vh `[k,n]`; or S only; `k = min(m,n)` or `keep` | `compute_uv`, `keep` (truncated to `keep` triplets; 0: all), `full_matrices` (U `[m,m]`, Vh `[n,n]`), `safe_gaps`, `derivative_eps` (rule only) |
//! | `linalg.eigh` | A `[n,n,b..]` (lower triangle) | W `[n]` (real, ascending), V; or W only | `eigenvectors`, `derivative_eps` (rule only) |
//! | `linalg.eig` | A `[n,n,b..]` (general, real or complex) | W `[n]` (complex), V `[n,n]` (complex, unit columns, gauge below); or W only | `eigenvectors`, `derivative_eps` (rule only) |
//! | `linalg.eig_distinct` | W `[n,b..]` (complex) | W unchanged; a run-time error if two entries coincide | — |
//!
//! `op(A)` is `A` or, with `adjoint`, its conjugate transpose. Every attribute is written
//! (absent keys are an error), through the typed forms of [`crate::attrs`].
//!
//! Every kernel checks the entries it reads (all of them, or the triangle named above) and
//! fails with a run-time error naming the op, the operand, the entry and the batch element
//! when one is NaN or infinite: no factorization of such a matrix is meaningful, and NaN is
//! never passed on silently.

use crate::attrs::{Cholesky, EigDistinct, Eigen, FullPivPerm, Lu, Qr, Solve, Svd};
pub use crate::attrs::{
    TriangularSolve, CHOLESKY, EIG, EIGH, EIG_DISTINCT, FULL_PIV_PERM, LU, PRIMITIVES, QR, SOLVE,
    SVD, TRIANGULAR_SOLVE,
};
use tenferro_ir::{DType, ExtensionOp, Op, TensorType};
use tenferro_runtime::{Result, RuntimeError, TracedTensor};

fn invalid(op: &str, msg: String) -> RuntimeError {
    RuntimeError::invalid_op(op, msg)
}

/// Checks that `t` is a (batch of) matrices of a float / complex dtype.
pub(crate) fn matrix_type(op: &str, t: &TracedTensor) -> Result<TensorType> {
    let ty = t.ty()?;
    if ty.rank() < 2 {
        return Err(invalid(
            op,
            format!("operand {ty} must have rank >= 2 (matrices on the first two axes, batch axes after)"),
        ));
    }
    if !ty.dtype.is_float() {
        return Err(invalid(
            op,
            format!("operand {ty} must be f32, f64, c32 or c64"),
        ));
    }
    Ok(ty)
}

/// Checks that `t` is a (batch of) square matrices.
pub(crate) fn square_type(op: &str, t: &TracedTensor) -> Result<TensorType> {
    let ty = matrix_type(op, t)?;
    if ty.shape[0] != ty.shape[1] {
        return Err(invalid(
            op,
            format!(
                "operand {ty} must be a (batch of) square matrices, got {} x {}",
                ty.shape[0], ty.shape[1]
            ),
        ));
    }
    Ok(ty)
}

fn shape_with(head: &[usize], batch: &[usize]) -> Vec<usize> {
    head.iter().chain(batch).copied().collect()
}

fn apply(op: ExtensionOp, args: &[&TracedTensor]) -> Result<Vec<TracedTensor>> {
    let out = TracedTensor::apply(Op::Extension(op), args);
    if let Some(e) = out[0].error() {
        return Err(e);
    }
    Ok(out)
}

/// Applies `linalg.cholesky`: the lower Cholesky factor of the Hermitian positive-definite
/// matrix whose lower triangle is `a`'s.
pub fn cholesky_op(a: &TracedTensor) -> Result<TracedTensor> {
    let ty = square_type("cholesky", a)?;
    Ok(apply(Cholesky.encode(vec![ty]), &[a])?.remove(0))
}

/// Applies `linalg.triangular_solve`.
pub fn triangular_solve_op(
    a: &TracedTensor,
    b: &TracedTensor,
    how: TriangularSolve,
) -> Result<TracedTensor> {
    let ta = square_type("triangular_solve", a)?;
    let tb = matrix_type("triangular_solve", b)?;
    let n = ta.shape[0];
    let k = if how.left { tb.shape[0] } else { tb.shape[1] };
    if k != n || ta.shape[2..] != tb.shape[2..] || ta.dtype != tb.dtype {
        let side = if how.left {
            "rows of B (left side: op(A) X = B)"
        } else {
            "columns of B (right side: X op(A) = B)"
        };
        return Err(invalid(
            "triangular_solve",
            format!("matrix {ta} and right-hand side {tb} do not match: need {side} = {n}, equal batch axes and one dtype"),
        ));
    }
    Ok(apply(how.encode(vec![tb]), &[a, b])?.remove(0))
}

/// Applies `linalg.solve`: `X` with `op(A) X = B` for a square `A` and a matrix `B`
/// (`[n,k,batch..]`).
pub fn solve_op(a: &TracedTensor, b: &TracedTensor, adjoint: bool) -> Result<TracedTensor> {
    let ta = square_type("solve", a)?;
    let tb = matrix_type("solve", b)?;
    if tb.shape[0] != ta.shape[0] || ta.shape[2..] != tb.shape[2..] || ta.dtype != tb.dtype {
        return Err(invalid(
            "solve",
            format!(
                "matrix {ta} and right-hand side {tb} do not match: need B of shape [{}, k{}] and one dtype",
                ta.shape[0],
                ta.shape[2..].iter().map(|d| format!(", {d}")).collect::<String>()
            ),
        ));
    }
    Ok(apply(Solve { adjoint }.encode(vec![tb]), &[a, b])?.remove(0))
}

/// Applies `linalg.lu`: `[P, L, U, sign]` with `A = P L U`, `P` `[m, m]` a permutation,
/// `L` `[m, k]` unit lower trapezoidal, `U` `[k, n]` upper trapezoidal (`k = min(m, n)`),
/// `sign = det(P)` (batch-shaped, dtype of `A`).
pub fn lu_op(a: &TracedTensor) -> Result<Vec<TracedTensor>> {
    let ty = matrix_type("lu", a)?;
    let (m, n) = (ty.shape[0], ty.shape[1]);
    let k = m.min(n);
    let b = &ty.shape[2..];
    let sign = TensorType::new(ty.dtype, b.to_vec());
    apply(
        Lu.encode(vec![
            TensorType::new(ty.dtype, shape_with(&[m, m], b)),
            TensorType::new(ty.dtype, shape_with(&[m, k], b)),
            TensorType::new(ty.dtype, shape_with(&[k, n], b)),
            sign,
        ]),
        &[a],
    )
}

/// Applies `linalg.full_piv_perm` to a (batch of) square matrices `A` `[n, n, batch..]`:
/// `[P, Q, parity]` with `P A Qᵀ` having the complete pivots of Gaussian elimination on its
/// diagonal (each step takes the entry of largest modulus of the remaining block), `P`, `Q`
/// permutation matrices of `A`'s dtype and `parity = det(P) det(Q)` (real dtype,
/// batch-shaped). The results are piecewise constant in `A`: their derivative is zero.
pub fn full_piv_perm_op(a: &TracedTensor) -> Result<Vec<TracedTensor>> {
    let ty = square_type("full_piv_lu", a)?;
    let n = ty.shape[0];
    let b = &ty.shape[2..];
    let perm = TensorType::new(ty.dtype, shape_with(&[n, n], b));
    apply(
        FullPivPerm.encode(vec![
            perm.clone(),
            perm,
            TensorType::new(ty.dtype.real(), b.to_vec()),
        ]),
        &[a],
    )
}

/// Applies `linalg.qr`: reduced `[Q, R]`.
pub fn qr_op(a: &TracedTensor) -> Result<Vec<TracedTensor>> {
    qr_op_with(a, false)
}

/// `linalg.qr`, reduced or (`complete`) with `Q` `[m, m]` and `R` `[m, n]`.
pub fn qr_op_with(a: &TracedTensor, complete: bool) -> Result<Vec<TracedTensor>> {
    let ty = matrix_type(if complete { "qr_complete" } else { "qr" }, a)?;
    let (m, n) = (ty.shape[0], ty.shape[1]);
    let k = if complete { m } else { m.min(n) };
    let b = &ty.shape[2..];
    let op = Qr { complete }.encode(vec![
        TensorType::new(ty.dtype, shape_with(&[m, k], b)),
        TensorType::new(ty.dtype, shape_with(&[k, n], b)),
    ]);
    apply(op, &[a])
}

/// Applies `linalg.svd`: reduced `[U, S, Vh]`, or `[S]` without `compute_uv`.
pub fn svd_op(a: &TracedTensor, compute_uv: bool) -> Result<Vec<TracedTensor>> {
    svd_op_with(a, compute_uv, false, 0.0)
}

/// `linalg.svd` with `keep = k`: the `k` largest singular triplets `[U [m,k], S [k],
/// Vh [k,n]]`, differentiated with the truncated-SVD rule (which couples the kept triplets
/// to the discarded subspace through `A` itself, never through discarded vectors).
pub fn svd_truncated_op(a: &TracedTensor, k: usize) -> Result<Vec<TracedTensor>> {
    let ty = matrix_type("svd_truncated", a)?;
    let (m, n) = (ty.shape[0], ty.shape[1]);
    let r = m.min(n);
    if k == 0 || k > r {
        return Err(invalid(
            "svd_truncated",
            format!("rank k = {k} must be in 1..={r} for operand {ty}"),
        ));
    }
    let b = &ty.shape[2..];
    let results = vec![
        TensorType::new(ty.dtype, shape_with(&[m, k], b)),
        TensorType::new(ty.dtype.real(), shape_with(&[k], b)),
        TensorType::new(ty.dtype, shape_with(&[k, n], b)),
    ];
    let svd = Svd {
        compute_uv: true,
        keep: Some(k),
        ..Svd::default()
    };
    apply(svd.encode(results), &[a])
}

/// `linalg.svd` with its derivative options (they change only the AD rule, not the
/// values): `safe_gaps` makes the singular-vector derivative drop the coupling of two
/// exactly equal singular values (and the `1/s` of an exactly zero one) instead of
/// dividing by zero — what the truncated SVDs and `pinv` use, whose discarded part is
/// often exactly degenerate; `derivative_eps > 0` replaces `1/(s_j² - s_i²)` by
/// `(s_j² - s_i²)/((s_j² - s_i²)² + eps)` and `1/s` by `s/(s² + eps)` (Lorentzian
/// broadening), finite for any spectrum.
pub fn svd_op_with(
    a: &TracedTensor,
    compute_uv: bool,
    safe_gaps: bool,
    derivative_eps: f64,
) -> Result<Vec<TracedTensor>> {
    if !(derivative_eps >= 0.0 && derivative_eps.is_finite()) {
        return Err(invalid(
            "svd",
            format!("derivative_eps must be finite and >= 0, got {derivative_eps}"),
        ));
    }
    let ty = matrix_type(if compute_uv { "svd" } else { "svdvals" }, a)?;
    let (m, n) = (ty.shape[0], ty.shape[1]);
    let k = m.min(n);
    let b = &ty.shape[2..];
    let s = TensorType::new(ty.dtype.real(), shape_with(&[k], b));
    let results = if compute_uv {
        vec![
            TensorType::new(ty.dtype, shape_with(&[m, k], b)),
            s,
            TensorType::new(ty.dtype, shape_with(&[k, n], b)),
        ]
    } else {
        vec![s]
    };
    let svd = Svd {
        compute_uv,
        safe_gaps,
        derivative_eps,
        ..Svd::default()
    };
    apply(svd.encode(results), &[a])
}

/// `linalg.svd` with `full_matrices`: `[U [m,m], S [k], Vh [n,n]]`.
pub fn svd_full_op(a: &TracedTensor) -> Result<Vec<TracedTensor>> {
    let ty = matrix_type("svd_full", a)?;
    let (m, n) = (ty.shape[0], ty.shape[1]);
    let b = &ty.shape[2..];
    let results = vec![
        TensorType::new(ty.dtype, shape_with(&[m, m], b)),
        TensorType::new(ty.dtype.real(), shape_with(&[m.min(n)], b)),
        TensorType::new(ty.dtype, shape_with(&[n, n], b)),
    ];
    let svd = Svd {
        compute_uv: true,
        full_matrices: true,
        ..Svd::default()
    };
    apply(svd.encode(results), &[a])
}

/// Applies `linalg.eigh`: `[W, V]`, or `[W]` without `eigenvectors`.
pub fn eigh_op(a: &TracedTensor, eigenvectors: bool) -> Result<Vec<TracedTensor>> {
    eigh_op_with(a, eigenvectors, 0.0)
}

/// `linalg.eigh` with `derivative_eps > 0`: the eigenvector derivative's `1/(w_j - w_i)`
/// becomes `d/(d² + eps)` (values unchanged).
pub fn eigh_op_with(
    a: &TracedTensor,
    eigenvectors: bool,
    derivative_eps: f64,
) -> Result<Vec<TracedTensor>> {
    let name = if eigenvectors { "eigh" } else { "eigvalsh" };
    if !(derivative_eps >= 0.0 && derivative_eps.is_finite()) {
        return Err(invalid(
            name,
            format!("derivative_eps must be finite and >= 0, got {derivative_eps}"),
        ));
    }
    let ty = square_type(name, a)?;
    let w = TensorType::new(ty.dtype.real(), shape_with(&[ty.shape[0]], &ty.shape[2..]));
    let results = if eigenvectors { vec![w, ty] } else { vec![w] };
    let eigen = Eigen {
        eigenvectors,
        derivative_eps,
    };
    apply(eigen.encode_eigh(results), &[a])
}

/// Applies `linalg.eig`: `[W, V]`, or `[W]` without `eigenvectors`; both complex (c64 for
/// f64 / c64 input, c32 for f32 / c32). `derivative_eps > 0` regularises the
/// eigenvector derivative (see [`crate::TracedTensorLinalgExt::eig_with_options`]).
pub fn eig_op(
    a: &TracedTensor,
    eigenvectors: bool,
    derivative_eps: f64,
) -> Result<Vec<TracedTensor>> {
    let name = if eigenvectors { "eig" } else { "eigvals" };
    if !(derivative_eps >= 0.0 && derivative_eps.is_finite()) {
        return Err(invalid(
            name,
            format!("derivative_eps must be finite and >= 0, got {derivative_eps}"),
        ));
    }
    let ty = square_type(name, a)?;
    let cd = ty.dtype.complex().expect("float dtype checked");
    let w = TensorType::new(cd, shape_with(&[ty.shape[0]], &ty.shape[2..]));
    let results = if eigenvectors {
        vec![w, TensorType::new(cd, ty.shape.clone())]
    } else {
        vec![w]
    };
    let eigen = Eigen {
        eigenvectors,
        derivative_eps,
    };
    apply(eigen.encode_eig(results), &[a])
}

/// Applies `linalg.eig_distinct` to eigenvalues `w` `[n, b..]`.
#[cfg_attr(not(feature = "autodiff"), allow(dead_code))]
pub(crate) fn eig_distinct_op(w: &TracedTensor) -> Result<TracedTensor> {
    let ty = w.ty()?;
    Ok(apply(EigDistinct.encode(vec![ty]), &[w])?.remove(0))
}

/// `true` for a complex dtype.
pub(crate) fn is_complex(d: DType) -> bool {
    d.is_complex()
}
