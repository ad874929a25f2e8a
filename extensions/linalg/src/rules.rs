//! Differentiation rules of the linalg primitives (feature `autodiff`), for
//! `AdContext::builder().with_extension_rules(tenferro_linalg::ad_rules()?)`.
//!
//! Every primitive has a JVP rule built from traced ops (so rules compose to any order);
//! `linalg.triangular_solve` and `linalg.solve`, which appear linearly (in their right-hand
//! side) in tangent programs, also have transpose rules. Conventions (as JAX and PyTorch):
//!
//! - `cholesky` and `eigh` read only the lower triangle but are differentiated as
//!   functions of a Hermitian matrix: the input tangent is replaced by its Hermitian part
//!   `(dA + dAᴴ)/2`, so gradients come out Hermitian (symmetric for reals).
//! - `eigh`: `dW = Re diag(Vᴴ dA V)`, `dV = V (F ∘ Vᴴ dA V)` with
//!   `F[i,j] = 1/(w_j - w_i)` off the diagonal and 0 on it. The zero diagonal fixes the
//!   eigenvector gauge (`Im(vᵢᴴ dvᵢ) = 0`; sign / phase of each vector is whatever the
//!   kernel returned). **Degenerate eigenvalues** make `F` infinite: eigenvector
//!   derivatives are then inf / NaN (the eigenvalue derivatives stay finite), as in JAX and
//!   PyTorch. Losses that depend only on the eigenvalues (`eigvalsh`) never form `F`.
//! - `svd` (reduced): the rule of JAX (`dS = Re diag(Uᴴ dA V)`, `F[i,j] = 1/(s_j² - s_i²)`).
//!   For complex inputs the phase gauge of each singular pair is fixed by putting
//!   `(Uᴴ dA V - (Uᴴ dA V)ᴴ)/2 · diag(1/s)` on the diagonal of `Uᴴ dU` (`Vᴴ dV` has a zero
//!   diagonal), as in the literature (Wan & Zhang 2019; JAX). **Repeated singular values**
//!   make `F` infinite, and zero singular values of rectangular inputs divide by zero
//!   (U / V derivatives inf / NaN); `svdvals` never forms `F`.
//!   Options (attributes): `keep = k` (truncated SVD) adds the coupling of the kept
//!   triplets to the discarded subspace through one solve per triplet (see
//!   `truncated_complement`; exact where `s_k` exceeds the discarded values, however those
//!   repeat); `safe_gaps` drops couplings of exactly equal singular values and `1/0`;
//!   `derivative_eps` broadens `1/d` to `d/(d² + eps)`.
//! - `eig` (general matrices): see the `eig` module (JAX's rule plus the unit-norm,
//!   real-largest-component gauge; repeated eigenvalues are a run-time error of the
//!   eigenvector derivative unless `derivative_eps > 0`).
//! - `qr` and `svd` in complete / `full_matrices` mode: differentiable only where the
//!   result equals the reduced one (`m <= n` for QR, square for SVD); otherwise the rule
//!   returns `NotDifferentiable` (the completing vectors are not unique), as JAX.
//! - `qr`: the rule of JAX; for wide inputs (`m < n`) through `A = [X | Y]` with `X`
//!   square: `dR_Y = dQᴴ Y + Qᴴ dY` (needs the leading `m x m` block full rank). `R` has a
//!   real nonnegative diagonal (the kernel's gauge), which the rule keeps.
//! - `lu`: square or rectangular (JAX's padding, see `LuRule`); `dL = L·tril₋₁(X)`, `dU = triu(X)·U` with `X = L⁻¹ Pᵀ dA U⁻¹`;
//!   `P` and the permutation sign are piecewise constant (zero tangent). `det` and
//!   `slogdet` are built on `lu`, so their derivatives need nonzero pivots: at a matrix
//!   whose LU has a zero pivot (a singular matrix) the derivative program fails at run
//!   time with `linalg.triangular_solve`'s "triangular matrix is singular" error instead
//!   of returning NaN, although `d det = tr(adj(A) dA)` is finite there.

