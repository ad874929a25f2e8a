//! Batched products whose batch axes are the fastest axes of both operands and of the
//! result: `bij,bjk->bik` on column-major data, the batch-first order NumPy and JAX
//! programs write. A GEMM per batch would read every matrix at a stride of the batch
//! extent, so the generic path (`dot`) copies both operands and the result. Here the
//! batch axis is the SIMD lane instead: `L` batch elements (one 512-bit vector) advance
//! together through a register-tiled product in which every step is a fused multiply-add
//! of whole vectors, and the result is stored in place, without a copy.
//!
//! For each block of `L` batch elements, the micro-kernel keeps an `MR × NR` tile of
//! `L`-lane accumulators in registers over `KC` steps of the contraction. The lhs is
//! packed in `MR`-row panels (each entry `L` lanes), which stay in L1 while every column
//! panel meets them. When the rhs offsets are regular, its vectors whole cache lines and
//! the CPU one that gains from it ([`in_place_pays`]), the rhs panels are read in place
//! from L2 ([`run_direct`]); otherwise ([`run_part`]) they are packed too, for several
//! blocks at once. Rows, columns and lanes past the ends are zero-padded in the packs
//! and not stored; a short row panel skips its padding's multiply-adds. Every result
//! element is one chain of fused multiply-adds over the contraction in increasing order
//! (a `KC` block goes on from the sums the previous one stored), whatever the blocking
//! and the thread count: threads take result rows, result columns or whole batch blocks
//! (see [`parts`]). A product with one result row or column (a batched vector times a
//! matrix) skips the tiles and packs: it reads the matrix once in place, with the same
//! chains ([`vector_part`]). f32 and f64 on AVX-512 only; other dtypes and CPUs take
//! `dot`'s GEMM path.

use crate::kernels::packbuf::{elems_of, Line, PackElem};
use crate::vmath::Isa;
use std::ops::Range;

/// Rows of lhs in a register tile.
const MR: usize = 6;
/// Columns of rhs in a register tile.
const NR: usize = 4;
/// Bytes of one register-tile panel (`KC × MR × L` elements, so `KC` is 64 for 64-byte
/// lanes): an lhs panel stays in L1 while the rhs panels stream past it from L2.
const PANEL_BYTES: usize = 24 << 10;
/// Batch blocks packed together: 8 vectors make 512 contiguous bytes of every row read.
const SUPER_BLOCK: usize = 8;
/// Bytes of the rhs pack (`KC × NC` columns of a super-block), kept in L2.
const RHS_PACK_BYTES: usize = 1 << 20;

/// A batched product that runs on batch lanes (see the module documentation).
#[derive(Clone, Debug)]
pub(crate) struct LanePlan {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    /// Offset of each lhs row (free index) and column (contraction index); the batch
    /// index adds itself (stride 1).
    lhs_rows: Vec<usize>,
    lhs_cols: Vec<usize>,
    /// Offset of each rhs row (contraction index) and column (free index).
    rhs_rows: Vec<usize>,
    rhs_cols: Vec<usize>,
    /// The rhs offsets' strides `[row, column]` when both tables are arithmetic
    /// progressions and this CPU gains from reading them in place ([`in_place_pays`]):
    /// the micro-kernel then reads whole rhs panels in place.
    rhs_strides: Option<[usize; 2]>,
}

/// Lanes of a 512-bit vector of `elem_bytes`-byte elements.
const fn lanes(elem_bytes: usize) -> usize {
    64 / elem_bytes
}

impl LanePlan {
    /// The plan for a product of `batch` `m × k` by `k × n` matrices of `elem_bytes`-byte
    /// elements whose batch index has stride 1 in both operands and in the `[batch, m, n]`
    /// result; `tables` gives the offsets of each operand's matrix indices. `None` (and
    /// `tables` not called: its tables are as long as the sides) unless the CPU has
    /// AVX-512, the dtype is f32 or f64 (`elem_bytes` 4 or 8), the batch fills at least
    /// one vector, the product has a contraction (`k = 0` leaves nothing to store: the
    /// generic path zero-fills) and a non-empty result, no side is longer than
    /// [`LANE_MAX_SIDE`] and the matrices are small enough ([`lanes_pay`]).
    pub(crate) fn new(
        elem_bytes: usize,
        batch: usize,
        [m, n, k]: [usize; 3],
        tables: impl FnOnce() -> [Vec<usize>; 4],
    ) -> Option<LanePlan> {
        if !matches!(elem_bytes, 4 | 8)
            || batch < lanes(elem_bytes)
            || k == 0
            || m == 0
            || n == 0
            || m.max(n).max(k) > LANE_MAX_SIDE
            || !lanes_pay(m, n, k)
            || !Isa::Avx512.is_available()
        {
            return None;
        }
        let [lhs_rows, lhs_cols, rhs_rows, rhs_cols] = tables();
        let rhs_strides = progressions(&rhs_rows, &rhs_cols).filter(|_| in_place_pays());
        Some(LanePlan {
            batch,
            m,
            n,
            k,
            lhs_rows,
            lhs_cols,
            rhs_rows,
            rhs_cols,
            rhs_strides,
        })
    }
}

