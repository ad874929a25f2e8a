//! Strided copies: the one kernel behind transpose, broadcast_in_dim, slice, pad,
//! concatenate and operand packing. A [`StridedCopy`] is planned once (axes of size 1
//! dropped, adjacent axes that are contiguous in both source and destination merged) and
//! run with an incremental multi-index: no per-element index decoding. The inner loop is
//! a plain run, a 16×16 tile of a 2-D transpose, or an [`InnerBlock`] of short or
//! one-side-strided axes read through offset tables. Imports no module of this crate; the
//! schedule, the kernels, the program and the planner import it.

/// Copies `shape`'s elements from `src[src_offset + Σ i_a·src_strides[a]]` to
/// `dst[dst_offset + Σ i_a·dst_strides[a]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StridedCopy {
    shape: Vec<usize>,
    src_offset: usize,
    src_strides: Vec<usize>,
    dst_offset: usize,
    dst_strides: Vec<usize>,
    /// The inner block the copy runs by, when its inner axis is short or strided on one
    /// side (planned with the copy: its tables are built once).
    block: Option<InnerBlock>,
}

impl StridedCopy {
    /// Plans a copy over `shape` with the given offsets and strides (one per axis).
    pub fn new(
        shape: &[usize],
        src_offset: usize,
        src_strides: &[usize],
        dst_offset: usize,
        dst_strides: &[usize],
    ) -> StridedCopy {
        let (shape, strides) = coalesce(shape, &[src_strides, dst_strides]);
        StridedCopy {
            shape,
            src_offset,
            src_strides: strides[0].clone(),
            dst_offset,
            dst_strides: strides[1].clone(),
            block: None,
        }
        .with_block()
    }

    /// `self` with its [`InnerBlock`], for a copy of at least [`BLOCKED_MIN_ELEMENTS`]
    /// that neither moves plain runs nor is a tiled transpose.
    fn with_block(mut self) -> StridedCopy {
        let plain = match (
            self.shape.first(),
            self.src_strides.first(),
            self.dst_strides.first(),
        ) {
            (Some(&n0), Some(&s0), Some(&d0)) => s0 <= 1 && d0 == 1 && n0 >= SHORT_RUN,
            _ => true,
        };
        if !plain && !self.is_transposing() && self.numel() >= BLOCKED_MIN_ELEMENTS {
            self.block = InnerBlock::new(&self);
        }
        self
    }

    /// Number of elements copied.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Runs the copy.
    pub fn run<T: Copy>(&self, src: &[T], dst: &mut [T]) {
        if self.numel() == 0 {
            return;
        }
        if self.shape.is_empty() {
            dst[self.dst_offset] = src[self.src_offset];
            return;
        }
        let (n0, s0, d0) = (self.shape[0], self.src_strides[0], self.dst_strides[0]);
        if self.is_transposing() && self.fits(src.len(), dst.len()) {
            self.run_tiled(src, dst, s0 == 1 && d0 >= FAR_STRIDE);
            return;
        }
        if let Some(block) = &self.block {
            if self.fits(src.len(), dst.len()) {
                self.run_blocked(src, dst, block, &block.shape);
                return;
            }
        }
        for_each_outer(
            &self.shape,
            &[&self.src_strides, &self.dst_strides],
            [self.src_offset, self.dst_offset],
            |[so, dof]| {
                if s0 == 1 && d0 == 1 {
                    dst[dof..dof + n0].copy_from_slice(&src[so..so + n0]);
                } else if s0 == 0 && d0 == 1 {
                    dst[dof..dof + n0].fill(src[so]);
                } else {
                    for i in 0..n0 {
                        dst[dof + i * d0] = src[so + i * s0];
                    }
                }
            },
        );
    }

    /// Pieces the copy is worth splitting into on `threads` threads: `threads` for a
    /// copy of at least `PAR_COPY_MIN_ELEMS` elements, else 1.
    pub(crate) fn parts(&self, threads: usize) -> usize {
        if self.numel() >= PAR_COPY_MIN_ELEMS {
            threads.max(1)
        } else {
            1
        }
    }