use crate::attrs::{decoded, Eigen, LinalgOp, Qr, Solve, Svd, TriangularSolve};
use crate::ops::{
    eigh_op_with, solve_op, svd_op_with, triangular_solve_op, CHOLESKY, EIGH, LU, QR, SOLVE, SVD,
    TRIANGULAR_SOLVE,
};
use crate::util::{
    adjoint, cast, const_matrix, diag_embed, diag_part, eye_like, hermitian_part, masked, mm, ok,
    re_diag_adjoint_mm, spread, tril, triu,
};
use tenferro_ad::{AdError, ExtensionRule, Result, Rules, TransposeArg};
use tenferro_ir::ExtensionOp;
use tenferro_runtime::TracedTensor;

/// The JVP and transpose rules of every linalg primitive.
pub fn ad_rules() -> Result<Rules> {
    let mut r = Rules::new();
    r.register(CHOLESKY, TrailingBatch(CholeskyRule))?;
    r.register(TRIANGULAR_SOLVE, TrailingBatch(TriangularSolveRule))?;
    r.register(SOLVE, TrailingBatch(SolveRule))?;
    r.register(LU, TrailingBatch(LuRule))?;
    r.register(QR, TrailingBatch(QrRule))?;
    r.register(SVD, TrailingBatch(SvdRule))?;
    r.register(EIGH, TrailingBatch(EighRule))?;
    r.register(crate::ops::EIG, TrailingBatch(crate::eig::rule::EigRule))?;
    r.register(
        crate::ops::EIG_DISTINCT,
        TrailingBatch(crate::eig::rule::EigDistinctRule),
    )?;
    r.register(
        crate::ops::FULL_PIV_PERM,
        TrailingBatch(crate::full_piv::rule::FullPivPermRule),
    )?;
    Ok(r)
}

/// The batching rule (`vmap`) shared by every linalg primitive: operands and results carry
/// their batch axes after their matrix axes, and `vmap` appends its batch axis last, so
/// the batched op is the same op with one more batch axis (unbatched operands are
/// broadcast to it). The differentiation rules are the wrapped rule's.
struct TrailingBatch<R>(R);

impl<R: ExtensionRule> ExtensionRule for TrailingBatch<R> {
    fn jvp(
        &self,
        op: &ExtensionOp,
        inputs: &[TracedTensor],
        outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        self.0.jvp(op, inputs, outputs, tangents)
    }

    fn transpose(
        &self,
        op: &ExtensionOp,
        args: &[TransposeArg],
        cotangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        self.0.transpose(op, args, cotangents)
    }

    fn batch(
        &self,
        op: &ExtensionOp,
        inputs: &[(TracedTensor, bool)],
        batch_size: usize,
    ) -> Result<Vec<TracedTensor>> {
        let args = inputs
            .iter()
            .map(|(t, batched)| {
                if *batched {
                    return Ok(t.clone());
                }
                let mut shape = t.shape()?;
                let dims: Vec<usize> = (0..shape.len()).collect();
                shape.push(batch_size);
                Ok(t.broadcast_in_dim(&shape, &dims)?)
            })
            .collect::<Result<Vec<TracedTensor>>>()?;
        let results = op
            .results
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.shape.push(batch_size);
                r
            })
            .collect();
        let batched = decoded(LinalgOp::decode(op))?.encode(results);
        let refs: Vec<&TracedTensor> = args.iter().collect();
        let outs = TracedTensor::apply(tenferro_ir::Op::Extension(batched), &refs);
        for o in &outs {
            if let Some(e) = o.error() {
                return Err(e.into());
            }
        }
        Ok(outs)
    }
}

/// An error unless the rule of `op` got `n_in` operands and as many tangents.
pub(crate) fn expect_args(
    op: &ExtensionOp,
    n_in: usize,
    inputs: &[TracedTensor],
    tangents: &[Option<TracedTensor>],
) -> Result<()> {
    if inputs.len() != n_in || tangents.len() != n_in {
        return Err(AdError::BadArgument {
            transform: "jvp",
            message: format!(
                "rule of `{}` expects {n_in} operands and tangents, got {} and {}",
                op.name,
                inputs.len(),
                tangents.len()
            ),
        });
    }
    Ok(())
}