/// The common difference of `offsets` when they are an increasing arithmetic progression
/// (0 for a single offset).
fn stride(offsets: &[usize]) -> Option<usize> {
    let d = match offsets {
        [x, y, ..] => y.checked_sub(*x).filter(|&d| d > 0)?,
        _ => 0,
    };
    offsets.windows(2).all(|w| w[1] == w[0] + d).then_some(d)
}

/// The strides `[row, column]` of an operand's offset tables when both are arithmetic
/// progressions.
fn progressions(rows: &[usize], cols: &[usize]) -> Option<[usize; 2]> {
    stride(rows).zip(stride(cols)).map(|(r, c)| [r, c])
}

/// Whether reading rhs panels in place ([`run_direct`]) beats packing them on this CPU.
/// It does on AMD Zen 4 (`bij,bjk->bik`, f64, batch 32, 64³: 0.35 against 0.39 ms, one
/// thread) and loses on an Intel Xeon VM of the Sapphire Rapids class, where the time
/// sits on the in-place rhs loads (128³: 8.4-9.5 against 3.9-5.4 ms at one thread,
/// 4.7-5.1 against 3.0-3.1 ms at two; software prefetch of the next steps did not
/// help), so only AMD CPUs read in place.
fn in_place_pays() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AMD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AMD.get_or_init(|| {
            // CPUID leaf 0: the vendor string, present on every x86-64 CPU.
            let id = std::arch::x86_64::__cpuid(0);
            let vendor = [id.ebx, id.edx, id.ecx].map(u32::to_le_bytes);
            vendor.as_flattened() == b"AuthenticAMD"
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Longest matrix side (rows, columns or contraction steps) of a product on batch lanes:
/// the lane kernel is for small matrices, and its plan holds an offset per row, column
/// and step (a skinny product passes [`lanes_pay`] with any length of its long side).
const LANE_MAX_SIDE: usize = 1 << 16;

/// Largest ratio of multiply-adds to matrix elements (`m·n·k / (m·k + k·n + m·n)`) for
/// which batch lanes beat the GEMM path. That path copies both operands into batch-last
/// order and runs one GEMM per batch element, writing the batch-first result with strided
/// rows; the lanes read the rhs in place and need no copy. Measured on `bij,bjk->bik`
/// (f64, batch 32, AMD EPYC Zen 4 VM, 1 and 2 threads): lanes 1.4-1.6x faster at 128³
/// (ratio 43), 1.1x at 192³ (64), a tie at 256³ (85), and 1.7x faster on a skinny
/// `512 × 32 · 32 × 512` product (28).
pub(crate) const LANE_MAX_FLOPS_PER_ELEMENT: f64 = 96.0;

/// Whether an `m × k` by `k × n` product per batch element is small enough for lanes
/// (see [`LANE_MAX_FLOPS_PER_ELEMENT`]).
pub(crate) fn lanes_pay(m: usize, n: usize, k: usize) -> bool {
    let (m, n, k) = (m as f64, n as f64, k as f64);
    m * n * k <= LANE_MAX_FLOPS_PER_ELEMENT * (m * k + k * n + m * n)
}

/// An element type of the lane kernel, with its micro-kernel.
trait Lane: PackElem {
    /// The `MR × NR` tile of `L`-lane sums over `kc` steps, stored with lane vector
    /// `(r, c)` at `out + r·rs + c·cs`. Step `j` multiplies the lhs vectors at
    /// `pa + r·ars + j·ajs` by the rhs vectors at `pb + c·bcs + j·bjs`: a packed panel
    /// (`[kc][MR][L]`: `ars = L`, `ajs = MR·L`) or the operand itself. With `acc`, each sum
    /// starts from the value already at its place in `out` (one chain of multiply-adds
    /// over consecutive contraction blocks); else from zero.
    ///
    /// Only the first `R ≤ MR` rows are computed and stored.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `pa` and `pb` hold the elements named, and `out` is valid
    /// for `L` elements at each of the `R × NR` places.
    unsafe fn micro<const R: usize>(
        kc: usize,
        pa: (*const Self, [usize; 2]),
        pb: (*const Self, [usize; 2]),
        out: (*mut Self, [usize; 2]),
        acc: bool,
    );

    /// `x·y + acc` with one rounding, as the micro-kernel's vector multiply-adds.
    fn fma(x: Self, y: Self, acc: Self) -> Self;
}

macro_rules! micro_avx512 {
    ($t:ty, $name:ident, $zero:ident, $load:ident, $fma:ident, $store:ident) => {
        /// The AVX-512 micro-kernel of [`Lane::micro`].
        ///
        /// # Safety
        /// As [`Lane::micro`].
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $name<const R: usize>(
            kc: usize,
            (pa, [ars, ajs]): (*const $t, [usize; 2]),
            (pb, [bcs, bjs]): (*const $t, [usize; 2]),
            (out, [rs, cs]): (*mut $t, [usize; 2]),
            from_out: bool,
        ) {
            use std::arch::x86_64::*;
            let at = |i: usize| (i / NR) * rs + (i % NR) * cs;
            let mut acc = [$zero(); MR * NR];
            if from_out {
                for (i, v) in acc.iter_mut().enumerate().take(R * NR) {
                    // SAFETY: the caller's contract on `out`.
                    *v = unsafe { $load(out.add(at(i))) };
                }
            }
            for j in 0..kc {
                // SAFETY: step `j` of both operands is in bounds (the caller's contract).
                unsafe {
                    let a = pa.add(j * ajs);
                    let b = pb.add(j * bjs);
                    // The step's `NR` rhs vectors stay in registers while its `MR` lhs
                    // vectors pass: `MR·NR + NR + 1` of the 32 vector registers.
                    let mut bv = [$zero(); NR];
                    for (c, v) in bv.iter_mut().enumerate() {
                        *v = $load(b.add(c * bcs));
                    }
                    for r in 0..R {
                        let av = $load(a.add(r * ars));
                        for c in 0..NR {
                            acc[r * NR + c] = $fma(av, bv[c], acc[r * NR + c]);
                        }
                    }
                }
            }
            for (i, v) in acc.iter().enumerate().take(R * NR) {
                // SAFETY: the caller's contract on `out`.
                unsafe { $store(out.add(at(i)), *v) };
            }
        }
    };
}
micro_avx512!(
    f32,
    micro_f32,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_fmadd_ps,
    _mm512_storeu_ps
);
micro_avx512!(
    f64,
    micro_f64,
    _mm512_setzero_pd,
    _mm512_loadu_pd,
    _mm512_fmadd_pd,
    _mm512_storeu_pd
);

macro_rules! lane_impl {
    ($t:ty, $micro:ident) => {
        impl Lane for $t {
            #[inline(always)]
            unsafe fn micro<const R: usize>(
                kc: usize,
                pa: (*const $t, [usize; 2]),
                pb: (*const $t, [usize; 2]),
                out: (*mut $t, [usize; 2]),
                acc: bool,
            ) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: forwarded contract.
                unsafe {
                    $micro::<R>(kc, pa, pb, out, acc)
                }
                #[cfg(not(target_arch = "x86_64"))]
                let _ = (kc, pa, pb, out, acc);
            }

            #[inline(always)]
            fn fma(x: $t, y: $t, acc: $t) -> $t {
                x.mul_add(y, acc)
            }
        }
    };
}
lane_impl!(f32, micro_f32);
lane_impl!(f64, micro_f64);

/// The operands of a product on lanes and its result.
#[derive(Clone, Copy)]
struct Operands<'a, T> {
    a: &'a [T],
    b: &'a [T],
    c: Out<T>,
}

