//! Runs a [`KernelSchedule`]: splits the output buffers into per-block chunks, runs the
//! blocks (in parallel on the backend's thread pool when there are several), and combines
//! the block partials of whole reductions in block order. A group that is one binary op
//! with a [`DirectBinary`] plan runs without tile slots, one loop per contiguous run.

use super::tile::{
    combine, eval, fold_scalar, identity, out_len, reduce_lanes, reduce_rows, reduce_run,
    slice_mut_of, slice_of, strided_run, twin_eval, whole_mut, Slice, SliceMut, LANES,
};
use crate::error::internal;
use crate::schedule::{
    DirectBinary, Dst, KernelSchedule, OutputKind, ReduceEpilogue, ReduceMode, Src, StridedLoad,
    TileOpKind, FAST_ROWS_MIN, ROW_GROUP, TARGET_BLOCK,
};
use rayon::prelude::*;
use tenferro_ir::{DType, Data, ElemMap2};
use tenferro_runtime::{Result, RuntimeError};

type KResult = std::result::Result<(), String>;

/// Calls `body(pos, offset, run, stride)` for the runs of axis 0 covering flat positions
/// `start .. start + len` of a column-major iteration over `shape`, where `offset` is
/// `base + Σ i_a · strides[a]` at the run's first position and `pos` counts from `start`.
fn walk_runs(
    shape: &[usize],
    strides: &[usize],
    base: usize,
    start: usize,
    len: usize,
    mut body: impl FnMut(usize, usize, usize, usize) -> KResult,
) -> KResult {
    if shape.is_empty() {
        return body(0, base, len, 0);
    }
    let rank = shape.len();
    let mut idx = vec![0usize; rank];
    let mut rem = start;
    let mut off = base;
    for a in 0..rank {
        idx[a] = rem % shape[a];
        rem /= shape[a];
        off += idx[a] * strides[a];
    }
    let mut pos = 0;
    while pos < len {
        let run = (shape[0] - idx[0]).min(len - pos);
        body(pos, off, run, strides[0])?;
        pos += run;
        idx[0] += run;
        off += run * strides[0];
        let mut a = 0;
        while a < rank && idx[a] == shape[a] {
            off -= shape[a] * strides[a];
            idx[a] = 0;
            if a + 1 < rank {
                idx[a + 1] += 1;
                off += strides[a + 1];
            }
            a += 1;
        }
    }
    Ok(())
}

fn load(l: &StridedLoad, src: &Data, dst: &mut SliceMut<'_>, t: usize, len: usize) -> KResult {
    walk_runs(
        &l.shape,
        &l.strides,
        l.offset,
        t,
        len,
        |pos, off, run, st| strided_run(dst, pos, src, off, st, run),
    )
}

struct Block<'a> {
    b0: usize,
    b1: usize,
    /// `Some((n0, rows))`: the block is a stripe, positions `b0 .. b1` of each of `rows`
    /// runs of `n0` (a column-major `[n0, rows]` iteration space; see [`stripes`]).
    stripe: Option<(usize, usize)>,
    /// Chunk of each output (None for whole reductions) and its first element's index.
    outs: Vec<Option<SliceMut<'a>>>,
    out_base: Vec<usize>,
}

#[inline(always)]
fn resolve<'a>(
    src: &Src,
    slots: &'a [Data],
    inputs: &[&'a Data],
    outs: &'a [Option<SliceMut<'_>>],
    t: usize,
    rel: usize,
    len: usize,
) -> std::result::Result<Option<Slice<'a>>, String> {
    Ok(match *src {
        Src::Slot(x) => {
            let d = slots.get(x).ok_or("tile slot out of range")?;
            if d.len() < len {
                return Err(format!("tile slot t{x} read while it is the destination"));
            }
            Some(slice_of(d, 0..len))
        }
        Src::Input { input, offset } => {
            let d = inputs.get(input).ok_or("input out of range")?;
            if d.len() < offset + t + len {
                return Err(format!(
                    "input in{input} is shorter than the iteration space"
                ));
            }
            Some(slice_of(d, offset + t..offset + t + len))
        }
        Src::Scalar { input, offset } => {
            let d = inputs.get(input).ok_or("input out of range")?;
            if d.len() <= offset {
                return Err(format!(
                    "input in{input} is shorter than its scalar's offset"
                ));
            }
            Some(slice_of(d, offset..offset + 1))
        }
        Src::Output(o) => match outs.get(o) {
            Some(Some(c)) => Some(c.sub(rel..rel + len)),
            // The destination itself: an in-place update.
            _ => None,
        },
    })
}

/// A destination taken out of the block while an op writes it.
enum Taken<'a> {
    Slot(usize, Data),
    Out(usize, SliceMut<'a>),
}

impl Taken<'_> {
    /// The tile's part of the destination.
    fn slice(&mut self, rel: usize, len: usize) -> SliceMut<'_> {
        match self {
            Taken::Slot(_, d) => slice_mut_of(d, 0..len),
            Taken::Out(_, c) => c.sub_mut(rel..rel + len),
        }
    }
}

fn take_dst<'a>(
    d: Dst,
    slots: &mut [Data],
    outs: &mut [Option<SliceMut<'a>>],
) -> std::result::Result<Taken<'a>, String> {
    Ok(match d {
        Dst::Slot(x) => {
            let buf = slots.get_mut(x).ok_or("tile slot out of range")?;
            Taken::Slot(x, std::mem::replace(buf, Data::Bool(Vec::new())))
        }
        Dst::Output(o) => Taken::Out(
            o,
            outs.get_mut(o)
                .and_then(Option::take)
                .ok_or("output chunk missing")?,
        ),
    })
}

fn put_dst<'a>(t: Taken<'a>, slots: &mut [Data], outs: &mut [Option<SliceMut<'a>>]) {
    match t {
        Taken::Slot(x, d) => slots[x] = d,
        Taken::Out(o, c) => outs[o] = Some(c),
    }
}

/// Tile slots of one worker for schedule `s` (allocated once per worker, reused over its
/// blocks; see also [`run_rows`]): one set, or [`ROW_GROUP`] sets side by side when the
/// blocks may fold fastest-axis runs together ([`run_fast_rows`]). An allocation failure
/// is an error naming the bytes.
pub(crate) fn new_slots(s: &KernelSchedule) -> std::result::Result<Vec<Data>, String> {
    let sets = if fast_rows_run(s).is_some() {
        ROW_GROUP
    } else {
        1
    };
    (0..sets)
        .flat_map(|_| &s.slot_types)
        .map(|d| Data::try_zeros("tile slots", *d, s.tile).map_err(|e| e.to_string()))
        .collect()
}