/// The eigenvalues and eigenvectors an eigen rule differentiates through: the op's
/// outputs when it computed vectors, else `with_vectors()` (the decomposition again, with
/// vectors).
pub(crate) fn eigen_pair(
    vectors: bool,
    outputs: &[TracedTensor],
    with_vectors: impl FnOnce() -> tenferro_runtime::Result<Vec<TracedTensor>>,
) -> Result<(TracedTensor, TracedTensor)> {
    let full;
    let pair = if vectors {
        outputs
    } else {
        full = with_vectors()?;
        &full
    };
    match pair {
        [w, v, ..] => Ok((w.clone(), v.clone())),
        _ => Err(AdError::BadArgument {
            transform: "jvp",
            message: format!(
                "an eigendecomposition gave {} results, expected values and vectors",
                pair.len()
            ),
        }),
    }
}

fn not_linear(op: &ExtensionOp, what: &str) -> AdError {
    AdError::NotDifferentiable(format!(
        "`{}` is linear only in its right-hand side, not in {what}; cannot transpose",
        op.name
    ))
}

fn is_complex(x: &TracedTensor) -> Result<bool> {
    Ok(x.dtype()?.is_complex())
}

fn sub(a: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    Ok(ok(a - b)?)
}

fn add(a: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    Ok(ok(a + b)?)
}

fn mul(a: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    Ok(ok(a * b)?)
}

/// `L` factor rule: `dL = L Φ(L⁻¹ sym(dA) L⁻ᴴ)`, `Φ` = strict lower part plus half the
/// diagonal.
struct CholeskyRule;

impl ExtensionRule for CholeskyRule {
    fn jvp(
        &self,
        op: &ExtensionOp,
        inputs: &[TracedTensor],
        outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        expect_args(op, 1, inputs, tangents)?;
        let Some(da) = &tangents[0] else {
            return Ok(vec![None]);
        };
        let l = &outputs[0];
        let s = hermitian_part(da)?;
        let y = triangular_solve_op(l, &s, TriangularSolve::default())?;
        let x = triangular_solve_op(
            l,
            &y,
            TriangularSolve {
                left: false,
                adjoint: true,
                ..TriangularSolve::default()
            },
        )?;
        let phi = masked(&x, |i, j| {
            if i > j {
                1.0
            } else if i == j {
                0.5
            } else {
                0.0
            }
        })?;
        Ok(vec![Some(mm(l, &phi)?)])
    }
}

/// `op(A) X = B` (or `X op(A) = B`): `dX` solves the same system with right-hand side
/// `dB - op(dA) X` (or `dB - X op(dA)`), `dA` restricted to the triangle that is read.
struct TriangularSolveRule;

impl ExtensionRule for TriangularSolveRule {
    fn jvp(
        &self,
        op: &ExtensionOp,
        inputs: &[TracedTensor],
        outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        expect_args(op, 2, inputs, tangents)?;
        let how = decoded(TriangularSolve::decode(op))?;
        let (a, x) = (&inputs[0], &outputs[0]);
        let term = match &tangents[0] {
            None => None,
            Some(da) => {
                let da = if how.lower {
                    tril(da, !how.unit_diagonal)?
                } else {
                    triu(da, !how.unit_diagonal)?
                };
                let opda = if how.adjoint { adjoint(&da)? } else { da };
                Some(if how.left {
                    mm(&opda, x)?
                } else {
                    mm(x, &opda)?
                })
            }
        };
        let Some(rhs) = rhs_tangent(&tangents[1], term)? else {
            return Ok(vec![None]);
        };
        Ok(vec![Some(triangular_solve_op(a, &rhs, how)?)])
    }

    fn transpose(
        &self,
        op: &ExtensionOp,
        args: &[TransposeArg],
        cotangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        let a = primal_matrix(op, args, "the triangular matrix")?;
        let Some(ct) = cotangents.first().and_then(|c| c.clone()) else {
            return Ok(vec![None, None]);
        };
        let how = decoded(TriangularSolve::decode(op))?;
        let ct_b = triangular_solve_op(
            a,
            &ct,
            TriangularSolve {
                adjoint: !how.adjoint,
                ..how
            },
        )?;
        Ok(vec![None, Some(ct_b)])
    }
}