/// The result pointer, shared by the threads: each writes the lanes of its own batch
/// blocks only.
#[derive(Clone, Copy)]
struct Out<T>(*mut T);
// SAFETY: the threads write disjoint elements (different batch indices) through it.
unsafe impl<T: Send> Send for Out<T> {}
unsafe impl<T: Send> Sync for Out<T> {}

thread_local! {
    /// This thread's lhs and rhs packs, kept between products (a fresh pack of up to a
    /// megabyte per product cost as much to allocate and clear as the packing itself).
    static PACKS: std::cell::RefCell<(Vec<Line>, Vec<Line>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// Copies `lv` lanes from `src` into the `L`-lane slot `dst`, zeroing the rest.
#[inline(always)]
fn put<T: Lane, const L: usize>(dst: &mut [T], src: &[T], lv: usize) {
    let dst: &mut [T; L] = (&mut dst[..L]).try_into().expect("L lanes");
    if lv == L {
        *dst = src[..L].try_into().expect("L lanes");
    } else {
        *dst = [T::default(); L];
        dst[..lv].copy_from_slice(&src[..lv]);
    }
}

/// Packs panel `q` (the `free.len() <= R` free indices: rows of lhs or columns of rhs) of
/// `nb` blocks of lanes over the contraction `steps` into `dst`, laid out for `panels`
/// panels as `[nb][panels][steps][R][L]`: entry `(bi, q, j, r)` is
/// `src[base + bi·L + free[r] + steps[j]]`, zero past the last free index or the block's
/// `lanes(bi)` lanes. Reads in the source's memory order: the one of the two index groups
/// with the smaller stride innermost.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pack<T: Lane, const L: usize, const R: usize>(
    dst: &mut [T],
    src: &[T],
    base: usize,
    lanes: impl Fn(usize) -> usize,
    nb: usize,
    (q, panels): (usize, usize),
    free: &[usize],
    steps: &[usize],
) {
    let kc = steps.len();
    assert!(dst.len() >= nb * panels * kc * R * L && nb <= SUPER_BLOCK && free.len() <= R);
    let lv: [usize; SUPER_BLOCK] = std::array::from_fn(|bi| if bi < nb { lanes(bi) } else { 0 });
    let g = Gather {
        dst: dst[q * kc * R * L..].as_mut_ptr(),
        src,
        base,
        nb,
        block: panels * kc * R * L,
        free,
        steps,
        lv: &lv,
        full: lv[..nb].iter().all(|&l| l == L),
    };
    let stride = |o: &[usize]| o.get(1).map_or(usize::MAX, |&x| x.wrapping_sub(o[0]));
    if stride(free) < stride(steps) {
        for j in 0..kc {
            for f in 0..R {
                g.entry::<L, R>(f, j);
            }
        }
    } else {
        for f in 0..R {
            for j in 0..kc {
                g.entry::<L, R>(f, j);
            }
        }
    }
}

/// One [`pack`] call's operands.
struct Gather<'a, T> {
    dst: *mut T,
    src: &'a [T],
    base: usize,
    nb: usize,
    block: usize,
    free: &'a [usize],
    steps: &'a [usize],
    lv: &'a [usize; SUPER_BLOCK],
    /// Every block has all `L` lanes.
    full: bool,
}

