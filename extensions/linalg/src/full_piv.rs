//! LU with complete pivoting, as upstream tenferro's `full_piv_lu` / `full_piv_lu_solve`
//! (Eigen's `FullPivLU`): `P A Qᵀ = L U` with row and column permutations `P`, `Q`.
//!
//! The permutations come from `linalg.full_piv_perm` (piecewise constant, zero
//! derivative). `L` and `U` are then the partial-pivoting `linalg.lu` of `B = P A Qᵀ`,
//! whose pivots are already on the diagonal; should rounding make that LU swap rows
//! anyway, its permutation is folded into `P`, so `P A Qᵀ = L U` holds exactly as
//! returned. The derivative is that of `lu` on `B` (any order); the solve is two
//! triangular solves.

use crate::lu::{lu_with_parity, unit_lower_then_upper};
use crate::ops::{full_piv_perm_op, square_type};
use crate::util::{cast, mm, ok, restore_rhs, rhs_as_matrix};
use tenferro_runtime::{Result, RuntimeError, TracedTensor};

/// The factors `(P, L, U, Q, parity)` of LU with complete pivoting, `P A Qᵀ = L U` (see
/// [`crate::TracedTensorLinalgExt::full_piv_lu`]).
pub type FullPivLu<T> = (T, T, T, T, T);

/// `(P, L, U, Q, parity)` with `P A Qᵀ = L U` for a (batch of) square matrices `A`
/// `[n, n, batch..]`: `P`, `Q` permutation matrices, `L` unit lower and `U` upper
/// triangular (all of `A`'s dtype), `parity = det(P) det(Q)` (real dtype, batch-shaped).
pub(crate) fn full_piv_lu(a: &TracedTensor) -> Result<FullPivLu<TracedTensor>> {
    let ty = square_type("full_piv_lu", a)?;
    let mut f = full_piv_perm_op(&a.stop_gradient())?;
    let parity0 = f.pop().expect("three results");
    let q = f.pop().expect("three results");
    let p0 = f.pop().expect("three results");
    let b = mm(&mm(&p0, a)?, &q.t()?)?;
    let (pb, l, u, parity_b) = lu_with_parity(&b)?;
    // B = Pb L U, so (Pbᵀ P0) A Qᵀ = L U.
    let p = mm(&pb.t()?, &p0)?;
    let parity_b = if ty.dtype.is_complex() {
        ok(parity_b.real())?
    } else {
        parity_b
    };
    let parity = ok(&parity0 * &parity_b.stop_gradient())?;
    Ok((p, l, u, q, parity))
}

/// `X = A⁻¹ B` through [`full_piv_lu`]: `X = Qᵀ U⁻¹ L⁻¹ P B`. `b` is `[n, k, batch..]` or
/// a vector `[n, batch..]`; dtypes are promoted. A singular `A` (a zero on `U`'s
/// diagonal) is a run-time error of the triangular solve.
pub(crate) fn full_piv_lu_solve(a: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    let op = "full_piv_lu_solve";
    let ta = square_type(op, a)?;
    let tb0 = b.ty()?;
    let (b2, vector) = rhs_as_matrix(b, ta.rank())?;
    let tb = b2.ty()?;
    if tb.rank() != ta.rank() || tb.shape[0] != ta.shape[0] || tb.shape[2..] != ta.shape[2..] {
        return Err(RuntimeError::invalid_op(
            op,
            format!(
                "matrix {ta} and right-hand side {tb0} do not match: need B of shape [{n}, k, batch..] or [{n}, batch..]",
                n = ta.shape[0]
            ),
        ));
    }
    let dtype = tenferro_runtime::ops::promote(ta.dtype, tb.dtype);
    let (a, b2) = (cast(a, dtype)?, cast(&b2, dtype)?);
    let (p, l, u, q, _) = full_piv_lu(&a)?;
    let z = unit_lower_then_upper(&l, &u, &mm(&p, &b2)?)?;
    restore_rhs(mm(&q.t()?, &z)?, &vector)
}

/// The rule of `linalg.full_piv_perm`: its results are piecewise constant in `A`.
#[cfg(feature = "autodiff")]
pub(crate) mod rule {
    use tenferro_ad::{ExtensionRule, Result};
    use tenferro_ir::ExtensionOp;
    use tenferro_runtime::TracedTensor;

    /// Zero tangents for `P`, `Q` and the parity.
    pub(crate) struct FullPivPermRule;

    impl ExtensionRule for FullPivPermRule {
        fn jvp(
            &self,
            _op: &ExtensionOp,
            _inputs: &[TracedTensor],
            outputs: &[TracedTensor],
            _tangents: &[Option<TracedTensor>],
        ) -> Result<Vec<Option<TracedTensor>>> {
            Ok(vec![None; outputs.len()])
        }
    }
}
