//! Register-tiled real GEMM on AVX-512 (f32, f64): `C = A·B` in Goto's loop order. B is
//! packed `KC × NC` at a time in `NR`-column panels, A `MC × KC` at a time in `MR`-row
//! panels (kept in L2); the micro-kernel holds an `MR × NR` tile of C in 24 vector
//! registers while an A panel streams from L2 past a B panel held in L1.
//!
//! Every element of C is one chain of fused multiply-adds over `k` in increasing order,
//! starting from zero: the tile is reloaded from C between `k` blocks, so neither the
//! blocking, nor the element's place in a tile, nor the split of C between threads
//! changes a bit of it.
//!
//! `dot` runs it for f32 products only (see [`takes`]); the f64 instance is tested but
//! measured no faster than faer.

use crate::kernels::packbuf::{elems_of, Line, PackElem};
use crate::vmath::Isa;
use faer::{MatMut, MatRef};
use tenferro_ir::DType;

/// Vectors of rows in a register tile (`MR = MV · L` rows).
const MV: usize = 2;
/// Columns in a register tile.
const NR: usize = 12;

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

/// A real element type of the kernel, with its micro-kernel and block sizes.
pub(crate) trait Real: PackElem {
    /// Lanes of a 512-bit vector.
    const L: usize;
    /// Contraction steps per block: a B panel (`KC × NR`, 24 KiB) stays in L1.
    const KC: usize;
    /// Rows of A per packed block (`MC × KC`, about 512 KiB: half of L2).
    const MC: usize;
    /// Columns of B per packed block (`KC × NC`, 2 MiB: each thread keeps its packs
    /// between products, so this bounds the memory a thread holds; a wider B costs one
    /// more pack of A per block, `1 / NC` of the multiply-adds).
    const NC: usize;

    /// Copies `n` elements from `src` to `dst`, in whole vectors and a masked tail.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `src` and `dst` are valid for `n` elements.
    unsafe fn copy_run(src: *const Self, dst: *mut Self, n: usize);

    /// `dst[p·w + r] = lines[r][p]` for `p < kc` and `r < rows`, for lines contiguous in
    /// `p`: blocks of `L` lines by `L` steps are loaded as vectors and transposed in
    /// registers. Slots of `r ≥ rows` (below `w`) are left as they are.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `lines[r]` is valid for `kc` elements (`r < rows ≤ w`);
    /// `dst` for `kc · w`.
    unsafe fn pack_lines(
        dst: *mut Self,
        lines: &[*const Self; 64],
        rows: usize,
        kc: usize,
        w: usize,
    );

    /// The `MR × NR` tile at `c` (column stride `ldc`) becomes the sum over `kc` steps of
    /// the packed panels `pa` (`kc × MR`) and `pb` (`kc × NR`), added to the tile's values
    /// when `load`, else to zero.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the panels hold `kc` steps; `c` is valid for the tile.
    unsafe fn micro(
        kc: usize,
        pa: *const Self,
        pb: *const Self,
        c: *mut Self,
        ldc: usize,
        load: bool,
    );
}