impl<T: Lane> Gather<'_, T> {
    /// Packs entry `(f, j)` of the panel of every block.
    #[inline(always)]
    fn entry<const L: usize, const R: usize>(&self, f: usize, j: usize) {
        let at = (j * R + f) * L;
        // SAFETY (writes below): from `dst`, `nb` blocks of `block` elements begin with
        // this panel (`kc × R × L` elements, checked by `pack`), and entry `(f, j)` of
        // block `bi` is the `L` elements from `bi·block + at`, inside it.
        let d = |bi: usize| unsafe { &mut *self.dst.add(bi * self.block + at).cast::<[T; L]>() };
        if f < self.free.len() {
            let from = self.base + self.free[f] + self.steps[j];
            if self.full {
                for bi in 0..self.nb {
                    let s: &[T; L] = self.src[from + bi * L..][..L].try_into().expect("L lanes");
                    *d(bi) = *s;
                }
            } else {
                for bi in 0..self.nb {
                    put::<T, L>(&mut d(bi)[..], &self.src[from + bi * L..], self.lv[bi]);
                }
            }
        } else {
            for bi in 0..self.nb {
                *d(bi) = [T::default(); L];
            }
        }
    }
}

/// A part of the product one thread computes: whole batch blocks (of `L` lanes), result
/// rows and result columns.
#[derive(Clone, Debug)]
struct Part {
    blocks: Range<usize>,
    rows: Range<usize>,
    cols: Range<usize>,
}

/// The part `w` of the product `c = a · b`, with this thread's packs `pa`, `pb`.
///
/// Up to [`SUPER_BLOCK`] batch blocks are packed together, so that the packing reads
/// contiguous runs of the batch axis (the operands' fastest) rather than one vector in
/// every few. Per `NC` columns and `KC` steps of the contraction, each `MR`-row panel of
/// lhs is packed (for every block) and meets every `NR`-column panel of rhs; the rhs
/// panels are packed as the first row panel meets them and stay in L2 for the others.
///
/// # Safety
/// The CPU has AVX-512F; `c` points to the `[batch, m, n]` result, and no other thread
/// writes the elements of this part.
#[inline(always)]
unsafe fn run_part<T: Lane, const L: usize>(
    p: &LanePlan,
    Operands { a, b, c }: Operands<'_, T>,
    w: Part,
    (pa, pb): (&mut Vec<Line>, &mut Vec<Line>),
) {
    let size = std::mem::size_of::<T>();
    let kc_max = (PANEL_BYTES / (MR * L * size)).clamp(1, p.k);
    let sb_max = SUPER_BLOCK.min(w.blocks.len());
    let nc_max = (RHS_PACK_BYTES / (kc_max * sb_max * L * size) / NR * NR)
        .max(NR)
        .min(w.cols.len().next_multiple_of(NR));
    let pa = elems_of::<T>(pa, sb_max * kc_max * MR * L);
    let pb = elems_of::<T>(pb, sb_max * kc_max * nc_max * L);
    let mut tile = Tile::<T, L>::new();
    let mut sb0 = w.blocks.start;
    while sb0 < w.blocks.end {
        let nb = sb_max.min(w.blocks.end - sb0);
        let base = sb0 * L;
        let width = (nb * L).min(p.batch - base);
        let lanes_in = |bi: usize| L.min(width - bi * L);
        sb0 += nb;
        for n0 in w.cols.clone().step_by(nc_max) {
            let nc = nc_max.min(w.cols.end - n0);
            let col_panels = nc.div_ceil(NR);
            for k0 in (0..p.k).step_by(kc_max) {
                let kc = kc_max.min(p.k - k0);
                // lhs: `[nb][kc][MR][L]`, one row panel; rhs: `[nb][nc / NR][kc][NR][L]`.
                let pa_at = |bi: usize| bi * kc * MR * L;
                let pb_at = |bi: usize, q: usize| ((bi * col_panels + q) * kc) * NR * L;
                let (lhs_steps, rhs_steps) = (&p.lhs_cols[k0..k0 + kc], &p.rhs_rows[k0..k0 + kc]);
                for i in w.rows.clone().step_by(MR) {
                    let rows = MR.min(w.rows.end - i);
                    let lhs_rows = &p.lhs_rows[i..i + rows];
                    pack::<T, L, MR>(pa, a, base, lanes_in, nb, (0, 1), lhs_rows, lhs_steps);
                    for bi in 0..nb {
                        let lv = lanes_in(bi);
                        let paq = (pa[pa_at(bi)..].as_ptr(), [L, MR * L]);
                        for q in 0..col_panels {
                            let (j, cols) = (n0 + q * NR, NR.min(nc - q * NR));
                            if i == w.rows.start && bi == 0 {
                                let rhs_cols = &p.rhs_cols[j..j + cols];
                                let panel = (q, col_panels);
                                pack::<T, L, NR>(
                                    pb, b, base, lanes_in, nb, panel, rhs_cols, rhs_steps,
                                );
                            }
                            let pbq = (pb[pb_at(bi, q)..].as_ptr(), [L, NR * L]);
                            let at = base + bi * L + p.batch * (i + p.m * j);
                            // SAFETY: the CPU has AVX-512F (the caller's contract); the
                            // panels hold `kc` steps; lane vector `(r, c)` of the tile is
                            // result element `(b, i + r, j + c)` for the block's batch
                            // indices, owned by this part.
                            unsafe { tile.run(p, c, at, (lv, rows, cols), (kc, paq, pbq), k0 > 0) };
                        }
                    }
                }
            }
        }
    }
}

