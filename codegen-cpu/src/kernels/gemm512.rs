//! Register-tiled f32 and f64 GEMM on AVX-512: `C = A·B` in Goto's loop order. B is
//! packed `KC × NC` at a time in `NR`-column panels, A `MC × KC` at a time in `MR`-row
//! panels (kept in L2); the micro-kernel holds an `MR × NR` tile of C in 24 vector
//! registers (`MR` is two vectors: 32 f32 or 16 f64 rows) while an A panel streams from
//! L2 past a B panel held in L1. The blocks are sized in bytes, so both types keep the
//! same cache footprint.
//!
//! Every element of C is one chain of fused multiply-adds over `k` in increasing order,
//! starting from zero: the tile is reloaded from C between `k` blocks, so neither the
//! blocking, nor the element's place in a tile, nor the split of C between threads
//! changes a bit of it.

use crate::kernels::packbuf::{elems_of, Line, PackElem};
use crate::vmath::Isa;
use faer::{MatMut, MatRef};
use tenferro_ir::DType;

/// Vectors of rows in a register tile.
const MV: usize = 2;
/// Columns in a register tile.
const NR: usize = 12;
/// Bytes of an f32 B panel (`KC × NR`), kept in L1: `KC` is 512 steps.
const B_PANEL_BYTES_F32: usize = 24 << 10;
/// Bytes of an f64 B panel: `KC` is 128 steps. Half of f32's: the f64 tile has as many
/// columns but half the rows per step, and `KC` 128 ran 3-4 % faster than 256 (1024³ at one
/// and two threads, Intel Xeon VM); it reloads C twice as often, while a B panel and the
/// A panel streaming past it stay within L1.
const B_PANEL_BYTES_F64: usize = 12 << 10;
/// Bytes of a packed A block (`MC × KC`: a quarter of L2): `MC` is 256 f32 or 512 f64
/// rows, whole panels.
const A_BLOCK_BYTES: usize = 512 << 10;
/// Bytes of a packed B block (`KC × NC`: each thread keeps its packs between products, so
/// this bounds the memory a thread holds): `NC` is 1020 f32 or 2040 f64 columns. Each
/// block packs all of A again, which costs far more than its share of multiply-adds (a
/// pack runs at memory speed), so products up to `NC + NC / 4` columns take one block
/// (1024 f32 columns would otherwise take a block of 1020 and one of 4, with A packed
/// twice: W4_mm_f32 at one thread 12.3 -> 11.8 ms).
const B_BLOCK_BYTES: usize = 2 << 20;

/// Fewest rows, columns and contraction steps for which [`takes`] picks this kernel:
/// below them the packing costs more than it saves, and faer's small-product kernels are
/// as fast.
const MIN_DIM: usize = 64;
/// [`MIN_DIM`] for f64 products.
const MIN_DIM_F64: usize = 128;
/// Multiply-adds an f64 product must exceed to take this kernel (`256³`).
const MIN_MADDS_F64: u128 = 1 << 24;