/// `op(A) X = B`: `dX = solve(A, dB - op(dA) X)`; transpose in `B`: `solve(A, ct, !adjoint)`.
struct SolveRule;

impl ExtensionRule for SolveRule {
    fn jvp(
        &self,
        op: &ExtensionOp,
        inputs: &[TracedTensor],
        outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        expect_args(op, 2, inputs, tangents)?;
        let adj = decoded(Solve::decode(op))?.adjoint;
        let (a, x) = (&inputs[0], &outputs[0]);
        let term = match &tangents[0] {
            None => None,
            Some(da) => {
                let opda = if adj { adjoint(da)? } else { da.clone() };
                Some(mm(&opda, x)?)
            }
        };
        let Some(rhs) = rhs_tangent(&tangents[1], term)? else {
            return Ok(vec![None]);
        };
        Ok(vec![Some(solve_op(a, &rhs, adj)?)])
    }

    fn transpose(
        &self,
        op: &ExtensionOp,
        args: &[TransposeArg],
        cotangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        let a = primal_matrix(op, args, "the matrix")?;
        let Some(ct) = cotangents.first().and_then(|c| c.clone()) else {
            return Ok(vec![None, None]);
        };
        let adj = decoded(Solve::decode(op))?.adjoint;
        Ok(vec![None, Some(solve_op(a, &ct, !adj)?)])
    }
}

/// `A = P L U`: with `X = L⁻¹ Pᵀ dA U⁻¹`, `dL = L tril₋₁(X)`, `dU = triu(X) U`. A
/// rectangular `A` (`m x n`, `k = min(m, n)`) as JAX: `L` padded to a unit lower `m x m`
/// (identity columns) and `U` to an upper `n x n` (identity rows), then `dL` is the first
/// `k` columns and `dU` the first `k` rows.
struct LuRule;

impl ExtensionRule for LuRule {
    fn jvp(
        &self,
        op: &ExtensionOp,
        inputs: &[TracedTensor],
        outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        expect_args(op, 1, inputs, tangents)?;
        let Some(da) = &tangents[0] else {
            return Ok(vec![None, None, None, None]);
        };
        let (p, l, u) = (&outputs[0], &outputs[1], &outputs[2]);
        let ty = inputs[0].ty()?;
        let (m, n) = (ty.shape[0], ty.shape[1]);
        let k = m.min(n);
        let batch = &ty.shape[2..];
        let lp = if m > k {
            let pad = const_matrix(ty.dtype, m, m - k, batch, |i, j| {
                if i == j + k {
                    1.0
                } else {
                    0.0
                }
            })?;
            TracedTensor::concatenate(&[l, &pad], 1)?
        } else {
            l.clone()
        };
        let up = if n > k {
            let pad = const_matrix(ty.dtype, n - k, n, batch, |i, j| {
                if j == i + k {
                    1.0
                } else {
                    0.0
                }
            })?;
            TracedTensor::concatenate(&[u, &pad], 0)?
        } else {
            u.clone()
        };
        let ptda = mm(&p.t()?, da)?;
        let y = triangular_solve_op(
            &lp,
            &ptda,
            TriangularSolve {
                unit_diagonal: true,
                ..TriangularSolve::default()
            },
        )?;
        let x = triangular_solve_op(
            &up,
            &y,
            TriangularSolve {
                lower: false,
                left: false,
                ..TriangularSolve::default()
            },
        )?;
        let mut dl = mm(&lp, &tril(&x, false)?)?;
        let mut du = mm(&triu(&x, true)?, &up)?;
        if m < n {
            dl = slice_to(&dl, 1, k)?;
        }
        if m > n {
            du = slice_to(&du, 0, k)?;
        }
        Ok(vec![None, Some(dl), Some(du), None])
    }
}