/// Whether every rhs vector [`run_direct`] reads in place (at `b` plus a multiple of `L`
/// and of the `strides`) is a whole 64-byte cache line. A vector across two lines costs two
/// L1 accesses, and the rhs is read once per row panel: misaligned, the in-place panels
/// measured 20 % slower than packed ones (`bij,bjk->bik`, 32 × 64³, f64, AMD Zen 4).
fn aligned_in_place<T>(b: *const T, strides: [usize; 2]) -> bool {
    let size = std::mem::size_of::<T>();
    (b as usize) % 64 == 0 && strides.iter().all(|&s| (s * size) % 64 == 0)
}

/// Bytes of the rhs elements (`KC` steps of all of a part's columns, for one block of
/// lanes) that [`run_direct`] reads in place for every row panel: they stay in L2. (`KC`
/// is also at most what keeps an lhs panel within [`PANEL_BYTES`], in L1.)
const DIRECT_RHS_BYTES: usize = 256 << 10;

/// The part `w` of the product `c = a · b` when the rhs offsets are regular
/// (`rhs_strides`, its row and column strides) and its vectors whole cache lines
/// ([`aligned_in_place`]): one block of `L` lanes at a time, each
/// `MR`-row panel of lhs is packed (it meets every column panel from L1) while the rhs
/// panels are read in place, from L2, instead of copied (a partial last column panel is
/// packed, zero-padded). A block with fewer than `L` lanes goes to [`run_part`].
///
/// # Safety
/// As [`run_part`].
#[inline(always)]
unsafe fn run_direct<T: Lane, const L: usize>(
    (p, [rhs_row, rhs_col]): (&LanePlan, [usize; 2]),
    ops: Operands<'_, T>,
    w: Part,
    (pa, pb): (&mut Vec<Line>, &mut Vec<Line>),
) {
    let Operands { a, b, c } = ops;
    let size = std::mem::size_of::<T>();
    let kc_max = (DIRECT_RHS_BYTES / (w.cols.len() * L * size))
        .min(PANEL_BYTES / (MR * L * size))
        .clamp(1, p.k);
    let full_cols = w.cols.start + w.cols.len() / NR * NR;
    // Only the batch's last block can be partial: it goes to the packed path.
    let full = w.blocks.start..w.blocks.end.min(p.batch / L).max(w.blocks.start);
    if full.end < w.blocks.end {
        let w = Part {
            blocks: full.end..w.blocks.end,
            ..w.clone()
        };
        // SAFETY: the caller's contract, for a block of this part.
        unsafe { run_part::<T, L>(p, ops, w, (&mut *pa, &mut *pb)) };
    }
    let (pa, pb) = (
        elems_of::<T>(pa, kc_max * MR * L),
        elems_of::<T>(pb, kc_max * NR * L),
    );
    let mut tile = Tile::<T, L>::new();
    let all = |_| L;
    for blk in full {
        let base = blk * L;
        for k0 in (0..p.k).step_by(kc_max) {
            let kc = kc_max.min(p.k - k0);
            let (lhs_steps, rhs_steps) = (&p.lhs_cols[k0..k0 + kc], &p.rhs_rows[k0..k0 + kc]);
            if full_cols < w.cols.end {
                let rhs_cols = &p.rhs_cols[full_cols..w.cols.end];
                pack::<T, L, NR>(pb, b, base, all, 1, (0, 1), rhs_cols, rhs_steps);
            }
            for i in w.rows.clone().step_by(MR) {
                let rows = MR.min(w.rows.end - i);
                pack::<T, L, MR>(
                    pa,
                    a,
                    base,
                    all,
                    1,
                    (0, 1),
                    &p.lhs_rows[i..i + rows],
                    lhs_steps,
                );
                let paq = (pa.as_ptr(), [L, MR * L]);
                for j in w.cols.clone().step_by(NR) {
                    let cols = NR.min(w.cols.end - j);
                    let pbq = if cols == NR {
                        // Step `s` of column `j + c` at `base + rhs_cols[j] + rhs_rows[k0]
                        // + c·rhs_col + s·rhs_row`, its `L` lanes inside `b`.
                        let at = base + p.rhs_cols[j] + p.rhs_rows[k0];
                        (b[at..].as_ptr(), [rhs_col, rhs_row])
                    } else {
                        (pb.as_ptr(), [L, NR * L])
                    };
                    let at = base + p.batch * (i + p.m * j);
                    // SAFETY: the CPU has AVX-512F (the caller's contract); the lhs pack
                    // and the rhs panel (in place: every step's `NR` vectors lie in `b`,
                    // the block's `L` lanes being in the batch) hold `kc` steps; the tile
                    // is result element `(b, i + r, j + c)` for the block's batch
                    // indices, owned by this part.
                    unsafe { tile.run(p, c, at, (L, rows, cols), (kc, paq, pbq), k0 > 0) };
                }
            }
        }
    }
}