/// Runs positions `b0 .. b1` of a schedule whose only output is elementwise (`Tiles`),
/// writing them to `out` (that output's elements `b0 .. b1`); `slots` from
/// [`new_slots`]. Inputs are read at those positions only (and through their loads).
pub(crate) fn run_rows(
    s: &KernelSchedule,
    inputs: &[&Data],
    b0: usize,
    b1: usize,
    out: SliceMut<'_>,
    slots: &mut [Data],
) -> KResult {
    if s.outputs.len() != 1
        || !matches!(s.outputs[0].kind, OutputKind::Tiles)
        || !s.reductions.is_empty()
        || b0 > b1
        || b1 > s.numel
        || out_len(&out) != b1 - b0
    {
        return Err("rows of a schedule that is not one elementwise output".into());
    }
    let blk = Block {
        b0,
        b1,
        stripe: None,
        outs: vec![Some(out)],
        out_base: vec![b0],
    };
    run_block(s, inputs, blk, slots).map(|_| ())
}

fn run_block(
    s: &KernelSchedule,
    inputs: &[&Data],
    mut blk: Block<'_>,
    slots: &mut [Data],
) -> std::result::Result<Vec<Option<Data>>, String> {
    if column_sums(s, inputs, &mut blk)? {
        return Ok(vec![None]);
    }
    let slots = &mut *slots;
    let mut lanes: Vec<Option<Data>> = s
        .reductions
        .iter()
        .map(|r| matches!(r.mode, ReduceMode::Whole).then(|| identity(r.kind, r.dtype, LANES)))
        .collect();
    for r in &s.reductions {
        if let ReduceMode::Rows { .. } = r.mode {
            if let Some(Some(c)) = blk.outs.get_mut(r.out) {
                let id = identity(r.kind, r.dtype, 1);
                let n = out_len(c);
                strided_run(c, 0, &id, 0, 0, n)?;
            }
        }
    }
    if let Some(n0) = fast_rows(s, &blk, slots) {
        run_fast_rows(s, inputs, &mut blk, slots, &mut lanes, n0)?;
    } else {
        // The block's positions: `b0 .. b1`, or for a stripe that part of each of its runs.
        let (n0, rows) = blk.stripe.unwrap_or((0, 1));
        let (width, b0) = (blk.b1 - blk.b0, blk.b0);
        for (t, end) in (0..rows).map(|r| (b0 + r * n0, b0 + r * n0 + width)) {
            run_tiles(s, inputs, &mut blk, slots, &mut lanes, t, end)?;
        }
    }
    s.reductions
        .iter()
        .zip(lanes)
        .map(|(r, l)| match l {
            Some(mut l) => combine(r.kind, whole_mut(&mut l)).map(Some),
            None => Ok(None),
        })
        .collect()
}

/// Runs the tiles of positions `t .. end` (elementwise outputs indexed from `blk.b0`).
#[allow(clippy::too_many_arguments)]
fn run_tiles(
    s: &KernelSchedule,
    inputs: &[&Data],
    blk: &mut Block<'_>,
    slots: &mut [Data],
    lanes: &mut [Option<Data>],
    mut t: usize,
    end: usize,
) -> KResult {
    while t < end {
        let len = s.tile.min(end - t);
        run_tile(s, inputs, blk, slots, lanes, t, len, false)?;
        t += len;
    }
    Ok(())
}