/// The first `len` entries of matrix axis `axis`.
fn slice_to(x: &TracedTensor, axis: usize, len: usize) -> Result<TracedTensor> {
    let shape = x.shape()?;
    let mut lim = shape.clone();
    lim[axis] = len;
    Ok(x.slice(&vec![0; shape.len()], &lim)?)
}

/// Reduced QR (JAX's rule); wide matrices `m < n` by the split `A = [X | Y]`, `X`
/// `m x m`: `(Q, R_X)` is the QR of `X` and `R_Y = Qᴴ Y`, so `dR_Y = dQᴴ Y + Qᴴ dY`.
struct QrRule;

/// `(dQ, dR)` of the reduced QR of a tall or square matrix (`m >= n`).
fn qr_tall_jvp(
    q: &TracedTensor,
    r: &TracedTensor,
    da: &TracedTensor,
) -> Result<(TracedTensor, TracedTensor)> {
    // dx_rinv = dA R⁻¹, qt = Qᴴ dA R⁻¹.
    let dx_rinv = triangular_solve_op(
        r,
        da,
        TriangularSolve {
            lower: false,
            left: false,
            ..TriangularSolve::default()
        },
    )?;
    let qt = mm(&adjoint(q)?, &dx_rinv)?;
    let low = tril(&qt, false)?;
    let mut dom = sub(&low, &adjoint(&low)?)?;
    if is_complex(&qt)? {
        // Keep diag(R) real: add i·Im(diag(qt)) to the skew-Hermitian part.
        let im = ok(&(&qt - &qt.conj()) * 0.5)?;
        dom = add(&dom, &masked(&im, |i, j| if i == j { 1.0 } else { 0.0 })?)?;
    }
    let dq = add(&mm(q, &sub(&dom, &qt)?)?, &dx_rinv)?;
    let dr = mm(&sub(&qt, &dom)?, r)?;
    Ok((dq, dr))
}

/// Columns `lo..hi` of a matrix (batch axes kept).
fn columns(x: &TracedTensor, lo: usize, hi: usize) -> Result<TracedTensor> {
    let shape = x.shape()?;
    let mut start = vec![0; shape.len()];
    let mut lim = shape.clone();
    start[1] = lo;
    lim[1] = hi;
    Ok(x.slice(&start, &lim)?)
}

impl ExtensionRule for QrRule {
    fn jvp(
        &self,
        op: &ExtensionOp,
        inputs: &[TracedTensor],
        outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        expect_args(op, 1, inputs, tangents)?;
        let Some(da) = &tangents[0] else {
            return Ok(vec![None, None]);
        };
        let shape = inputs[0].shape()?;
        let (m, n) = (shape[0], shape[1]);
        let (q, r) = (&outputs[0], &outputs[1]);
        if decoded(Qr::decode(op))?.complete && m > n {
            return Err(AdError::NotDifferentiable(format!(
                "`linalg.qr` in complete mode of a tall matrix ({m} x {n}) has no derivative: the last {} columns of Q are any orthonormal basis of the complement (not unique); differentiate the reduced QR instead",
                m - n
            )));
        }
        if m >= n {
            let (dq, dr) = qr_tall_jvp(q, r, da)?;
            return Ok(vec![Some(dq), Some(dr)]);
        }
        let (dq, drx) = qr_tall_jvp(q, &columns(r, 0, m)?, &columns(da, 0, m)?)?;
        let y = columns(&inputs[0], m, n)?;
        let dy = columns(da, m, n)?;
        let dry = add(&mm(&adjoint(&dq)?, &y)?, &mm(&adjoint(q)?, &dy)?)?;
        let dr = TracedTensor::concatenate(&[&drx, &dry], 1)?;
        Ok(vec![Some(dq), Some(dr)])
    }
}

/// `1/x` where `x != 0`, 0 where `x == 0` (real dtype), written so it stays finite.
fn safe_reciprocal(x: &TracedTensor) -> Result<TracedTensor> {
    let zero = TracedTensor::zeros(&x.ty()?);
    let z = cast(&x.equal(&zero), x.dtype()?)?;
    Ok(ok(&(1.0 / &(x + &z)) - &z)?)
}

