//! Structural ops a JAX / PyTorch user reaches for (`reverse`, strided slices, general
//! padding, dynamic slices, stack / split, squeeze / expand_dims, tile / repeat, take,
//! diagonals, triangles, trace), named after `jax.numpy` / `jax.lax`.
//!
//! Every op here is a **composite** of existing IR primitives (slice, pad, reshape,
//! transpose, broadcast_in_dim, concatenate, gather, iota, select, compare, convert,
//! reduce): no new primitive, so autodiff, fusion and every backend handle them as they
//! handle their parts. Each composite is exact: it only moves, selects or zero-fills
//! elements (the one reduction, `trace`, is a sum), so results and gradients are those a
//! dedicated primitive would give.
//!
//! Layout is column-major (axis 0 fastest). Matrix ops (`tril`, `triu`, `trace`, `mt`,
//! `diag_embed`) follow this project's convention: the matrix axes are the FIRST two
//! axes and batch axes follow (as `matmul` and `tenferro-linalg`).
//!
//! All ops return `Result`; an invalid argument is an error naming the op, the operand
//! and what was expected.

#![allow(clippy::needless_range_loop)] // per-axis loops index several parallel lists

use crate::axes::{normalize_axes, normalize_axis};
use crate::error::{Result, RuntimeError};
use crate::ops::promote;
use crate::traced::TracedTensor;
use tenferro_ir::{BinaryOp, CmpOp, DType, Tensor, TensorType};

#[track_caller]
fn bad(op: &str, msg: String) -> RuntimeError {
    RuntimeError::invalid_op(op, msg)
}

pub(crate) use crate::ops::checked as ok;

#[track_caller]
fn i64_vec(data: Vec<i64>) -> TracedTensor {
    let n = data.len();
    TracedTensor::from_vec_col_major(vec![n], data)
}

/// Unsigned axes checked in range and distinct (sorted).
#[track_caller]
fn check_axes(op: &str, axes: &[usize], rank: usize) -> Result<Vec<usize>> {
    let mut out: Vec<usize> = Vec::with_capacity(axes.len());
    for &a in axes {
        if a >= rank {
            return Err(bad(
                op,
                format!(
                    "axis {a} is out of range for an operand of rank {rank} (expected 0..{rank})"
                ),
            ));
        }
        if out.contains(&a) {
            return Err(bad(op, format!("axis {a} is listed twice")));
        }
        out.push(a);
    }
    out.sort_unstable();
    Ok(out)
}

/// `shape` with axis `a` replaced by `with`.
#[track_caller]
fn replace_axis(shape: &[usize], a: usize, with: &[usize]) -> Vec<usize> {
    let mut s = shape[..a].to_vec();
    s.extend_from_slice(with);
    s.extend_from_slice(&shape[a + 1..]);
    s
}