/// Runs the op list over the tile of positions `t .. t + len`; with `defer_rows`, row
/// reductions are left for the caller to fold (their operands stay in `slots`).
#[allow(clippy::too_many_arguments)]
fn run_tile(
    s: &KernelSchedule,
    inputs: &[&Data],
    blk: &mut Block<'_>,
    slots: &mut [Data],
    lanes: &mut [Option<Data>],
    t: usize,
    len: usize,
    defer_rows: bool,
) -> KResult {
    let rel = t - blk.b0;
    for l in &s.loads {
        let mut buf = std::mem::replace(&mut slots[l.slot], Data::Bool(Vec::new()));
        let src = inputs.get(l.input).ok_or("load input out of range")?;
        load(l, src, &mut whole_mut(&mut buf), t, len)?;
        slots[l.slot] = buf;
    }
    for op in &s.ops {
        let mut srcs: [Option<Slice<'_>>; 3] = [None; 3];
        match (&op.kind, op.dst) {
            (TileOpKind::Reduce(r), _) => {
                let red = &s.reductions[*r];
                match &red.mode {
                    ReduceMode::Whole => {
                        let x = resolve(&op.srcs[0], slots, inputs, &blk.outs, t, rel, len)?
                            .ok_or("reduction operand missing")?;
                        let acc = lanes[*r].as_mut().ok_or("reduction lanes missing")?;
                        reduce_lanes(red.kind, whole_mut(acc), x)?;
                    }
                    ReduceMode::Rows {
                        shape, out_strides, ..
                    } => {
                        if defer_rows {
                            continue;
                        }
                        let mut chunk = blk.outs[red.out]
                            .take()
                            .ok_or("row reduction output missing")?;
                        let base = blk.out_base.get(red.out).copied().unwrap_or(0);
                        let x = resolve(&op.srcs[0], slots, inputs, &blk.outs, t, rel, len)?
                            .ok_or("reduction operand missing")?;
                        walk_runs(shape, out_strides, 0, t, len, |pos, off, run, os| {
                            reduce_run(red.kind, &mut chunk, off - base, os, x.sub(pos..pos + run))
                        })?;
                        blk.outs[red.out] = Some(chunk);
                    }
                }
            }
            (
                TileOpKind::Twin {
                    twin,
                    other,
                    a_first,
                    ..
                },
                Some(first),
            ) => {
                // Both destinations taken out, the operand read, both put back.
                let mut a = take_dst(first, slots, &mut blk.outs)?;
                let mut b = take_dst(*other, slots, &mut blk.outs)?;
                let res = (|| {
                    let x = resolve(&op.srcs[0], slots, inputs, &blk.outs, t, rel, len)?
                        .ok_or("operand of a twin op missing")?;
                    let (a_dst, b_dst) = if *a_first {
                        (&mut a, &mut b)
                    } else {
                        (&mut b, &mut a)
                    };
                    twin_eval(*twin, x, a_dst.slice(rel, len), b_dst.slice(rel, len))
                })();
                put_dst(b, slots, &mut blk.outs);
                put_dst(a, slots, &mut blk.outs);
                res?;
            }
            (kind, _)
                if !matches!(kind, TileOpKind::Binary(_) | TileOpKind::MulFolded { .. })
                    && op.srcs.iter().any(|x| matches!(x, Src::Scalar { .. })) =>
            {
                return Err("a broadcast scalar read by a non-binary op".into());
            }
            (kind, Some(Dst::Slot(x))) => {
                let mut buf = std::mem::replace(&mut slots[x], Data::Bool(Vec::new()));
                {
                    let d = slice_mut_of(&mut buf, 0..len);
                    for (i, src) in op.srcs.iter().enumerate().take(3) {
                        srcs[i] = resolve(src, slots, inputs, &blk.outs, t, rel, len)?;
                    }
                    eval(kind, &srcs[..op.srcs.len().min(3)], d)?;
                }
                slots[x] = buf;
            }
            (kind, Some(Dst::Output(o))) => {
                let mut chunk = blk.outs[o].take().ok_or("output chunk missing")?;
                {
                    let d = chunk.sub_mut(rel..rel + len);
                    for (i, src) in op.srcs.iter().enumerate().take(3) {
                        srcs[i] = resolve(src, slots, inputs, &blk.outs, t, rel, len)?;
                    }
                    eval(kind, &srcs[..op.srcs.len().min(3)], d)?;
                }
                blk.outs[o] = Some(chunk);
            }
            (_, None) => return Err("elementwise tile op without destination".into()),
        }
    }
    Ok(())
}

/// `Some(n0)` when every output of `s` comes from a row reduction over the fastest axis,
/// of `n0 ≥ FAST_ROWS_MIN` positions (`x.sum(axis=0)` on column-major data, a batched
/// inner product), no op reads a group output and no reduction's operand slot is
/// reused later in the tile: blocks of whole runs can then fold up to [`ROW_GROUP`] runs
/// at a time ([`run_fast_rows`]).
fn fast_rows_run(s: &KernelSchedule) -> Option<usize> {
    let mut n0 = None;
    for r in &s.reductions {
        let ReduceMode::Rows {
            shape, out_strides, ..
        } = &r.mode
        else {
            return None;
        };
        if shape.len() < 2 || out_strides[0] != 0 || n0.is_some_and(|m| m != shape[0]) {
            return None;
        }
        n0 = Some(shape[0]);
    }
    let n0 = n0?;
    let reads_output = s
        .ops
        .iter()
        .any(|op| op.srcs.iter().any(|x| matches!(x, Src::Output(_))));
    let only_rows = s
        .outputs
        .iter()
        .all(|o| matches!(o.kind, OutputKind::Reduction(_)));
    (only_rows && !reads_output && !operand_overwritten(s) && n0 >= FAST_ROWS_MIN).then_some(n0)
}

/// Whether a later op of the tile writes the slot a reduction reads (the slot is reused
/// once the reduction, its last reader, has run): a deferred fold would then read the
/// later value.
fn operand_overwritten(s: &KernelSchedule) -> bool {
    s.ops
        .iter()
        .enumerate()
        .any(|(i, op)| match (&op.kind, op.srcs.as_slice()) {
            (TileOpKind::Reduce(_), [Src::Slot(x)]) => s.ops[i + 1..].iter().any(|later| {
                let other = match later.kind {
                    TileOpKind::Twin { other, .. } => Some(other),
                    _ => None,
                };
                [later.dst, other].contains(&Some(Dst::Slot(*x)))
            }),
            _ => false,
        })
}

/// [`fast_rows_run`] for a block that holds two or more whole runs and has its
/// [`ROW_GROUP`] slot sets.
fn fast_rows(s: &KernelSchedule, blk: &Block<'_>, slots: &[Data]) -> Option<usize> {
    let n0 = fast_rows_run(s)?;
    (blk.stripe.is_none()
        && blk.b0.is_multiple_of(n0)
        && blk.b1.is_multiple_of(n0)
        && blk.b1 - blk.b0 >= 2 * n0
        && slots.len() >= ROW_GROUP * s.slot_types.len())
    .then_some(n0)
}

/// The output element run `run` (positions `run·n0 ..`) of a fastest-axis row reduction
/// folds into.
fn run_output(shape: &[usize], out_strides: &[usize], run: usize) -> usize {
    let mut rem = run;
    let mut off = 0;
    for (&n, &st) in shape.iter().zip(out_strides).skip(1) {
        off += rem % n * st;
        rem /= n;
    }
    off
}

/// Runs a block of [`run_fast_rows`] directly when its group is one f32 / f64 sum of the
/// product of two inputs over the fastest axis (a batched inner product, `(x * y).sum(0)`):
/// [`product_rows`] folds up to [`ROW_GROUP`] runs at a time with the multiply in the same loop, so the
/// folds' add latency hides behind the input stream (the staged form runs the multiply,
/// then the folds). Every output is `((+0 + x_0·y_0) + x_1·y_1) + …` in position order,
/// the tile loop's bits. `false` (nothing done) for any other group.
fn sum_of_products(
    s: &KernelSchedule,
    inputs: &[&Data],
    blk: &mut Block<'_>,
    n0: usize,
) -> std::result::Result<bool, String> {
    let Some((red, factors)) = sum_factors(s) else {
        return Ok(false);
    };
    let (
        [(ia, oa), (ib, ob)],
        ReduceMode::Rows {
            shape, out_strides, ..
        },
    ) = (factors.as_slice(), &red.mode)
    else {
        return Ok(false);
    };
    let (Some(a), Some(b)) = (inputs.get(*ia), inputs.get(*ib)) else {
        return Err("input out of range".into());
    };
    let base = blk.out_base.get(red.out).copied().unwrap_or(0);
    let Some(Some(out)) = blk.outs.get_mut(red.out) else {
        return Ok(false);
    };
    if a.len() < oa.saturating_add(blk.b1) || b.len() < ob.saturating_add(blk.b1) {
        return Err("sum of products: inputs shorter than the schedule".into());
    }
    let (r0, r1) = (blk.b0 / n0, blk.b1 / n0);
    let o = |r: usize| run_output(shape, out_strides, r).wrapping_sub(base);
    macro_rules! sums {
        ($a:expr, $b:expr, $y:expr) => {{
            if (r0..r1).any(|r| o(r) >= $y.len()) {
                return Err("sum of products: output outside its block".into());
            }
            let (xa, xb) = (&$a[*oa..], &$b[*ob..]);
            let ra = |r: usize| &xa[r * n0..(r + 1) * n0];
            let rb = |r: usize| &xb[r * n0..(r + 1) * n0];
            let distinct =
                |r: usize, g: usize| (1..g).all(|k| (0..k).all(|i| o(r + i) != o(r + k)));
            let mut r = r0;
            while r < r1 {
                if r + ROW_GROUP <= r1 && distinct(r, ROW_GROUP) {
                    let os: [usize; ROW_GROUP] = std::array::from_fn(|k| o(r + k));
                    let acc: [_; ROW_GROUP] = std::array::from_fn(|k| $y[os[k]]);
                    let xs = std::array::from_fn(|k| ra(r + k));
                    let ys = std::array::from_fn(|k| rb(r + k));
                    for (k, v) in os.iter().zip(product_rows(acc, xs, ys, n0)) {
                        $y[*k] = v;
                    }
                    r += ROW_GROUP;
                } else if r + 2 <= r1 && distinct(r, 2) {
                    let (o0, o1) = (o(r), o(r + 1));
                    let acc = [$y[o0], $y[o1]];
                    let [v0, v1] = product_rows(acc, [ra(r), ra(r + 1)], [rb(r), rb(r + 1)], n0);
                    ($y[o0], $y[o1]) = (v0, v1);
                    r += 2;
                } else {
                    let [v] = product_rows([$y[o(r)]], [ra(r)], [rb(r)], n0);
                    $y[o(r)] = v;
                    r += 1;
                }
            }
        }};
    }
    match (a, b, out) {
        (Data::F64(a), Data::F64(b), SliceMut::F64(y)) => sums!(a, b, y),
        (Data::F32(a), Data::F32(b), SliceMut::F32(y)) => sums!(a, b, y),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `acc[k] = ((acc[k] + x_k[0]·y_k[0]) + x_k[1]·y_k[1]) + …` for `G` runs of `n` elements
/// side by side (each product rounded, then added: no fused multiply-add). A separate
/// function: inlined into the block loop, its accumulators were kept on the stack.
#[inline(never)]
fn product_rows<T, const G: usize>(mut acc: [T; G], x: [&[T]; G], y: [&[T]; G], n: usize) -> [T; G]
where
    T: Copy + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
{
    let x: [&[T]; G] = std::array::from_fn(|k| &x[k][..n]);
    let y: [&[T]; G] = std::array::from_fn(|k| &y[k][..n]);
    for j in 0..n {
        for k in 0..G {
            acc[k] = acc[k] + x[k][j] * y[k][j];
        }
    }
    acc
}

/// Runs a block of whole runs of `n0` positions (see [`fast_rows`]) up to [`ROW_GROUP`]
/// runs at a time: per segment of the runs, the op list runs over each run's segment on
/// its own set of tile slots, then [`reduce_rows`] folds the runs' reduction operands side
/// by side. Each output still folds its elements in position order, so the bits are the
/// tile loop's; runs that share an output go through the tile loop.
fn run_fast_rows(
    s: &KernelSchedule,
    inputs: &[&Data],
    blk: &mut Block<'_>,
    slots: &mut [Data],
    lanes: &mut [Option<Data>],
    n0: usize,
) -> KResult {
    if sum_of_products(s, inputs, blk, n0)? {
        return Ok(());
    }
    let seg = s.tile.min(n0);
    // One set of tile slots per run of a group (none when the group needs no slots).
    let mut sets: Vec<&mut [Data]> = match s.slot_types.len() {
        0 => (0..ROW_GROUP).map(|_| &mut [][..]).collect(),
        n => slots.chunks_mut(n).take(ROW_GROUP).collect(),
    };
    let (mut r, r1) = (blk.b0 / n0, blk.b1 / n0);
    while r < r1 {
        let g = [ROW_GROUP, 2, 1]
            .into_iter()
            .find(|&g| g <= r1 - r)
            .unwrap_or(1);
        let mut offs = Vec::with_capacity(s.reductions.len());
        for red in &s.reductions {
            let ReduceMode::Rows {
                shape, out_strides, ..
            } = &red.mode
            else {
                return Err("interleaved fold of a whole reduction".into());
            };
            let base = blk.out_base.get(red.out).copied().unwrap_or(0);
            let o: [usize; ROW_GROUP] =
                std::array::from_fn(|k| run_output(shape, out_strides, r + k).wrapping_sub(base));
            offs.push(o);
        }
        let distinct = |o: &[usize; ROW_GROUP]| (1..g).all(|k| !o[..k].contains(&o[k]));
        if g < 2 || !offs.iter().all(distinct) {
            run_tiles(s, inputs, blk, &mut *sets[0], lanes, r * n0, (r + g) * n0)?;
            r += g;
            continue;
        }
        let mut j = 0;
        while j < n0 {
            let len = seg.min(n0 - j);
            let t = |k: usize| (r + k) * n0 + j;
            for (k, sl) in sets.iter_mut().enumerate().take(g) {
                run_tile(s, inputs, blk, sl, lanes, t(k), len, true)?;
            }
            for op in &s.ops {
                let TileOpKind::Reduce(ri) = op.kind else {
                    continue;
                };
                let red = s.reductions.get(ri).ok_or("reduction out of range")?;
                let o = offs[ri];
                let mut chunk = blk.outs[red.out]
                    .take()
                    .ok_or("row reduction output missing")?;
                let res = (|| {
                    let x = |k: usize| {
                        let rel = t(k) - blk.b0;
                        resolve(&op.srcs[0], sets[k], inputs, &blk.outs, t(k), rel, len)?
                            .ok_or_else(|| "reduction operand missing".to_string())
                    };
                    let mut xs = [x(0)?; ROW_GROUP];
                    for (k, xk) in xs.iter_mut().enumerate().take(g).skip(1) {
                        *xk = x(k)?;
                    }
                    reduce_rows(red.kind, &mut chunk, &o[..g], &xs[..g], len)
                })();
                blk.outs[red.out] = Some(chunk);
                res?;
            }
            j += len;
        }
        r += g;
    }
    Ok(())
}

/// The factors of a group that is one sum of an input (`[x]`) or of the product of two
/// inputs (`[x, y]`), each read straight from its input as `(input, offset)`; `None` for
/// any other group.
fn sum_factors(s: &KernelSchedule) -> Option<(&ReduceEpilogue, Vec<(usize, usize)>)> {
    let [red] = s.reductions.as_slice() else {
        return None;
    };
    if red.kind != tenferro_ir::ReduceOp::Sum || !s.loads.is_empty() {
        return None;
    }
    let input = |x: &Src| match *x {
        Src::Input { input, offset } => Some((input, offset)),
        _ => None,
    };
    match s.ops.as_slice() {
        [op] => match (&op.kind, op.srcs.as_slice()) {
            (TileOpKind::Reduce(0), [x]) => Some((red, vec![input(x)?])),
            _ => None,
        },
        [mul, fold] => match (
            &mul.kind,
            mul.srcs.as_slice(),
            mul.dst,
            &fold.kind,
            fold.srcs.as_slice(),
        ) {
            (
                TileOpKind::Binary(tenferro_ir::BinaryOp::Mul),
                [x, y],
                Some(Dst::Slot(t)),
                TileOpKind::Reduce(0),
                [Src::Slot(u)],
            ) if t == *u => Some((red, vec![input(x)?, input(y)?])),
            _ => None,
        },
        _ => None,
    }
}

/// Runs the block of a group that is one f32 / f64 sum of an input over the slow part of a
/// column-major `[n0, rows]` space (`x.sum(axis=-1)`) directly, when it is:
/// [`sum_columns`], four columns per pass over the block's outputs, each output still
/// `((+0 + x_0) + x_1) + …` in column order, so the bits are the tile loop's (which reads
/// the columns one per pass, about 12 GB/s against 25 for the input stream on the Xeon
/// VM). `false` (nothing done) for any other group.
fn column_sums(
    s: &KernelSchedule,
    inputs: &[&Data],
    blk: &mut Block<'_>,
) -> std::result::Result<bool, String> {
    let Some((red, factors)) = sum_factors(s) else {
        return Ok(false);
    };
    let Some([n0, rows]) = slow_part(&red.mode) else {
        return Ok(false);
    };
    if blk.outs.len() != 1 {
        return Ok(false);
    }
    // The block's result elements: all of them, or its stripe's.
    let (i0, i1) = match blk.stripe {
        Some(_) => (blk.b0, blk.b1),
        None if blk.b0 == 0 && blk.b1 == s.numel => (0, n0),
        None => return Ok(false),
    };
    let Some(Some(out)) = blk.outs.get_mut(0) else {
        return Ok(false);
    };
    let mut xs = Vec::with_capacity(2);
    for &(input, offset) in &factors {
        let x = inputs.get(input).ok_or("input out of range")?;
        if x.len() < offset.saturating_add(n0 * rows) {
            return Err("column sums: inputs shorter than the schedule".into());
        }
        xs.push((x, offset));
    }
    if out_len(out) != i1 - i0 {
        return Err("column sums: output chunk of the wrong length".into());
    }
    macro_rules! sums {
        ($V:ident, $y:expr) => {{
            let cols = |k: usize| match xs.get(k) {
                Some((Data::$V(x), offset)) => {
                    Some(move |r: usize| &x[offset + r * n0 + i0..offset + r * n0 + i1])
                }
                _ => None,
            };
            match (cols(0), cols(1), factors.len()) {
                (Some(a), None, 1) => {
                    #[cfg(target_arch = "x86_64")]
                    if std::arch::is_x86_feature_detected!("avx2") {
                        // SAFETY: the CPU supports AVX2 (checked just above).
                        unsafe { sum_columns_avx2($y, rows, &a) };
                        return Ok(true);
                    }
                    sum_columns($y, rows, &a);
                }
                (Some(a), Some(b), 2) => {
                    #[cfg(target_arch = "x86_64")]
                    if std::arch::is_x86_feature_detected!("avx2") {
                        // SAFETY: the CPU supports AVX2 (checked just above).
                        unsafe { sum_product_columns_avx2($y, rows, &a, &b) };
                        return Ok(true);
                    }
                    sum_product_columns($y, rows, &a, &b);
                }
                _ => return Ok(false),
            }
        }};
    }
    match out {
        SliceMut::F64(y) => sums!(F64, y),
        SliceMut::F32(y) => sums!(F32, y),
        _ => return Ok(false),
    }
    Ok(true)
}

/// [`sum_columns`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_columns_avx2<'a, T>(y: &mut [T], rows: usize, col: &impl Fn(usize) -> &'a [T])
where
    T: Copy + Default + std::ops::Add<Output = T> + 'a,
{
    sum_columns(y, rows, col)
}

/// `y = ((+0 + col(0)) + col(1)) + …`, four columns per pass over `y`. (The matrix-vector
/// loop `dot::add_columns` with every factor 1 gives the same bits but measured 10 %
/// slower here: it multiplies.)
#[inline(always)]
fn sum_columns<'a, T>(y: &mut [T], rows: usize, col: &impl Fn(usize) -> &'a [T])
where
    T: Copy + Default + std::ops::Add<Output = T> + 'a,
{
    y.fill(T::default());
    let mut r = 0;
    while r + 4 <= rows {
        let cols = col(r)
            .iter()
            .zip(col(r + 1))
            .zip(col(r + 2))
            .zip(col(r + 3));
        for (yi, (((&a, &b), &c), &d)) in y.iter_mut().zip(cols) {
            *yi = (((*yi + a) + b) + c) + d;
        }
        r += 4;
    }
    for r in r..rows {
        for (yi, &a) in y.iter_mut().zip(col(r)) {
            *yi = *yi + a;
        }
    }
}

/// [`sum_product_columns`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_product_columns_avx2<'a, T>(
    y: &mut [T],
    rows: usize,
    a: &impl Fn(usize) -> &'a [T],
    b: &impl Fn(usize) -> &'a [T],
) where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T> + 'a,
{
    sum_product_columns(y, rows, a, b)
}

/// `y = ((+0 + a(0)·b(0)) + a(1)·b(1)) + …` (each product rounded, then added), four
/// columns per pass over `y`.
#[inline(always)]
fn sum_product_columns<'a, T>(
    y: &mut [T],
    rows: usize,
    a: &impl Fn(usize) -> &'a [T],
    b: &impl Fn(usize) -> &'a [T],
) where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T> + 'a,
{
    y.fill(T::default());
    let mut r = 0;
    while r + 4 <= rows {
        let col = |k: usize| a(r + k).iter().zip(b(r + k));
        for (yi, (((p0, p1), p2), p3)) in
            y.iter_mut().zip(col(0).zip(col(1)).zip(col(2)).zip(col(3)))
        {
            *yi = (((*yi + *p0.0 * *p0.1) + *p1.0 * *p1.1) + *p2.0 * *p2.1) + *p3.0 * *p3.1;
        }
        r += 4;
    }
    for r in r..rows {
        for (yi, (&p, &q)) in y.iter_mut().zip(a(r).iter().zip(b(r))) {
            *yi = *yi + p * q;
        }
    }
}

