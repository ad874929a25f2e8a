//! [`EagerTensorLinalgExt`] (feature `autodiff`): the linalg methods of eager tensors.
//! Each applies the same extension ops as [`crate::TracedTensorLinalgExt`] at once, on the
//! tensor's `EagerContext` (which needs `register_runtime` for the kernels, and
//! `ad_rules()` in its `AdContext` to differentiate them).

use crate::full_piv::FullPivLu;
use crate::norm::{MatrixNorm, NormOrd};
use crate::ops::TriangularSolve;
use crate::spectral::Lstsq;
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
    /// Vector norm over `axes` (all if empty); see [`TracedTensorLinalgExt::vector_norm`].
    fn vector_norm(&self, ord: f64, axes: &[isize], keepdims: bool) -> Result<EagerTensor>;
    /// Matrix norm over axes (0, 1); see [`TracedTensorLinalgExt::matrix_norm`].
    fn matrix_norm(&self, ord: MatrixNorm, keepdims: bool) -> Result<EagerTensor>;
    /// `numpy.linalg.norm`; see [`TracedTensorLinalgExt::norm`].
    fn norm(
        &self,
        ord: Option<NormOrd>,
        axes: Option<&[isize]>,
        keepdims: bool,
    ) -> Result<EagerTensor>;
    /// See [`TracedTensorLinalgExt::svd_truncated`].
    fn svd_truncated(&self, k: usize) -> Result<(EagerTensor, EagerTensor, EagerTensor)>;
    /// See [`TracedTensorLinalgExt::svd_rtol`].
    fn svd_rtol(&self, rtol: f64) -> Result<(EagerTensor, EagerTensor, EagerTensor, EagerTensor)>;
    /// See [`TracedTensorLinalgExt::svd_with_options`].
    fn svd_with_options(
        &self,
        derivative_eps: f64,
    ) -> Result<(EagerTensor, EagerTensor, EagerTensor)>;
    /// See [`TracedTensorLinalgExt::pinv`].
    fn pinv(&self, rtol: Option<f64>) -> Result<EagerTensor>;
    /// `pinv(Some(rtol))` under upstream tenferro's name; a negative or non-finite
    /// `rtol` is an error naming `pinv`.
    fn pinv_with_rtol(&self, rtol: f64) -> Result<EagerTensor> {
        self.pinv(Some(rtol))
    }
    /// See [`TracedTensorLinalgExt::lstsq`].
    fn lstsq(&self, b: &EagerTensor, rcond: Option<f64>) -> Result<Lstsq<EagerTensor>>;
    /// See [`TracedTensorLinalgExt::lu_with_parity`].
    fn lu_with_parity(&self) -> Result<(EagerTensor, EagerTensor, EagerTensor, EagerTensor)>;
    /// See [`TracedTensorLinalgExt::lu_factor`].
    fn lu_factor(&self) -> Result<(EagerTensor, EagerTensor)>;
    /// See [`TracedTensorLinalgExt::lu_solve`].
    fn lu_solve(&self, perm: &EagerTensor, b: &EagerTensor) -> Result<EagerTensor>;
    /// See [`TracedTensorLinalgExt::full_piv_lu`].
    fn full_piv_lu(&self) -> Result<FullPivLu<EagerTensor>>;
    /// See [`TracedTensorLinalgExt::full_piv_lu_solve`].
    fn full_piv_lu_solve(&self, b: &EagerTensor) -> Result<EagerTensor>;
    /// See [`TracedTensorLinalgExt::cho_solve`].
    fn cho_solve(&self, b: &EagerTensor) -> Result<EagerTensor>;
    /// See [`TracedTensorLinalgExt::eig`].
    fn eig(&self) -> Result<(EagerTensor, EagerTensor)>;
    /// See [`TracedTensorLinalgExt::eigh_with_options`].
    fn eigh_with_options(&self, derivative_eps: f64) -> Result<(EagerTensor, EagerTensor)>;
    /// See [`TracedTensorLinalgExt::qr_complete`].
    fn qr_complete(&self) -> Result<(EagerTensor, EagerTensor)>;
    /// See [`TracedTensorLinalgExt::svd_full`].
    fn svd_full(&self) -> Result<(EagerTensor, EagerTensor, EagerTensor)>;
    /// See [`TracedTensorLinalgExt::eigvals`].
    fn eigvals(&self) -> Result<EagerTensor>;
    /// See [`TracedTensorLinalgExt::eig_with_options`].
    fn eig_with_options(&self, derivative_eps: f64) -> Result<(EagerTensor, EagerTensor)>;
    /// See [`TracedTensorLinalgExt::expm`].
    fn expm(&self) -> Result<EagerTensor>;
}