/// Start indices of the dynamic ops, one integer scalar per axis, as i64 scalars (i32
/// starts converted).
#[track_caller]
fn check_starts(op: &str, starts: &[&TracedTensor], rank: usize) -> Result<Vec<TracedTensor>> {
    if starts.len() != rank {
        return Err(bad(
            op,
            format!(
                "{} start indices given for an operand of rank {rank} (expected one per axis)",
                starts.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(rank);
    for (i, s) in starts.iter().enumerate() {
        let ty = s.ty()?;
        if !ty.dtype.is_int() || !ty.shape.is_empty() {
            return Err(bad(
                op,
                format!("start index #{i} is {ty}, expected an integer scalar (i64[] or i32[])"),
            ));
        }
        out.push(s.as_index(op, "start index")?);
    }
    Ok(out)
}

#[track_caller]
fn i64_scalar(v: i64) -> TracedTensor {
    TracedTensor::scalar(v)
}

/// i64 `x` clamped elementwise into `[lo, hi]` (i64 scalar tensors, so no promotion).
#[track_caller]
fn clamp_i64(x: &TracedTensor, lo: i64, hi: i64) -> Result<TracedTensor> {
    ok(x.binary(BinaryOp::Max, &i64_scalar(lo))
        .binary(BinaryOp::Min, &i64_scalar(hi)))
}

/// `start` clamped into `[0, hi]` (an i64 scalar).
#[track_caller]
fn clamp_start(start: &TracedTensor, hi: usize) -> Result<TracedTensor> {
    clamp_i64(start, 0, hi as i64)
}

impl TracedTensor {
    #[track_caller]
    fn cast_to(&self, d: DType) -> Result<TracedTensor> {
        if self.dtype()? == d {
            Ok(self.clone())
        } else {
            self.convert(d)
        }
    }

    /// A zero of this tensor's dtype (rank 0).
    #[track_caller]
    fn zero_scalar(&self) -> Result<TracedTensor> {
        Ok(TracedTensor::from_tensor(Tensor::full(
            &TensorType::scalar(self.dtype()?),
            0.0,
        )))
    }

    /// Reverses the order of the elements along each of `axes` (`jax.lax.rev`,
    /// `jnp.flip`). Composite: one `gather` per axis with a reversed index constant
    /// (axes of length 0 or 1 are left alone). Errors (naming `reverse`) for an axis out
    /// of range or listed twice.
    #[track_caller]
    pub fn reverse(&self, axes: &[usize]) -> Result<TracedTensor> {
        let shape = self.shape()?;
        let axes = check_axes("reverse", axes, shape.len())?;
        let mut y = self.clone();
        for a in axes {
            let n = shape[a];
            if n <= 1 {
                continue;
            }
            y = y.gather(&i64_vec((0..n as i64).rev().collect()), a)?;
        }
        Ok(y)
    }

    /// `x[starts[0]:limits[0]:strides[0], ...]` (`jax.lax.slice` with strides): on each
    /// axis the elements `starts[i], starts[i] + strides[i], ...` below `limits[i]`, so
    /// the result has `ceil((limits[i] - starts[i]) / strides[i])` elements there.
    ///
    /// Composite: `slice` to the block, then per strided axis `pad` (zeros) to a multiple
    /// `k·s` of the stride, a column-major `reshape` of that axis to `[s, k]`, a `slice` of
    /// index 0 of the `s` axis and a `reshape` back. Errors (naming `slice_strided`) for
    /// argument lengths other than the rank, a zero stride, or `starts > limits` /
    /// `limits > shape`.
    #[track_caller]
    pub fn slice_strided(
        &self,
        starts: &[usize],
        limits: &[usize],
        strides: &[usize],
    ) -> Result<TracedTensor> {
        let op = "slice_strided";
        let ty = self.ty()?;
        let shape = ty.shape.clone();
        let r = shape.len();
        if starts.len() != r || limits.len() != r || strides.len() != r {
            return Err(bad(
                op,
                format!(
                    "operand {ty}: starts {starts:?}, limits {limits:?} and strides {strides:?} must each have {r} entries (one per axis)"
                ),
            ));
        }
        for i in 0..r {
            if strides[i] == 0 {
                return Err(bad(
                    op,
                    format!("operand {ty}: stride of axis {i} is 0, expected ≥ 1"),
                ));
            }
            if starts[i] > limits[i] || limits[i] > shape[i] {
                return Err(bad(
                    op,
                    format!(
                        "operand {ty}: axis {i} range {}..{} is invalid, expected start ≤ limit ≤ {}",
                        starts[i], limits[i], shape[i]
                    ),
                ));
            }
        }
        let mut y = self.slice(starts, limits)?;
        for a in 0..r {
            let s = strides[a];
            let cur = y.shape()?;
            let len = cur[a];
            if s == 1 || len <= 1 {
                continue;
            }
            let k = len.div_ceil(s);
            if k * s > len {
                let mut high = vec![0; r];
                high[a] = k * s - len;
                y = y.pad(&vec![0; r], &high, 0.0)?;
            }
            let split = replace_axis(&cur, a, &[s, k]);
            y = y.reshape(&split)?;
            let mut lim = split.clone();
            lim[a] = 1;
            y = y.slice(&vec![0; r + 1], &lim)?;
            y = y.reshape(&replace_axis(&cur, a, &[k]))?;
        }
        Ok(y)
    }

    /// `jax.lax.pad`: on each axis, `interior[i]` copies of `value` between neighbouring
    /// elements, then `low[i]` before and `high[i]` after; a negative `low` / `high`
    /// crops that many elements (of the interior-padded axis) instead. The result has
    /// `low + n + max(n - 1, 0)·interior + high` elements on the axis, which must not be
    /// negative. (`pad(low, high, value)` is the non-negative, no-interior case.)
    ///
    /// Composite: interior padding by a column-major `reshape` of the axis to `[1, n]`,
    /// `pad` of the `1` axis to `1 + interior`, `reshape` to `(1 + interior)·n` and a
    /// `slice` dropping the trailing `interior` values; then one `pad` with the positive
    /// edges and one `slice` for the negative ones. Errors name `pad_general`.
    #[track_caller]
    pub fn pad_general(
        &self,
        low: &[i64],
        high: &[i64],
        interior: &[usize],
        value: f64,
    ) -> Result<TracedTensor> {
        let op = "pad_general";
        let ty = self.ty()?;
        let r = ty.shape.len();
        if low.len() != r || high.len() != r || interior.len() != r {
            return Err(bad(
                op,
                format!(
                    "operand {ty}: low {low:?}, high {high:?} and interior {interior:?} must each have {r} entries (one per axis)"
                ),
            ));
        }
        let mut y = self.clone();
        for a in 0..r {
            let p = interior[a];
            let cur = y.shape()?;
            let n = cur[a];
            if p == 0 || n <= 1 {
                continue;
            }
            y = y.reshape(&replace_axis(&cur, a, &[1, n]))?;
            let mut hi = vec![0; r + 1];
            hi[a] = p;
            y = y.pad(&vec![0; r + 1], &hi, value)?;
            let merged = replace_axis(&cur, a, &[(1 + p) * n]);
            y = y.reshape(&merged)?;
            let mut lim = merged;
            lim[a] -= p;
            y = y.slice(&vec![0; r], &lim)?;
        }
        let cur = y.shape()?;
        for a in 0..r {
            let total = cur[a] as i128 + low[a] as i128 + high[a] as i128;
            if total < 0 {
                return Err(bad(
                    op,
                    format!(
                        "operand {ty}: axis {a} would have {total} elements (low {}, high {}, interior {}), expected ≥ 0",
                        low[a], high[a], interior[a]
                    ),
                ));
            }
        }
        let lo_pos: Vec<usize> = low.iter().map(|&v| v.max(0) as usize).collect();
        let hi_pos: Vec<usize> = high.iter().map(|&v| v.max(0) as usize).collect();
        if lo_pos.iter().chain(&hi_pos).any(|&v| v > 0) {
            y = y.pad(&lo_pos, &hi_pos, value)?;
        }
        if low.iter().chain(high).any(|&v| v < 0) {
            let padded = y.shape()?;
            let starts: Vec<usize> = low.iter().map(|&v| (-v).max(0) as usize).collect();
            let limits: Vec<usize> = (0..r)
                .map(|a| padded[a] - (-high[a]).max(0) as usize)
                .collect();
            y = y.slice(&starts, &limits)?;
        }
        Ok(y)
    }

    /// `jax.lax.dynamic_slice`: the block of `sizes` whose first element is at the traced
    /// i64 scalars `starts` (one per axis). As in XLA, each start is clamped into
    /// `[0, shape[i] - sizes[i]]`, so the block always lies inside the operand (a start
    /// past the end or negative moves the block, it never reads out of range).
    ///
    /// Composite: per axis with `sizes[i] < shape[i]`, a `gather` at
    /// `clamp(start) + iota`; gradients flow to the operand (as `scatter_add`). Errors
    /// (naming `dynamic_slice`) for a start that is not an i64 scalar, argument counts
    /// other than the rank, or `sizes[i] > shape[i]`.
    #[track_caller]
    pub fn dynamic_slice(&self, starts: &[&TracedTensor], sizes: &[usize]) -> Result<TracedTensor> {
        let op = "dynamic_slice";
        let ty = self.ty()?;
        let shape = ty.shape.clone();
        let r = shape.len();
        let starts = check_starts(op, starts, r)?;
        if sizes.len() != r {
            return Err(bad(
                op,
                format!("operand {ty}: sizes {sizes:?} must have {r} entries (one per axis)"),
            ));
        }
        for a in 0..r {
            if sizes[a] > shape[a] {
                return Err(bad(
                    op,
                    format!(
                        "operand {ty}: size {} on axis {a} exceeds the axis length {}",
                        sizes[a], shape[a]
                    ),
                ));
            }
        }
        let mut y = self.clone();
        for a in 0..r {
            let (n, m) = (shape[a], sizes[a]);
            if m == n {
                continue;
            }
            if m == 0 {
                let cur = y.shape()?;
                let mut lim = cur.clone();
                lim[a] = 0;
                y = y.slice(&vec![0; r], &lim)?;
                continue;
            }
            let s = clamp_start(&starts[a], n - m)?.broadcast_to(&[m])?;
            let idx = ok(&s + &TracedTensor::iota(DType::I64, &[m], 0)?)?;
            y = y.gather(&idx, a)?;
        }
        Ok(y)
    }

    /// `jax.lax.dynamic_update_slice`: a copy of `self` with the block at the traced i64
    /// scalars `starts` replaced by `update` (same rank, `update.shape[i] ≤ shape[i]`).
    /// Starts are clamped as in XLA into `[0, shape[i] - update.shape[i]]`. Dtypes
    /// promote (as `concatenate`).
    ///
    /// Composite: the update is `gather`ed to the operand's shape at `iota - clamp(start)`
    /// per axis, and `select`ed into the operand through a window mask built from `iota`
    /// and `compare`. Gradients flow to the operand (outside the window) and to the
    /// update. Errors name `dynamic_update_slice`.
    #[track_caller]
    pub fn dynamic_update_slice(
        &self,
        update: &TracedTensor,
        starts: &[&TracedTensor],
    ) -> Result<TracedTensor> {
        let op = "dynamic_update_slice";
        let (tx, tu) = (self.ty()?, update.ty()?);
        let r = tx.shape.len();
        if tu.shape.len() != r {
            return Err(bad(
                op,
                format!("operand {tx} and update {tu} must have the same rank"),
            ));
        }
        let starts = check_starts(op, starts, r)?;
        for a in 0..r {
            if tu.shape[a] > tx.shape[a] {
                return Err(bad(
                    op,
                    format!("update {tu} is larger than operand {tx} on axis {a}"),
                ));
            }
        }
        let d = promote(tx.dtype, tu.dtype);
        let x = self.cast_to(d)?;
        let u = update.cast_to(d)?;
        if tu.shape.contains(&0) {
            return Ok(x);
        }
        let mut g = u;
        let mut mask: Option<TracedTensor> = None;
        let no = TracedTensor::scalar(false);
        for a in 0..r {
            let (n, m) = (tx.shape[a], tu.shape[a]);
            if m == n {
                continue;
            }
            let s = clamp_start(&starts[a], n - m)?.broadcast_to(&[n])?;
            let rel = ok(&TracedTensor::iota(DType::I64, &[n], 0)? - &s)?;
            g = g.gather(&rel, a)?;
            let clamped = clamp_i64(&rel, 0, (m - 1) as i64)?;
            let inside = ok(rel.compare(CmpOp::Eq, &clamped))?.broadcast_in_dim(&tx.shape, &[a])?;
            mask = Some(match mask {
                None => inside,
                Some(m0) => ok(TracedTensor::select(&m0, &inside, &no))?,
            });
        }
        match mask {
            None => Ok(g),
            Some(m) => ok(TracedTensor::select(&m, &g, &x)),
        }
    }

    /// `jnp.stack`: joins equal-shaped tensors along a new axis `axis` (negative counts
    /// from the end of the result's axes, so `-1` appends it last). Composite:
    /// `reshape` (expand_dims) of each part, then `concatenate` (dtypes promote). Errors
    /// (naming `stack`) for no parts, unequal shapes or an axis out of range.
    #[track_caller]
    pub fn stack(parts: &[&TracedTensor], axis: isize) -> Result<TracedTensor> {
        let op = "stack";
        let Some(first) = parts.first() else {
            return Err(bad(
                op,
                "no operands given, expected at least one".to_string(),
            ));
        };
        let s0 = first.shape()?;
        let a = normalize_axis(op, axis, s0.len() + 1)?;
        let mut ex = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let ty = p.ty()?;
            if ty.shape != s0 {
                return Err(bad(
                    op,
                    format!("operand #{i} is {ty}, expected shape {s0:?} (that of operand #0)"),
                ));
            }
            ex.push(p.expand_dims(a as isize)?);
        }
        let refs: Vec<&TracedTensor> = ex.iter().collect();
        TracedTensor::concatenate(&refs, a)
    }

    /// `jnp.split(x, indices, axis)`: the pieces `[0, i0), [i0, i1), ..., [ik, n)` of
    /// `axis` (NumPy slicing rules: an index past the end is the end, and a piece whose
    /// end is before its start is empty). Composite: one `slice` per piece.
    #[track_caller]
    pub fn split(&self, indices: &[usize], axis: isize) -> Result<Vec<TracedTensor>> {
        let shape = self.shape()?;
        let a = normalize_axis("split", axis, shape.len())?;
        let n = shape[a];
        let mut bounds = vec![0usize];
        bounds.extend(indices.iter().map(|&i| i.min(n)));
        bounds.push(n);
        let mut out = Vec::with_capacity(bounds.len() - 1);
        for w in bounds.windows(2) {
            let lo = w[0];
            let hi = w[1].max(lo);
            let mut starts = vec![0; shape.len()];
            starts[a] = lo;
            let mut limits = shape.clone();
            limits[a] = hi;
            out.push(self.slice(&starts, &limits)?);
        }
        Ok(out)
    }

    /// `jnp.array_split(x, n, axis)`: `n` consecutive pieces of `axis`, the first
    /// `len % n` of them one element longer than the others (so sizes differ by at most
    /// one; pieces may be empty when `n > len`). Composite: `slice`s. Errors (naming
    /// `split_into`) for `n = 0`.
    #[track_caller]
    pub fn split_into(&self, n: usize, axis: isize) -> Result<Vec<TracedTensor>> {
        let shape = self.shape()?;
        let a = normalize_axis("split_into", axis, shape.len())?;
        if n == 0 {
            return Err(bad(
                "split_into",
                "number of sections is 0, expected ≥ 1".to_string(),
            ));
        }
        let len = shape[a];
        let (q, rem) = (len / n, len % n);
        let mut idx = Vec::with_capacity(n - 1);
        let mut at = 0;
        for i in 0..n - 1 {
            at += q + usize::from(i < rem);
            idx.push(at);
        }
        self.split(&idx, a as isize)
    }

    /// `jnp.expand_dims`: a new axis of length 1 at `axis` (negative counts from the end
    /// of the result's axes). Composite: `reshape`. Errors name `expand_dims`.
    #[track_caller]
    pub fn expand_dims(&self, axis: isize) -> Result<TracedTensor> {
        let shape = self.shape()?;
        let a = normalize_axis("expand_dims", axis, shape.len() + 1)?;
        let mut s = shape;
        s.insert(a, 1);
        self.reshape(&s)
    }

    /// `x[i]` in JAX or PyTorch: the sub-tensor at index `i` of axis 0, with that axis
    /// removed (a vector gives a scalar). Composite: `slice`, `reshape`. An error naming
    /// `index` for a rank-0 operand or an index out of range.
    ///
    /// ```
    /// # use tenferro_runtime::TracedTensor;
    /// let t = TracedTensor::from_vec_col_major(vec![3], vec![0.1_f64, 0.2, 0.3]);
    /// assert_eq!(t.index(2)?.shape()?, Vec::<usize>::new());
    /// assert!(t.index(3).is_err());
    /// # Ok::<(), tenferro_runtime::RuntimeError>(())
    /// ```
    #[track_caller]
    pub fn index(&self, i: usize) -> Result<TracedTensor> {
        let shape = self.shape()?;
        match shape.first() {
            Some(&n) if i < n => {
                let mut limits = shape.clone();
                limits[0] = i + 1;
                let mut starts = vec![0; shape.len()];
                starts[0] = i;
                self.slice(&starts, &limits)?.reshape(&shape[1..])
            }
            _ => Err(bad(
                "index",
                format!("index {i} is out of range for axis 0 of an operand of shape {shape:?}"),
            )),
        }
    }

    /// `jnp.squeeze(x, axes)`: removes the listed axes, each of which must have length 1
    /// (an empty list removes nothing). Composite: `reshape`. Errors (naming `squeeze`)
    /// for an axis whose length is not 1, out of range or listed twice.
    #[track_caller]
    pub fn squeeze(&self, axes: &[isize]) -> Result<TracedTensor> {
        let ty = self.ty()?;
        let axes = normalize_axes("squeeze", axes, ty.shape.len())?;
        for &a in &axes {
            if ty.shape[a] != 1 {
                return Err(bad(
                    "squeeze",
                    format!(
                        "axis {a} of operand {ty} has length {}, expected 1",
                        ty.shape[a]
                    ),
                ));
            }
        }
        let s: Vec<usize> = (0..ty.shape.len())
            .filter(|i| !axes.contains(i))
            .map(|i| ty.shape[i])
            .collect();
        self.reshape(&s)
    }

    /// All elements as a vector, in **column-major** order (axis 0 fastest; this
    /// differs from NumPy's default row-major `ravel`). Composite: `reshape`.
    #[track_caller]
    pub fn flatten(&self) -> Result<TracedTensor> {
        let n: usize = self.shape()?.iter().product();
        self.reshape(&[n])
    }

    /// `jnp.tile`: repeats the whole tensor `reps[i]` times along axis `i`. As in NumPy,
    /// when `reps` is longer than the rank the operand gets leading axes of length 1, and
    /// when shorter `reps` gets leading 1s. Composite: `broadcast_in_dim` to
    /// `[s0, r0, s1, r1, ...]` and a column-major `reshape` to `[s0·r0, s1·r1, ...]`.
    #[track_caller]
    pub fn tile(&self, reps: &[usize]) -> Result<TracedTensor> {
        let shape = self.shape()?;
        let d = shape.len().max(reps.len());
        let mut s = vec![1; d - shape.len()];
        s.extend_from_slice(&shape);
        let mut rp = vec![1; d - reps.len()];
        rp.extend_from_slice(reps);
        let x = if s != shape {
            self.reshape(&s)?
        } else {
            self.clone()
        };
        let mut wide = Vec::with_capacity(2 * d);
        for i in 0..d {
            wide.push(s[i]);
            wide.push(rp[i]);
        }
        let dims: Vec<usize> = (0..d).map(|i| 2 * i).collect();
        let out: Vec<usize> = (0..d).map(|i| s[i] * rp[i]).collect();
        x.broadcast_in_dim(&wide, &dims)?.reshape(&out)
    }

    /// `jnp.repeat(x, repeats, axis)`: each element repeated `repeats` times in a row
    /// along `axis` (`[a, b]` → `[a, a, b, b]`). Composite: `broadcast_in_dim` to a new
    /// axis of length `repeats` just before `axis`, then a column-major `reshape` merging
    /// the two. Errors name `repeat`.
    #[track_caller]
    pub fn repeat(&self, repeats: usize, axis: isize) -> Result<TracedTensor> {
        let shape = self.shape()?;
        let a = normalize_axis("repeat", axis, shape.len())?;
        let wide = replace_axis(&shape, a, &[repeats, shape[a]]);
        let dims: Vec<usize> = (0..shape.len())
            .map(|i| if i < a { i } else { i + 1 })
            .collect();
        self.broadcast_in_dim(&wide, &dims)?.reshape(&replace_axis(
            &shape,
            a,
            &[repeats * shape[a]],
        ))
    }

    /// `jnp.take(x, indices, axis, mode="clip")`: result shape `shape[..axis] ++
    /// indices.shape ++ shape[axis+1..]`; indices (i64, or i32 converted) are clipped into
    /// `[0, shape[axis] - 1]` (NumPy's clip mode: a negative index clips to 0, it does not
    /// count from the end). Composite: `gather`. Errors name `take`.
    #[track_caller]
    pub fn take(&self, indices: &TracedTensor, axis: isize) -> Result<TracedTensor> {
        let (tx, ti) = (self.ty()?, indices.ty()?);
        let a = normalize_axis("take", axis, tx.shape.len())?;
        let indices = indices.as_index("take", "indices")?;
        if tx.shape[a] == 0 {
            return Err(bad(
                "take",
                format!("cannot take from empty axis {a} of operand {tx}, indices {ti}"),
            ));
        }
        self.gather(&indices, a)
    }

    /// `jax.lax.slice_in_dim(x, start, limit, stride, axis)`: `start..limit` with step
    /// `stride` along one axis, every other axis whole (upstream tenferro's eager
    /// `slice_axis(axis, start..limit)` with stride 1). Composite: `slice_strided`. Errors
    /// name `slice_in_dim`: an axis out of range, `start > limit`, `limit` past the axis
    /// length, a zero stride.
    #[track_caller]
    pub fn slice_in_dim(
        &self,
        start: usize,
        limit: usize,
        stride: usize,
        axis: isize,
    ) -> Result<TracedTensor> {
        let op = "slice_in_dim";
        let ty = self.ty()?;
        let a = normalize_axis(op, axis, ty.shape.len())?;
        let n = ty.shape[a];
        if start > limit || limit > n || stride == 0 {
            return Err(bad(
                op,
                format!(
                    "range {start}..{limit} step {stride} on axis {a} of operand {ty}: expected start <= limit <= {n} and step >= 1"
                ),
            ));
        }
        let (mut starts, mut limits, mut strides) = (
            vec![0; ty.shape.len()],
            ty.shape.clone(),
            vec![1; ty.shape.len()],
        );
        (starts[a], limits[a], strides[a]) = (start, limit, stride);
        self.slice_strided(&starts, &limits, &strides)
    }

    /// `torch.index_select(x, axis, positions)` with the positions fixed at trace time:
    /// the entries at `positions` along `axis`, in that order (repeats allowed); result
    /// shape `shape[..axis] ++ [positions.len()] ++ shape[axis+1..]`. Composite: `gather`
    /// with a constant i64 index vector, so the derivative scatters back and repeated
    /// positions accumulate. Errors name `index_select`: an axis out of range, a position
    /// not below the axis length.
    #[track_caller]
    pub fn index_select(&self, axis: isize, positions: &[usize]) -> Result<TracedTensor> {
        let ty = self.ty()?;
        let a = normalize_axis("index_select", axis, ty.shape.len())?;
        let n = ty.shape[a];
        if let Some(&p) = positions.iter().find(|&&p| p >= n) {
            return Err(bad(
                "index_select",
                format!("position {p} out of bounds for axis {a} of length {n} (operand {ty})"),
            ));
        }
        let idx: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
        self.gather(&TracedTensor::from_vec_col_major(vec![idx.len()], idx), a)
    }

    /// `jnp.take_along_axis(x, indices, axis, mode="clip")`: `indices` (i64, or i32
    /// converted) has the
    /// operand's rank; `result[.., j, ..] = x[.., clip(indices[.., j, ..]), ..]` along
    /// `axis`, the other axes broadcasting between `x` and `indices` (NumPy rules, equal
    /// or 1). Indices are clipped into `[0, shape[axis] - 1]`.
    ///
    /// Composite: the indices are clipped (`max`/`min`) and turned into linear
    /// column-major offsets with `iota`, then one `gather` from the flattened operand.
    /// Errors name `take_along_axis`.
    #[track_caller]
    pub fn take_along_axis(&self, indices: &TracedTensor, axis: isize) -> Result<TracedTensor> {
        let op = "take_along_axis";
        let (tx, ti) = (self.ty()?, indices.ty()?);
        let r = tx.shape.len();
        let a = normalize_axis(op, axis, r)?;
        let indices = &indices.as_index(op, "indices")?;
        if ti.shape.len() != r {
            return Err(bad(
                op,
                format!("indices {ti} must have the rank of the operand {tx} ({r})"),
            ));
        }
        if tx.shape[a] == 0 {
            return Err(bad(
                op,
                format!("cannot take from empty axis {a} of operand {tx}"),
            ));
        }
        let mut xs = tx.shape.clone();
        let mut is = ti.shape.clone();
        for i in 0..r {
            if i == a {
                continue;
            }
            let (p, q) = (tx.shape[i], ti.shape[i]);
            let m = if p == q || q == 1 {
                p
            } else if p == 1 {
                q
            } else {
                return Err(bad(
                    op,
                    format!(
                        "operand {tx} and indices {ti} do not broadcast on axis {i} (expected equal lengths or 1)"
                    ),
                ));
            };
            xs[i] = m;
            is[i] = m;
        }
        let all: Vec<usize> = (0..r).collect();
        let x = if xs != tx.shape {
            self.broadcast_in_dim(&xs, &all)?
        } else {
            self.clone()
        };
        let idx = if is != ti.shape {
            indices.broadcast_in_dim(&is, &all)?
        } else {
            indices.clone()
        };
        let n = xs[a];
        let clipped = clamp_i64(&idx, 0, (n - 1) as i64)?;
        let mut stride = 1usize;
        let mut lin: Option<TracedTensor> = None;
        for i in 0..r {
            let term = if i == a {
                &clipped * &i64_scalar(stride as i64)
            } else {
                &TracedTensor::iota(DType::I64, &is, i)? * &i64_scalar(stride as i64)
            };
            lin = Some(match lin {
                None => term,
                Some(l) => &l + &term,
            });
            stride *= xs[i];
        }
        let lin = match lin {
            Some(l) => ok(l)?,
            None => unreachable!("rank ≥ 1 after normalize_axis"),
        };
        x.flatten()?.gather(&lin, 0)
    }

    /// `jnp.diagonal(x, offset, axis1, axis2)`: the elements `x[.., i, .., i + offset, ..]`
    /// (row index on `axis1`, column on `axis2`); both axes are removed and the diagonal
    /// becomes the LAST axis, the other axes keeping their order. Its length is
    /// `max(0, min(n1, n2 - offset))` for `offset ≥ 0`, `max(0, min(n1 + offset, n2))`
    /// otherwise.
    ///
    /// Composite: `transpose` of the two axes to the end, a column-major `reshape`
    /// merging them, and one `gather` at the diagonal's linear offsets (a `slice` when it
    /// is empty). Errors (naming `diagonal`) for equal or out-of-range axes.
    #[track_caller]
    pub fn diagonal(&self, offset: i64, axis1: isize, axis2: isize) -> Result<TracedTensor> {
        let op = "diagonal";
        let ty = self.ty()?;
        let r = ty.shape.len();
        let a1 = normalize_axis(op, axis1, r)?;
        let a2 = normalize_axis(op, axis2, r)?;
        if a1 == a2 {
            return Err(bad(
                op,
                format!("axis1 and axis2 are both axis {a1} of operand {ty}, expected two different axes"),
            ));
        }
        let (n1, n2) = (ty.shape[a1], ty.shape[a2]);
        let k = offset.unsigned_abs() as usize;
        let (i0, j0) = if offset >= 0 { (0, k) } else { (k, 0) };
        let len = if i0 >= n1 || j0 >= n2 {
            0
        } else {
            (n1 - i0).min(n2 - j0)
        };
        let others: Vec<usize> = (0..r).filter(|&i| i != a1 && i != a2).collect();
        let mut perm = others.clone();
        perm.push(a1);
        perm.push(a2);
        let identity = perm.iter().enumerate().all(|(i, &p)| i == p);
        let y = if identity {
            self.clone()
        } else {
            self.transpose(&perm)?
        };
        let mut merged: Vec<usize> = others.iter().map(|&i| ty.shape[i]).collect();
        let ax = merged.len();
        merged.push(n1 * n2);
        let y = y.reshape(&merged)?;
        if len == 0 {
            let mut lim = merged.clone();
            lim[ax] = 0;
            return y.slice(&vec![0; ax + 1], &lim);
        }
        let base = (i0 + n1 * j0) as i64;
        let step = (n1 + 1) as i64;
        y.gather(
            &i64_vec((0..len as i64).map(|t| base + t * step).collect()),
            ax,
        )
    }

    /// Upstream tenferro's `extract_diag(axis_a, axis_b)`: the main diagonal over `axis_a`
    /// and `axis_b`, with `axis_b` removed and the diagonal (length `min` of the two) in
    /// `axis_a`'s place, the other axes keeping their order: `[n, n, b..]` → `[n, b..]`
    /// for `(0, 1)`. (Unlike [`TracedTensor::diagonal`], which puts it last, as jnp.)
    /// The inverse direction is [`TracedTensor::embed_diag`] with the same axes.
    /// Composite: `diagonal` and a `transpose`. Errors name `diagonal`.
    #[track_caller]
    pub fn extract_diag(&self, axis_a: isize, axis_b: isize) -> Result<TracedTensor> {
        let r = self.ty()?.shape.len();
        let a = normalize_axis("diagonal", axis_a, r)?;
        let b = normalize_axis("diagonal", axis_b, r)?;
        let d = self.diagonal(0, axis_a, axis_b)?;
        // the diagonal is last (axis r - 2); it goes where axis_a was once axis_b is gone
        let p = if a < b { a } else { a - 1 };
        let perm: Vec<usize> = (0..r - 1)
            .map(|j| match j.cmp(&p) {
                std::cmp::Ordering::Less => j,
                std::cmp::Ordering::Equal => r - 2,
                std::cmp::Ordering::Greater => j - 1,
            })
            .collect();
        if perm.iter().enumerate().all(|(i, &q)| i == q) {
            Ok(d)
        } else {
            d.transpose(&perm)
        }
    }

    /// The inverse of taking a diagonal: axis 0 of `self` (length `n`) becomes the
    /// diagonal `offset` of a square matrix of side `n + |offset|` on the two FIRST axes
    /// of the result (this project's matrix axes); the other axes of `self` follow as batch
    /// axes: `[n, b..] → [m, m, b..]` with `result[i, i + offset, b..] = self[i', b..]`.
    /// (Note [`TracedTensor::diagonal`] puts the diagonal last, as jnp does; move it to
    /// the front to round-trip batched input.)
    ///
    /// Composite: a column-major `reshape` to `[1, n, b..]`, `pad` of the first axis to
    /// `m + 1` zeros per element, `reshape` merging them, `pad_general` (zeros / cropping)
    /// to `m·m` at the diagonal's first linear offset and a `reshape` to `[m, m, b..]`.
    /// Errors (naming `diag_embed`) for a rank-0 operand.
    #[track_caller]
    pub fn diag_embed(&self, offset: i64) -> Result<TracedTensor> {
        let ty = self.ty()?;
        let r = ty.shape.len();
        if r == 0 {
            return Err(bad(
                "diag_embed",
                format!("operand {ty} has rank 0, expected the diagonal on axis 0"),
            ));
        }
        let n = ty.shape[0];
        let k = offset.unsigned_abs() as usize;
        let m = n + k;
        let batch = &ty.shape[1..];
        let mut s = vec![1, n];
        s.extend_from_slice(batch);
        let mut hi = vec![0; r + 1];
        hi[0] = m;
        let y = self.reshape(&s)?.pad(&vec![0; r + 1], &hi, 0.0)?;
        let total = (m + 1) * n;
        let mut flat = vec![total];
        flat.extend_from_slice(batch);
        let y = y.reshape(&flat)?;
        let base = if offset >= 0 { m * k } else { k };
        let mut low = vec![0i64; r];
        low[0] = base as i64;
        let mut high = vec![0i64; r];
        high[0] = (m * m) as i64 - base as i64 - total as i64;
        let y = y.pad_general(&low, &high, &vec![0; r], 0.0)?;
        let mut out = vec![m, m];
        out.extend_from_slice(batch);
        y.reshape(&out)
    }

    /// Upstream tenferro's `embed_diag(axis_a, axis_b)`, the transpose of
    /// [`TracedTensor::extract_diag`]: a new axis of length `shape[axis_a]` is inserted at
    /// result position `axis_b` (`0..=rank`), and `self` is put on the diagonal of that
    /// axis and `axis_a`, zeros elsewhere: `[n, b..]` → `[n, n, b..]` for `(0, 1)`; `[2, 3]`
    /// → `[3, 2, 3]` with `result[j, i, j] = self[i, j]` for `(1, 0)`. Composite:
    /// `transpose`, [`TracedTensor::diag_embed`] and `transpose`. Errors name `embed_diag`.
    #[track_caller]
    pub fn embed_diag(&self, axis_a: isize, axis_b: isize) -> Result<TracedTensor> {
        let op = "embed_diag";
        let r = self.ty()?.shape.len();
        let a = normalize_axis(op, axis_a, r)?;
        let b = normalize_axis(op, axis_b, r + 1)?;
        // axis a first, the others in order, then both copies of it first
        let front: Vec<usize> = std::iter::once(a)
            .chain((0..r).filter(|&i| i != a))
            .collect();
        let x = if a == 0 {
            self.clone()
        } else {
            self.transpose(&front)?
        };
        let y = x.diag_embed(0)?;
        let a_out = if b <= a { a + 1 } else { a };
        let perm: Vec<usize> = (0..=r)
            .map(|j| {
                if j == b {
                    0
                } else if j == a_out {
                    1
                } else {
                    // input axis i sits at j = i + (b <= i); in y it is 2 + its place
                    // among the axes other than a
                    let i = if j > b { j - 1 } else { j };
                    2 + i - usize::from(i > a)
                }
            })
            .collect();
        if perm.iter().enumerate().all(|(i, &q)| i == q) {
            Ok(y)
        } else {
            y.transpose(&perm)
        }
    }

    /// The matrix axes (0 and 1) of `self` and an error naming `op` when the rank is < 2.
    #[track_caller]
    fn matrix_dims(&self, op: &str) -> Result<(usize, usize)> {
        let ty = self.ty()?;
        if ty.shape.len() < 2 {
            return Err(bad(
                op,
                format!(
                    "operand {ty} has rank {}, expected matrices on the first two axes (rank ≥ 2)",
                    ty.shape.len()
                ),
            ));
        }
        Ok((ty.shape[0], ty.shape[1]))
    }

    #[track_caller]
    fn triangle(&self, op: &str, k: i64, dir: CmpOp) -> Result<TracedTensor> {
        let (n1, n2) = self.matrix_dims(op)?;
        let shape = self.shape()?;
        let diff = ok(&TracedTensor::iota(DType::I64, &[n1, n2], 1)?
            - &TracedTensor::iota(DType::I64, &[n1, n2], 0)?)?;
        let mask = ok(diff.compare(dir, &TracedTensor::scalar(k)))?;
        let mask = mask.broadcast_in_dim(&shape, &[0, 1])?;
        ok(TracedTensor::select(&mask, self, &self.zero_scalar()?))
    }

    /// `jnp.tril` on this project's matrix axes (the first two; batch axes follow): keeps
    /// `x[i, j, ..]` where `j - i ≤ k` and zeroes the rest. Composite: `iota`, `compare`,
    /// `broadcast_in_dim`, `select`. Errors (naming `tril`) for rank < 2.
    #[track_caller]
    pub fn tril(&self, k: i64) -> Result<TracedTensor> {
        self.triangle("tril", k, CmpOp::Le)
    }

    /// `jnp.triu` on the first two axes: keeps `x[i, j, ..]` where `j - i ≥ k`.
    /// Composite as [`TracedTensor::tril`]; errors name `triu`.
    #[track_caller]
    pub fn triu(&self, k: i64) -> Result<TracedTensor> {
        self.triangle("triu", k, CmpOp::Ge)
    }

    /// The trace of the matrices on the first two axes (shape: the batch axes).
    /// Composite: [`TracedTensor::diagonal`] then a sum. Errors name `trace`.
    #[track_caller]
    pub fn trace(&self) -> Result<TracedTensor> {
        self.matrix_dims("trace")?;
        let r = self.shape()?.len();
        ok(self.diagonal(0, 0, 1)?.reduce_sum(&[r - 2]))
    }

    /// Matrix transpose: swaps the two matrix axes, which in this project are the FIRST
    /// two (axes 0 and 1, batch axes after them; unlike NumPy's `.mT`, which swaps the
    /// last two). Same as [`TracedTensor::t`]. Composite: `transpose`. Errors name `mt`.
    #[track_caller]
    pub fn mt(&self) -> Result<TracedTensor> {
        self.matrix_dims("mt")?;
        let r = self.shape()?.len();
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(0, 1);
        self.transpose(&perm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(shape: &[usize]) -> TracedTensor {
        TracedTensor::zeros(&TensorType::new(DType::F64, shape.to_vec()))
    }

    #[test]
    fn shapes() {
        let x = f(&[5, 3]);
        assert_eq!(
            x.slice_strided(&[1, 0], &[5, 3], &[2, 2])
                .unwrap()
                .shape()
                .unwrap(),
            vec![2, 2]
        );
        assert_eq!(
            x.pad_general(&[-1, 2], &[0, -1], &[1, 0], 0.0)
                .unwrap()
                .shape()
                .unwrap(),
            vec![8, 4]
        );
        assert_eq!(x.diagonal(1, 0, 1).unwrap().shape().unwrap(), vec![2]);
        assert_eq!(x.diagonal(-4, 0, 1).unwrap().shape().unwrap(), vec![1]);
        assert_eq!(x.diagonal(3, 0, 1).unwrap().shape().unwrap(), vec![0]);
        assert_eq!(x.tile(&[2, 1, 3]).unwrap().shape().unwrap(), vec![2, 5, 9]);
        assert_eq!(x.repeat(2, -1).unwrap().shape().unwrap(), vec![5, 6]);
        assert_eq!(
            TracedTensor::stack(&[&x, &x], -1).unwrap().shape().unwrap(),
            vec![5, 3, 2]
        );
        let parts = x.split_into(3, 0).unwrap();
        let lens: Vec<usize> = parts.iter().map(|p| p.shape().unwrap()[0]).collect();
        assert_eq!(lens, vec![2, 2, 1]);
        let e = x.squeeze(&[0]).unwrap_err().to_string();
        assert!(e.contains("squeeze") && e.contains("length 5"), "{e}");
        let e = x.reverse(&[2]).unwrap_err().to_string();
        assert!(e.contains("reverse") && e.contains("axis 2"), "{e}");
    }
}
