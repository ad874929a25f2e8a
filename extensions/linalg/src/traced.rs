//! [`TracedTensorLinalgExt`]: the linalg methods of `TracedTensor`. Matrices are the first
//! two axes and batch axes follow (column-major, as the rest of tenferro). Shape and dtype
//! errors are returned at trace time and name the op and the shapes; value errors
//! (indefinite, singular, and NaN or infinity in an entry an op reads) come from the
//! kernels at run time.

use crate::full_piv::FullPivLu;
use crate::norm::{self, MatrixNorm, NormOrd};
use crate::ops::{
    cholesky_op, eigh_op, lu_op, qr_op, solve_op, square_type, svd_op, triangular_solve_op,
    TriangularSolve,
};
use crate::spectral::{self, Lstsq};
use crate::util::{cast, diag_part, eye_like, ok};
use crate::{eig, expm, full_piv, lu};
use std::panic::Location;
use tenferro_runtime::{Result, RuntimeError, TracedTensor};

/// `f()` with its errors reported at `at`, the user's call of a linalg method
/// ([`RuntimeError::at_caller`]): an op traced here names the user's line, not this file's.
fn reported_at<T>(at: &Location<'_>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    f().map_err(|e| e.at_caller(file!(), at))
}

/// Linear algebra on traced (batches of) matrices, for f32, f64, c32 and c64.
pub trait TracedTensorLinalgExt {
    /// Lower Cholesky factor `L` with `A = L Lᴴ`. Reads only the lower triangle of `A`
    /// (taken as Hermitian); the upper triangle of `L` is zero. Run-time error if `A` is
    /// not positive definite.
    fn cholesky(&self) -> Result<TracedTensor>;
    /// Solves a triangular system with this (square) matrix: `op(A) X = B` or
    /// `X op(A) = B`, as `how` says. Only the named triangle of `A` is read.
    fn triangular_solve(&self, b: &TracedTensor, how: TriangularSolve) -> Result<TracedTensor>;
    /// `X = A⁻¹ B` for square `A`; `b` is `[n, k, batch..]` or a vector `[n, batch..]`.
    /// Run-time error if `A` is singular.
    fn solve(&self, b: &TracedTensor) -> Result<TracedTensor>;
    /// `A⁻¹` (run-time error if singular).
    fn inv(&self) -> Result<TracedTensor>;
    /// Determinant (shape: the batch axes), via LU: the product of `U`'s diagonal times
    /// the permutation's sign, so exactly 0 for a matrix whose LU has a zero pivot. Its
    /// derivative at such a matrix is a run-time error (see [`crate::ad_rules`]).
    fn det(&self) -> Result<TracedTensor>;
    /// `(sign, log|det|)`: the sign (a unit complex number for complex dtypes) and the
    /// log of the absolute determinant (real dtype); `(0, -inf)` for a matrix whose LU
    /// has a zero pivot.
    fn slogdet(&self) -> Result<(TracedTensor, TracedTensor)>;
    /// Reduced QR: `Q` `[m, k]` with orthonormal columns and `R` `[k, n]` upper
    /// triangular with a real, nonnegative diagonal; `k = min(m, n)`.
    fn qr(&self) -> Result<(TracedTensor, TracedTensor)>;
    /// Reduced SVD `(U, S, Vh)` with `A = U diag(S) Vh`; `S` real, descending. Matrices
    /// with entries far from order one (1e300, 1e-300) are factored scaled by a power of
    /// two, so the SVD of `c·A` is `c` times that of `A`.
    fn svd(&self) -> Result<(TracedTensor, TracedTensor, TracedTensor)>;
    /// Singular values (real, descending).
    fn svdvals(&self) -> Result<TracedTensor>;
    /// Eigen-decomposition `(W, V)` of a Hermitian matrix given by its lower triangle:
    /// `A = V diag(W) Vᴴ`, `W` real ascending.
    fn eigh(&self) -> Result<(TracedTensor, TracedTensor)>;
    /// Eigenvalues of a Hermitian matrix given by its lower triangle (real, ascending).
    fn eigvalsh(&self) -> Result<TracedTensor>;
    /// LU with partial pivoting: `(P, L, U)` with `A = P L U`, `P` `[m, m]` a
    /// permutation matrix, `L` `[m, k]` unit lower and `U` `[k, n]` upper trapezoidal,
    /// `k = min(m, n)` (square `A`: triangular; rectangular `A` as `scipy.linalg.lu`). Defined for singular
    /// matrices too (as LAPACK's `getrf`): a column with no nonzero pivot candidate is not
    /// eliminated (its multipliers are 0) and leaves a zero on `U`'s diagonal.
    fn lu(&self) -> Result<(TracedTensor, TracedTensor, TracedTensor)>;
    /// Vector norm over `axes` (all axes if empty), as `torch.linalg.vector_norm`:
    /// `ord` any `p` (`(Σ|x|^p)^(1/p)`), `0` (number of nonzero entries), `inf` / `-inf`
    /// (max / min magnitude). Real result (the real dtype of a complex operand; integers
    /// become f64). Derivative at zero: the subgradient 0, never NaN (see [`crate::norm`]
    /// module docs in the source: `d‖x‖ = 0` at `x = 0`, as PyTorch and unlike JAX).
    fn vector_norm(&self, ord: f64, axes: &[isize], keepdims: bool) -> Result<TracedTensor>;
    /// Matrix norm over the matrix axes (0, 1), batched over the rest, as
    /// `torch.linalg.matrix_norm`; `keepdims` keeps the two axes with length 1. The
    /// nuclear and ±2 norms use the singular values. Zero matrix: value 0, derivative 0.
    fn matrix_norm(&self, ord: MatrixNorm, keepdims: bool) -> Result<TracedTensor>;
    /// `numpy.linalg.norm(x, ord, axis, keepdims)`: with `axes = None` and `ord = None`,
    /// the 2-norm of all entries; with `axes = None` and an `ord`, `x` must be a vector or
    /// a matrix. One axis: [`Self::vector_norm`]; two axes: [`Self::matrix_norm`] over
    /// those axes (`P(±1 | ±2 | ±inf)`, `Fro`, `Nuc`; default `Fro`).
    fn norm(
        &self,
        ord: Option<NormOrd>,
        axes: Option<&[isize]>,
        keepdims: bool,
    ) -> Result<TracedTensor>;
    /// The `k` largest singular triplets `(U [m,k], S [k], Vh [k,n])` (`1 <= k <=
    /// min(m, n)`, fixed at trace time). Derivative: the truncated-SVD adjoint including
    /// the coupling to the discarded subspace; exactly equal singular values (e.g. the
    /// zeros of a rank-deficient matrix) are never divided by (see the `spectral` module).
    fn svd_truncated(&self, k: usize) -> Result<(TracedTensor, TracedTensor, TracedTensor)>;
    /// Truncation by tolerance: `(U, S, Vh, rank)` with the full reduced factors, `S`
    /// zeroed where `s_i <= rtol · s_0` (so `U diag(S) Vh` is the truncated matrix) and the
    /// i64 `rank` per batch element. Shapes are static, so the rank cannot shorten the
    /// factors; derivatives as [`Self::svd_truncated`].
    fn svd_rtol(
        &self,
        rtol: f64,
    ) -> Result<(TracedTensor, TracedTensor, TracedTensor, TracedTensor)>;
    /// Reduced SVD whose singular-vector derivative is regularised: `1/(s_j² − s_i²)`
    /// becomes `(s_j² − s_i²)/((s_j² − s_i²)² + eps)` and `1/s` becomes `s/(s² + eps)`
    /// (Lorentzian broadening), finite for degenerate spectra; values are unchanged, and
    /// `eps = 0` is exact except that exactly equal singular values are not coupled.
    fn svd_with_options(
        &self,
        derivative_eps: f64,
    ) -> Result<(TracedTensor, TracedTensor, TracedTensor)>;
    /// Moore–Penrose pseudo-inverse `V diag(s⁺) Uᴴ`, `s⁺ = 1/s` for `s > rtol · s₀`
    /// and 0 otherwise; `rtol` defaults to `max(m, n) · ε` (NumPy). Differentiable
    /// where the rank is locally constant (the derivative includes the null-space terms).
    fn pinv(&self, rtol: Option<f64>) -> Result<TracedTensor>;
    /// `pinv(Some(rtol))` under upstream tenferro's name; a negative or non-finite
    /// `rtol` is an error naming `pinv`.
    #[track_caller]
    fn pinv_with_rtol(&self, rtol: f64) -> Result<TracedTensor> {
        self.pinv(Some(rtol))
    }
    /// Least squares `min ‖A X − B‖` by SVD, minimum-norm for rank-deficient `A`
    /// (`numpy.linalg.lstsq`; `rcond` defaults to `max(m, n) · ε`): solution, residuals,
    /// rank, singular values (see [`crate::Lstsq`]). `b` is `[m, k, batch..]` or
    /// `[m, batch..]`; mixed dtypes are promoted. Differentiable where the rank is
    /// locally constant.
    fn lstsq(&self, b: &TracedTensor, rcond: Option<f64>) -> Result<Lstsq<TracedTensor>>;
    /// [`Self::lu`] plus the permutation's parity `det(P) = ±1` (dtype of `A`, shape the
    /// batch axes), as upstream's `lu() -> (P, L, U, parity)`.
    fn lu_with_parity(&self) -> Result<(TracedTensor, TracedTensor, TracedTensor, TracedTensor)>;
    /// Packed LU `(LU, perm)`: `LU` holds `L`'s strict lower triangle (unit diagonal
    /// implied) and `U`; `perm` (i64 `[n, batch..]`) says `A[perm[i], :] = (L U)[i, :]`
    /// (a permutation vector, not LAPACK's sequence of pivot swaps).
    fn lu_factor(&self) -> Result<(TracedTensor, TracedTensor)>;
    /// Solves `A X = B` with `(self, perm)` from [`Self::lu_factor`]; `b` is
    /// `[n, k, batch..]` or `[n, batch..]`; dtypes are promoted. Differentiable in the
    /// factor and in `b`.
    fn lu_solve(&self, perm: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor>;
    /// LU with complete pivoting (upstream tenferro's `full_piv_lu`, Eigen's
    /// `FullPivLU`) of a square `A`: `(P, L, U, Q, parity)` with `P A Qᵀ = L U`; each
    /// elimination step takes the entry of largest modulus of the remaining block as the
    /// pivot. `P`, `Q` permutation matrices, `L` unit lower and `U` upper triangular (dtype
    /// of `A`), `parity = det(P) det(Q)` (real dtype, shape the batch axes). Defined for
    /// singular matrices (`U` then ends in zero rows). Differentiable in `A` through
    /// `L` and `U` (the permutations are piecewise constant).
    fn full_piv_lu(&self) -> Result<FullPivLu<TracedTensor>>;
    /// `X = A⁻¹ B` through [`Self::full_piv_lu`] (`X = Qᵀ U⁻¹ L⁻¹ P B`); `b` is
    /// `[n, k, batch..]` or `[n, batch..]`; dtypes are promoted. Run-time error if `A` is
    /// singular. Differentiable in `A` and `b`.
    fn full_piv_lu_solve(&self, b: &TracedTensor) -> Result<TracedTensor>;
    /// Solves `A X = B` given this lower Cholesky factor `L` of `A = L Lᴴ` (only its
    /// lower triangle is read): two triangular solves, differentiable in `L` and `b`;
    /// `b` is `[n, k, batch..]` or `[n, batch..]`; dtypes are promoted.
    fn cho_solve(&self, b: &TracedTensor) -> Result<TracedTensor>;
    /// Eigendecomposition `(W, V)` of a general square matrix (real or complex): `A V =
    /// V diag(W)`, both complex (`W` `[n, batch..]`, `V` `[n, n, batch..]`), unordered.
    /// Gauge: unit-norm eigenvectors whose largest-modulus component is real and
    /// positive. The eigenvector derivative at repeated eigenvalues is a run-time error
    /// (see [`Self::eig_with_options`] and the `eig` module docs in the source).
    fn eig(&self) -> Result<(TracedTensor, TracedTensor)>;
    /// Complete QR (`numpy.linalg.qr(mode="complete")`): `Q` `[m, m]` unitary and `R`
    /// `[m, n]` upper triangular (rows `min(m, n)..` zero), real nonnegative diagonal.
    /// Differentiable for `m <= n` (then equal to [`Self::qr`]); for `m > n` the last
    /// columns of `Q` are not unique and differentiating is an error.
    fn qr_complete(&self) -> Result<(TracedTensor, TracedTensor)>;
    /// SVD with full matrices (`numpy.linalg.svd(full_matrices=True)`): `U` `[m, m]`,
    /// `S` `[min(m, n)]`, `Vh` `[n, n]`, `A = U[:, :k] diag(S) Vh[:k, :]`. Differentiable
    /// for square `A` (then equal to [`Self::svd`]); otherwise differentiating is an error.
    fn svd_full(&self) -> Result<(TracedTensor, TracedTensor, TracedTensor)>;
    /// [`Self::eigh`] whose eigenvector derivative is regularised: `1/(w_j − w_i)` becomes
    /// `d/(d² + eps)`, `d = w_j − w_i` (Lorentzian broadening), finite for degenerate
    /// spectra; values are unchanged; `derivative_eps = 0` is [`Self::eigh`].
    fn eigh_with_options(&self, derivative_eps: f64) -> Result<(TracedTensor, TracedTensor)>;
    /// Eigenvalues of a general square matrix (complex, `[n, batch..]`), as [`Self::eig`].
    fn eigvals(&self) -> Result<TracedTensor>;
    /// [`Self::eig`] whose eigenvector derivative is regularised: `1/(w_j − w_i)` becomes
    /// `conj(d)/(|d|² + eps)` with `d = w_j − w_i`, finite for repeated eigenvalues;
    /// values are unchanged. `derivative_eps = 0` is [`Self::eig`].
    fn eig_with_options(&self, derivative_eps: f64) -> Result<(TracedTensor, TracedTensor)>;
    /// Matrix exponential of a square matrix (batched), by scaling and squaring with the
    /// `[13/13]` Padé approximant written as traced ops, so derivatives of any order
    /// compose. The scaling exponent is computed in the graph; a non-constant input gets
    /// up to [`crate::EXPM_MAX_SQUARINGS`] squarings (full accuracy for `‖A‖₁ <= 5.6e6`).
    fn expm(&self) -> Result<TracedTensor>;
}

/// Both operands converted to their promoted dtype (the core's rule: f32 with f64 is f64,
/// real with complex is complex), when both are float / complex; others are left for the
/// op's own dtype check.
fn promoted(a: &TracedTensor, b: &TracedTensor) -> Result<(TracedTensor, TracedTensor)> {
    let (da, db) = (a.dtype()?, b.dtype()?);
    if da == db || !da.is_float() || !db.is_float() {
        return Ok((a.clone(), b.clone()));
    }
    let d = tenferro_runtime::ops::promote(da, db);
    Ok((cast(a, d)?, cast(b, d)?))
}

impl TracedTensorLinalgExt for TracedTensor {
    #[track_caller]
    fn cholesky(&self) -> Result<TracedTensor> {
        reported_at(Location::caller(), || cholesky_op(self))
    }

