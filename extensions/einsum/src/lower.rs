//! Lowering a plan to traced IR ops.

use crate::err;
use crate::plan::EinsumPlan;
use tenferro_runtime::{DType, Result, TracedTensor};

fn sum(x: TracedTensor, axes: &[usize]) -> Result<TracedTensor> {
    if axes.is_empty() {
        return Ok(x);
    }
    let y = x.reduce_sum(axes);
    match y.error() {
        Some(e) => Err(e),
        None => Ok(y),
    }
}

/// `dot_general(a, b, dims)` for `dims` with batch axes and no contracted axis (an
/// elementwise or batched outer product) as a broadcast multiply, in dot_general's result
/// layout (batch axes, then a's free axes, then b's, each in operand order) transposed by
/// `perm` when given (result axis `q` is that layout's axis `perm[q]`): the multiply then
/// writes the transposed result directly, with no copy of the product. The CPU
/// backend fuses it into one pass reading both operands through strided views, where a
/// dot_general would run a GEMM of inner dimension 1 per batch element (13x slower on a
/// 2048² elementwise product). A plain outer product (no batch axis) stays one GEMM,
/// which writes its result faster than the fused loop.
fn product_without_contraction(
    a: &TracedTensor,
    b: &TracedTensor,
    dims: &tenferro_ir::DotDims,
    perm: Option<&[usize]>,
) -> Result<TracedTensor> {
    let (sa, sb) = (a.shape()?, b.shape()?);
    let free = |rank: usize, batch: &[usize]| -> Vec<usize> {
        (0..rank).filter(|k| !batch.contains(k)).collect()
    };
    let (fa, fb) = (
        free(sa.len(), &dims.lhs_batch),
        free(sb.len(), &dims.rhs_batch),
    );
    let nb = dims.lhs_batch.len();
    let mut shape: Vec<usize> = dims.lhs_batch.iter().map(|&k| sa[k]).collect();
    shape.extend(fa.iter().map(|&k| sa[k]));
    shape.extend(fb.iter().map(|&k| sb[k]));
    let place = |rank: usize, batch: &[usize], free: &[usize], offset: usize| -> Vec<usize> {
        (0..rank)
            .map(|k| match batch.iter().position(|&j| j == k) {
                Some(j) => j,
                None => offset + free.iter().position(|&j| j == k).unwrap_or(0),
            })
            .collect()
    };
    let mut da = place(sa.len(), &dims.lhs_batch, &fa, nb);
    let mut db = place(sb.len(), &dims.rhs_batch, &fb, nb + fa.len());
    if let Some(perm) = perm {
        let mut seen = vec![false; shape.len()];
        let valid = perm.len() == shape.len()
            && perm
                .iter()
                .all(|&d| d < seen.len() && !std::mem::replace(&mut seen[d], true));
        if !valid {
            return Err(err(format!(
                "einsum: result permutation {perm:?} for a product of rank {}",
                shape.len()
            )));
        }
        // Layout axis d goes to result position inv[d].
        let mut inv = vec![0; perm.len()];
        for (q, &d) in perm.iter().enumerate() {
            inv[d] = q;
        }
        shape = perm.iter().map(|&d| shape[d]).collect();
        for d in da.iter_mut().chain(db.iter_mut()) {
            *d = inv[*d];
        }
    }
    // broadcast_in_dim keeps axis order: transpose first where the result's order differs.
    let widen = |x: &TracedTensor, to: Vec<usize>| -> Result<TracedTensor> {
        let mut perm: Vec<usize> = (0..to.len()).collect();
        perm.sort_by_key(|&k| to[k]);
        let sorted: Vec<usize> = perm.iter().map(|&k| to[k]).collect();
        let x = if perm.iter().enumerate().all(|(i, &k)| i == k) {
            x.clone()
        } else {
            x.transpose(&perm)?
        };
        x.broadcast_in_dim(&shape, &sorted)
    };
    let y = &widen(a, da)? * &widen(b, db)?;
    match y.error() {
        Some(e) => Err(e),
        None => Ok(y),
    }
}