/// Runs the micro-kernel on one tile of the result: in place when its lanes and columns
/// are all in the result, else through its buffer.
struct Tile<T, const L: usize>([[T; L]; MR * NR]);

impl<T: Lane, const L: usize> Tile<T, L> {
    fn new() -> Self {
        Tile([[T::default(); L]; MR * NR])
    }

    /// The tile at result offset `at` (lane vector `(r, c)` at `at + r·batch +
    /// c·batch·m`), of which `lv` lanes, `rows` rows and `cols` columns are in the result:
    /// `kc` steps of the operands given (as [`Lane::micro`] takes them), continuing the
    /// sums stored there when `acc`. A whole tile is computed in place; any other through
    /// this buffer.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the operands hold `kc` steps of the tile; the tile's
    /// elements in the result are owned by the caller.
    #[inline(always)]
    unsafe fn run(
        &mut self,
        p: &LanePlan,
        c: Out<T>,
        at: usize,
        (lv, rows, cols): (usize, usize, usize),
        (kc, pa, pb): (usize, (*const T, [usize; 2]), (*const T, [usize; 2])),
        acc: bool,
    ) {
        let (rs, cs) = (p.batch, p.batch * p.m);
        if lv == L && cols == NR {
            // All lanes and columns: the tile's rows are computed in place (the FMAs of
            // the zero rows padding a short panel are skipped).
            let out = (c.0.add(at), [rs, cs]);
            // SAFETY (every arm): the caller's contract, for the first `rows` rows.
            match rows {
                MR => unsafe { T::micro::<MR>(kc, pa, pb, out, acc) },
                5 => unsafe { T::micro::<5>(kc, pa, pb, out, acc) },
                4 => unsafe { T::micro::<4>(kc, pa, pb, out, acc) },
                3 => unsafe { T::micro::<3>(kc, pa, pb, out, acc) },
                2 => unsafe { T::micro::<2>(kc, pa, pb, out, acc) },
                _ => unsafe { T::micro::<1>(kc, pa, pb, out, acc) },
            }
            return;
        }
        // SAFETY (the slices): `at + r·rs + c·cs + lv <= batch·m·n` for the tile's rows
        // and columns in the result (the block's lanes end by `batch`), owned by the
        // caller.
        let place = |r: usize, cc: usize| unsafe {
            std::slice::from_raw_parts_mut(c.0.add(at + r * rs + cc * cs), lv)
        };
        let cells = (0..rows).flat_map(|r| (0..cols).map(move |cc| (r, cc)));
        if acc {
            for (r, cc) in cells.clone() {
                put::<T, L>(&mut self.0[r * NR + cc], place(r, cc), lv);
            }
        }
        // SAFETY: as above, into the buffer (`MR × NR × L` elements).
        unsafe { T::micro::<MR>(kc, pa, pb, (self.0.as_mut_ptr().cast(), [NR * L, L]), acc) };
        for (r, cc) in cells {
            place(r, cc).copy_from_slice(&self.0[r * NR + cc][..lv]);
        }
    }
}

macro_rules! isa_fn {
    ($name:ident, $t:ty) => {
        /// [`run_direct`] or [`run_part`], compiled for AVX-512.
        ///
        /// # Safety
        /// As [`run_part`].
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn $name(
            p: &LanePlan,
            a: &[$t],
            b: &[$t],
            c: Out<$t>,
            w: Part,
            packs: (&mut Vec<Line>, &mut Vec<Line>),
        ) {
            const L: usize = lanes(std::mem::size_of::<$t>());
            let ops = Operands { a, b, c };
            match p.rhs_strides.filter(|&st| aligned_in_place(b.as_ptr(), st)) {
                Some(st) => unsafe { run_direct::<$t, L>((p, st), ops, w, packs) },
                None => unsafe { run_part::<$t, L>(p, ops, w, packs) },
            }
        }
    };
}
isa_fn!(part_f32, f32);
isa_fn!(part_f64, f64);

/// The parts `threads` threads compute: the result's rows or columns in `MR`/`NR`-aligned
/// ranges when that side has enough of them (of the two, the one whose largest part is
/// the smaller share; the longer side on a tie), else the batch blocks. Cutting rows or
/// columns keeps every thread's stores in separate cache lines (the result need not be
/// 64-byte aligned, and a cut through the batch would make the threads share a line at
/// every row and column).
fn parts(p: &LanePlan, blocks: usize, threads: usize) -> Vec<Part> {
    let whole = Part {
        blocks: 0..blocks,
        rows: 0..p.m,
        cols: 0..p.n,
    };
    let cut = |len: usize, align: usize| -> Vec<Range<usize>> {
        (0..threads)
            .map(|t| {
                let at = |t: usize| (len * t / threads).next_multiple_of(align).min(len);
                at(t)..at(t + 1)
            })
            .filter(|r| !r.is_empty())
            .collect()
    };
    if threads <= 1 {
        return vec![whole];
    }
    // The largest part's share of the register-tile panels of a side cut for the
    // threads (a part's last panel costs a whole one even when cut short), when that
    // side can be cut.
    let share = |len: usize, align: usize| -> Option<f64> {
        (len >= 2 * threads * align).then(|| {
            let panels: Vec<usize> = cut(len, align)
                .iter()
                .map(|r| r.len().div_ceil(align))
                .collect();
            let most = panels.iter().copied().max().unwrap_or(1);
            most as f64 / panels.iter().sum::<usize>().max(1) as f64
        })
    };
    let (rows, cols) = (share(p.m, MR), share(p.n, NR));
    let rows_first = match (rows, cols) {
        (Some(r), Some(c)) => r < c || (r == c && p.m >= p.n),
        (r, _) => r.is_some(),
    };
    if rows_first {
        cut(p.m, MR)
            .into_iter()
            .map(|rows| Part {
                rows,
                ..whole.clone()
            })
            .collect()
    } else if cols.is_some() {
        cut(p.n, NR)
            .into_iter()
            .map(|cols| Part {
                cols,
                ..whole.clone()
            })
            .collect()
    } else {
        cut(blocks, 1)
            .into_iter()
            .map(|blocks| Part {
                blocks,
                ..whole.clone()
            })
            .collect()
    }
}