    /// Runs the copy in up to `parts` pieces on the current rayon pool when the destination
    /// is exactly `dst` and dense in some axis order (a column-major layout of the shape
    /// with its axes permuted, from offset 0: every result of a transpose, and the GEMM
    /// operand packs). The pieces are ranges of the axis with the largest destination
    /// stride, so each writes its own contiguous range of `dst`. Otherwise runs on this
    /// thread.
    pub fn run_parts<T: Copy + Send + Sync>(&self, src: &[T], dst: &mut [T], parts: usize) {
        let split = match self.dense_outer_axis(dst.len()) {
            Some(a) if parts > 1 && self.shape[a] >= parts => a,
            _ => return self.run(src, dst),
        };
        let chunk = self.shape[split].div_ceil(parts);
        let step = self.dst_strides[split];
        let shared = self.block_of_pieces(split);
        rayon::scope(|s| {
            for (i, d) in dst.chunks_mut(chunk * step).enumerate() {
                let lo = i * chunk;
                let mut shape = self.shape.clone();
                shape[split] = d.len() / step;
                let extent = shape[split];
                let piece = StridedCopy {
                    shape,
                    src_offset: self.src_offset + lo * self.src_strides[split],
                    src_strides: self.src_strides.clone(),
                    dst_offset: 0,
                    dst_strides: self.dst_strides.clone(),
                    block: None,
                };
                match shared {
                    Some(b) if piece.fits(src.len(), d.len()) => s.spawn(move |_| {
                        let mut loops = b.shape.clone();
                        *loops.last_mut().expect("an outer axis") = extent;
                        piece.run_blocked(src, d, b, &loops);
                    }),
                    _ => {
                        let piece = piece.with_block();
                        s.spawn(move |_| piece.run(src, d));
                    }
                }
            }
        });
    }

    /// The copy's inner block, when it serves the pieces of a split of axis `split`: the
    /// split axis is the block's outermost outer axis, so the pieces differ only in its
    /// extent.
    fn block_of_pieces(&self, split: usize) -> Option<&InnerBlock> {
        let axis = (
            self.shape[split],
            self.src_strides[split],
            self.dst_strides[split],
        );
        self.block.as_ref().filter(|b| {
            let last = b.shape.len() - 1;
            last > 0 && (b.shape[last], b.src_strides[last], b.dst_strides[last]) == axis
        })
    }

    /// The axis of largest destination stride, when the destination (of `len` elements)
    /// is the whole of a dense layout of the shape in some axis order, from offset 0.
    fn dense_outer_axis(&self, len: usize) -> Option<usize> {
        if self.dst_offset != 0 || self.shape.is_empty() || self.numel() != len || len == 0 {
            return None;
        }
        let mut order: Vec<usize> = (0..self.shape.len()).collect();
        order.sort_by_key(|&a| self.dst_strides[a]);
        let mut expect = 1;
        for &a in &order {
            if self.dst_strides[a] != expect {
                return None;
            }
            expect *= self.shape[a];
        }
        order.last().copied()
    }

    /// Whether axes 0 and 1 are contiguous on opposite sides (a transpose: one side's
    /// inner loop would jump a full row per element) and both span at least one tile.
    fn is_transposing(&self) -> bool {
        if self.shape.len() < 2 || self.shape[0] < TILE || self.shape[1] < TILE {
            return false;
        }
        let (s, d) = (&self.src_strides, &self.dst_strides);
        (d[0] == 1 && s[1] == 1 && s[0] != 1) || (s[0] == 1 && d[1] == 1 && d[0] != 1)
    }

    /// Whether every position the copy reads is inside `src` and every position it
    /// writes is inside `dst`.
    fn fits(&self, src: usize, dst: usize) -> bool {
        let last = |offset: usize, strides: &[usize]| {
            self.shape
                .iter()
                .zip(strides)
                .try_fold(offset, |acc, (&n, &st)| {
                    acc.checked_add((n - 1).checked_mul(st)?)
                })
        };
        matches!(last(self.src_offset, &self.src_strides), Some(i) if i < src)
            && matches!(last(self.dst_offset, &self.dst_strides), Some(i) if i < dst)
    }