thread_local! {
    /// This thread's A and B packs, kept between products.
    static PACKS: std::cell::RefCell<(Vec<Line>, Vec<Line>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

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

/// An element type of this kernel: f32 or f64 (on x86-64, those with vector operations).
#[cfg(target_arch = "x86_64")]
pub(crate) trait Elem: x86::Simd {}
#[cfg(target_arch = "x86_64")]
impl<T: x86::Simd> Elem for T {}
/// An element type of this kernel: f32 or f64.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) trait Elem: PackElem + faer::traits::ComplexField {}
#[cfg(not(target_arch = "x86_64"))]
impl Elem for f32 {}
#[cfg(not(target_arch = "x86_64"))]
impl Elem for f64 {}

/// The AVX-512 kernels; the module exists on x86-64 only, and [`gemm`] calls it only
/// when the CPU has AVX-512.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{
        elems_of, Line, Src, A_BLOCK_BYTES, B_BLOCK_BYTES, B_PANEL_BYTES_F32, B_PANEL_BYTES_F64,
        MV, NR,
    };
    use std::arch::x86_64::*;

    /// The vector operations of one element type. Every method is an AVX-512F intrinsic
    /// (or a few), inlined into the `avx512f` functions below that call it.
    pub(crate) trait Simd: super::PackElem + faer::traits::ComplexField {
        /// Lanes of a 512-bit vector.
        const L: usize;
        /// A 512-bit vector of `L` elements.
        type V: Copy;
        /// Contraction steps per block (a `KC × NR` B panel fills the type's panel bytes).
        const KC: usize;
        /// Rows of a register tile.
        const MR: usize = MV * Self::L;
        /// Rows of A per packed block (`MC × KC` fills [`A_BLOCK_BYTES`]): whole panels.
        const MC: usize =
            A_BLOCK_BYTES / (Self::KC * std::mem::size_of::<Self>()) / Self::MR * Self::MR;
        /// Columns of B per packed block (`KC × NC` fills [`B_BLOCK_BYTES`]): whole panels.
        const NC: usize = B_BLOCK_BYTES / (Self::KC * std::mem::size_of::<Self>()) / NR * NR;
        /// Widest `n` packed as one block.
        const NC_STRETCH: usize = Self::NC + Self::NC / 4;

        unsafe fn zero() -> Self::V;
        /// Load from a 64-byte aligned address.
        unsafe fn load(p: *const Self) -> Self::V;
        unsafe fn loadu(p: *const Self) -> Self::V;
        unsafe fn storeu(p: *mut Self, v: Self::V);
        unsafe fn set1(x: Self) -> Self::V;
        /// `a·b + c`, one rounding.
        unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
        /// The lanes of `m` (bit `i`: lane `i`) loaded, the others zero; no memory read
        /// outside them.
        unsafe fn maskz_loadu(m: u16, p: *const Self) -> Self::V;
        /// The lanes of `m` stored; no memory written outside them.
        unsafe fn mask_storeu(p: *mut Self, m: u16, v: Self::V);
        /// `v[i]` lane `j` becomes `v[j]` lane `i`, for `i, j < L` (an `L × L` block
        /// transposed in registers).
        unsafe fn transpose(v: &mut [Self::V; 16]);
    }

    /// Lane `j`'s sources in the two vectors of transposing stage `s` of an `l × l`
    /// block: the stage swaps bit `l >> (s + 1)` of the line and the step index of every
    /// element, lanes with that bit clear taken from the first vector (indices below `l`),
    /// the others from the second.
    fn stage_sources(l: usize, s: usize, j: usize) -> (usize, usize) {
        let b = l >> (s + 1);
        if j & b == 0 {
            (j, j + b)
        } else {
            (l + j - b, l + j)
        }
    }

    /// `impl Simd` for `$t` on the intrinsics named: lanes `$l`, masks `$mask`, transpose
    /// index tables of `$ix` lanes, and the transposing stages `(stage, swapped bit, first
    /// vectors of the pairs)` written out, so that every index is a constant and the
    /// vectors stay in registers.
    macro_rules! simd_impl {
        (
            $t:ty, $v:ty, $l:literal, $mask:ty, $ix:ty, $panel:expr,
            [$zero:ident, $load:ident, $loadu:ident, $storeu:ident, $set1:ident, $fmadd:ident,
             $maskz_loadu:ident, $mask_storeu:ident, $permute:ident],
            $(($s:literal, $b:literal, [$($i:literal),*])),*
        ) => {
            impl Simd for $t {
                const L: usize = $l;
                const KC: usize = $panel / (NR * std::mem::size_of::<$t>());
                type V = $v;
                #[inline(always)]
                unsafe fn zero() -> $v {
                    unsafe { $zero() }
                }
                #[inline(always)]
                unsafe fn load(p: *const $t) -> $v {
                    unsafe { $load(p) }
                }
                #[inline(always)]
                unsafe fn loadu(p: *const $t) -> $v {
                    unsafe { $loadu(p) }
                }
                #[inline(always)]
                unsafe fn storeu(p: *mut $t, v: $v) {
                    unsafe { $storeu(p, v) }
                }
                #[inline(always)]
                unsafe fn set1(x: $t) -> $v {
                    unsafe { $set1(x) }
                }
                #[inline(always)]
                unsafe fn fmadd(a: $v, b: $v, c: $v) -> $v {
                    unsafe { $fmadd(a, b, c) }
                }
                #[inline(always)]
                unsafe fn maskz_loadu(m: u16, p: *const $t) -> $v {
                    unsafe { $maskz_loadu(m as $mask, p) }
                }
                #[inline(always)]
                unsafe fn mask_storeu(p: *mut $t, m: u16, v: $v) {
                    unsafe { $mask_storeu(p, m as $mask, v) }
                }
                #[inline(always)]
                unsafe fn transpose(v: &mut [$v; 16]) {
                    $(
                        let lo: [$ix; $l] = std::array::from_fn(|j| stage_sources($l, $s, j).0 as $ix);
                        let hi: [$ix; $l] = std::array::from_fn(|j| stage_sources($l, $s, j).1 as $ix);
                        // SAFETY: each table is one 512-bit vector.
                        let (lo, hi) = unsafe {
                            (
                                _mm512_loadu_si512(lo.as_ptr().cast()),
                                _mm512_loadu_si512(hi.as_ptr().cast()),
                            )
                        };
                        $(
                            let (x, y) = (v[$i], v[$i + $b]);
                            unsafe {
                                v[$i] = $permute(x, lo, y);
                                v[$i + $b] = $permute(x, hi, y);
                            }
                        )*
                    )*
                }
            }
        };
    }

    simd_impl!(
        f32,
        __m512,
        16,
        __mmask16,
        i32,
        B_PANEL_BYTES_F32,
        [
            _mm512_setzero_ps,
            _mm512_load_ps,
            _mm512_loadu_ps,
            _mm512_storeu_ps,
            _mm512_set1_ps,
            _mm512_fmadd_ps,
            _mm512_maskz_loadu_ps,
            _mm512_mask_storeu_ps,
            _mm512_permutex2var_ps
        ],
        (0, 8, [0, 1, 2, 3, 4, 5, 6, 7]),
        (1, 4, [0, 1, 2, 3, 8, 9, 10, 11]),
        (2, 2, [0, 1, 4, 5, 8, 9, 12, 13]),
        (3, 1, [0, 2, 4, 6, 8, 10, 12, 14])
    );
    simd_impl!(
        f64,
        __m512d,
        8,
        __mmask8,
        i64,
        B_PANEL_BYTES_F64,
        [
            _mm512_setzero_pd,
            _mm512_load_pd,
            _mm512_loadu_pd,
            _mm512_storeu_pd,
            _mm512_set1_pd,
            _mm512_fmadd_pd,
            _mm512_maskz_loadu_pd,
            _mm512_mask_storeu_pd,
            _mm512_permutex2var_pd
        ],
        (0, 4, [0, 1, 2, 3]),
        (1, 2, [0, 1, 4, 5]),
        (2, 1, [0, 2, 4, 6])
    );

    /// The `MR × NR` tile at `c` (column stride `ldc`) becomes the sum over `kc` steps of
    /// the packed panels `pa` (`kc × MR`) and `pb` (`kc × NR`), added to the tile's
    /// values when `load`, else to zero. The lines of the tile at `next` (the same
    /// column stride), which the next call reads or writes, are fetched into L2 meanwhile.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the panels hold `kc` steps, `pa` 64-byte aligned; `c` is
    /// valid for the tile.
    #[target_feature(enable = "avx512f")]
    unsafe fn micro<T: Simd>(
        kc: usize,
        pa: *const T,
        pb: *const T,
        (c, ldc): (*mut T, usize),
        next: *const T,
        load: bool,
    ) {
        let l = T::L;
        // A prefetch never faults, whatever the address.
        for j in 0..NR {
            for v in 0..MV {
                let at = next.wrapping_add(j * ldc + v * l).cast::<i8>();
                _mm_prefetch::<_MM_HINT_T1>(at);
            }
        }
        let mut acc = [[unsafe { T::zero() }; MV]; NR];
        // SAFETY (all blocks below): the caller's contract on the panels and the tile;
        // every panel step is `MV` whole, aligned vectors.
        if load {
            for (j, col) in acc.iter_mut().enumerate() {
                for (v, x) in col.iter_mut().enumerate() {
                    *x = unsafe { T::loadu(c.add(j * ldc + v * l)) };
                }
            }
        }
        for p in 0..kc {
            unsafe {
                let a = pa.add(p * T::MR);
                let b = pb.add(p * NR);
                let mut av = [T::zero(); MV];
                for (v, x) in av.iter_mut().enumerate() {
                    *x = T::load(a.add(v * l));
                }
                for (j, col) in acc.iter_mut().enumerate() {
                    let bj = T::set1(*b.add(j));
                    for (v, x) in col.iter_mut().enumerate() {
                        *x = T::fmadd(av[v], bj, *x);
                    }
                }
            }
        }
        for (j, col) in acc.iter().enumerate() {
            for (v, x) in col.iter().enumerate() {
                unsafe { T::storeu(c.add(j * ldc + v * l), *x) };
            }
        }
    }

    /// The first `m ≤ 16` lanes set.
    fn mask(m: usize) -> u16 {
        ((1u32 << m) - 1) as u16
    }

    /// Copies `n` elements from `src` to `dst`, in whole vectors and a masked tail.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `src` and `dst` are valid for `n` elements.
    #[target_feature(enable = "avx512f")]
    unsafe fn copy_run<T: Simd>(src: *const T, dst: *mut T, n: usize) {
        let mut i = 0;
        while i < n {
            let m = mask((n - i).min(T::L));
            // SAFETY: the caller's contract; the mask covers the elements left.
            unsafe { T::mask_storeu(dst.add(i), m, T::maskz_loadu(m, src.add(i))) };
            i += T::L;
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
    unsafe fn pack_lines<T: Simd>(
        dst: *mut T,
        lines: &[*const T; 64],
        rows: usize,
        kc: usize,
        w: usize,
    ) {
        let l = T::L;
        for r0 in (0..rows).step_by(l) {
            let nl = (rows - r0).min(l);
            let smask = mask((w - r0).min(l));
            for p0 in (0..kc).step_by(l) {
                let np = (kc - p0).min(l);
                let lmask = mask(np);
                // Every loop below has a constant trip count, so `v` stays in registers;
                // lines past `nl` load nothing (an empty mask) and stay zero.
                let mut v = [unsafe { T::zero() }; 16];
                // SAFETY (the loads and stores): the caller's contract; the masks keep
                // them to the `np` steps and the slots below `w` that exist, and a load
                // with an empty mask reads no memory.
                for (i, x) in v.iter_mut().enumerate().take(l) {
                    let (m, line) = if i < nl {
                        (lmask, lines[r0 + i])
                    } else {
                        (0, lines[r0])
                    };
                    *x = unsafe { T::maskz_loadu(m, line.add(p0)) };
                }
                unsafe { T::transpose(&mut v) };
                for (p, x) in v.iter().enumerate().take(l) {
                    if p < np {
                        unsafe { T::mask_storeu(dst.add((p0 + p) * w + r0), smask, *x) };
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
    unsafe fn pack<T: Simd>(
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
    pub(super) unsafe fn gemm_seq<T: Simd>(
        [m, n, k]: [usize; 3],
        a: Src<T>,
        b: Src<T>,
        c: *mut T,
        ldc: usize,
        (pa, pb): (&mut Vec<Line>, &mut Vec<Line>),
    ) {
        let (mr, kc_max) = (T::MR, T::KC.min(k));
        let mc_max = T::MC.min(m.next_multiple_of(mr));
        let nc_max = if n <= T::NC_STRETCH {
            n.next_multiple_of(NR)
        } else {
            T::NC
        };
        let pa = elems_of::<T>(pa, mc_max * kc_max);
        let pb = elems_of::<T>(pb, nc_max * kc_max);
        // An edge tile (`MR × NR`, column-major; `MR` is `MV` vectors of at most 16 lanes).
        let mut tile = [T::default(); MV * 16 * NR];
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
                        pack(pa, a, (ic, mc), (pc, kc), mr);
                        for (jq, jr) in (0..nc).step_by(NR).enumerate() {
                            let cols = NR.min(nc - jr);
                            let bp = pb.as_ptr().add(jq * kc * NR);
                            for (iq, ir) in (0..mc).step_by(mr).enumerate() {
                                let rows = mr.min(mc - ir);
                                let ap = pa.as_ptr().add(iq * kc * mr);
                                let cp = c.add(ic + ir + (jc + jr) * ldc);
                                let next = if ir + mr < mc {
                                    cp.wrapping_add(mr)
                                } else {
                                    c.wrapping_add(ic + (jc + jr + NR) * ldc)
                                };
                                if rows == mr && cols == NR {
                                    micro(kc, ap, bp, (cp, ldc), next, load);
                                    continue;
                                }
                                if load {
                                    for j in 0..cols {
                                        let src = std::slice::from_raw_parts(cp.add(j * ldc), rows);
                                        tile[j * mr..j * mr + rows].copy_from_slice(src);
                                    }
                                }
                                micro(kc, ap, bp, (tile.as_mut_ptr(), mr), next, load);
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
}

/// Whether [`gemm`] runs an `m × n` product over `k` steps of `dtype` on this CPU: f32
/// with every dimension at least [`MIN_DIM`], or f64 with every dimension at least
/// [`MIN_DIM_F64`] and more than [`MIN_MADDS_F64`] multiply-adds, on AVX-512. faer's f32
/// kernel reads A in place, which at power-of-two strides misses the caches; its f64
/// kernel is as fast as this one up to 256³ and trails it above (1024³, one thread,
/// Intel Xeon VM: 0.90-0.93x faer's time, and 0.89x on the two products of a matmul's
/// vjp). Decided once per product, so that every thread's panel of it runs the same
/// kernel.
pub(crate) fn takes(dtype: DType, m: usize, n: usize, k: usize) -> bool {
    let fits = match dtype {
        DType::F32 => m.min(n).min(k) >= MIN_DIM,
        DType::F64 => {
            m.min(n).min(k) >= MIN_DIM_F64
                && (m as u128) * (n as u128) * (k as u128) > MIN_MADDS_F64
        }
        _ => false,
    };
    fits && Isa::Avx512.is_available()
}

/// `dst = a · b` on this thread, when the CPU has AVX-512 and `dst` has a unit stride
/// (column- or row-major); returns whether it ran. Callers check [`takes`] first.
pub(crate) fn gemm<T: Elem>(dst: MatMut<'_, T>, a: MatRef<'_, T>, b: MatRef<'_, T>) -> bool {
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

    /// The element operations the tests need.
    trait Real: Elem + PartialEq + std::fmt::Debug {
        fn of(x: f64) -> Self;
        fn fma(self, b: Self, c: Self) -> Self;
        fn bits(self) -> u64;
        fn nan(self) -> bool;
    }
    macro_rules! real {
        ($t:ty) => {
            impl Real for $t {
                fn of(x: f64) -> $t {
                    x as $t
                }
                fn fma(self, b: $t, c: $t) -> $t {
                    self.mul_add(b, c)
                }
                fn bits(self) -> u64 {
                    self.to_bits().into()
                }
                fn nan(self) -> bool {
                    self.is_nan()
                }
            }
        };
    }
    real!(f32);
    real!(f64);

    /// `a·b` as one FMA chain per element in increasing `k`: the bits `gemm` promises.
    fn chain<T: Real>(m: usize, n: usize, k: usize, a: &[T], b: &[T]) -> Vec<T> {
        let mut c = vec![T::of(0.0); m * n];
        for j in 0..n {
            for i in 0..m {
                let mut s = T::of(0.0);
                for p in 0..k {
                    s = a[i + p * m].fma(b[p + j * k], s);
                }
                c[i + j * m] = s;
            }
        }
        c
    }

    fn values<T: Real>(len: usize, seed: u64) -> Vec<T> {
        (0..len)
            .map(|i| T::of((((i as u64 + 1) * seed % 1009) as f64 - 504.0) / 97.0))
            .collect()
    }

    fn same_bits<T: Real>(got: &[T], want: &[T]) -> bool {
        got.iter()
            .zip(want)
            .all(|(g, w)| g.bits() == w.bits() || (g.nan() && w.nan()))
    }

    /// Edges in every direction; several k (KC 512 f32, 128 f64), row (MC 256 f32, 512
    /// f64) and column (NC 1020 f32, 2040 f64) blocks, and one stretched column block
    /// (1100 columns in f32); column- and row-major operands and results.
    fn chains<T: Real>() {
        for &(m, n, k) in &[
            (16, 16, 16),
            (37, 29, 300),
            (300, 13, 17),
            (17, 40, 600),
            (20, 1100, 30),
            (20, 1400, 30),
            (70, 25, 530),
            (600, 13, 40),
        ] {
            let a = values::<T>(m * k, 7);
            let b = values::<T>(k * n, 13);
            let want = chain(m, n, k, &a, &b);
            let mut c = vec![T::of(f64::NAN); m * n];
            let ran = gemm(
                MatMut::from_column_major_slice_mut(&mut c, m, n),
                MatRef::from_column_major_slice(&a, m, k),
                MatRef::from_column_major_slice(&b, k, n),
            );
            assert!(ran);
            let ty = std::any::type_name::<T>();
            assert!(same_bits(&c, &want), "{ty} {m}x{n}x{k}");
            // Row-major operands and a row-major result: same bits.
            let at: Vec<T> = (0..m * k).map(|x| a[(x % k) * m + x / k]).collect();
            let bt: Vec<T> = (0..k * n).map(|x| b[(x % n) * k + x / n]).collect();
            let mut ct = vec![T::of(f64::NAN); m * n];
            gemm(
                MatMut::from_row_major_slice_mut(&mut ct, m, n),
                MatRef::from_row_major_slice(&at, m, k),
                MatRef::from_row_major_slice(&bt, k, n),
            );
            let back: Vec<T> = (0..m * n).map(|x| ct[(x % m) * n + x / m]).collect();
            assert!(same_bits(&back, &want), "row-major {m}x{n}x{k}");
        }
    }

    #[test]
    fn every_element_is_one_fma_chain() {
        if !Isa::Avx512.is_available() {
            return;
        }
        chains::<f32>();
        chains::<f64>();
    }

    fn specials<T: Real>() {
        let (m, n, k) = (40, 30, 70);
        let mut a = values::<T>(m * k, 11);
        let mut b = values::<T>(k * n, 17);
        a[5] = T::of(f64::INFINITY); // row 5, step 0: inf · b[0, j]
        a[3 + 9 * m] = T::of(f64::NAN); // row 3, step 9
        b[2 + 4 * k] = T::of(f64::NEG_INFINITY); // step 2, column 4
        b[6 + 7 * k] = T::of(0.0);
        a[8 + 6 * m] = T::of(f64::INFINITY); // row 8, step 6 meets the zero: NaN in (8, 7)
        let want = chain(m, n, k, &a, &b);
        let mut c = vec![T::of(0.0); m * n];
        gemm(
            MatMut::from_column_major_slice_mut(&mut c, m, n),
            MatRef::from_column_major_slice(&a, m, k),
            MatRef::from_column_major_slice(&b, k, n),
        );
        let infinite = [f64::INFINITY, f64::NEG_INFINITY]
            .map(T::of)
            .contains(&c[5]);
        assert!(c[8 + 7 * m].nan() && infinite);
        assert!(same_bits(&c, &want));
    }

    #[test]
    fn infinities_and_nans_propagate_as_in_the_chain() {
        if !Isa::Avx512.is_available() {
            return;
        }
        specials::<f32>();
        specials::<f64>();
    }

    /// f64 products take this kernel only above 256³ with every side at least 128.
    #[test]
    fn f64_takes_large_products_only() {
        if !Isa::Avx512.is_available() {
            return;
        }
        assert!(takes(DType::F32, 64, 64, 64));
        assert!(!takes(DType::F64, 64, 64, 64));
        assert!(!takes(DType::F64, 256, 256, 256));
        assert!(takes(DType::F64, 256, 512, 512));
        assert!(!takes(DType::F64, 100, 4096, 4096));
        assert!(!takes(DType::C64, 1024, 1024, 1024));
    }
}