/// `Some([n0, rows])` when a row reduction keeps only the fastest `n0` positions of its
/// column-major `[n0, rows]` space (it reduces the slow part, `x.sum(axis=-1)`).
fn slow_part(mode: &ReduceMode) -> Option<[usize; 2]> {
    match mode {
        ReduceMode::Rows {
            shape, out_strides, ..
        } if shape.len() == 2 && out_strides.as_slice() == [1, 0] => Some([shape[0], shape[1]]),
        _ => None,
    }
}

/// Fewest result elements of a stripe of the tile loop (see [`stripe_run`]): a stripe runs
/// its tiles one run of its width at a time, and 128-element stripes (a mul and sum over
/// 256 × 16384 f64) measured 1.5x slower than the single block at two threads.
const MIN_STRIPE: usize = 512;
/// Fewest result elements of a stripe that [`column_sums`] runs (no tile loop).
const MIN_DIRECT_STRIPE: usize = 64;

/// The fewest result elements of a stripe of `s`.
fn min_stripe(s: &KernelSchedule) -> usize {
    let direct = sum_factors(s).is_some_and(|(r, _)| matches!(r.dtype, DType::F32 | DType::F64));
    if direct {
        MIN_DIRECT_STRIPE
    } else {
        MIN_STRIPE
    }
}