    /// The copy with the axes of `block` as its inner loop, read through the block's
    /// offset tables, over the block's loop `shape` (its own, or a piece's: see
    /// [`Self::run_parts`]). Requires [`Self::fits`] for `src` and `dst` (the accesses
    /// are unchecked).
    fn run_blocked<T: Copy>(&self, src: &[T], dst: &mut [T], block: &InnerBlock, shape: &[usize]) {
        for_each_outer(
            shape,
            &[&block.src_strides, &block.dst_strides],
            [self.src_offset, self.dst_offset],
            |[so, dof]| {
                // SAFETY (every access below): `so + src[t]` and `dof + dst[t]` are the
                // offsets of a position of the copy, bounded by the slices' lengths
                // (`fits`); a contiguous block's destination offsets are `0..len`.
                if block.dst_contiguous {
                    let run = unsafe { dst.get_unchecked_mut(dof..dof + block.src.len()) };
                    for (o, &t) in run.iter_mut().zip(&block.src) {
                        *o = unsafe { *src.get_unchecked(so + t) };
                    }
                } else {
                    for (&ts, &td) in block.src.iter().zip(&block.dst) {
                        unsafe { *dst.get_unchecked_mut(dof + td) = *src.get_unchecked(so + ts) };
                    }
                }
            },
        );
    }

    /// The copy in `TILE × TILE` blocks of axes 0 and 1, so that the source lines and
    /// destination lines of a block stay cached while it is moved. `staged` (for
    /// `src_strides[0] == 1` and `dst_strides[1] == 1`) reads each full block along axis 0
    /// into a buffer and writes it along axis 1, so both sides move contiguous runs;
    /// otherwise, and for partial blocks, elements move one by one. Requires
    /// [`Self::fits`] for `src` and `dst` (the accesses are unchecked).
    fn run_tiled<T: Copy>(&self, src: &[T], dst: &mut [T], staged: bool) {
        let (n0, n1) = (self.shape[0], self.shape[1]);
        let (s0, s1) = (self.src_strides[0], self.src_strides[1]);
        let (d0, d1) = (self.dst_strides[0], self.dst_strides[1]);
        let mut block = [[src[self.src_offset]; TILE]; TILE];
        for_each_outer(
            &self.shape[1..],
            &[&self.src_strides[1..], &self.dst_strides[1..]],
            [self.src_offset, self.dst_offset],
            |[so, dof]| {
                for j0 in (0..n1).step_by(TILE) {
                    let j1 = (j0 + TILE).min(n1);
                    for i0 in (0..n0).step_by(TILE) {
                        let i1 = (i0 + TILE).min(n0);
                        // SAFETY (every access below): `(i, j, outer index)` is a position
                        // of the copy, and `fits` bounds every position's source and
                        // destination offsets by the slices' lengths.
                        if staged && j1 - j0 == TILE && i1 - i0 == TILE {
                            for (j, col) in block.iter_mut().enumerate() {
                                let at = so + (j0 + j) * s1 + i0;
                                col.copy_from_slice(unsafe { src.get_unchecked(at..at + TILE) });
                            }
                            for i in 0..TILE {
                                let at = dof + (i0 + i) * d0 + j0;
                                let run = unsafe { dst.get_unchecked_mut(at..at + TILE) };
                                for (j, o) in run.iter_mut().enumerate() {
                                    *o = block[j][i];
                                }
                            }
                            continue;
                        }
                        for j in j0..j1 {
                            let (sj, dj) = (so + j * s1, dof + j * d1);
                            for i in i0..i1 {
                                unsafe {
                                    *dst.get_unchecked_mut(dj + i * d0) =
                                        *src.get_unchecked(sj + i * s0);
                                }
                            }
                        }
                    }
                }
            },
        );
    }
}

/// Innermost extents below this make the per-run loop overhead dominate a copy.
const SHORT_RUN: usize = 16;

/// Fewest elements of a copy that goes through an [`InnerBlock`] (building its tables
/// costs about as much as copying a block).
const BLOCKED_MIN_ELEMENTS: usize = 4096;

/// Most elements of an [`InnerBlock`] (its offset tables stay in L1).
const INNER_BLOCK_MAX: usize = 1024;

/// Longest destination run an [`InnerBlock`] takes from a destination-contiguous axis
/// that does not fit whole (it splits the axis by the largest divisor that keeps the run
/// at most this long and at least [`SHORT_RUN`]), leaving room for the source's fastest
/// axes in the block.
const DST_RUN: usize = 128;