/// A product with one result row or column (`m = 1` or `n = 1`: a batched vector times a
/// matrix), for result indices `free` of the longer side: the matrix is read once, in
/// place and in its memory order, instead of packed. For each free index, every batch
/// element's sum is the micro-kernel's chain, `acc = fma(lhs_q, rhs_q, acc)` from +0 over
/// the contraction in increasing order, so the bits equal the register-tiled path's.
/// (That path pads the single row to a 6-row tile and packs the matrix: 3x slower than
/// JAX on `bi,bij->bj`, 256 × 128 × 128 f64.)
///
/// # Safety
/// The CPU has AVX-512F and FMA; `c` is the result, whose free indices `free` no other
/// thread writes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn vector_part<T: Lane>(p: &LanePlan, l: &[T], r: &[T], c: Out<T>, free: Range<usize>) {
    let batch = p.batch;
    let mut acc = vec![T::default(); batch];
    for f in free {
        acc.fill(T::default());
        for q in 0..p.k {
            let (a, b) = if p.m == 1 {
                (p.lhs_rows[0] + p.lhs_cols[q], p.rhs_rows[q] + p.rhs_cols[f])
            } else {
                (p.lhs_rows[f] + p.lhs_cols[q], p.rhs_rows[q] + p.rhs_cols[0])
            };
            let (a, b) = (&l[a..a + batch], &r[b..b + batch]);
            for ((s, &x), &y) in acc.iter_mut().zip(a).zip(b) {
                *s = T::fma(x, y, *s);
            }
        }
        // SAFETY: result element `(b, f)` of a one-row or one-column product is at
        // `b + batch·f`, owned by this part (the caller's contract).
        unsafe { std::ptr::copy_nonoverlapping(acc.as_ptr(), c.0.add(batch * f), batch) };
    }
}

