//! Strided copies: the one kernel behind transpose, broadcast_in_dim, slice, pad,
//! concatenate and operand packing. A [`StridedCopy`] is planned once (axes of size 1
//! dropped, adjacent axes that are contiguous in both source and destination merged) and
//! run with an incremental multi-index: no per-element index decoding. Imports no module
//! of this crate; the schedule, the kernels, the program and the planner import it.

/// Copies `shape`'s elements from `src[src_offset + Σ i_a·src_strides[a]]` to
/// `dst[dst_offset + Σ i_a·dst_strides[a]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StridedCopy {
    shape: Vec<usize>,
    src_offset: usize,
    src_strides: Vec<usize>,
    dst_offset: usize,
    dst_strides: Vec<usize>,
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
        }
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
            self.run_tiled(src, dst);
            return;
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

    /// Runs the copy in up to `parts` pieces on the current rayon pool, one range of the
    /// outermost axis each, when the destination is exactly the column-major layout of
    /// `shape` from offset 0 (as a GEMM operand pack is), so that each piece writes its
    /// own contiguous range; otherwise runs it on this thread.
    pub fn run_parts<T: Copy + Send + Sync>(&self, src: &[T], dst: &mut [T], parts: usize) {
        let rank = self.shape.len();
        let dense = self.dst_offset == 0
            && rank > 0
            && self.numel() > 0
            && self.dst_strides == tenferro_ir::col_major_strides(&self.shape)
            && dst.len() == self.numel();
        if parts <= 1 || !dense || self.shape[rank - 1] < parts {
            self.run(src, dst);
            return;
        }
        let last = rank - 1;
        let chunk = self.shape[last].div_ceil(parts);
        let step = self.dst_strides[last];
        rayon::scope(|s| {
            for (i, d) in dst.chunks_mut(chunk * step).enumerate() {
                let lo = i * chunk;
                let mut shape = self.shape.clone();
                shape[last] = d.len() / step;
                let piece = StridedCopy {
                    shape,
                    src_offset: self.src_offset + lo * self.src_strides[last],
                    src_strides: self.src_strides.clone(),
                    dst_offset: 0,
                    dst_strides: self.dst_strides.clone(),
                };
                s.spawn(move |_| piece.run(src, d));
            }
        });
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

    /// The copy in `TILE × TILE` blocks of axes 0 and 1, so that the source lines and
    /// destination lines of a block stay cached while it is moved. Requires
    /// [`Self::fits`] for `src` and `dst` (the accesses are unchecked).
    fn run_tiled<T: Copy>(&self, src: &[T], dst: &mut [T]) {
        let (n0, n1) = (self.shape[0], self.shape[1]);
        let (s0, s1) = (self.src_strides[0], self.src_strides[1]);
        let (d0, d1) = (self.dst_strides[0], self.dst_strides[1]);
        for_each_outer(
            &self.shape[1..],
            &[&self.src_strides[1..], &self.dst_strides[1..]],
            [self.src_offset, self.dst_offset],
            |[so, dof]| {
                for j0 in (0..n1).step_by(TILE) {
                    let j1 = (j0 + TILE).min(n1);
                    for i0 in (0..n0).step_by(TILE) {
                        let i1 = (i0 + TILE).min(n0);
                        for j in j0..j1 {
                            let (sj, dj) = (so + j * s1, dof + j * d1);
                            for i in i0..i1 {
                                // SAFETY: `(i, j, outer index)` is a position of the copy,
                                // and `fits` bounds every position's source and
                                // destination offsets by the slices' lengths.
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

/// Side of the square blocks in which a transposing copy moves its elements.
const TILE: usize = 16;

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