/// A group of axes of a copy taken as its inner loop, the destination's fastest axes
/// first, then the source's: the source and destination offset of each of its positions
/// (in that axis order), so the block writes runs of the destination and reads nearby
/// source lines. A copy whose inner axis is short (a rank-20 tensor of extent-2 axes,
/// common in tensor networks) or strided on one side otherwise pays the outer loop's
/// bookkeeping every few elements, or reads (or writes) one cache line per element.
#[derive(Clone, Debug, PartialEq, Eq)]
struct InnerBlock {
    /// The loop over the block's positions (one step per block) and the axes outside it,
    /// by destination stride: extents and source and destination strides, as
    /// [`for_each_outer`] takes them (the block's own entry first, of stride 0).
    shape: Vec<usize>,
    src_strides: Vec<usize>,
    dst_strides: Vec<usize>,
    src: Vec<usize>,
    dst: Vec<usize>,
    /// `dst[t] == t` for every position.
    dst_contiguous: bool,
}

impl InnerBlock {
    /// The destination's fastest axes until they hold [`SHORT_RUN`] elements, then the
    /// source's until [`SHORT_RUN`]², while the block holds at most [`INNER_BLOCK_MAX`]
    /// elements. An axis too long to fit whole is split (extent `b · rest` into `b` in
    /// the block and `rest` outside, `b` a divisor) when the block would otherwise stay
    /// below [`SHORT_RUN`]. `None` when no block of [`SHORT_RUN`] elements is found.
    fn new(c: &StridedCopy) -> Option<InnerBlock> {
        // (extent, source stride, destination stride) of each axis.
        let mut ax: Vec<(usize, usize, usize)> = (0..c.shape.len())
            .map(|a| (c.shape[a], c.src_strides[a], c.dst_strides[a]))
            .collect();
        for _ in 0..4 {
            let by = |key: fn(&(usize, usize, usize)) -> usize| {
                let mut o: Vec<usize> = (0..ax.len()).collect();
                o.sort_by_key(|&a| key(&ax[a]));
                o
            };
            let (by_dst, by_src) = (by(|x| x.2), by(|x| x.1));
            let mut block: Vec<usize> = Vec::new();
            let mut len = 1usize;
            let mut split: Option<(usize, usize)> = None;
            for (order, goal) in [(&by_dst, SHORT_RUN), (&by_src, SHORT_RUN * SHORT_RUN)] {
                for &a in order {
                    if len >= goal {
                        break;
                    }
                    if block.contains(&a) {
                        continue;
                    }
                    if len * ax[a].0 > INNER_BLOCK_MAX {
                        // The destination run so far continues along this axis: take
                        // part of it rather than a later axis, which would cut the
                        // block's destination runs short.
                        if goal == SHORT_RUN && ax[a].2 == len {
                            let n = ax[a].0;
                            split = (2..=DST_RUN / len)
                                .rev()
                                .find(|b| n.is_multiple_of(*b) && len * b >= SHORT_RUN)
                                .map(|b| (a, b));
                            if split.is_some() {
                                break;
                            }
                        }
                        continue;
                    }
                    block.push(a);
                    len *= ax[a].0;
                }
                if split.is_some() {
                    break;
                }
            }
            if let Some((a, b)) = split {
                let (n, s, d) = ax[a];
                ax[a] = (b, s, d);
                ax.push((n / b, s * b, d * b));
                continue;
            }
            if len >= SHORT_RUN {
                return Some(Self::build(&ax, &block, &by_dst, len));
            }
            // Split the destination-fastest axis left out for its length.
            let a = *by_dst.iter().find(|&&a| !block.contains(&a))?;
            let (n, s, d) = ax[a];
            let b = (2..=INNER_BLOCK_MAX / len).rev().find(|b| n % b == 0)?;
            ax[a] = (b, s, d);
            ax.push((n / b, s * b, d * b));
        }
        None
    }

    /// The block of axes `block` of `ax` (holding `len` elements), the rest in `by_dst`
    /// order outside.
    fn build(
        ax: &[(usize, usize, usize)],
        block: &[usize],
        by_dst: &[usize],
        len: usize,
    ) -> InnerBlock {
        let mut src = Vec::with_capacity(len);
        let mut dst = Vec::with_capacity(len);
        src.push(0);
        dst.push(0);
        for &a in block {
            let (n, s, d) = ax[a];
            let have = src.len();
            for i in 1..n {
                for t in 0..have {
                    src.push(src[t] + i * s);
                    dst.push(dst[t] + i * d);
                }
            }
        }
        let dst_contiguous = dst.iter().enumerate().all(|(t, &d)| d == t);
        let (mut shape, mut src_strides, mut dst_strides) = (vec![len], vec![0], vec![0]);
        for &a in by_dst.iter().filter(|a| !block.contains(a)) {
            shape.push(ax[a].0);
            src_strides.push(ax[a].1);
            dst_strides.push(ax[a].2);
        }
        InnerBlock {
            shape,
            src_strides,
            dst_strides,
            src,
            dst,
            dst_contiguous,
        }
    }
}