macro_rules! lane_fn {
    ($name:ident, $t:ty, $part:ident) => {
        /// `out = l · r` as planned, on up to `threads` threads (see [`parts`]).
        pub(crate) fn $name(p: &LanePlan, l: &[$t], r: &[$t], out: &mut [$t], threads: usize) {
            const L: usize = lanes(std::mem::size_of::<$t>());
            debug_assert_eq!(out.len(), p.batch * p.m * p.n);
            let c = Out(out.as_mut_ptr());
            if p.m == 1 || p.n == 1 {
                let free = p.m.max(p.n);
                let t = threads.clamp(1, free);
                let run = |w: usize| {
                    let part = free * w / t..free * (w + 1) / t;
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `LanePlan::new` checked AVX-512F and FMA; the parts are
                    // disjoint ranges of free indices.
                    unsafe {
                        vector_part::<$t>(p, l, r, c, part)
                    }
                    #[cfg(not(target_arch = "x86_64"))]
                    let _ = part;
                };
                if t == 1 {
                    return run(0);
                }
                use rayon::prelude::*;
                return (0..t).into_par_iter().for_each(run);
            }
            let run = |w: Part| {
                PACKS.with_borrow_mut(|(pa, pb)| {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `LanePlan::new` checked AVX-512F and FMA (`Isa::Avx512`); `c`
                    // covers the result (its length is checked by the caller) and the parts
                    // are disjoint.
                    unsafe {
                        $part(p, l, r, c, w, (pa, pb))
                    }
                    #[cfg(not(target_arch = "x86_64"))]
                    let _ = (w, pa, pb);
                })
            };
            let parts = parts(p, p.batch.div_ceil(L), threads);
            if parts.len() == 1 {
                return parts.into_iter().for_each(run);
            }
            use rayon::prelude::*;
            parts.into_par_iter().for_each(run);
        }
    };
}
lane_fn!(lane_gemm_f32, f32, part_f32);
lane_fn!(lane_gemm_f64, f64, part_f64);

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(batch: usize, m: usize, n: usize) -> LanePlan {
        LanePlan {
            batch,
            m,
            n,
            k: 1,
            lhs_rows: Vec::new(),
            lhs_cols: Vec::new(),
            rhs_rows: Vec::new(),
            rhs_cols: Vec::new(),
            rhs_strides: None,
        }
    }

    /// Lanes for small matrices (and for matrix-vector shapes of any size), GEMMs for
    /// large ones.
    #[test]
    fn lanes_pay_for_small_matrices_only() {
        assert!(lanes_pay(64, 64, 64));
        assert!(lanes_pay(1, 1, 100_000));
        assert!(lanes_pay(4, 4, 10_000));
        assert!(lanes_pay(300, 300, 4));
        assert!(lanes_pay(128, 128, 128));
        assert!(lanes_pay(512, 512, 32));
        assert!(lanes_pay(256, 256, 256));
        assert!(!lanes_pay(384, 384, 384));
        assert!(!lanes_pay(1024, 1024, 1024));
    }

    /// Every element is one FMA chain over the contraction in increasing order, whichever
    /// path takes it: the in-place rhs path (a rhs on a cache line, strides in whole
    /// lines; with a partial last block when a single rhs vector makes both strides 0),
    /// the packed path (the rhs one element off a line, or a batch whose strides are not
    /// whole lines), at 1 and 2 threads.
    #[test]
    fn every_path_gives_the_fma_chain_bits() {
        // (batch, m, n, k, whether an aligned rhs is read in place)
        for (batch, m, n, k, whole) in [
            (24, 13, 9, 70, true),
            (20, 13, 9, 70, false),
            (20, 7, 1, 1, true),
            // one result row or column: the vector path
            (24, 1, 9, 70, true),
            (20, 13, 1, 70, false),
            (9, 1, 30, 5, false),
        ] {
            let tables = || {
                let step = |len: usize, stride: usize| (0..len).map(|i| i * stride).collect();
                [
                    step(m, batch),
                    step(k, batch * m),
                    step(k, batch),
                    step(n, batch * k),
                ]
            };
            let Some(mut p) = LanePlan::new(8, batch, [m, n, k], tables) else {
                return; // no AVX-512 here
            };
            // Both rhs paths run here, whether or not this CPU picks the in-place one.
            p.rhs_strides = progressions(&p.rhs_rows, &p.rhs_cols);
            let value = |i: usize| ((i * 7919) % 1009) as f64 / 1009.0 - 0.5;
            let lhs: Vec<f64> = (0..batch * m * k).map(value).collect();
            let rhs: Vec<f64> = (0..batch * k * n).map(|i| value(i + 17)).collect();
            let mut want = vec![0.0f64; batch * m * n];
            for (e, w) in want.iter_mut().enumerate() {
                let (b, i, c) = (e % batch, e / batch % m, e / (batch * m));
                *w = (0..k).fold(0.0, |acc, j| {
                    lhs[b + batch * (i + m * j)].mul_add(rhs[b + batch * (j + k * c)], acc)
                });
            }
            // Room to place the rhs on a 64-byte boundary and one element past it.
            let mut room = vec![0.0f64; rhs.len() + 9];
            let at = room.as_ptr().align_offset(64);
            for off in [0, 1] {
                room[at + off..at + off + rhs.len()].copy_from_slice(&rhs);
                let r = &room[at + off..at + off + rhs.len()];
                let in_place = aligned_in_place(r.as_ptr(), p.rhs_strides.unwrap());
                assert_eq!(in_place, off == 0 && whole);
                for threads in [1, 2] {
                    let mut out = vec![f64::NAN; batch * m * n];
                    lane_gemm_f64(&p, &lhs, r, &mut out, threads);
                    let same = out
                        .iter()
                        .zip(&want)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "batch {batch}, offset {off}, {threads} threads");
                }
            }
        }
    }

    /// Rhs panels are read in place only when their offsets are a progression.
    #[test]
    fn strides_of_progressions_only() {
        assert_eq!(stride(&[0, 3, 6, 9]), Some(3));
        assert_eq!(stride(&[7]), Some(0));
        assert_eq!(stride(&[]), Some(0));
        assert_eq!(stride(&[0, 16, 32, 336]), None);
        assert_eq!(stride(&[6, 3, 0]), None);
        assert_eq!(stride(&[4, 4]), None);
    }

    /// Every (block, row, column) is in exactly one part.
    #[test]
    fn parts_cover_the_product_once() {
        for (batch, m, n, threads) in [
            (64, 150, 10, 2),
            (64, 10, 300, 2),
            (20003, 3, 5, 2),
            (37, 13, 21, 3),
            (16, 64, 64, 1),
            (8, 1, 1, 4),
        ] {
            let p = plan(batch, m, n);
            let blocks = batch.div_ceil(8);
            let mut seen = vec![0u8; blocks * m * n];
            for w in parts(&p, blocks, threads) {
                for b in w.blocks.clone() {
                    for i in w.rows.clone() {
                        for j in w.cols.clone() {
                            seen[(b * m + i) * n + j] += 1;
                        }
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{batch} {m} {n} {threads}");
        }
    }

    #[test]
    fn parts_take_the_more_even_cut() {
        // 64 rows cut for 2 threads at multiples of 6 give 6 and 5 register panels; 64
        // columns at multiples of 4 give 8 and 8: the columns are cut.
        let p = plan(32, 64, 64);
        let w = parts(&p, 4, 2);
        assert_eq!(w.len(), 2);
        assert!(w.iter().all(|w| w.rows == (0..64) && w.cols.len() == 32));
        // 72 rows give 6 and 6 panels, 64 columns 8 and 8: a tie goes to the longer side.
        let w = parts(&plan(32, 72, 64), 4, 2);
        assert!(w.iter().all(|w| w.cols == (0..64) && w.rows.len() == 36));
    }
}