    #[track_caller]
    fn triangular_solve(&self, b: &TracedTensor, how: TriangularSolve) -> Result<TracedTensor> {
        reported_at(Location::caller(), || {
            let (a, b) = promoted(self, b)?;
            triangular_solve_op(&a, &b, how)
        })
    }

    #[track_caller]
    fn solve(&self, b: &TracedTensor) -> Result<TracedTensor> {
        reported_at(Location::caller(), || {
            let (a, b) = promoted(self, b)?;
            let (a, b) = (&a, &b);
            let ta = square_type("solve", a)?;
            let tb = b.ty()?;
            if tb.rank() + 1 == ta.rank() {
                // A vector right-hand side [n, batch..].
                if tb.shape[0] != ta.shape[0] || tb.shape[1..] != ta.shape[2..] {
                    return Err(RuntimeError::invalid_op(
                        "solve",
                        format!("matrix {ta} and right-hand side {tb} do not match: need B of shape [{}, k, batch..] or [{}, batch..] with the batch axes {:?}", ta.shape[0], ta.shape[0], &ta.shape[2..]),
                    ));
                }
                let mut s = vec![tb.shape[0], 1];
                s.extend_from_slice(&tb.shape[1..]);
                let x = solve_op(a, &b.reshape(&s)?, false)?;
                return x.reshape(&tb.shape);
            }
            solve_op(a, b, false)
        })
    }

