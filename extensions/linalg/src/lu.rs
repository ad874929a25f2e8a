//! The LU family beyond `lu`: the permutation's parity, a packed factorization
//! (`lu_factor`, as `scipy.linalg.lu_factor` / `jax.scipy.linalg.lu_factor` but with a
//! permutation vector instead of LAPACK's pivot swaps) and `lu_solve` from it. Composites
//! of `linalg.lu` and `linalg.triangular_solve`, so they differentiate (in the factor and
//! the right-hand side) to any order.

use crate::ops::{lu_op, matrix_type, square_type, triangular_solve_op, TriangularSolve};
use crate::util::{cast, mm, ok, restore_rhs, rhs_as_matrix, tril};
use tenferro_runtime::{DType, Result, RuntimeError, TracedTensor};

pub(crate) fn lu_with_parity(
    a: &TracedTensor,
) -> Result<(TracedTensor, TracedTensor, TracedTensor, TracedTensor)> {
    let mut f = lu_op(a)?;
    let parity = f.pop().expect("four results");
    let u = f.pop().expect("four results");
    let l = f.pop().expect("four results");
    let p = f.pop().expect("four results");
    Ok((p, l, u, parity))
}

pub(crate) fn lu_factor(a: &TracedTensor) -> Result<(TracedTensor, TracedTensor)> {
    square_type("lu_factor", a)?;
    let (p, l, u, _) = lu_with_parity(a)?;
    // Packed: the strict lower triangle of L (unit diagonal implied) plus U.
    let packed = ok(&tril(&l, false)? + &u)?;
    // perm[i] = r with P[r, i] = 1, i.e. A[perm[i], :] = (L U)[i, :].
    let pr = if p.dtype()?.is_complex() {
        ok(p.real())?
    } else {
        p
    };
    let perm = ok(pr.stop_gradient().argmax(0, false))?;
    Ok((packed, perm))
}

pub(crate) fn lu_solve(
    lu: &TracedTensor,
    perm: &TracedTensor,
    b: &TracedTensor,
) -> Result<TracedTensor> {
    let op = "lu_solve";
    let ta = square_type(op, lu)?;
    let n = ta.shape[0];
    let tp = perm.ty()?;
    let mut want = vec![n];
    want.extend_from_slice(&ta.shape[2..]);
    if tp.dtype != DType::I64 || tp.shape != want {
        return Err(RuntimeError::invalid_op(
            op,
            format!("permutation {tp} must be i64 of shape {want:?} (as lu_factor returns)"),
        ));
    }
    let tb0 = b.ty()?;
    let (b2, vector) = rhs_as_matrix(b, ta.rank())?;
    let tb = matrix_type(op, &b2)?;
    if tb.shape[0] != n || tb.shape[2..] != ta.shape[2..] {
        return Err(RuntimeError::invalid_op(
            op,
            format!("factor {ta} and right-hand side {tb0} do not match: need B of shape [{n}, k, batch..] or [{n}, batch..]"),
        ));
    }
    let dtype = tenferro_runtime::ops::promote(ta.dtype, tb.dtype);
    let lu = cast(lu, dtype)?;
    let b2 = cast(&b2, dtype)?;
    // P[r, i] = (perm[i] == r); Pᵀ B gathers the rows.
    let pshape = ta.shape.clone();
    let dims: Vec<usize> = std::iter::once(1).chain(2..pshape.len()).collect();
    let pb = perm.broadcast_in_dim(&pshape, &dims)?;
    let rows = TracedTensor::iota(DType::I64, &pshape, 0)?;
    let p = ok(pb.equal(&rows).convert(dtype)?)?;
    let ptb = mm(&p.t()?, &b2)?;
    restore_rhs(unit_lower_then_upper(&lu, &lu, &ptb)?, &vector)
}

/// `U⁻¹ L⁻¹ B`: a unit-diagonal lower solve with `l` (its strict lower triangle is read)
/// then an upper solve with `u` (its upper triangle with the diagonal).
pub(crate) fn unit_lower_then_upper(
    l: &TracedTensor,
    u: &TracedTensor,
    b: &TracedTensor,
) -> Result<TracedTensor> {
    let unit_lower = TriangularSolve {
        unit_diagonal: true,
        ..TriangularSolve::default()
    };
    let upper = TriangularSolve {
        lower: false,
        ..TriangularSolve::default()
    };
    triangular_solve_op(u, &triangular_solve_op(l, b, unit_lower)?, upper)
}

pub(crate) fn cho_solve(l: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    let op = "cho_solve";
    let ta = square_type(op, l)?;
    let (b2, vector) = rhs_as_matrix(b, ta.rank())?;
    let tb = matrix_type(op, &b2)?;
    let dtype = tenferro_runtime::ops::promote(ta.dtype, tb.dtype);
    let (l, b2) = (cast(l, dtype)?, cast(&b2, dtype)?);
    let y = triangular_solve_op(&l, &b2, TriangularSolve::default())?;
    let x = triangular_solve_op(
        &l,
        &y,
        TriangularSolve {
            adjoint: true,
            ..TriangularSolve::default()
        },
    )?;
    restore_rhs(x, &vector)
}
