//! Register-tiled f32 GEMM on AVX-512: `C = A·B` in Goto's loop order. B is packed
//! `KC × NC` at a time in `NR`-column panels, A `MC × KC` at a time in `MR`-row panels
//! (kept in L2); the micro-kernel holds an `MR × NR` tile of C in 24 vector registers
//! while an A panel streams from L2 past a B panel held in L1.
//!
//! Every element of C is one chain of fused multiply-adds over `k` in increasing order,
//! starting from zero: the tile is reloaded from C between `k` blocks, so neither the
//! blocking, nor the element's place in a tile, nor the split of C between threads
//! changes a bit of it.
//!
//! f32 only: on f64 the same kernel measured no faster than faer, which `dot` keeps.

use crate::kernels::packbuf::{elems_of, Line};
use crate::vmath::Isa;
use faer::{MatMut, MatRef};
use tenferro_ir::DType;

/// Lanes of a 512-bit f32 vector.
const L: usize = 16;
/// Vectors of rows in a register tile.
const MV: usize = 2;
/// Rows in a register tile.
const MR: usize = MV * L;
/// Columns in a register tile.
const NR: usize = 12;
/// Contraction steps per block: a B panel (`KC × NR`, 24 KiB) stays in L1.
const KC: usize = 512;
/// Rows of A per packed block (`MC × KC`, 512 KiB: a quarter of L2). Whole panels: a
/// multiple of `MR`.
const MC: usize = 8 * MR;
/// Columns of B per packed block (`KC × NC`, 2 MiB: each thread keeps its packs between
/// products, so this bounds the memory a thread holds). Each block packs all of A again,
/// which costs far more than its share of multiply-adds (a pack runs at memory speed), so
/// products up to [`NC_STRETCH`] columns take one block. Whole panels: a multiple of `NR`.
const NC: usize = 1024 / NR * NR;
/// Widest `n` packed as one block (`KC × NC_STRETCH`, 2.5 MiB): 1024 columns would
/// otherwise take a block of 1020 and one of 4, with A packed twice (W4_mm_f32 at one
/// thread: 12.3 -> 11.8 ms).
const NC_STRETCH: usize = NC + NC / 4;

/// Fewest rows, columns and contraction steps for which [`takes`] picks this kernel:
/// below them the packing costs more than it saves, and faer's small-product kernels are
/// as fast.
const MIN_DIM: usize = 64;