/// Reduced SVD (JAX's rule; see the module doc for gauge and degeneracy).
struct SvdRule;

impl ExtensionRule for SvdRule {
    fn jvp(
        &self,
        op: &ExtensionOp,
        inputs: &[TracedTensor],
        outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        expect_args(op, 1, inputs, tangents)?;
        let attrs = decoded(Svd::decode(op))?;
        let compute_uv = attrs.compute_uv;
        if attrs.full_matrices {
            let sh = inputs[0].shape()?;
            if sh[0] != sh[1] {
                return Err(AdError::NotDifferentiable(format!(
                    "`linalg.svd` with full_matrices of a non-square matrix ({} x {}) has no derivative: the extra singular vectors are any orthonormal basis of the complement (not unique); differentiate the reduced SVD instead",
                    sh[0], sh[1]
                )));
            }
        }
        let (safe, eps) = (attrs.safe_gaps, attrs.derivative_eps);
        let Some(da) = &tangents[0] else {
            return Ok(vec![None; outputs.len()]);
        };
        let a = &inputs[0];
        let full;
        let (u, s, vh) = if compute_uv {
            (&outputs[0], &outputs[1], &outputs[2])
        } else {
            full = svd_op_with(a, true, safe, eps)?;
            (&full[0], &full[1], &full[2])
        };
        let dtype = a.dtype()?;
        let v = adjoint(vh)?;
        let ut = adjoint(u)?;
        let dav = mm(da, &v)?;
        if !compute_uv {
            return Ok(vec![Some(re_diag_adjoint_mm(u, &dav)?)]);
        }
        let ds_mat = mm(&ut, &dav)?;
        let ds = ok(diag_part(&ds_mat)?.real())?;
        let k = s.shape()?[0];
        let sty = s.ty()?;
        let kk: Vec<usize> = [k, k].iter().chain(&sty.shape[1..]).copied().collect();
        let s_j = spread(s, &kk, 1)?; // s_j at [i, j]
        let s_i = spread(s, &kk, 0)?; // s_i at [i, j]
        let diffs = mul(&add(&s_j, &s_i)?, &sub(&s_j, &s_i)?)?;
        let eye_r = const_matrix(sty.dtype, k, k, &sty.shape[1..], |i, j| {
            if i == j {
                1.0
            } else {
                0.0
            }
        })?;
        let f = if eps > 0.0 {
            // Lorentzian broadening: d / (d² + eps) (0 on the diagonal, where d = 0).
            ok(&diffs / &ok(&mul(&diffs, &diffs)? + eps)?)?
        } else if safe {
            // 0 where s_i == s_j exactly (the diagonal included), 1/d elsewhere.
            let z = cast(&diffs.equal(&TracedTensor::zeros(&diffs.ty()?)), sty.dtype)?;
            ok(&ok(1.0 - &z)? / &add(&diffs, &z)?)?
        } else {
            sub(&ok(1.0 / &add(&diffs, &eye_r)?)?, &eye_r)?
        };
        let f = cast(&f, dtype)?;
        // 1/s as the options say (used where it multiplies singular-vector terms).
        let recip = |s: &TracedTensor| -> Result<TracedTensor> {
            if eps > 0.0 {
                Ok(ok(s / &ok(&mul(s, s)? + eps)?)?)
            } else {
                safe_reciprocal(s)
            }
        };
        let s_jc = cast(&s_j, dtype)?;
        let s_ic = cast(&s_i, dtype)?;
        let dss = mul(&ds_mat, &s_jc)?;
        let sds = mul(&s_ic, &ds_mat)?;
        let mut du_inner = mul(&f, &add(&dss, &adjoint(&dss)?)?)?;
        if dtype.is_complex() {
            let s_inv = cast(&diag_embed(&recip(s)?)?, dtype)?;
            let skew = ok(&sub(&ds_mat, &adjoint(&ds_mat)?)? * 0.5)?;
            du_inner = add(&du_inner, &mul(&skew, &s_inv)?)?;
        }
        let mut du = mm(u, &du_inner)?;
        let mut dv = mm(&v, &mul(&f, &add(&sds, &adjoint(&sds)?)?)?)?;
        if attrs.keep.is_some() {
            let (cu, cv) = truncated_complement(a, da, u, s, vh)?;
            du = add(&du, &cu)?;
            dv = add(&dv, &cv)?;
            return Ok(vec![Some(du), Some(ds), Some(adjoint(&dv)?)]);
        }
        let shape = a.shape()?;
        let (m, n) = (shape[0], shape[1]);
        if m > n || n > m {
            let inv_s = if safe || eps > 0.0 {
                cast(&recip(s)?, dtype)?
            } else {
                cast(&ok(1.0 / s)?, dtype)?
            };
            if m > n {
                let perp = sub(&dav, &mm(u, &mm(&ut, &dav)?)?)?;
                let sh = perp.shape()?;
                du = add(&du, &mul(&perp, &spread(&inv_s, &sh, 1)?)?)?;
            } else {
                let dahu = mm(&adjoint(da)?, u)?;
                let perp = sub(&dahu, &mm(&v, &mm(vh, &dahu)?)?)?;
                let sh = perp.shape()?;
                dv = add(&dv, &mul(&perp, &spread(&inv_s, &sh, 1)?)?)?;
            }
        }
        Ok(vec![Some(du), Some(ds), Some(adjoint(&dv)?)])
    }
}