    #[track_caller]
    fn inv(&self) -> Result<TracedTensor> {
        reported_at(Location::caller(), || {
            square_type("inv", self)?;
            solve_op(self, &eye_like(self)?, false)
        })
    }

    #[track_caller]
    fn det(&self) -> Result<TracedTensor> {
        reported_at(Location::caller(), || {
            square_type("det", self)?;
            let f = lu_op(self)?;
            let d = diag_part(&f[2])?.reduce_prod(&[0]);
            ok(&f[3] * &d)
        })
    }

    #[track_caller]
    fn slogdet(&self) -> Result<(TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor)> {
                let ty = square_type("slogdet", self)?;
                let f = lu_op(self)?;
                let d = diag_part(&f[2])?;
                let logabs = ok(d.abs().log().reduce_sum(&[0]))?;
                let sign = ok(&f[3] * &cast(&d.sign(), ty.dtype)?.reduce_prod(&[0]))?;
                Ok((sign, logabs))
            },
        )
    }

    #[track_caller]
    fn qr(&self) -> Result<(TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor)> {
                let mut f = qr_op(self)?;
                let r = f.pop().expect("two results");
                let q = f.pop().expect("two results");
                Ok((q, r))
            },
        )
    }

    #[track_caller]
    fn svd(&self) -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
                let mut f = svd_op(self, true)?;
                let vh = f.pop().expect("three results");
                let s = f.pop().expect("three results");
                let u = f.pop().expect("three results");
                Ok((u, s, vh))
            },
        )
    }

    #[track_caller]
    fn svdvals(&self) -> Result<TracedTensor> {
        reported_at(Location::caller(), || Ok(svd_op(self, false)?.remove(0)))
    }

    #[track_caller]
    fn eigh(&self) -> Result<(TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor)> {
                let mut f = eigh_op(self, true)?;
                let v = f.pop().expect("two results");
                let w = f.pop().expect("two results");
                Ok((w, v))
            },
        )
    }

    #[track_caller]
    fn eigvalsh(&self) -> Result<TracedTensor> {
        reported_at(Location::caller(), || Ok(eigh_op(self, false)?.remove(0)))
    }

    #[track_caller]
    fn lu(&self) -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
                let mut f = lu_op(self)?;
                f.truncate(3);
                let u = f.pop().expect("results");
                let l = f.pop().expect("results");
                let p = f.pop().expect("results");
                Ok((p, l, u))
            },
        )
    }

    #[track_caller]
    fn vector_norm(&self, ord: f64, axes: &[isize], keepdims: bool) -> Result<TracedTensor> {
        reported_at(Location::caller(), || {
            norm::vector_norm(self, ord, axes, keepdims)
        })
    }

    #[track_caller]
    fn matrix_norm(&self, ord: MatrixNorm, keepdims: bool) -> Result<TracedTensor> {
        reported_at(Location::caller(), || {
            norm::matrix_norm(self, ord, keepdims)
        })
    }

    #[track_caller]
    fn norm(
        &self,
        ord: Option<NormOrd>,
        axes: Option<&[isize]>,
        keepdims: bool,
    ) -> Result<TracedTensor> {
        reported_at(Location::caller(), || norm::norm(self, ord, axes, keepdims))
    }

    #[track_caller]
    fn svd_truncated(&self, k: usize) -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
                spectral::svd_truncated(self, k)
            },
        )
    }

    #[track_caller]
    fn svd_rtol(
        &self,
        rtol: f64,
    ) -> Result<(TracedTensor, TracedTensor, TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor, TracedTensor, TracedTensor)> {
                spectral::svd_rtol(self, rtol)
            },
        )
    }

    #[track_caller]
    fn svd_with_options(
        &self,
        derivative_eps: f64,
    ) -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
                spectral::svd_with_eps(self, derivative_eps)
            },
        )
    }

    #[track_caller]
    fn pinv(&self, rtol: Option<f64>) -> Result<TracedTensor> {
        reported_at(Location::caller(), || spectral::pinv(self, rtol))
    }

    #[track_caller]
    fn lstsq(&self, b: &TracedTensor, rcond: Option<f64>) -> Result<Lstsq<TracedTensor>> {
        reported_at(Location::caller(), || spectral::lstsq(self, b, rcond))
    }

    #[track_caller]
    fn lu_with_parity(&self) -> Result<(TracedTensor, TracedTensor, TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor, TracedTensor, TracedTensor)> {
                lu::lu_with_parity(self)
            },
        )
    }

    #[track_caller]
    fn lu_factor(&self) -> Result<(TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor)> { lu::lu_factor(self) },
        )
    }

    #[track_caller]
    fn lu_solve(&self, perm: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
        reported_at(Location::caller(), || lu::lu_solve(self, perm, b))
    }

    #[track_caller]
    fn full_piv_lu(&self) -> Result<FullPivLu<TracedTensor>> {
        reported_at(Location::caller(), || full_piv::full_piv_lu(self))
    }

    #[track_caller]
    fn full_piv_lu_solve(&self, b: &TracedTensor) -> Result<TracedTensor> {
        reported_at(Location::caller(), || full_piv::full_piv_lu_solve(self, b))
    }

    #[track_caller]
    fn cho_solve(&self, b: &TracedTensor) -> Result<TracedTensor> {
        reported_at(Location::caller(), || lu::cho_solve(self, b))
    }

    #[track_caller]
    fn eig(&self) -> Result<(TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor)> { eig::eig(self, 0.0) },
        )
    }

    #[track_caller]
    fn qr_complete(&self) -> Result<(TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor)> {
                let mut f = crate::ops::qr_op_with(self, true)?;
                let r = f.pop().expect("two results");
                let q = f.pop().expect("two results");
                Ok((q, r))
            },
        )
    }

    #[track_caller]
    fn svd_full(&self) -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
                let mut f = crate::ops::svd_full_op(self)?;
                let vh = f.pop().expect("three results");
                let s = f.pop().expect("three results");
                let u = f.pop().expect("three results");
                Ok((u, s, vh))
            },
        )
    }

    #[track_caller]
    fn eigh_with_options(&self, derivative_eps: f64) -> Result<(TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor)> {
                let mut f = crate::ops::eigh_op_with(self, true, derivative_eps)?;
                let v = f.pop().expect("two results");
                let w = f.pop().expect("two results");
                Ok((w, v))
            },
        )
    }

    #[track_caller]
    fn eigvals(&self) -> Result<TracedTensor> {
        reported_at(Location::caller(), || eig::eigvals(self))
    }

    #[track_caller]
    fn eig_with_options(&self, derivative_eps: f64) -> Result<(TracedTensor, TracedTensor)> {
        reported_at(
            Location::caller(),
            || -> Result<(TracedTensor, TracedTensor)> { eig::eig(self, derivative_eps) },
        )
    }

    #[track_caller]
    fn expm(&self) -> Result<TracedTensor> {
        reported_at(Location::caller(), || expm::expm(self))
    }
}
