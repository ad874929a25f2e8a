//! [`EagerTensorLinalgExt`] (feature `autodiff`): the linalg methods of eager tensors.
//! Each applies the same extension ops as [`crate::TracedTensorLinalgExt`] at once, on the
//! tensor's `EagerContext` (which needs `register_runtime` for the kernels, and
//! `ad_rules()` in its `AdContext` to differentiate them).

use crate::ops::TriangularSolve;
use crate::traced::TracedTensorLinalgExt;
use tenferro_ad::{AdError, EagerTensor, OpKey, Result};

/// Linear algebra on eager (batches of) matrices; same signatures and semantics as
/// [`TracedTensorLinalgExt`], but computed immediately.
pub trait EagerTensorLinalgExt {
    /// Lower Cholesky factor `L` with `A = L Lᴴ` (reads the lower triangle of `A`).
    fn cholesky(&self) -> Result<EagerTensor>;
    /// Solves a triangular system with this (square) matrix, as `how` says.
    fn triangular_solve(&self, b: &EagerTensor, how: TriangularSolve) -> Result<EagerTensor>;
    /// `X = A⁻¹ B` for square `A`; `b` is `[n, k, batch..]` or a vector `[n, batch..]`.
    fn solve(&self, b: &EagerTensor) -> Result<EagerTensor>;
    /// `A⁻¹`.
    fn inv(&self) -> Result<EagerTensor>;
    /// Determinant (shape: the batch axes).
    fn det(&self) -> Result<EagerTensor>;
    /// `(sign, log|det|)`.
    fn slogdet(&self) -> Result<(EagerTensor, EagerTensor)>;
    /// Reduced QR `(Q, R)`.
    fn qr(&self) -> Result<(EagerTensor, EagerTensor)>;
    /// Reduced SVD `(U, S, Vh)`.
    fn svd(&self) -> Result<(EagerTensor, EagerTensor, EagerTensor)>;
    /// Singular values (real, descending).
    fn svdvals(&self) -> Result<EagerTensor>;
    /// `(W, V)` of a Hermitian matrix given by its lower triangle.
    fn eigh(&self) -> Result<(EagerTensor, EagerTensor)>;
    /// Eigenvalues of a Hermitian matrix given by its lower triangle.
    fn eigvalsh(&self) -> Result<EagerTensor>;
    /// `(P, L, U)` with `A = P L U`.
    fn lu(&self) -> Result<(EagerTensor, EagerTensor, EagerTensor)>;
}

/// Exactly `N` results.
fn take<const N: usize>(v: Vec<EagerTensor>) -> Result<[EagerTensor; N]> {
    v.try_into().map_err(|v: Vec<EagerTensor>| {
        AdError::Internal(format!("eager linalg: {} results, expected {N}", v.len()))
    })
}

impl EagerTensorLinalgExt for EagerTensor {
    fn cholesky(&self) -> Result<EagerTensor> {
        self.context()
            .apply_traced1(OpKey::named("linalg.cholesky", []), &[self], |t| {
                Ok(vec![t[0].cholesky()?])
            })
    }

    fn triangular_solve(&self, b: &EagerTensor, how: TriangularSolve) -> Result<EagerTensor> {
        let flags = [how.lower, how.left, how.adjoint, how.unit_diagonal].map(i64::from);
        self.context().apply_traced1(
            OpKey::named("linalg.triangular_solve", flags),
            &[self, b],
            |t| Ok(vec![t[0].triangular_solve(&t[1], how)?]),
        )
    }

    fn solve(&self, b: &EagerTensor) -> Result<EagerTensor> {
        self.context()
            .apply_traced1(OpKey::named("linalg.solve", []), &[self, b], |t| {
                Ok(vec![t[0].solve(&t[1])?])
            })
    }

    fn inv(&self) -> Result<EagerTensor> {
        self.context()
            .apply_traced1(OpKey::named("linalg.inv", []), &[self], |t| {
                Ok(vec![t[0].inv()?])
            })
    }

    fn det(&self) -> Result<EagerTensor> {
        self.context()
            .apply_traced1(OpKey::named("linalg.det", []), &[self], |t| {
                Ok(vec![t[0].det()?])
            })
    }

    fn slogdet(&self) -> Result<(EagerTensor, EagerTensor)> {
        let v = self
            .context()
            .apply_traced(OpKey::named("linalg.slogdet", []), &[self], |t| {
                let (s, l) = t[0].slogdet()?;
                Ok(vec![s, l])
            })?;
        let [s, l] = take(v)?;
        Ok((s, l))
    }

    fn qr(&self) -> Result<(EagerTensor, EagerTensor)> {
        let v = self
            .context()
            .apply_traced(OpKey::named("linalg.qr", []), &[self], |t| {
                let (q, r) = t[0].qr()?;
                Ok(vec![q, r])
            })?;
        let [q, r] = take(v)?;
        Ok((q, r))
    }

    fn svd(&self) -> Result<(EagerTensor, EagerTensor, EagerTensor)> {
        let v = self
            .context()
            .apply_traced(OpKey::named("linalg.svd", []), &[self], |t| {
                let (u, s, vh) = t[0].svd()?;
                Ok(vec![u, s, vh])
            })?;
        let [u, s, vh] = take(v)?;
        Ok((u, s, vh))
    }

    fn svdvals(&self) -> Result<EagerTensor> {
        self.context()
            .apply_traced1(OpKey::named("linalg.svdvals", []), &[self], |t| {
                Ok(vec![t[0].svdvals()?])
            })
    }

    fn eigh(&self) -> Result<(EagerTensor, EagerTensor)> {
        let v = self
            .context()
            .apply_traced(OpKey::named("linalg.eigh", []), &[self], |t| {
                let (w, v) = t[0].eigh()?;
                Ok(vec![w, v])
            })?;
        let [w, v] = take(v)?;
        Ok((w, v))
    }

    fn eigvalsh(&self) -> Result<EagerTensor> {
        self.context()
            .apply_traced1(OpKey::named("linalg.eigvalsh", []), &[self], |t| {
                Ok(vec![t[0].eigvalsh()?])
            })
    }

    fn lu(&self) -> Result<(EagerTensor, EagerTensor, EagerTensor)> {
        let v = self
            .context()
            .apply_traced(OpKey::named("linalg.lu", []), &[self], |t| {
                let (p, l, u) = t[0].lu()?;
                Ok(vec![p, l, u])
            })?;
        let [p, l, u] = take(v)?;
        Ok((p, l, u))
    }
}
