//! NumPy-style `tensordot`, `inner`, `outer`, `kron` (on logical axes), through einsum.

use crate::{at_caller, einsum_labels, err};
use std::panic::Location;
use tenferro_runtime::{Result, TracedTensor};

/// `np.tensordot(a, b, axes=(a_axes, b_axes))`: sums `a_axes` of `a` against `b_axes` of
/// `b` pairwise; the result has `a`'s other axes, then `b`'s.
#[track_caller]
pub fn tensordot(
    a: &TracedTensor,
    b: &TracedTensor,
    a_axes: &[usize],
    b_axes: &[usize],
) -> Result<TracedTensor> {
    at_caller(tensordot_here(a, b, a_axes, b_axes), Location::caller())
}

fn tensordot_here(
    a: &TracedTensor,
    b: &TracedTensor,
    a_axes: &[usize],
    b_axes: &[usize],
) -> Result<TracedTensor> {
    let (ra, rb) = (a.shape()?.len(), b.shape()?.len());
    if a_axes.len() != b_axes.len() {
        return Err(err(format!(
            "tensordot: {} axes of operand 0 against {} of operand 1",
            a_axes.len(),
            b_axes.len()
        )));
    }
    let la: Vec<usize> = (0..ra).collect();
    let mut lb: Vec<usize> = (ra..ra + rb).collect();
    for (&i, &j) in a_axes.iter().zip(b_axes) {
        if i >= ra || j >= rb {
            return Err(err(format!(
                "tensordot: axis pair ({i}, {j}) out of range for ranks {ra} and {rb}"
            )));
        }
        lb[j] = i;
    }
    let out: Vec<usize> = (0..ra)
        .filter(|i| !a_axes.contains(i))
        .chain((0..rb).filter(|j| !b_axes.contains(j)).map(|j| ra + j))
        .collect();
    einsum_labels(&[&la, &lb], &out, &[a, b])
}

/// `np.inner(a, b)`: sums the last axis of `a` against the last of `b` (a product when
/// one is a scalar); the result has `a`'s other axes, then `b`'s.
#[track_caller]
pub fn inner(a: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    let traced = || {
        let (ra, rb) = (a.shape()?.len(), b.shape()?.len());
        if ra == 0 || rb == 0 {
            return outer_labels(a, b);
        }
        tensordot_here(a, b, &[ra - 1], &[rb - 1])
    };
    at_caller(traced(), Location::caller())
}

fn outer_labels(a: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    let (ra, rb) = (a.shape()?.len(), b.shape()?.len());
    let la: Vec<usize> = (0..ra).collect();
    let lb: Vec<usize> = (ra..ra + rb).collect();
    let out: Vec<usize> = (0..ra + rb).collect();
    einsum_labels(&[&la, &lb], &out, &[a, b])
}

/// `np.outer(a, b)`: both operands flattened (in logical row-major order, as NumPy), then
/// `out[i, j] = a[i] · b[j]`.
#[track_caller]
pub fn outer(a: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    let traced = || outer_labels(&ravel(a)?, &ravel(b)?);
    at_caller(traced(), Location::caller())
}

/// Flattens in NumPy's (row-major) order of the logical indices.
fn ravel(x: &TracedTensor) -> Result<TracedTensor> {
    let s = x.shape()?;
    let n: usize = s.iter().product();
    if s.len() <= 1 {
        return x.reshape(&[n]);
    }
    let rev: Vec<usize> = (0..s.len()).rev().collect();
    x.transpose(&rev)?.reshape(&[n])
}

/// `np.kron(a, b)`: the Kronecker product on logical axes: for equal ranks,
/// `out[i·B + k] = a[i] · b[k]` per axis (the lower rank is padded with leading axes of
/// extent 1, as NumPy).
#[track_caller]
pub fn kron(a: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    at_caller(kron_here(a, b), Location::caller())
}

fn kron_here(a: &TracedTensor, b: &TracedTensor) -> Result<TracedTensor> {
    let (mut sa, mut sb) = (a.shape()?, b.shape()?);
    let r = sa.len().max(sb.len());
    while sa.len() < r {
        sa.insert(0, 1);
    }
    while sb.len() < r {
        sb.insert(0, 1);
    }
    let a = a.reshape(&sa)?;
    let b = b.reshape(&sb)?;
    // Column-major merge of (b_d, a_d) gives index k + B·i: output order b_0 a_0 b_1 a_1 ...
    let la: Vec<usize> = (0..r).map(|d| 2 * d + 1).collect();
    let lb: Vec<usize> = (0..r).map(|d| 2 * d).collect();
    let out: Vec<usize> = (0..2 * r).collect();
    let y = einsum_labels(&[&la, &lb], &out, &[&a, &b])?;
    let shape: Vec<usize> = (0..r).map(|d| sa[d] * sb[d]).collect();
    y.reshape(&shape)
}