/// `Some(n0)` when every output of `s` is a row reduction keeping only the fastest `n0`
/// positions of the iteration space (a column-major `[n0, rows]` space reduced over its
/// slow part, as `x.sum(axis=-1)` on column-major data), nothing reads a group output and
/// the space is large: the schedule's single block (the reduction runs over its slowest
/// axis) can then be cut into stripes of result elements instead, each folding its
/// elements in the same order ([`run_stripes`]).
fn stripe_run(s: &KernelSchedule) -> Option<usize> {
    let mut n0 = None;
    for o in &s.outputs {
        let OutputKind::Reduction(r) = o.kind else {
            return None;
        };
        let [n, _] = slow_part(&s.reductions[r].mode)?;
        if n0.is_some_and(|m| m != n) {
            return None;
        }
        n0 = Some(n);
    }
    let reads_output = s
        .ops
        .iter()
        .any(|op| op.srcs.iter().any(|x| matches!(x, Src::Output(_))));
    let n0 = n0?;
    (!reads_output && n0 >= 2 * min_stripe(s) && s.numel >= 4 * TARGET_BLOCK).then_some(n0)
}

/// Runs `s` (see [`stripe_run`]) as one stripe of result elements per thread of `pool`:
/// stripe `i0 .. i1` reads positions `i0 + n0·r .. i1 + n0·r` of every run `r` and writes
/// elements `i0 .. i1` of each output. Every element folds its inputs in the order of the
/// single block, so the bits do not depend on the thread count.
fn run_stripes(
    s: &KernelSchedule,
    n0: usize,
    inputs: &[&Data],
    outputs: &mut [Data],
    pool: &rayon::ThreadPool,
) -> std::result::Result<(), String> {
    let rows = s.numel / n0;
    let count = pool.current_num_threads().min(n0 / min_stripe(s)).max(1);
    // Stripe bounds on 16-element boundaries (whole cache lines of the outputs).
    let bound = |k: usize| (n0 * k / count).next_multiple_of(16).min(n0);
    let mut blocks: Vec<Block<'_>> = (0..count)
        .map(|k| Block {
            b0: bound(k),
            b1: bound(k + 1),
            stripe: Some((n0, rows)),
            outs: Vec::with_capacity(outputs.len()),
            out_base: Vec::with_capacity(outputs.len()),
        })
        .filter(|b| b.b1 > b.b0)
        .collect();
    for data in outputs.iter_mut() {
        let mut rest = whole_mut(data);
        let mut at = 0;
        for blk in blocks.iter_mut() {
            let (_, r) = rest.split_at(blk.b0 - at);
            let (mine, r) = r.split_at(blk.b1 - blk.b0);
            rest = r;
            at = blk.b1;
            blk.outs.push(Some(mine));
            blk.out_base.push(blk.b0);
        }
    }
    pool.install(|| {
        blocks
            .into_par_iter()
            .map_init(
                || new_slots(s),
                |slots, b| match slots {
                    Ok(slots) => run_block(s, inputs, b, slots).map(|_| ()),
                    Err(e) => Err(e.clone()),
                },
            )
            .collect::<std::result::Result<Vec<()>, String>>()
    })
    .map(|_| ())
}