/// Fewest elements for which a copy is split across the backend's threads (below, the
/// hand-off costs more than the second core saves).
const PAR_COPY_MIN_ELEMS: usize = 1 << 15;

/// Side of the square blocks in which a transposing copy moves its elements.
const TILE: usize = 16;

/// Destination stride (elements) from which a transpose reading axis 0 contiguously
/// stages each block in a buffer, so that its stores are contiguous too: at such strides
/// the 16 rows of a block's stores alias in L1 (on the Xeon VM, a 1024² f64 transpose
/// takes 3.9 ms storing directly, 1.6 ms staged, against 0.6 ms for a plain copy).
const FAR_STRIDE: usize = 256;

/// Drops axes of size 1 and merges axis `a+1` into axis `a` when, for every stride list,
/// `strides[a+1] == strides[a] * shape[a]`. An empty shape with elements stays empty
/// (one element); a shape with a zero stays as given (no elements).
pub fn coalesce(shape: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
    if shape.contains(&0) {
        return (shape.to_vec(), strides.iter().map(|s| s.to_vec()).collect());
    }
    let mut out_shape: Vec<usize> = Vec::with_capacity(shape.len());
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::with_capacity(shape.len()); strides.len()];
    for a in 0..shape.len() {
        if shape[a] == 1 {
            continue;
        }
        if let Some(&last) = out_shape.last() {
            let k = out_shape.len() - 1;
            let mergeable = strides
                .iter()
                .zip(&out_strides)
                .all(|(s, o)| s[a] == o[k] * last);
            if mergeable {
                out_shape[k] *= shape[a];
                continue;
            }
        }
        out_shape.push(shape[a]);
        for (o, s) in out_strides.iter_mut().zip(strides) {
            o.push(s[a]);
        }
    }
    (out_shape, out_strides)
}