thread_local! {
    /// This thread's A and B packs, kept between products.
    static PACKS: std::cell::RefCell<(Vec<Line>, Vec<Line>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// A strided read-only matrix: element `(i, j)` at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
struct Src {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl Src {
    fn transposed(self) -> Src {
        Src {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// The AVX-512 kernels; the module exists on x86-64 only, and [`gemm`] calls it only
/// when the CPU has AVX-512.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{elems_of, Line, Src, KC, L, MC, MR, MV, NC, NC_STRETCH, NR};
    use std::arch::x86_64::*;

    /// The `MR × NR` tile at `c` (column stride `ldc`) becomes the sum over `kc` steps of
    /// the packed panels `pa` (`kc × MR`) and `pb` (`kc × NR`), added to the tile's
    /// values when `load`, else to zero.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the panels hold `kc` steps, `pa` 64-byte aligned; `c` is
    /// valid for the tile.
    #[target_feature(enable = "avx512f")]
    unsafe fn micro(
        kc: usize,
        pa: *const f32,
        pb: *const f32,
        c: *mut f32,
        ldc: usize,
        load: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); MV]; NR];
        // SAFETY (all blocks below): the caller's contract on the panels and the tile;
        // every panel step is `MV` whole, aligned vectors.
        if load {
            for (j, col) in acc.iter_mut().enumerate() {
                for (v, x) in col.iter_mut().enumerate() {
                    *x = unsafe { _mm512_loadu_ps(c.add(j * ldc + v * L)) };
                }
            }
        }
        for p in 0..kc {
            unsafe {
                let a = pa.add(p * MR);
                let b = pb.add(p * NR);
                let mut av = [_mm512_setzero_ps(); MV];
                for (v, x) in av.iter_mut().enumerate() {
                    *x = _mm512_load_ps(a.add(v * L));
                }
                for (j, col) in acc.iter_mut().enumerate() {
                    let bj = _mm512_set1_ps(*b.add(j));
                    for (v, x) in col.iter_mut().enumerate() {
                        *x = _mm512_fmadd_ps(av[v], bj, *x);
                    }
                }
            }
        }
        for (j, col) in acc.iter().enumerate() {
            for (v, x) in col.iter().enumerate() {
                unsafe { _mm512_storeu_ps(c.add(j * ldc + v * L), *x) };
            }
        }
    }

    /// The first `m ≤ 16` lanes set.
    fn mask(m: usize) -> __mmask16 {
        ((1u32 << m) - 1) as __mmask16
    }

    /// Copies `n` elements from `src` to `dst`, in whole vectors and a masked tail.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `src` and `dst` are valid for `n` elements.
    #[target_feature(enable = "avx512f")]
    unsafe fn copy_run(src: *const f32, dst: *mut f32, n: usize) {
        let mut i = 0;
        while i < n {
            let m = mask((n - i).min(L));
            // SAFETY: the caller's contract; the mask covers the elements left.
            unsafe { _mm512_mask_storeu_ps(dst.add(i), m, _mm512_maskz_loadu_ps(m, src.add(i))) };
            i += L;
        }
    }

    /// `dst[p·w + r] = lines[r][p]` for `p < kc` and `r < rows`, for lines contiguous in
    /// `p`: blocks of `L` lines by `L` steps are loaded as vectors and transposed in
    /// registers. Slots of `r ≥ rows` (below `w`) are left as they are.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `lines[r]` is valid for `kc` elements (`r < rows ≤ w`);
    /// `dst` for `kc · w`.
    #[target_feature(enable = "avx512f")]
    unsafe fn pack_lines(
        dst: *mut f32,
        lines: &[*const f32; 64],
        rows: usize,
        kc: usize,
        w: usize,
    ) {
        // Stage `s` swaps bit `b = L >> (s + 1)` of the line and the step index of every
        // element: lanes with that bit clear come from the first vector, the others from
        // the second; after the four stages element `(r, p)` sits at `(p, r)`.
        let mut lo = [_mm512_setzero_si512(); 4];
        let mut hi = [_mm512_setzero_si512(); 4];
        for s in 0..4 {
            let b = L >> (s + 1);
            let (mut l, mut h) = ([0i32; L], [0i32; L]);
            for j in 0..L {
                (l[j], h[j]) = if j & b == 0 {
                    (j as i32, (j + b) as i32)
                } else {
                    ((L + j - b) as i32, (L + j) as i32)
                };
            }
            // SAFETY: each table holds `L` lanes.
            unsafe {
                lo[s] = _mm512_loadu_si512(l.as_ptr().cast());
                hi[s] = _mm512_loadu_si512(h.as_ptr().cast());
            }
        }
        for r0 in (0..rows).step_by(L) {
            let nl = (rows - r0).min(L);
            let smask = mask((w - r0).min(L));
            for p0 in (0..kc).step_by(L) {
                let np = (kc - p0).min(L);
                let lmask = mask(np);
                // Every loop below has a constant trip count, so `v` stays in registers;
                // lines past `nl` load nothing (an empty mask) and stay zero.
                let mut v = [_mm512_setzero_ps(); L];
                // SAFETY (the loads and stores): the caller's contract; the masks keep
                // them to the `np` steps and the slots below `w` that exist, and a load
                // with an empty mask reads no memory.
                for (i, x) in v.iter_mut().enumerate() {
                    let (m, line) = if i < nl {
                        (lmask, lines[r0 + i])
                    } else {
                        (0, lines[r0])
                    };
                    *x = unsafe { _mm512_maskz_loadu_ps(m, line.add(p0)) };
                }
                // The four stages written out, so that every index is a constant.
                macro_rules! stage {
                    ($s:literal, $b:literal, [$($i:literal),*]) => {$(
                        let (x, y) = (v[$i], v[$i + $b]);
                        v[$i] = _mm512_permutex2var_ps(x, lo[$s], y);
                        v[$i + $b] = _mm512_permutex2var_ps(x, hi[$s], y);
                    )*};
                }
                stage!(0, 8, [0, 1, 2, 3, 4, 5, 6, 7]);
                stage!(1, 4, [0, 1, 2, 3, 8, 9, 10, 11]);
                stage!(2, 2, [0, 1, 4, 5, 8, 9, 12, 13]);
                stage!(3, 1, [0, 2, 4, 6, 8, 10, 12, 14]);
                for (p, x) in v.iter().enumerate() {
                    if p < np {
                        unsafe { _mm512_mask_storeu_ps(dst.add((p0 + p) * w + r0), smask, *x) };
                    }
                }
            }
        }
    }

    /// Packs free indices `f0..f0 + fc` and steps `p0..p0 + kc` of `x` (a `free × steps`
    /// matrix: A, or Bᵀ) into `w`-wide panels `[panel][step][w]`, free indices past the
    /// end zero. A panel step is one contiguous copy when the free index has unit stride;
    /// else the panel's `w` lines are read side by side (transposed in registers when
    /// each line is contiguous), so that the panel is still written in order.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the indices are inside `x`; `dst` holds
    /// `ceil(fc / w) · kc · w` elements; `w ≤ 64`.
    #[target_feature(enable = "avx512f")]
    unsafe fn pack(
        dst: &mut [f32],
        x: Src,
        (f0, fc): (usize, usize),
        (p0, kc): (usize, usize),
        w: usize,
    ) {
        let panels = fc.div_ceil(w);
        let dst = &mut dst[..panels * kc * w];
        if fc < panels * w {
            dst[(panels - 1) * kc * w..].fill(0.0);
        }
        // SAFETY (all accesses): the caller's contract.
        let at =
            |f: usize, p: usize| unsafe { x.ptr.offset(f as isize * x.rs + p as isize * x.cs) };
        if x.rs == 1 {
            // Step by step, each step's free indices read as one contiguous run and
            // scattered over the panels: panel by panel would read runs of `w` at the
            // step stride, which at power-of-two strides the prefetchers do not follow.
            let base = dst.as_mut_ptr();
            for p in 0..kc {
                for q in 0..panels {
                    let rows = w.min(fc - q * w);
                    unsafe { copy_run(at(f0 + q * w, p0 + p), base.add((q * kc + p) * w), rows) };
                }
            }
            return;
        }
        for (q, panel) in dst.chunks_exact_mut(kc * w).enumerate() {
            let rows = w.min(fc - q * w);
            let mut src = [x.ptr; 64];
            for (r, s) in src.iter_mut().enumerate().take(rows) {
                *s = at(f0 + q * w + r, p0);
            }
            if x.cs == 1 {
                unsafe { pack_lines(panel.as_mut_ptr(), &src, rows, kc, w) };
                continue;
            }
            for (p, step) in panel.chunks_exact_mut(w).enumerate() {
                for (v, s) in step[..rows].iter_mut().zip(&src) {
                    *v = unsafe { *s.offset(p as isize * x.cs) };
                }
            }
        }
    }

    /// `C = A·B` for `m × k` A, `k × n` B and column-major C (column stride `ldc`), with
    /// `k ≥ 1`, in the loop order of the module documentation.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `a`, `b` and `c` are valid for the shapes given.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm_seq(
        [m, n, k]: [usize; 3],
        a: Src,
        b: Src,
        c: *mut f32,
        ldc: usize,
        (pa, pb): (&mut Vec<Line>, &mut Vec<Line>),
    ) {
        let kc_max = KC.min(k);
        let mc_max = MC.min(m.next_multiple_of(MR));
        let nc_max = if n <= NC_STRETCH {
            n.next_multiple_of(NR)
        } else {
            NC
        };
        let pa = elems_of::<f32>(pa, mc_max * kc_max);
        let pb = elems_of::<f32>(pb, nc_max * kc_max);
        let mut tile = [0.0f32; MR * NR];
        for jc in (0..n).step_by(nc_max) {
            let nc = nc_max.min(n - jc);
            for pc in (0..k).step_by(kc_max) {
                let kc = kc_max.min(k - pc);
                let load = pc > 0;
                // SAFETY (the block): the caller's contract; every panel, tile and edge
                // copy below stays inside the blocks just packed and the matrix C.
                unsafe {
                    pack(pb, b.transposed(), (jc, nc), (pc, kc), NR);
                    for ic in (0..m).step_by(mc_max) {
                        let mc = mc_max.min(m - ic);
                        pack(pa, a, (ic, mc), (pc, kc), MR);
                        for (jq, jr) in (0..nc).step_by(NR).enumerate() {
                            let cols = NR.min(nc - jr);
                            let bp = pb.as_ptr().add(jq * kc * NR);
                            for (iq, ir) in (0..mc).step_by(MR).enumerate() {
                                let rows = MR.min(mc - ir);
                                let ap = pa.as_ptr().add(iq * kc * MR);
                                let cp = c.add(ic + ir + (jc + jr) * ldc);
                                if rows == MR && cols == NR {
                                    micro(kc, ap, bp, cp, ldc, load);
                                    continue;
                                }
                                // An edge tile: through `tile` (`MR × NR`, column-major).
                                if load {
                                    for j in 0..cols {
                                        let src = std::slice::from_raw_parts(cp.add(j * ldc), rows);
                                        tile[j * MR..j * MR + rows].copy_from_slice(src);
                                    }
                                }
                                micro(kc, ap, bp, tile.as_mut_ptr(), MR, load);
                                for j in 0..cols {
                                    let dst = std::slice::from_raw_parts_mut(cp.add(j * ldc), rows);
                                    dst.copy_from_slice(&tile[j * MR..j * MR + rows]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether [`gemm`] runs an `m × n` product over `k` steps of `dtype` on this CPU: f32,
/// AVX-512 and every dimension at least [`MIN_DIM`]. f64 products stay on faer, which
/// measured as fast as this kernel on them (W3/W4 f64, Intel Xeon VM); faer's f32 path
/// trails it (it reads A in place, which at power-of-two strides misses the caches).
/// Decided once per product, so that every thread's panel of it runs the same kernel.
pub(crate) fn takes(dtype: DType, m: usize, n: usize, k: usize) -> bool {
    dtype == DType::F32
        && m >= MIN_DIM
        && n >= MIN_DIM
        && k >= MIN_DIM
        && Isa::Avx512.is_available()
}

/// `dst = a · b` on this thread, when the CPU has AVX-512 and `dst` has a unit stride
/// (column- or row-major); returns whether it ran. Callers check [`takes`] first.
pub(crate) fn gemm(dst: MatMut<'_, f32>, a: MatRef<'_, f32>, b: MatRef<'_, f32>) -> bool {
    if !Isa::Avx512.is_available() {
        return false;
    }
    if dst.row_stride() != 1 {
        if dst.col_stride() == 1 {
            return gemm(dst.transpose_mut(), b.transpose(), a.transpose());
        }
        return false;
    }
    let (m, n, k) = (dst.nrows(), dst.ncols(), a.ncols());
    if m == 0 || n == 0 {
        return true;
    }
    let ldc = if n == 1 { m } else { dst.col_stride() as usize };
    let c = dst.as_ptr_mut();
    if k == 0 {
        for j in 0..n {
            // SAFETY: column `j` of `dst` holds `m` elements at unit stride.
            unsafe { std::slice::from_raw_parts_mut(c.add(j * ldc), m) }.fill(0.0);
        }
        return true;
    }
    let src = |x: MatRef<'_, f32>| Src {
        ptr: x.as_ptr(),
        rs: x.row_stride(),
        cs: x.col_stride(),
    };
    #[cfg(target_arch = "x86_64")]
    PACKS.with_borrow_mut(|(pa, pb)| {
        // SAFETY: AVX-512F was checked; faer's views are valid for their shapes and
        // strides, and `dst` is column-major with column stride `ldc`.
        unsafe { x86::gemm_seq([m, n, k], src(a), src(b), c, ldc, (pa, pb)) }
    });
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (src, ldc);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a·b` as one FMA chain per element in increasing `k`: the bits `gemm` promises.
    fn chain(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for j in 0..n {
            for i in 0..m {
                let mut s = 0.0f32;
                for p in 0..k {
                    s = a[i + p * m].mul_add(b[p + j * k], s);
                }
                c[i + j * m] = s;
            }
        }
        c
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u64 + 1) * seed % 1009) as f32 - 504.0) / 97.0)
            .collect()
    }

    fn same_bits(got: &[f32], want: &[f32]) -> bool {
        got.iter()
            .zip(want)
            .all(|(g, w)| g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()))
    }

    #[test]
    fn every_element_is_one_fma_chain() {
        if !Isa::Avx512.is_available() {
            return;
        }
        // Edges in every direction; several k (KC 512), row (MC 256) and column (NC
        // 1020) blocks, and one stretched column block (1100 columns).
        for &(m, n, k) in &[
            (16, 16, 16),
            (37, 29, 300),
            (300, 13, 17),
            (17, 40, 600),
            (20, 1100, 30),
            (20, 1400, 30),
            (70, 25, 530),
        ] {
            let a = values(m * k, 7);
            let b = values(k * n, 13);
            let want = chain(m, n, k, &a, &b);
            let mut c = vec![f32::NAN; m * n];
            let ran = gemm(
                MatMut::from_column_major_slice_mut(&mut c, m, n),
                MatRef::from_column_major_slice(&a, m, k),
                MatRef::from_column_major_slice(&b, k, n),
            );
            assert!(ran);
            assert!(same_bits(&c, &want), "{m}x{n}x{k}");
            // Row-major operands and a row-major result: same bits.
            let at: Vec<f32> = (0..m * k).map(|x| a[(x % k) * m + x / k]).collect();
            let bt: Vec<f32> = (0..k * n).map(|x| b[(x % n) * k + x / n]).collect();
            let mut ct = vec![f32::NAN; m * n];
            gemm(
                MatMut::from_row_major_slice_mut(&mut ct, m, n),
                MatRef::from_row_major_slice(&at, m, k),
                MatRef::from_row_major_slice(&bt, k, n),
            );
            let back: Vec<f32> = (0..m * n).map(|x| ct[(x % m) * n + x / m]).collect();
            assert!(same_bits(&back, &want), "row-major {m}x{n}x{k}");
        }
    }

    #[test]
    fn infinities_and_nans_propagate_as_in_the_chain() {
        if !Isa::Avx512.is_available() {
            return;
        }
        let (m, n, k) = (40, 30, 70);
        let mut a = values(m * k, 11);
        let mut b = values(k * n, 17);
        a[5] = f32::INFINITY; // row 5, step 0: inf · b[0, j]
        a[3 + 9 * m] = f32::NAN; // row 3, step 9
        b[2 + 4 * k] = f32::NEG_INFINITY; // step 2, column 4
        b[6 + 7 * k] = 0.0;
        a[8 + 6 * m] = f32::INFINITY; // row 8, step 6 meets the zero: NaN in (8, 7)
        let want = chain(m, n, k, &a, &b);
        let mut c = vec![0.0; m * n];
        gemm(
            MatMut::from_column_major_slice_mut(&mut c, m, n),
            MatRef::from_column_major_slice(&a, m, k),
            MatRef::from_column_major_slice(&b, k, n),
        );
        assert!(c[8 + 7 * m].is_nan() && c[5].is_infinite());
        assert!(same_bits(&c, &want));
    }
}
