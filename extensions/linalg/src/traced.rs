//! [`TracedTensorLinalgExt`]: the linalg methods of `TracedTensor`. Matrices are the first
//! two axes and batch axes follow (column-major, as the rest of tenferro). Shape and dtype
//! errors are returned at trace time and name the op and the shapes; value errors
//! (indefinite, singular, and NaN or infinity in an entry an op reads) come from the
//! kernels at run time.

use crate::ops::{
    cholesky_op, eigh_op, lu_op, qr_op, solve_op, square_type, svd_op, triangular_solve_op,
    TriangularSolve,
};
use crate::util::{cast, diag_part, eye_like, ok};
use tenferro_runtime::{Result, RuntimeError, TracedTensor};

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
    /// LU with partial pivoting of a square matrix: `(P, L, U)` with `A = P L U`, `P` a
    /// permutation matrix, `L` unit lower and `U` upper triangular. Defined for singular
    /// matrices too (as LAPACK's `getrf`): a column with no nonzero pivot candidate is not
    /// eliminated (its multipliers are 0) and leaves a zero on `U`'s diagonal.
    fn lu(&self) -> Result<(TracedTensor, TracedTensor, TracedTensor)>;
}

impl TracedTensorLinalgExt for TracedTensor {
    fn cholesky(&self) -> Result<TracedTensor> {
        cholesky_op(self)
    }

    fn triangular_solve(&self, b: &TracedTensor, how: TriangularSolve) -> Result<TracedTensor> {
        triangular_solve_op(self, b, how)
    }

    fn solve(&self, b: &TracedTensor) -> Result<TracedTensor> {
        let ta = square_type("solve", self)?;
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
            let x = solve_op(self, &b.reshape(&s)?, false)?;
            return x.reshape(&tb.shape);
        }
        solve_op(self, b, false)
    }

    fn inv(&self) -> Result<TracedTensor> {
        square_type("inv", self)?;
        solve_op(self, &eye_like(self)?, false)
    }

    fn det(&self) -> Result<TracedTensor> {
        square_type("det", self)?;
        let f = lu_op(self)?;
        let d = diag_part(&f[2])?.reduce_prod(&[0]);
        ok(&f[3] * &d)
    }

    fn slogdet(&self) -> Result<(TracedTensor, TracedTensor)> {
        let ty = square_type("slogdet", self)?;
        let f = lu_op(self)?;
        let d = diag_part(&f[2])?;
        let logabs = ok(d.abs().log().reduce_sum(&[0]))?;
        let sign = ok(&f[3] * &cast(&d.sign(), ty.dtype)?.reduce_prod(&[0]))?;
        Ok((sign, logabs))
    }

    fn qr(&self) -> Result<(TracedTensor, TracedTensor)> {
        let mut f = qr_op(self)?;
        let r = f.pop().expect("two results");
        let q = f.pop().expect("two results");
        Ok((q, r))
    }

    fn svd(&self) -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
        let mut f = svd_op(self, true)?;
        let vh = f.pop().expect("three results");
        let s = f.pop().expect("three results");
        let u = f.pop().expect("three results");
        Ok((u, s, vh))
    }

    fn svdvals(&self) -> Result<TracedTensor> {
        Ok(svd_op(self, false)?.remove(0))
    }

    fn eigh(&self) -> Result<(TracedTensor, TracedTensor)> {
        let mut f = eigh_op(self, true)?;
        let v = f.pop().expect("two results");
        let w = f.pop().expect("two results");
        Ok((w, v))
    }

    fn eigvalsh(&self) -> Result<TracedTensor> {
        Ok(eigh_op(self, false)?.remove(0))
    }

    fn lu(&self) -> Result<(TracedTensor, TracedTensor, TracedTensor)> {
        let mut f = lu_op(self)?;
        f.truncate(3);
        let u = f.pop().expect("results");
        let l = f.pop().expect("results");
        let p = f.pop().expect("results");
        Ok((p, l, u))
    }
}