/// Calls `body(offsets)` once per index of axes `1..` of `shape` (column-major order),
/// with `offsets[j] = base[j] + Σ_{a≥1} i_a·strides[j][a]`; the caller loops over axis 0.
/// `shape` must be non-empty with no zero extent.
pub fn for_each_outer<const N: usize>(
    shape: &[usize],
    strides: &[&[usize]; N],
    base: [usize; N],
    mut body: impl FnMut([usize; N]),
) {
    let rank = shape.len();
    let mut idx = vec![0usize; rank];
    let mut off = base;
    loop {
        body(off);
        let mut a = 1;
        loop {
            if a >= rank {
                return;
            }
            idx[a] += 1;
            for j in 0..N {
                off[j] += strides[j][a];
            }
            if idx[a] < shape[a] {
                break;
            }
            for j in 0..N {
                off[j] -= strides[j][a] * shape[a];
            }
            idx[a] = 0;
            a += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenferro_ir::col_major_strides;

    #[test]
    fn coalesce_merges_contiguous_axes_and_drops_ones() {
        let (s, st) = coalesce(&[2, 1, 3, 4], &[&[1, 2, 2, 6], &[12, 0, 1, 3]]);
        // axes 0 and 2 do not merge in the second list; 2 and 3 merge in both.
        assert_eq!(s, vec![2, 12]);
        assert_eq!(st, vec![vec![1, 2], vec![12, 1]]);
    }

    #[test]
    fn fits_bounds_every_position() {
        let copy = StridedCopy::new(&[16, 20], 3, &[20, 1], 0, &[1, 16]);
        // Last source position: 3 + 15·20 + 19 = 322; last destination: 15 + 19·16 = 319.
        assert!(copy.fits(323, 320));
        assert!(!copy.fits(322, 320));
        assert!(!copy.fits(323, 319));
    }

    #[test]
    fn run_parts_matches_run() {
        // A 40x37 transpose with a batch of 3, split into 1, 2 and 5 pieces.
        let x: Vec<i32> = (0..40 * 37 * 3).collect();
        let copy = StridedCopy::new(&[37, 40, 3], 0, &[40, 1, 1480], 0, &[1, 37, 1480]);
        let mut want = vec![0; x.len()];
        copy.run(&x, &mut want);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for parts in [1, 2, 5] {
            let mut got = vec![-1; x.len()];
            pool.install(|| copy.run_parts(&x, &mut got, parts));
            assert_eq!(got, want, "{parts} parts");
        }
        // A destination dense in another axis order (`[m, n, b] -> [b, m, n]`, as a
        // batched GEMM result is unbatched): split along its outermost axis.
        let (m, n, b) = (33usize, 20usize, 7usize);
        let x: Vec<i32> = (0..(m * n * b) as i32).collect();
        let copy = StridedCopy::new(&[m, n, b], 0, &[1, m, m * n], 0, &[b, b * m, 1]);
        assert!(copy.dense_outer_axis(x.len()).is_some());
        let mut want = vec![0; x.len()];
        copy.run(&x, &mut want);
        for parts in [2, 3] {
            let mut got = vec![-1; x.len()];
            pool.install(|| copy.run_parts(&x, &mut got, parts));
            assert_eq!(got, want, "{parts} parts");
        }
        // Not dense (a gap between rows): runs whole.
        let copy = StridedCopy::new(&[4, 5], 0, &[1, 4], 0, &[1, 6]);
        assert_eq!(copy.dense_outer_axis(30), None);
    }

    #[test]
    fn staged_transpose_matches_the_definition() {
        // 300x270 with a batch of 2 (destination stride 270: staged), and edge blocks on
        // both axes; also with source and destination offsets.
        let (n0, n1, b) = (300usize, 270usize, 2usize);
        let x: Vec<i64> = (0..(n0 * n1 * b + 5) as i64).collect();
        let copy = StridedCopy::new(&[n0, n1, b], 5, &[1, n0, n0 * n1], 3, &[n1, 1, n0 * n1]);
        assert!(copy.src_strides[0] == 1 && copy.dst_strides[0] >= FAR_STRIDE);
        let mut got = vec![-1; n0 * n1 * b + 3];
        copy.run(&x, &mut got);
        for k in 0..b {
            for j in 0..n1 {
                for i in 0..n0 {
                    let want = x[5 + i + j * n0 + k * n0 * n1];
                    assert_eq!(got[3 + i * n1 + j + k * n0 * n1], want, "({i}, {j}, {k})");
                }
            }
        }
        assert_eq!(&got[..3], &[-1, -1, -1]);
    }

    #[test]
    fn short_axes_copy_through_an_inner_block() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut shared_pieces = 0;
        // A rank-10 permutation of extent-2 axes (source column-major, destination with
        // the axes reversed), with offsets; and a rank-6 one of extents 3 into a strided
        // (non-contiguous) destination.
        for (shape, perm, pad) in [
            (vec![2usize; 10], (0..10).rev().collect::<Vec<_>>(), 0usize),
            (vec![3usize; 6], vec![2, 0, 5, 1, 4, 3], 1),
            (vec![5, 2, 3, 2, 40, 2, 3], vec![4, 1, 6, 0, 3, 5, 2], 0),
            (
                vec![64, 2, 2, 2, 2, 2, 2, 2],
                vec![1, 2, 3, 4, 5, 0, 6, 7],
                0,
            ),
            // A long axis interleaved with a short one: the long one is split.
            (vec![4096, 4], vec![1, 0], 0),
            (vec![3000, 3], vec![1, 0], 1),
            // A destination run of 9 that continues along an axis of 243: a ninth of
            // that axis joins the block (runs of 81), then the source's fastest axis.
            (vec![9, 3, 243, 5, 3], vec![1, 4, 2, 0, 3], 0),
        ] {
            let rank = shape.len();
            let n: usize = shape.iter().product();
            let src_strides = col_major_strides(&shape);
            // Destination axis order `perm`, each destination stride scaled by `pad + 1`.
            let pshape: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
            let pst = col_major_strides(&pshape);
            let mut dst_strides = vec![0usize; rank];
            for (j, &a) in perm.iter().enumerate() {
                dst_strides[a] = pst[j] * (pad + 1);
            }
            let copy = StridedCopy::new(&shape, 2, &src_strides, 1, &dst_strides);
            let block = InnerBlock::new(&copy).expect("a block");
            if shape == [9, 3, 243, 5, 3] {
                assert_eq!(block.shape[0], 729, "{block:?}");
            }
            let x: Vec<i64> = (0..(n + 2) as i64).collect();
            let mut got = vec![-1i64; 1 + n * (pad + 1)];
            copy.run(&x, &mut got);
            let mut blocked = vec![-1i64; got.len()];
            assert!(copy.fits(x.len(), blocked.len()));
            copy.run_blocked(&x, &mut blocked, &block, &block.shape);
            assert_eq!(blocked, got, "{shape:?}");
            let mut want = vec![-1i64; got.len()];
            for p in 0..n {
                let (mut rem, mut d) = (p, 1usize);
                for a in 0..rank {
                    d += (rem % shape[a]) * dst_strides[a];
                    rem /= shape[a];
                }
                want[d] = x[2 + p];
            }
            assert_eq!(got, want, "{shape:?}");
            // In pieces on 2 threads (a dense destination from offset 0).
            if pad == 0 {
                let copy = StridedCopy::new(&shape, 2, &src_strides, 0, &dst_strides);
                let split = copy.dense_outer_axis(n).expect("a dense destination");
                shared_pieces += copy.block_of_pieces(split).is_some() as usize;
                let mut parts = vec![-1i64; n];
                pool.install(|| copy.run_parts(&x, &mut parts, 2));
                assert_eq!(parts, want[1..], "{shape:?} in pieces");
            }
        }
        assert!(
            shared_pieces > 0,
            "no case ran its pieces on the copy's block"
        );
    }

    #[test]
    fn random_permutations_match_the_definition() {
        // Random ranks (1-8), extents (1-9, some long), destination axis orders, gaps in
        // the destination and offsets: every path (plain runs, tiles, inner blocks) must
        // give the element-by-element definition, whole and in 2 pieces.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for case in 0..300 {
            let rank = 1 + next(8);
            let mut shape: Vec<usize> = (0..rank).map(|_| 1 + next(9)).collect();
            if next(3) == 0 {
                let a = next(rank);
                shape[a] = 16 + next(600);
            }
            let n: usize = shape.iter().product();
            if n > 200_000 {
                continue;
            }
            let mut perm: Vec<usize> = (0..rank).collect();
            for i in (1..rank).rev() {
                perm.swap(i, next(i + 1));
            }
            let gap = next(2);
            let src_strides = col_major_strides(&shape);
            let mut dst_strides = vec![0usize; rank];
            let mut st = 1;
            for &a in &perm {
                dst_strides[a] = st * (gap + 1);
                st *= shape[a];
            }
            let (so, dof) = (next(3), next(3));
            let copy = StridedCopy::new(&shape, so, &src_strides, dof, &dst_strides);
            let x: Vec<u32> = (0..(n + so) as u32).collect();
            let len = dof + n * (gap + 1);
            let mut want = vec![u32::MAX; len];
            for p in 0..n {
                let (mut rem, mut d) = (p, dof);
                for a in 0..rank {
                    d += (rem % shape[a]) * dst_strides[a];
                    rem /= shape[a];
                }
                want[d] = x[so + p];
            }
            let mut got = vec![u32::MAX; len];
            copy.run(&x, &mut got);
            assert_eq!(got, want, "case {case}: {shape:?} perm {perm:?} gap {gap}");
            if let Some(block) = InnerBlock::new(&copy) {
                let mut blocked = vec![u32::MAX; len];
                copy.run_blocked(&x, &mut blocked, &block, &block.shape);
                assert_eq!(
                    blocked, want,
                    "case {case} blocked: {shape:?} perm {perm:?}"
                );
            }
            let mut parts = vec![u32::MAX; len];
            pool.install(|| copy.run_parts(&x, &mut parts, 2));
            assert_eq!(parts, want, "case {case} in parts: {shape:?} perm {perm:?}");
        }
    }

    #[test]
    fn transpose_copy() {
        // x = [[0,2,4],[1,3,5]] (2x3), transpose to 3x2.
        let x: Vec<i32> = (0..6).collect();
        let mut y = vec![0; 6];
        StridedCopy::new(&[3, 2], 0, &[2, 1], 0, &[1, 3]).run(&x, &mut y);
        assert_eq!(y, vec![0, 2, 4, 1, 3, 5]);
    }
}