/// One block over the whole iteration space (no split, no thread hop): the common case
/// of small groups.
fn run_single(
    s: &KernelSchedule,
    inputs: &[&Data],
    outputs: &mut [Data],
) -> std::result::Result<(), String> {
    let mut outs: Vec<Option<SliceMut<'_>>> = Vec::with_capacity(outputs.len());
    for (spec, data) in s.outputs.iter().zip(outputs.iter_mut()) {
        let whole = matches!(spec.kind, OutputKind::Reduction(r)
            if matches!(s.reductions[r].mode, ReduceMode::Whole));
        // Rows: the single block's chunk is the whole output (`(0, n / q * per)`).
        outs.push((!whole).then(|| whole_mut(data)));
    }
    let blk = Block {
        b0: 0,
        b1: s.numel,
        stripe: None,
        outs,
        out_base: Vec::new(),
    };
    let mut slots = new_slots(s)?;
    let partial = run_block(s, inputs, blk, &mut slots)?;
    for (r, red) in s.reductions.iter().enumerate() {
        if let ReduceMode::Whole = red.mode {
            let x = partial[r].as_ref().ok_or("missing block partial")?;
            let mut acc = identity(red.kind, red.dtype, 1);
            fold_scalar(red.kind, whole_mut(&mut acc), slice_of(x, 0..1))?;
            outputs[red.out] = acc;
        }
    }
    Ok(())
}