macro_rules! micro_avx512 {
    ($t:ty, $name:ident, $zero:ident, $set1:ident, $load:ident, $loadu:ident, $fma:ident, $store:ident) => {
        /// The AVX-512 micro-kernel of [`Real::micro`].
        ///
        /// # Safety
        /// As [`Real::micro`].
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $name(
            kc: usize,
            pa: *const $t,
            pb: *const $t,
            c: *mut $t,
            ldc: usize,
            load: bool,
        ) {
            use std::arch::x86_64::*;
            const L: usize = 64 / std::mem::size_of::<$t>();
            let mut acc = [[$zero(); MV]; NR];
            // SAFETY (all blocks below): the caller's contract on the panels and the tile;
            // the packs are 64-byte aligned and every panel step is `MV` whole vectors.
            if load {
                for (j, col) in acc.iter_mut().enumerate() {
                    for (v, x) in col.iter_mut().enumerate() {
                        *x = unsafe { $loadu(c.add(j * ldc + v * L)) };
                    }
                }
            }
            for p in 0..kc {
                unsafe {
                    let a = pa.add(p * MV * L);
                    let b = pb.add(p * NR);
                    let mut av = [$zero(); MV];
                    for (v, x) in av.iter_mut().enumerate() {
                        *x = $load(a.add(v * L));
                    }
                    for (j, col) in acc.iter_mut().enumerate() {
                        let bj = $set1(*b.add(j));
                        for (v, x) in col.iter_mut().enumerate() {
                            *x = $fma(av[v], bj, *x);
                        }
                    }
                }
            }
            for (j, col) in acc.iter().enumerate() {
                for (v, x) in col.iter().enumerate() {
                    unsafe { $store(c.add(j * ldc + v * L), *x) };
                }
            }
        }
    };
}
micro_avx512!(
    f32,
    micro_f32,
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_load_ps,
    _mm512_loadu_ps,
    _mm512_fmadd_ps,
    _mm512_storeu_ps
);
micro_avx512!(
    f64,
    micro_f64,
    _mm512_setzero_pd,
    _mm512_set1_pd,
    _mm512_load_pd,
    _mm512_loadu_pd,
    _mm512_fmadd_pd,
    _mm512_storeu_pd
);

macro_rules! pack_avx512 {
    ($t:ty, $copy:ident, $lines:ident, $mask:ty, $idx:ty, $zero:ident, $maskz_loadu:ident,
     $mask_storeu:ident, $perm:ident, $loadi:ident) => {
        /// The AVX-512 [`Real::copy_run`].
        ///
        /// # Safety
        /// As [`Real::copy_run`].
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $copy(src: *const $t, dst: *mut $t, n: usize) {
            use std::arch::x86_64::*;
            const L: usize = 64 / std::mem::size_of::<$t>();
            let mut i = 0;
            while i < n {
                let m = (n - i).min(L);
                let mask = (((1u32 << m) - 1) & 0xffff) as $mask;
                // SAFETY: the caller's contract; the mask covers the elements left.
                unsafe {
                    let v = $maskz_loadu(mask, src.add(i));
                    $mask_storeu(dst.add(i), mask, v);
                }
                i += L;
            }
        }

        /// The AVX-512 [`Real::pack_lines`].
        ///
        /// # Safety
        /// As [`Real::pack_lines`].
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $lines(dst: *mut $t, lines: &[*const $t; 64], rows: usize, kc: usize, w: usize) {
            use std::arch::x86_64::*;
            const L: usize = 64 / std::mem::size_of::<$t>();
            // Stage `s` swaps bit `b = L >> (s + 1)` of the line and the step index of every
            // element: lanes with that bit clear come from the first vector, the others
            // from the second; after all stages element `(r, p)` sits at `(p, r)`.
            let mut lo = [[0 as $idx; L]; 4];
            let mut hi = [[0 as $idx; L]; 4];
            let mut b = L / 2;
            let mut stages = 0;
            while b > 0 {
                for j in 0..L {
                    let (l, h) = if j & b == 0 {
                        (j, j + b)
                    } else {
                        (L + j - b, L + j)
                    };
                    lo[stages][j] = l as $idx;
                    hi[stages][j] = h as $idx;
                }
                b /= 2;
                stages += 1;
            }
            // SAFETY: the index tables hold `L` lanes each.
            let (lo, hi) = unsafe {
                let mut lv = [_mm512_setzero_si512(); 4];
                let mut hv = [_mm512_setzero_si512(); 4];
                for s in 0..stages {
                    lv[s] = $loadi(lo[s].as_ptr().cast());
                    hv[s] = $loadi(hi[s].as_ptr().cast());
                }
                (lv, hv)
            };
            for r0 in (0..rows).step_by(L) {
                let nl = (rows - r0).min(L);
                let nstore = (w - r0).min(L);
                let smask = (((1u32 << nstore) - 1) & 0xffff) as $mask;
                for p0 in (0..kc).step_by(L) {
                    let np = (kc - p0).min(L);
                    let lmask = (((1u32 << np) - 1) & 0xffff) as $mask;
                    let mut v = [$zero(); L];
                    // SAFETY (the loads and stores): the caller's contract; the masks keep
                    // them to the `np` steps and `nstore` slots that exist.
                    for (i, x) in v.iter_mut().enumerate().take(nl) {
                        *x = unsafe { $maskz_loadu(lmask, lines[r0 + i].add(p0)) };
                    }
                    let mut b = L / 2;
                    for s in 0..stages {
                        for i in 0..L {
                            if i & b == 0 {
                                let (x, y) = (v[i], v[i + b]);
                                v[i] = $perm(x, lo[s], y);
                                v[i + b] = $perm(x, hi[s], y);
                            }
                        }
                        b /= 2;
                    }
                    for (p, x) in v.iter().enumerate().take(np) {
                        unsafe { $mask_storeu(dst.add((p0 + p) * w + r0), smask, *x) };
                    }
                }
            }
        }
    };
}
pack_avx512!(
    f32,
    copy_run_f32,
    pack_lines_f32,
    u16,
    i32,
    _mm512_setzero_ps,
    _mm512_maskz_loadu_ps,
    _mm512_mask_storeu_ps,
    _mm512_permutex2var_ps,
    _mm512_loadu_si512
);
pack_avx512!(
    f64,
    copy_run_f64,
    pack_lines_f64,
    u8,
    i64,
    _mm512_setzero_pd,
    _mm512_maskz_loadu_pd,
    _mm512_mask_storeu_pd,
    _mm512_permutex2var_pd,
    _mm512_loadu_si512
);