/// The part of `dU`, `dV` of a truncated SVD `A ≈ U diag(s) Vh` (k kept triplets) that
/// lies outside the kept subspaces: column `j` of `dU` gets
/// `Q (s_j² I − A_D A_Dᴴ)⁻¹ Q (dA v_j s_j + A dAᴴ u_j)` with `Q = I − U Uᴴ` and the
/// discarded part `A_D = A − U diag(s) Vh` (so `Q A Aᴴ Q = A_D A_Dᴴ`), and `dV` likewise
/// with `Aᴴ`. This equals the full-SVD rule's sum over discarded triplets and the
/// orthogonal complement, but needs no discarded singular vector, so it is smooth (to any
/// order) wherever `s_k` is above the discarded singular values, even when those are
/// repeated or zero. One `[m, m]` (and `[n, n]`) solve per kept triplet.
fn truncated_complement(
    a: &TracedTensor,
    da: &TracedTensor,
    u: &TracedTensor,
    s: &TracedTensor,
    vh: &TracedTensor,
) -> Result<(TracedTensor, TracedTensor)> {
    let dtype = a.dtype()?;
    let v = adjoint(vh)?;
    let sc = cast(s, dtype)?;
    let ush = u.shape()?;
    let us = mul(u, &spread(&sc, &ush, 1)?)?; // U diag(s)
    let vsh = v.shape()?;
    let vs = mul(&v, &spread(&sc, &vsh, 1)?)?; // V diag(s)
    let a_d = sub(a, &mm(&us, vh)?)?;
    let ru = add(&mm(da, &vs)?, &mm(a, &mm(&adjoint(da)?, u)?)?)?;
    let rv = add(&mm(&adjoint(da)?, &us)?, &mm(&adjoint(a)?, &mm(da, &v)?)?)?;
    let cu = complement_solve(&mm(&a_d, &adjoint(&a_d)?)?, u, s, &ru)?;
    let cv = complement_solve(&mm(&adjoint(&a_d)?, &a_d)?, &v, s, &rv)?;
    Ok((cu, cv))
}