/// The runs covering elements `e0 .. e0 + len` (column-major) of a [`DirectBinary`]'s
/// shape, as `(done, take, offsets)`: `take` elements written at `done` of the chunk, each
/// operand read from `offsets[k]` (its run start plus the position within the run when it
/// is contiguous along the run). The first and last runs may be partial. An iterator
/// rather than a callback, so that the loop over a run is compiled in its caller's
/// `target_feature` context (a closure does not inherit it).
struct Runs<'a> {
    d: &'a DirectBinary,
    idx: Vec<usize>,
    off: [usize; 2],
    /// Each operand's stride along the run (1: contiguous, 0: one element repeated).
    unit: [usize; 2],
    p: usize,
    done: usize,
    len: usize,
}

impl<'a> Runs<'a> {
    #[inline(always)]
    fn new(d: &'a DirectBinary, e0: usize, len: usize) -> Self {
        let n0 = d.shape[0];
        let rank = d.shape.len();
        let mut idx = vec![0usize; rank];
        let mut off = [d.operands[0].1, d.operands[1].1];
        let mut rem = e0 / n0;
        for a in 1..rank {
            idx[a] = rem % d.shape[a];
            rem /= d.shape[a];
            for (o, (_, _, st)) in off.iter_mut().zip(&d.operands) {
                *o += idx[a] * st[a];
            }
        }
        let unit = [d.operands[0].2[0], d.operands[1].2[0]];
        Runs {
            d,
            idx,
            off,
            unit,
            p: e0 % n0,
            done: 0,
            len,
        }
    }
}

impl Iterator for Runs<'_> {
    type Item = (usize, usize, [usize; 2]);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done >= self.len {
            return None;
        }
        let d = self.d;
        let n0 = d.shape[0];
        let (p, done) = (self.p, self.done);
        let take = (n0 - p).min(self.len - done);
        let item = (done, take, [0, 1].map(|k| self.off[k] + self.unit[k] * p));
        self.done += take;
        self.p += take;
        if self.p == n0 {
            self.p = 0;
            for a in 1..d.shape.len() {
                self.idx[a] += 1;
                for (o, (_, _, st)) in self.off.iter_mut().zip(&d.operands) {
                    *o += st[a];
                }
                if self.idx[a] < d.shape[a] {
                    break;
                }
                for (o, (_, _, st)) in self.off.iter_mut().zip(&d.operands) {
                    *o -= st[a] * d.shape[a];
                }
                self.idx[a] = 0;
            }
        }
        Some(item)
    }
}

/// One chunk of a [`DirectBinary`] group as an op-table loop: the op's function is chosen
/// once per chunk, and each run is a plain loop (operand runs contiguous or repeated).
/// The operands were bounds-checked against the plan by [`run_direct`].
struct DirectRuns<'a, T> {
    plan: &'a DirectBinary,
    a: &'a [T],
    b: &'a [T],
    e0: usize,
    dst: &'a mut [T],
}

impl<T: Copy> ElemMap2<T> for DirectRuns<'_, T> {
    type Out = ();
    #[inline(always)]
    fn map<F: Fn(T, T) -> T + Copy>(self, f: F) {
        let (a, b, dst) = (self.a, self.b, self.dst);
        let runs = Runs::new(self.plan, self.e0, dst.len());
        let unit = runs.unit;
        for (done, take, [oa, ob]) in runs {
            let d = &mut dst[done..done + take];
            match unit {
                [1, 1] => {
                    for ((o, &x), &y) in d.iter_mut().zip(&a[oa..oa + take]).zip(&b[ob..ob + take])
                    {
                        *o = f(x, y);
                    }
                }
                [1, _] => {
                    let y = b[ob];
                    for (o, &x) in d.iter_mut().zip(&a[oa..oa + take]) {
                        *o = f(x, y);
                    }
                }
                [_, 1] => {
                    let x = a[oa];
                    for (o, &y) in d.iter_mut().zip(&b[ob..ob + take]) {
                        *o = f(x, y);
                    }
                }
                _ => d.fill(f(a[oa], b[ob])),
            }
        }
    }
}

/// One chunk of `d` (elements `e0 ..`) into `dst`, with the op table's semantics.
#[inline(always)]
fn direct_chunk(d: &DirectBinary, srcs: [&Data; 2], e0: usize, dst: SliceMut<'_>) -> KResult {
    let op = d.op;
    macro_rules! runs {
        ($variant:ident, $map:ident, $o:expr) => {{
            let (Data::$variant(a), Data::$variant(b)) = (srcs[0], srcs[1]) else {
                return Err(format!("operands of `{}` of another dtype", op.name()));
            };
            op.$map(DirectRuns {
                plan: d,
                a,
                b,
                e0,
                dst: $o,
            })
        }};
    }
    let done = match dst {
        SliceMut::F64(o) => runs!(F64, map_f64, o),
        SliceMut::F32(o) => runs!(F32, map_f32, o),
        SliceMut::C64(o) => runs!(C64, map_c64, o),
        SliceMut::C32(o) => runs!(C32, map_c32, o),
        SliceMut::I64(o) => runs!(I64, map_i64, o),
        SliceMut::I32(o) => runs!(I32, map_i32, o),
        SliceMut::Bool(_) => None,
    };
    done.ok_or_else(|| format!("`{}` has no semantics for these operands", op.name()))
}

/// [`direct_chunk`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn direct_chunk_avx2(
    d: &DirectBinary,
    srcs: [&Data; 2],
    e0: usize,
    dst: SliceMut<'_>,
) -> KResult {
    direct_chunk(d, srcs, e0, dst)
}