fn opt_key(v: Option<f64>) -> [i64; 2] {
    match v {
        None => [0, 0],
        Some(x) => [1, x.to_bits() as i64],
    }
}

fn ord_key(ord: Option<NormOrd>) -> [i64; 2] {
    match ord {
        None => [0, 0],
        Some(NormOrd::P(p)) => [1, p.to_bits() as i64],
        Some(NormOrd::Fro) => [2, 0],
        Some(NormOrd::Nuc) => [3, 0],
    }
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

    fn vector_norm(&self, ord: f64, axes: &[isize], keepdims: bool) -> Result<EagerTensor> {
        let mut key = vec![ord.to_bits() as i64, i64::from(keepdims)];
        key.extend(axes.iter().map(|&a| a as i64));
        let axes = axes.to_vec();
        self.context()
            .apply_traced1(OpKey::named("linalg.vector_norm", key), &[self], move |t| {
                Ok(vec![t[0].vector_norm(ord, &axes, keepdims)?])
            })
    }

    fn matrix_norm(&self, ord: MatrixNorm, keepdims: bool) -> Result<EagerTensor> {
        self.context().apply_traced1(
            OpKey::named("linalg.matrix_norm", [ord as i64, i64::from(keepdims)]),
            &[self],
            |t| Ok(vec![t[0].matrix_norm(ord, keepdims)?]),
        )
    }

    fn norm(
        &self,
        ord: Option<NormOrd>,
        axes: Option<&[isize]>,
        keepdims: bool,
    ) -> Result<EagerTensor> {
        let mut key = ord_key(ord).to_vec();
        key.push(i64::from(keepdims));
        if let Some(a) = axes {
            key.push(a.len() as i64);
            key.extend(a.iter().map(|&v| v as i64));
        } else {
            key.push(-1);
        }
        let axes = axes.map(|a| a.to_vec());
        self.context()
            .apply_traced1(OpKey::named("linalg.norm", key), &[self], move |t| {
                Ok(vec![t[0].norm(ord, axes.as_deref(), keepdims)?])
            })
    }

    fn svd_truncated(&self, k: usize) -> Result<(EagerTensor, EagerTensor, EagerTensor)> {
        let v = self.context().apply_traced(
            OpKey::named("linalg.svd_truncated", [k as i64]),
            &[self],
            |t| {
                let (u, s, vh) = t[0].svd_truncated(k)?;
                Ok(vec![u, s, vh])
            },
        )?;
        let [u, s, vh] = take(v)?;
        Ok((u, s, vh))
    }

    fn svd_rtol(&self, rtol: f64) -> Result<(EagerTensor, EagerTensor, EagerTensor, EagerTensor)> {
        let v = self.context().apply_traced(
            OpKey::named("linalg.svd_rtol", [rtol.to_bits() as i64]),
            &[self],
            |t| {
                let (u, s, vh, r) = t[0].svd_rtol(rtol)?;
                Ok(vec![u, s, vh, r])
            },
        )?;
        let [u, s, vh, r] = take(v)?;
        Ok((u, s, vh, r))
    }

    fn svd_with_options(
        &self,
        derivative_eps: f64,
    ) -> Result<(EagerTensor, EagerTensor, EagerTensor)> {
        let v = self.context().apply_traced(
            OpKey::named("linalg.svd_with_options", [derivative_eps.to_bits() as i64]),
            &[self],
            |t| {
                let (u, s, vh) = t[0].svd_with_options(derivative_eps)?;
                Ok(vec![u, s, vh])
            },
        )?;
        let [u, s, vh] = take(v)?;
        Ok((u, s, vh))
    }

    fn pinv(&self, rtol: Option<f64>) -> Result<EagerTensor> {
        self.context()
            .apply_traced1(OpKey::named("linalg.pinv", opt_key(rtol)), &[self], |t| {
                Ok(vec![t[0].pinv(rtol)?])
            })
    }

    fn lstsq(&self, b: &EagerTensor, rcond: Option<f64>) -> Result<Lstsq<EagerTensor>> {
        let v = self.context().apply_traced(
            OpKey::named("linalg.lstsq", opt_key(rcond)),
            &[self, b],
            |t| {
                let r = t[0].lstsq(&t[1], rcond)?;
                Ok(vec![r.solution, r.residuals, r.rank, r.singular_values])
            },
        )?;
        let [solution, residuals, rank, singular_values] = take(v)?;
        Ok(Lstsq {
            solution,
            residuals,
            rank,
            singular_values,
        })
    }

    fn lu_with_parity(&self) -> Result<(EagerTensor, EagerTensor, EagerTensor, EagerTensor)> {
        let v = self.context().apply_traced(
            OpKey::named("linalg.lu_with_parity", []),
            &[self],
            |t| {
                let (p, l, u, s) = t[0].lu_with_parity()?;
                Ok(vec![p, l, u, s])
            },
        )?;
        let [p, l, u, s] = take(v)?;
        Ok((p, l, u, s))
    }

    fn lu_factor(&self) -> Result<(EagerTensor, EagerTensor)> {
        let v =
            self.context()
                .apply_traced(OpKey::named("linalg.lu_factor", []), &[self], |t| {
                    let (lu, perm) = t[0].lu_factor()?;
                    Ok(vec![lu, perm])
                })?;
        let [lu, perm] = take(v)?;
        Ok((lu, perm))
    }

    fn lu_solve(&self, perm: &EagerTensor, b: &EagerTensor) -> Result<EagerTensor> {
        self.context()
            .apply_traced1(OpKey::named("linalg.lu_solve", []), &[self, perm, b], |t| {
                Ok(vec![t[0].lu_solve(&t[1], &t[2])?])
            })
    }

    fn full_piv_lu(&self) -> Result<FullPivLu<EagerTensor>> {
        let v =
            self.context()
                .apply_traced(OpKey::named("linalg.full_piv_lu", []), &[self], |t| {
                    let (p, l, u, q, s) = t[0].full_piv_lu()?;
                    Ok(vec![p, l, u, q, s])
                })?;
        let [p, l, u, q, s] = take(v)?;
        Ok((p, l, u, q, s))
    }

    fn full_piv_lu_solve(&self, b: &EagerTensor) -> Result<EagerTensor> {
        self.context().apply_traced1(
            OpKey::named("linalg.full_piv_lu_solve", []),
            &[self, b],
            |t| Ok(vec![t[0].full_piv_lu_solve(&t[1])?]),
        )
    }

    fn cho_solve(&self, b: &EagerTensor) -> Result<EagerTensor> {
        self.context()
            .apply_traced1(OpKey::named("linalg.cho_solve", []), &[self, b], |t| {
                Ok(vec![t[0].cho_solve(&t[1])?])
            })
    }

    fn eig(&self) -> Result<(EagerTensor, EagerTensor)> {
        self.eig_with_options(0.0)
    }

    fn eigh_with_options(&self, derivative_eps: f64) -> Result<(EagerTensor, EagerTensor)> {
        let v = self.context().apply_traced(
            OpKey::named(
                "linalg.eigh_with_options",
                [derivative_eps.to_bits() as i64],
            ),
            &[self],
            |t| {
                let (w, v) = t[0].eigh_with_options(derivative_eps)?;
                Ok(vec![w, v])
            },
        )?;
        let [w, v] = take(v)?;
        Ok((w, v))
    }

    fn qr_complete(&self) -> Result<(EagerTensor, EagerTensor)> {
        let v =
            self.context()
                .apply_traced(OpKey::named("linalg.qr_complete", []), &[self], |t| {
                    let (q, r) = t[0].qr_complete()?;
                    Ok(vec![q, r])
                })?;
        let [q, r] = take(v)?;
        Ok((q, r))
    }

    fn svd_full(&self) -> Result<(EagerTensor, EagerTensor, EagerTensor)> {
        let v = self
            .context()
            .apply_traced(OpKey::named("linalg.svd_full", []), &[self], |t| {
                let (u, s, vh) = t[0].svd_full()?;
                Ok(vec![u, s, vh])
            })?;
        let [u, s, vh] = take(v)?;
        Ok((u, s, vh))
    }

    fn eigvals(&self) -> Result<EagerTensor> {
        self.context()
            .apply_traced1(OpKey::named("linalg.eigvals", []), &[self], |t| {
                Ok(vec![t[0].eigvals()?])
            })
    }

    fn eig_with_options(&self, derivative_eps: f64) -> Result<(EagerTensor, EagerTensor)> {
        let v = self.context().apply_traced(
            OpKey::named("linalg.eig", [derivative_eps.to_bits() as i64]),
            &[self],
            |t| {
                let (w, v) = t[0].eig_with_options(derivative_eps)?;
                Ok(vec![w, v])
            },
        )?;
        let [w, v] = take(v)?;
        Ok((w, v))
    }

    fn expm(&self) -> Result<EagerTensor> {
        self.context()
            .apply_traced1(OpKey::named("linalg.expm", []), &[self], |t| {
                Ok(vec![t[0].expm()?])
            })
    }
}