macro_rules! real_impl {
    ($t:ty, $micro:ident, $copy:ident, $lines:ident, $kc:expr, $mc:expr, $nc:expr) => {
        impl Real for $t {
            const L: usize = 64 / std::mem::size_of::<$t>();
            const KC: usize = $kc;
            const MC: usize = $mc;
            const NC: usize = $nc;
            #[inline(always)]
            unsafe fn copy_run(src: *const $t, dst: *mut $t, n: usize) {
                forward_x86!($copy(src, dst, n));
            }
            #[inline(always)]
            unsafe fn pack_lines(
                dst: *mut $t,
                lines: &[*const $t; 64],
                rows: usize,
                kc: usize,
                w: usize,
            ) {
                forward_x86!($lines(dst, lines, rows, kc, w));
            }
            #[inline(always)]
            unsafe fn micro(
                kc: usize,
                pa: *const $t,
                pb: *const $t,
                c: *mut $t,
                ldc: usize,
                load: bool,
            ) {
                forward_x86!($micro(kc, pa, pb, c, ldc, load));
            }
        }
    };
}
real_impl!(f32, micro_f32, copy_run_f32, pack_lines_f32, 512, 256, 1024);
real_impl!(f64, micro_f64, copy_run_f64, pack_lines_f64, 256, 256, 1024);

/// A strided read-only matrix: element `(i, j)` at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
struct Src<T> {
    ptr: *const T,
    rs: isize,
    cs: isize,
}