/// `dot_general(a, b, dims)` for a batched inner product (batch and contracted axes, no
/// free axis of more than one element on either side: `ij,ij->i`) as the broadcast
/// multiply of [`product_without_contraction`], with the contracted axes as further batch
/// axes, summed over them: dot_general's result layout. The fused pass reads both
/// operands once, where a product kernel would pad each single output to a register tile
/// (5x slower on 4096 rows of 256 f64 on the CPU backend). `None` for other steps.
fn batched_inner_product(
    a: &TracedTensor,
    b: &TracedTensor,
    dims: &tenferro_ir::DotDims,
) -> Result<Option<TracedTensor>> {
    let (sa, sb) = (a.shape()?, b.shape()?);
    let free_size = |shape: &[usize], batch: &[usize], contract: &[usize]| -> usize {
        (0..shape.len())
            .filter(|k| !batch.contains(k) && !contract.contains(k))
            .map(|k| shape[k])
            .product()
    };
    if dims.lhs_batch.is_empty()
        || dims.lhs_contract.is_empty()
        || free_size(&sa, &dims.lhs_batch, &dims.lhs_contract) > 1
        || free_size(&sb, &dims.rhs_batch, &dims.rhs_contract) > 1
    {
        return Ok(None);
    }
    // Every axis of a paired with b's, in a's order: the product keeps a's layout (no
    // transpose of it) and the sum runs over the contracted axes where a has them (a
    // contracted fastest axis sums in parallel blocks, fused with the multiply).
    let mut pairs: Vec<(usize, usize, bool)> = dims
        .lhs_batch
        .iter()
        .zip(&dims.rhs_batch)
        .map(|(&x, &y)| (x, y, false))
        .chain(
            dims.lhs_contract
                .iter()
                .zip(&dims.rhs_contract)
                .map(|(&x, &y)| (x, y, true)),
        )
        .collect();
    pairs.sort_by_key(|p| p.0);
    let widened = tenferro_ir::DotDims {
        lhs_batch: pairs.iter().map(|p| p.0).collect(),
        rhs_batch: pairs.iter().map(|p| p.1).collect(),
        lhs_contract: Vec::new(),
        rhs_contract: Vec::new(),
    };
    let y = product_without_contraction(a, b, &widened, None)?;
    let contracted: Vec<usize> = (0..pairs.len()).filter(|&k| pairs[k].2).collect();
    let y = sum(y, &contracted)?;
    // Left: the batch axes in a's order, then the single-element free axes; dot_general
    // has the batch axes in `lhs_batch` order.
    let kept: Vec<usize> = pairs.iter().filter(|p| !p.2).map(|p| p.0).collect();
    let rank = y.shape()?.len();
    let perm: Vec<usize> = dims
        .lhs_batch
        .iter()
        .map(|x| kept.iter().position(|k| k == x).unwrap_or(0))
        .chain(kept.len()..rank)
        .collect();
    if perm.iter().enumerate().all(|(i, &k)| i == k) {
        return Ok(Some(y));
    }
    y.transpose(&perm).map(Some)
}

/// Applies `plan` to `operands` (whose shapes it was planned for).
pub(crate) fn lower(plan: &EinsumPlan, operands: &[&TracedTensor]) -> Result<TracedTensor> {
    let r = &plan.resolved;
    let mut vals: Vec<Option<TracedTensor>> = Vec::with_capacity(operands.len() + plan.steps.len());
    for (x, p) in operands.iter().zip(&plan.prep) {
        let mut x = (*x).clone();
        if !p.squeeze.is_empty() {
            let s = x.shape()?;
            let keep: Vec<usize> = (0..s.len())
                .filter(|a| !p.squeeze.contains(a))
                .map(|a| s[a])
                .collect();
            x = x.reshape(&keep)?;
        }
        for &(a, b) in &p.diagonals {
            x = x.diagonal(0, a as isize, b as isize)?;
        }
        x = sum(x, &p.sum_axes)?;
        vals.push(Some(x));
    }
    // The last product, when it is a broadcast multiply, writes the final order directly.
    let mut final_perm = plan.final_perm.as_deref();
    for (i, s) in plan.steps.iter().enumerate() {
        let last = i + 1 == plan.steps.len();
        let a = vals[s.lhs]
            .take()
            .ok_or_else(|| err(format!("plan reuses operand #{}", s.lhs)))?;
        let b = vals[s.rhs]
            .take()
            .ok_or_else(|| err(format!("plan reuses operand #{}", s.rhs)))?;
        let mut a = sum(a, &s.lhs_sum)?;
        let mut b = sum(b, &s.rhs_sum)?;
        if let Some(p) = &s.lhs_perm {
            a = a.transpose(p)?;
        }
        if let Some(p) = &s.rhs_perm {
            b = b.transpose(p)?;
        }
        vals.push(Some(
            if s.dims.lhs_contract.is_empty() && !s.dims.lhs_batch.is_empty() {
                let perm = if last { final_perm.take() } else { None };
                product_without_contraction(&a, &b, &s.dims, perm)?
            } else if let Some(y) = batched_inner_product(&a, &b, &s.dims)? {
                y
            } else {
                a.dot_general(&b, s.dims.clone())?
            },
        ));
    }
    let mut y = vals
        .into_iter()
        .flatten()
        .next_back()
        .ok_or_else(|| err("einsum: nothing to contract"))?;
    if let Some(perm) = final_perm {
        y = y.transpose(perm)?;
    }
    // Repeated output indices: broadcast, then keep the diagonals and put zeros elsewhere
    // (diagonal embedding). A `select`, not a product with an identity: `inf · 0` would
    // put NaN off the diagonal, and `-x · 0` a negative zero.
    let mut out_u: Vec<usize> = Vec::new();
    for &l in &r.output {
        if !out_u.contains(&l) {
            out_u.push(l);
        }
    }
    if out_u.len() != r.output.len() {
        let shape: Vec<usize> = r.output.iter().map(|&l| r.sizes[l]).collect();
        let first = |l: usize| r.output.iter().position(|&m| m == l).unwrap();
        let dims: Vec<usize> = out_u.iter().map(|&l| first(l)).collect();
        y = y.broadcast_in_dim(&shape, &dims)?;
        let zero = y.full_like(0.0)?;
        for (p, &l) in r.output.iter().enumerate() {
            let q = first(l);
            if q != p {
                let n = r.sizes[l];
                let on_diagonal = TracedTensor::eye(DType::Bool, n, None, 0)?
                    .broadcast_in_dim(&shape, &[q, p])?;
                y = TracedTensor::select(&on_diagonal, &y, &zero);
                if let Some(e) = y.error() {
                    return Err(e);
                }
            }
        }
    }
    Ok(y)
}