/// Runs a [`DirectBinary`] group into `out`: per chunk, one choice of the op's function,
/// then a plain loop per run of `shape[0]` output elements over the operands read in
/// place (a run, or one element repeated). With a pool, chunks of about `TARGET_BLOCK`
/// elements go to the threads.
fn run_direct(
    d: &DirectBinary,
    inputs: &[&Data],
    out: &mut Data,
    pool: Option<&rayon::ThreadPool>,
) -> KResult {
    let n0 = d.shape[0];
    let numel: usize = d.shape.iter().product();
    if out.len() != numel {
        return Err("output of a direct binary op has the wrong length".into());
    }
    let mut srcs: Vec<&Data> = Vec::with_capacity(2);
    for (input, offset, strides) in &d.operands {
        let x = *inputs.get(*input).ok_or("input out of range")?;
        let last = d
            .shape
            .iter()
            .zip(strides)
            .map(|(&n, &st)| (n - 1) * st)
            .sum::<usize>()
            + offset;
        if last >= x.len() {
            return Err(format!("input in{input} is shorter than its view"));
        }
        srcs.push(x);
    }
    let srcs = [srcs[0], srcs[1]];
    let body = |e0: usize, chunk: SliceMut<'_>| -> KResult {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                return unsafe { direct_chunk_avx2(d, srcs, e0, chunk) };
            }
        }
        direct_chunk(d, srcs, e0, chunk)
    };
    // Chunks of whole runs when runs are short, of `TARGET_BLOCK` elements when long.
    let per = if n0 >= TARGET_BLOCK {
        TARGET_BLOCK
    } else {
        TARGET_BLOCK / n0 * n0
    };
    let mut chunks: Vec<(usize, SliceMut<'_>)> = Vec::with_capacity(numel.div_ceil(per));
    let mut rest = whole_mut(out);
    let mut start = 0;
    while out_len(&rest) > 0 {
        let take = per.min(out_len(&rest));
        let (mine, r) = rest.split_at(take);
        chunks.push((start, mine));
        start += take;
        rest = r;
    }
    match pool {
        Some(pool) if chunks.len() > 1 => {
            pool.install(|| chunks.into_par_iter().try_for_each(|(e0, c)| body(e0, c)))
        }
        _ => chunks.into_iter().try_for_each(|(e0, c)| body(e0, c)),
    }
}

/// Runs schedule `s` of step `name`: `inputs[i]` is the buffer of `s.inputs[i]` (ignored
/// for inputs donated in place), `outputs[o]` a buffer of `s.outputs[o]`'s length.
pub(crate) fn run(
    name: &str,
    s: &KernelSchedule,
    inputs: &[&Data],
    outputs: &mut [Data],
    pool: Option<&rayon::ThreadPool>,
) -> Result<()> {
    let err = |e: String| -> RuntimeError { internal(name, e) };
    if outputs.len() != s.outputs.len() || inputs.len() != s.inputs.len() {
        return Err(err("buffer count differs from the schedule".into()));
    }
    for (o, (spec, d)) in s.outputs.iter().zip(outputs.iter()).enumerate() {
        if d.len() != spec.ty.numel() || d.dtype() != spec.ty.dtype {
            return Err(err(format!(
                "output buffer out{o} has the wrong type or length"
            )));
        }
    }
    if let (Some(d), true) = (&s.direct, s.inplace.is_empty()) {
        let parallel = s.num_blocks() > 1;
        return run_direct(d, inputs, &mut outputs[0], pool.filter(|_| parallel)).map_err(err);
    }
    let n = s.numel;
    let nb = if n == 0 { 0 } else { s.num_blocks() };
    if nb == 1 {
        if let (Some(pool), Some(n0)) = (pool, stripe_run(s)) {
            if pool.current_num_threads() > 1 {
                return run_stripes(s, n0, inputs, outputs, pool).map_err(err);
            }
        }
        return run_single(s, inputs, outputs).map_err(err);
    }
    let bounds: Vec<(usize, usize)> = (0..nb)
        .map(|b| (b * s.block, ((b + 1) * s.block).min(n)))
        .collect();

    // Whole reductions are written after the blocks; take them out of the split.
    let mut blocks: Vec<Block<'_>> = bounds
        .iter()
        .map(|&(b0, b1)| Block {
            b0,
            b1,
            stripe: None,
            outs: Vec::with_capacity(outputs.len()),
            out_base: Vec::with_capacity(outputs.len()),
        })
        .collect();
    let mut whole: Vec<(usize, usize)> = Vec::new(); // (reduction, output)
    for (o, data) in outputs.iter_mut().enumerate() {
        let spec = &s.outputs[o];
        let chunk_of = |b0: usize, b1: usize| -> Option<(usize, usize)> {
            match spec.kind {
                OutputKind::Tiles => Some((b0, b1)),
                OutputKind::Reduction(r) => match &s.reductions[r].mode {
                    ReduceMode::Whole => None,
                    ReduceMode::Rows {
                        outer: Some((q, per)),
                        ..
                    } => Some((b0 / q * per, b1 / q * per)),
                    ReduceMode::Rows { outer: None, .. } => Some((0, spec.ty.numel())),
                },
            }
        };
        if let OutputKind::Reduction(r) = spec.kind {
            if matches!(s.reductions[r].mode, ReduceMode::Whole) {
                whole.push((r, o));
            }
        }
        if n == 0 {
            continue;
        }
        let mut rest = Some(whole_mut(data));
        let mut consumed = 0;
        for blk in blocks.iter_mut() {
            match chunk_of(blk.b0, blk.b1) {
                Some((c0, c1)) => {
                    let r = rest.take().ok_or_else(|| err("split".into()))?;
                    if c0 < consumed || c1 < c0 || c1 - consumed > out_len(&r) {
                        return Err(err(format!("output out{o} does not split into blocks")));
                    }
                    let (_, r) = r.split_at(c0 - consumed);
                    let (mine, r) = r.split_at(c1 - c0);
                    rest = Some(r);
                    consumed = c1;
                    blk.outs.push(Some(mine));
                    blk.out_base.push(c0);
                }
                None => {
                    blk.outs.push(None);
                    blk.out_base.push(0);
                }
            }
        }
    }

    let partials: Vec<Vec<Option<Data>>> = match pool {
        Some(pool) if blocks.len() > 1 => pool.install(|| {
            blocks
                .into_par_iter()
                .map_init(
                    || new_slots(s),
                    |slots, b| match slots {
                        Ok(slots) => run_block(s, inputs, b, slots),
                        Err(e) => Err(e.clone()),
                    },
                )
                .collect::<std::result::Result<Vec<_>, String>>()
        }),
        _ => {
            let mut slots = new_slots(s).map_err(err)?;
            blocks
                .into_iter()
                .map(|b| run_block(s, inputs, b, &mut slots))
                .collect::<std::result::Result<Vec<_>, String>>()
        }
    }
    .map_err(err)?;

    // Empty iteration space: row reductions are all identity.
    if n == 0 {
        for r in &s.reductions {
            outputs[r.out] = identity(r.kind, r.dtype, outputs[r.out].len());
        }
    }
    for (r, o) in whole {
        let red = &s.reductions[r];
        let mut acc = identity(red.kind, red.dtype, 1);
        for p in &partials {
            let x = p[r]
                .as_ref()
                .ok_or_else(|| err("missing block partial".into()))?;
            fold_scalar(red.kind, whole_mut(&mut acc), slice_of(x, 0..1)).map_err(err)?;
        }
        outputs[o] = acc;
    }
    Ok(())
}