/// Column `j`: `Q (s_j² I − G)⁻¹ Q r_j` with `Q = I − W Wᴴ` (`W` `[p, k, b..]`, `G`
/// `[p, p, b..]`), batched over `j` as an extra batch axis of one `linalg.solve`.
fn complement_solve(
    g: &TracedTensor,
    w: &TracedTensor,
    s: &TracedTensor,
    r: &TracedTensor,
) -> Result<TracedTensor> {
    let wsh = w.shape()?;
    let (p, k) = (wsh[0], wsh[1]);
    let batch = &wsh[2..];
    let nb = batch.len();
    let dtype = g.dtype()?;
    let proj =
        |x: &TracedTensor| -> Result<TracedTensor> { sub(x, &mm(w, &mm(&adjoint(w)?, x)?)?) };
    // [p, p, k, b..]: s_j² I − G.
    let big: Vec<usize> = [p, p, k].iter().chain(batch).copied().collect();
    let rest: Vec<usize> = (3..3 + nb).collect();
    let gdims: Vec<usize> = [0, 1].iter().copied().chain(rest.iter().copied()).collect();
    let sdims: Vec<usize> = std::iter::once(2).chain(rest.iter().copied()).collect();
    let gb = g.broadcast_in_dim(&big, &gdims)?;
    let s2 = cast(&mul(s, s)?, dtype)?.broadcast_in_dim(&big, &sdims)?;
    let eye = const_matrix(dtype, p, p, &[], |i, j| if i == j { 1.0 } else { 0.0 })?
        .broadcast_in_dim(&big, &[0, 1])?;
    let m = sub(&mul(&s2, &eye)?, &gb)?;
    let rhs = proj(r)?; // [p, k, b..]
    let rshape: Vec<usize> = [p, 1, k].iter().chain(batch).copied().collect();
    let x = solve_op(&m, &rhs.reshape(&rshape)?, false)?;
    proj(&x.reshape(&wsh)?)
}

/// Hermitian eigen-decomposition (see the module doc for the gauge and degeneracy).
struct EighRule;

impl ExtensionRule for EighRule {
    fn jvp(
        &self,
        op: &ExtensionOp,
        inputs: &[TracedTensor],
        outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        expect_args(op, 1, inputs, tangents)?;
        let Eigen {
            eigenvectors: vectors,
            derivative_eps: eps,
        } = decoded(Eigen::decode_eigh(op))?;
        let Some(da) = &tangents[0] else {
            return Ok(vec![None; outputs.len()]);
        };
        let a = &inputs[0];
        let (w, v) = eigen_pair(vectors, outputs, || eigh_op_with(a, true, eps))?;
        let (w, v) = (&w, &v);
        let dtype = a.dtype()?;
        let hv = mm(&hermitian_part(da)?, v)?;
        if !vectors {
            return Ok(vec![Some(re_diag_adjoint_mm(v, &hv)?)]);
        }
        let vdv = mm(&adjoint(v)?, &hv)?;
        let dw = ok(diag_part(&vdv)?.real())?;
        let wty = w.ty()?;
        let n = wty.shape[0];
        let nn: Vec<usize> = [n, n].iter().chain(&wty.shape[1..]).copied().collect();
        let gap = sub(&spread(w, &nn, 1)?, &spread(w, &nn, 0)?)?; // w_j - w_i
        let f = if eps > 0.0 {
            // Lorentzian broadening d / (d² + eps) (0 on the diagonal).
            ok(&gap / &ok(&mul(&gap, &gap)? + eps)?)?
        } else {
            let eye_r = eye_like(&gap)?;
            sub(&ok(1.0 / &add(&gap, &eye_r)?)?, &eye_r)?
        };
        let f = cast(&f, dtype)?;
        let dv = mm(v, &mul(&f, &vdv)?)?;
        Ok(vec![Some(dw), Some(dv)])
    }
}

/// Tangent of the right-hand side of `op(A) X = B`: `dB - term` (where `term` is the
/// `dA` contribution), or None when both are symbolic zeros.
fn rhs_tangent(
    db: &Option<TracedTensor>,
    term: Option<TracedTensor>,
) -> Result<Option<TracedTensor>> {
    Ok(match (db, term) {
        (None, None) => None,
        (Some(db), None) => Some(db.clone()),
        (None, Some(t)) => Some(ok(-&t)?),
        (Some(db), Some(t)) => Some(sub(db, &t)?),
    })
}

/// The matrix operand of a solve, which must be primal (the op is linear only in its
/// right-hand side).
fn primal_matrix<'a>(
    op: &ExtensionOp,
    args: &'a [TransposeArg],
    what: &str,
) -> Result<&'a TracedTensor> {
    match args.first() {
        Some(TransposeArg::Primal(a)) => Ok(a),
        _ => Err(not_linear(op, what)),
    }
}