impl<T> Src<T> {
    fn transposed(self) -> Src<T> {
        Src {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// Packs free indices `f0..f0 + fc` and steps `p0..p0 + kc` of `x` (a `free × steps`
/// matrix: A, or Bᵀ) into `w`-wide panels `[panel][step][w]`, free indices past the end
/// zero. A panel step is one contiguous copy when the free index has unit stride; else
/// the panel's `w` lines are read side by side, one element of each per step, so that
/// the panel is still written in order.
///
/// # Safety
/// The indices are inside `x`; `dst` holds `ceil(fc / w) · kc · w` elements; `w ≤ 64`.
#[inline]
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn pack<T: Real>(
    dst: &mut [T],
    x: Src<T>,
    (f0, fc): (usize, usize),
    (p0, kc): (usize, usize),
    w: usize,
) {
    let panels = fc.div_ceil(w);
    let dst = &mut dst[..panels * kc * w];
    if fc < panels * w {
        dst[(panels - 1) * kc * w..].fill(T::default());
    }
    // SAFETY (all accesses): the caller's contract.
    let at = |f: usize, p: usize| unsafe { x.ptr.offset(f as isize * x.rs + p as isize * x.cs) };
    for (q, panel) in dst.chunks_exact_mut(kc * w).enumerate() {
        let rows = w.min(fc - q * w);
        if x.rs == 1 {
            for (p, step) in panel.chunks_exact_mut(w).enumerate() {
                unsafe { T::copy_run(at(f0 + q * w, p0 + p), step.as_mut_ptr(), rows) };
            }
            continue;
        }
        let mut src = [x.ptr; 64];
        for (r, s) in src.iter_mut().enumerate().take(rows) {
            *s = at(f0 + q * w + r, p0);
        }
        if x.cs == 1 {
            unsafe { T::pack_lines(panel.as_mut_ptr(), &src, rows, kc, w) };
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
#[allow(clippy::too_many_arguments)]
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn gemm_seq<T: Real>(
    [m, n, k]: [usize; 3],
    a: Src<T>,
    b: Src<T>,
    c: *mut T,
    ldc: usize,
    (pa, pb): (&mut Vec<Line>, &mut Vec<Line>),
) {
    let mr = MV * T::L;
    let kc_max = T::KC.min(k);
    let mc_max = (T::MC / mr).max(1) * mr;
    let mc_max = mc_max.min(m.next_multiple_of(mr));
    let nc_max = (T::NC / NR).max(1) * NR;
    let nc_max = nc_max.min(n.next_multiple_of(NR));
    let pa = elems_of::<T>(pa, mc_max * kc_max);
    let pb = elems_of::<T>(pb, nc_max * kc_max);
    let mut tile = [T::default(); 64 * NR];
    for jc in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - jc);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            let load = pc > 0;
            // SAFETY (the block): the caller's contract; every panel, tile and edge copy
            // below stays inside the blocks just packed and the matrix C.
            unsafe {
                pack(pb, b.transposed(), (jc, nc), (pc, kc), NR);
                for ic in (0..m).step_by(mc_max) {
                    let mc = mc_max.min(m - ic);
                    pack(pa, a, (ic, mc), (pc, kc), mr);
                    for (jq, jr) in (0..nc).step_by(NR).enumerate() {
                        let cols = NR.min(nc - jr);
                        let bp = pb.as_ptr().add(jq * kc * NR);
                        for (iq, ir) in (0..mc).step_by(mr).enumerate() {
                            let rows = mr.min(mc - ir);
                            let ap = pa.as_ptr().add(iq * kc * mr);
                            let cp = c.add(ic + ir + (jc + jr) * ldc);
                            if rows == mr && cols == NR {
                                T::micro(kc, ap, bp, cp, ldc, load);
                                continue;
                            }
                            // An edge tile: through `tile` (`mr × NR`, column-major).
                            if load {
                                for j in 0..cols {
                                    let src = std::slice::from_raw_parts(cp.add(j * ldc), rows);
                                    tile[j * mr..j * mr + rows].copy_from_slice(src);
                                }
                            }
                            T::micro(kc, ap, bp, tile.as_mut_ptr(), mr, load);
                            for j in 0..cols {
                                let dst = std::slice::from_raw_parts_mut(cp.add(j * ldc), rows);
                                dst.copy_from_slice(&tile[j * mr..j * mr + rows]);
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

/// `dst = a · b` on this thread, when `dst` has a unit stride (column- or row-major);
/// returns whether it ran. Callers check [`takes`] first.
pub(crate) fn gemm<T: Real>(dst: MatMut<'_, T>, a: MatRef<'_, T>, b: MatRef<'_, T>) -> bool {
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
            unsafe { std::slice::from_raw_parts_mut(c.add(j * ldc), m) }.fill(T::default());
        }
        return true;
    }
    let src = |x: MatRef<'_, T>| Src {
        ptr: x.as_ptr(),
        rs: x.row_stride(),
        cs: x.col_stride(),
    };
    PACKS.with_borrow_mut(|(pa, pb)| {
        // SAFETY: AVX-512F was checked; faer's views are valid for their shapes and
        // strides, and `dst` is column-major with column stride `ldc`.
        unsafe { gemm_seq([m, n, k], src(a), src(b), c, ldc, (pa, pb)) }
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a·b` as one FMA chain per element in increasing `k`: the bits `gemm` promises.
    fn chain(m: usize, n: usize, k: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for j in 0..n {
            for i in 0..m {
                let mut s = 0.0f64;
                for p in 0..k {
                    s = a[i + p * m].mul_add(b[p + j * k], s);
                }
                c[i + j * m] = s;
            }
        }
        c
    }

    fn values(len: usize, seed: u64) -> Vec<f64> {
        (0..len)
            .map(|i| (((i as u64 + 1) * seed % 1009) as f64 - 504.0) / 97.0)
            .collect()
    }

    #[test]
    fn every_element_is_one_fma_chain() {
        if !Isa::Avx512.is_available() {
            return;
        }
        // Edges in every direction, several k, row and column blocks.
        for &(m, n, k) in &[
            (16, 16, 16),
            (37, 29, 300),
            (300, 13, 17),
            (17, 40, 600),
            (20, 1100, 30),
        ] {
            let a = values(m * k, 7);
            let b = values(k * n, 13);
            let want = chain(m, n, k, &a, &b);
            let mut c = vec![f64::NAN; m * n];
            let ran = gemm(
                MatMut::from_column_major_slice_mut(&mut c, m, n),
                MatRef::from_column_major_slice(&a, m, k),
                MatRef::from_column_major_slice(&b, k, n),
            );
            assert!(ran);
            assert_eq!(c, want, "{m}x{n}x{k}");
            // Row-major operands and a row-major result: same bits.
            let at: Vec<f64> = (0..m * k).map(|x| a[(x % k) * m + x / k]).collect();
            let bt: Vec<f64> = (0..k * n).map(|x| b[(x % n) * k + x / n]).collect();
            let mut ct = vec![f64::NAN; m * n];
            gemm(
                MatMut::from_row_major_slice_mut(&mut ct, m, n),
                MatRef::from_row_major_slice(&at, m, k),
                MatRef::from_row_major_slice(&bt, k, n),
            );
            let back: Vec<f64> = (0..m * n).map(|x| ct[(x % m) * n + x / m]).collect();
            assert_eq!(back, want, "row-major {m}x{n}x{k}");
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
        a[5] = f64::INFINITY; // row 5, step 0: inf · b[0, j]
        a[3 + 9 * m] = f64::NAN; // row 3, step 9
        b[2 + 4 * k] = f64::NEG_INFINITY; // step 2, column 4
        b[6 + 7 * k] = 0.0;
        a[8 + 6 * m] = f64::INFINITY; // row 8, step 6 meets the zero: NaN in (8, 7)
        let want = chain(m, n, k, &a, &b);
        let mut c = vec![0.0; m * n];
        gemm(
            MatMut::from_column_major_slice_mut(&mut c, m, n),
            MatRef::from_column_major_slice(&a, m, k),
            MatRef::from_column_major_slice(&b, k, n),
        );
        assert!(c[8 + 7 * m].is_nan() && c[5].is_infinite());
        for (i, (g, w)) in c.iter().zip(&want).enumerate() {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{i}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn f32_matches_the_chain() {
        if !Isa::Avx512.is_available() {
            return;
        }
        let (m, n, k) = (70, 25, 530);
        let a: Vec<f32> = values(m * k, 3).iter().map(|&x| x as f32).collect();
        let b: Vec<f32> = values(k * n, 5).iter().map(|&x| x as f32).collect();
        // Column-major A, then the same A row-major (its transpose's data).
        let at: Vec<f32> = (0..m * k).map(|x| a[(x % k) * m + x / k]).collect();
        for (lhs, row_major) in [(&a, false), (&at, true)] {
            let lhs = if row_major {
                MatRef::from_row_major_slice(lhs, m, k)
            } else {
                MatRef::from_column_major_slice(lhs, m, k)
            };
            let mut c = vec![0.0f32; m * n];
            gemm(
                MatMut::from_column_major_slice_mut(&mut c, m, n),
                lhs,
                MatRef::from_column_major_slice(&b, k, n),
            );
            for j in 0..n {
                for i in 0..m {
                    let mut s = 0.0f32;
                    for p in 0..k {
                        s = a[i + p * m].mul_add(b[p + j * k], s);
                    }
                    assert_eq!(c[i + j * m].to_bits(), s.to_bits(), "({i}, {j})");
                }
            }
        }
    }
}
