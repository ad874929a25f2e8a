//! One pass over a matrix for `r = Aᵀ·w(A·X)`: the product `y = A·X` (`A` of `m × k`,
//! `X` of `k × p`, `p ≤ 4`), an elementwise group computing `w` (length `m`) from `y` row
//! by row, and the product `r = Aᵀ·w` (length `k`). The gradient of any loss `Σ g(A·x)`,
//! and a Hessian-vector product of one, has this shape. Run as three steps, `A` is read
//! from memory twice; here it is read once: per block of [`SharedMatrixPlan::rows`] rows,
//! the block's `y` rows, then its `w` rows (the group's schedule run on those rows), then
//! its partial `Aᵀ·w` while the block is still in L2.
//!
//! Order of operations, fixed by the plan and never by the thread count: `y[i, c]` is
//! `((0 + A[i,0]·X[0,c]) + A[i,1]·X[1,c]) + …`; a block's partial of `r[j]` sums its rows
//! in eight interleaved lanes (`i ≡ l mod 8` from the block's first row, in increasing
//! order) combined as `((s₀ + s₄) + (s₂ + s₆)) + ((s₁ + s₅) + (s₃ + s₇))`, plus the
//! leftover rows in order; `r[j]` adds the blocks' partials in block order. Threads take
//! contiguous ranges of blocks.

use super::fused::{new_slots, run_rows};
use super::tile::SliceMut;
use crate::buffer::{self, BufferPool};
use crate::error::internal;
use crate::schedule::{KernelSchedule, Src};
use rayon::prelude::*;
use tenferro_ir::{DType, Data, Element};
use tenferro_runtime::Result;

/// Most columns of `X`.
pub(crate) const MAX_P: usize = 4;

/// Bytes of a block of rows of `A`, at most (half of this machine class's 2 MiB L2).
const BLOCK_BYTES: usize = 1 << 20;

/// Fewest elements of `A` for which the pass pays (below, three steps are as fast).
const MIN_ELEMENTS: usize = 1 << 16;

/// Partial sums of a block's dot products.
const LANES: usize = 8;

/// A planned `Aᵀ·w(A·X)`.
#[derive(Clone, Debug)]
pub(crate) struct SharedMatrixPlan {
    pub(crate) m: usize,
    pub(crate) k: usize,
    pub(crate) p: usize,
    /// Rows per block (a multiple of 16, or `m`).
    pub(crate) rows: usize,
    /// The group computing `w` (one output of `m` elements) from its inputs.
    pub(crate) sched: KernelSchedule,
    /// The input of `sched` that is `y`.
    pub(crate) y_input: usize,
}

impl SharedMatrixPlan {
    /// The plan, when `sched` reads `y` (its input `y_input`, `m × p` column-major) only at
    /// its own rows and the shapes are worth a pass: `A` of `m × k` elements,
    /// large enough, with a block of 16 rows fitting in [`BLOCK_BYTES`]. f64 only.
    pub(crate) fn new(
        dtype: DType,
        [m, k, p]: [usize; 3],
        sched: KernelSchedule,
        y_input: usize,
    ) -> Option<Self> {
        // f64 only: the kernels are hand-vectorised for it (elsewhere three steps run).
        if dtype != DType::F64 {
            return None;
        }
        let elem = 8;
        if p == 0 || p > MAX_P || m.checked_mul(k)? < MIN_ELEMENTS || k * 16 * elem > BLOCK_BYTES {
            return None;
        }
        if sched.numel != m
            || sched.outputs.len() != 1
            || sched.outputs[0].ty.numel() != m
            || sched.outputs[0].ty.dtype != dtype
            || !sched.reductions.is_empty()
            || !sched.inplace.is_empty()
            || sched.loads.iter().any(|l| l.input == y_input)
        {
            return None;
        }
        // `y` is read only as `y[t + c·m]` at the tile's own positions `t`.
        for op in &sched.ops {
            for s in &op.srcs {
                match *s {
                    Src::Input { input, offset }
                        if input == y_input && (offset % m != 0 || offset / m >= p) =>
                    {
                        return None
                    }
                    Src::Scalar { input, .. } if input == y_input => return None,
                    _ => {}
                }
            }
        }
        let rows = (BLOCK_BYTES / (k * elem)) / 16 * 16;
        Some(SharedMatrixPlan {
            m,
            k,
            p,
            rows: rows.min(m),
            sched,
            y_input,
        })
    }

    /// Number of row blocks.
    pub(crate) fn blocks(&self) -> usize {
        self.m.div_ceil(self.rows.max(1))
    }
}

/// Runs the plan: `args` are `A`, `X`, then the group's inputs other than `y` in order;
/// `out` (length `k`) receives `Aᵀ·w`. Scratch (`y` per thread, `w`, the blocks'
/// partials) comes from and returns to `pool`.
pub(crate) fn run(
    name: &str,
    plan: &SharedMatrixPlan,
    args: &[&Data],
    out: &mut Data,
    pool: &mut BufferPool,
    threads: Option<&rayon::ThreadPool>,
) -> Result<()> {
    let (m, k, p) = (plan.m, plan.k, plan.p);
    if args.len() + 1 != plan.sched.inputs.len() + 2 {
        return Err(internal(name, "operand count differs from the plan"));
    }
    let workers = threads
        .map_or(1, |t| t.current_num_threads())
        .min(plan.blocks())
        .max(1);
    let mut take = |n: usize| {
        pool.take(DType::F64, n)
            .unwrap_or_else(|| buffer::fresh_scratch(DType::F64, n))
    };
    let mut ys: Vec<Data> = (0..workers).map(|_| take(m * p)).collect();
    let mut w = take(m);
    let mut partials = take(plan.blocks() * k);
    let res = match (args[0], args[1], &mut *out) {
        (Data::F64(a), Data::F64(x), Data::F64(o)) => {
            run_f64(plan, a, x, args, o, &mut ys, &mut w, &mut partials, threads)
        }
        _ => Err("operands of another dtype".to_string()),
    };
    for d in ys.into_iter().chain([w, partials]) {
        pool.put(d);
    }
    res.map_err(|e| internal(name, e))
}

#[allow(clippy::too_many_arguments)]
fn run_f64(
    plan: &SharedMatrixPlan,
    a: &[f64],
    x: &[f64],
    args: &[&Data],
    out: &mut [f64],
    ys: &mut [Data],
    w: &mut Data,
    partials: &mut Data,
    threads: Option<&rayon::ThreadPool>,
) -> std::result::Result<(), String> {
    let (m, k, p, rows) = (plan.m, plan.k, plan.p, plan.rows);
    let nb = plan.blocks();
    if a.len() != m * k || x.len() != k * p || out.len() != k {
        return Err("operand of the wrong length".into());
    }
    let w = f64::slice_mut(w).ok_or("scratch of another dtype")?;
    let partials = f64::slice_mut(partials).ok_or("scratch of another dtype")?;
    // Worker `t` runs blocks `t·nb/workers ..`; its rows of `w` and its partials are
    // contiguous.
    let workers = ys.len();
    let first = |t: usize| t * nb / workers;
    let mut jobs = Vec::with_capacity(workers);
    let (mut w_rest, mut p_rest) = (&mut w[..], &mut partials[..]);
    for (t, y) in ys.iter_mut().enumerate() {
        let (b0, b1) = (first(t), first(t + 1));
        let r1 = (b1 * rows).min(m);
        let r0 = (b0 * rows).min(m);
        let (wt, wr) = w_rest.split_at_mut(r1 - r0);
        let (pt, pr) = p_rest.split_at_mut((b1 - b0) * k);
        w_rest = wr;
        p_rest = pr;
        jobs.push((b0, b1, y, wt, pt));
    }
    let job = |(b0, b1, y, wt, pt): (usize, usize, &mut Data, &mut [f64], &mut [f64])| {
        let mut slots = new_slots(&plan.sched)?;
        let i_base = b0 * rows;
        for b in b0..b1 {
            let i0 = b * rows;
            let i1 = (i0 + rows).min(m);
            let yt = f64::slice_mut(y).ok_or("scratch of another dtype")?;
            block_products(a, x, yt, BlockRows { m, k, p, i0, i1 });
            let wb = &mut wt[i0 - i_base..i1 - i_base];
            {
                let mut inputs: Vec<&Data> = Vec::with_capacity(plan.sched.inputs.len());
                let mut rest = args[2..].iter();
                for i in 0..plan.sched.inputs.len() {
                    if i == plan.y_input {
                        inputs.push(&*y);
                    } else {
                        inputs.push(rest.next().ok_or("missing operand")?);
                    }
                }
                run_rows(&plan.sched, &inputs, i0, i1, SliceMut::F64(wb), &mut slots)?;
            }
            let pb = &mut pt[(b - b0) * k..(b - b0 + 1) * k];
            block_dots(a, wb, pb, m, k, i0);
        }
        Ok::<(), String>(())
    };
    match threads {
        Some(tp) if jobs.len() > 1 => tp.install(|| jobs.into_par_iter().try_for_each(job))?,
        _ => jobs.into_iter().try_for_each(job)?,
    }
    for (j, o) in out.iter_mut().enumerate() {
        let mut s = partials[j];
        for b in 1..nb {
            s += partials[b * k + j];
        }
        *o = s;
    }
    Ok(())
}

/// Rows `i0 .. i1` of the product of `A` (`m × k`) and `X` (`k × p`).
#[derive(Clone, Copy, Debug)]
struct BlockRows {
    m: usize,
    k: usize,
    p: usize,
    i0: usize,
    i1: usize,
}

/// `y[i + c·m] = Σ_j A[i + j·m] · X[j + c·k]` for the block's rows `i0 .. i1`, `j` in
/// increasing order.
fn block_products(a: &[f64], x: &[f64], y: &mut [f64], rows: BlockRows) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2::products_f64(a, x, y, rows) };
        }
    }
    block_products_any(a, x, y, rows)
}

#[inline(always)]
fn block_products_any(a: &[f64], x: &[f64], y: &mut [f64], rows: BlockRows) {
    let BlockRows { m, k, p, i0, i1 } = rows;
    let r = i1 - i0;
    for c in 0..p {
        let yc = &mut y[c * m + i0..c * m + i1];
        let xc = &x[c * k..(c + 1) * k];
        yc.fill(0.0);
        let col = |j: usize| &a[j * m + i0..j * m + i1];
        let mut j = 0;
        while j + 4 <= k {
            let (a0, a1, a2, a3) = (col(j), col(j + 1), col(j + 2), col(j + 3));
            let (c0, c1, c2, c3) = (xc[j], xc[j + 1], xc[j + 2], xc[j + 3]);
            for i in 0..r {
                yc[i] = (((yc[i] + a0[i] * c0) + a1[i] * c1) + a2[i] * c2) + a3[i] * c3;
            }
            j += 4;
        }
        while j < k {
            let (a0, c0) = (col(j), xc[j]);
            for i in 0..r {
                yc[i] += a0[i] * c0;
            }
            j += 1;
        }
    }
}

/// `part[j] = Σ_{i ∈ block} A[i0 + i + j·m] · w[i]` (see the module documentation for the
/// order), four columns at a time.
fn block_dots(a: &[f64], w: &[f64], part: &mut [f64], m: usize, k: usize, i0: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2::dots_f64(a, w, part, m, k, i0) };
        }
    }
    block_dots_any(a, w, part, m, k, i0)
}

#[inline(always)]
fn block_dots_any(a: &[f64], w: &[f64], part: &mut [f64], m: usize, k: usize, i0: usize) {
    let r = w.len();
    let full = r / LANES * LANES;
    let (wf, wt) = w.split_at(full);
    let combine = |s: [f64; LANES], tail: f64| -> f64 {
        ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7])) + tail
    };
    let tail = |c: &[f64]| -> f64 {
        let mut t = 0.0;
        for (&u, &v) in c[full..].iter().zip(wt) {
            t += u * v;
        }
        t
    };
    let col = |j: usize| &a[j * m + i0..j * m + i0 + r];
    let mut j = 0;
    while j + 4 <= k {
        let cs = [col(j), col(j + 1), col(j + 2), col(j + 3)];
        let mut s = [[0.0f64; LANES]; 4];
        for (ch, wv) in wf.chunks_exact(LANES).enumerate() {
            let i = ch * LANES;
            for q in 0..4 {
                let cv = &cs[q][i..i + LANES];
                for l in 0..LANES {
                    s[q][l] += cv[l] * wv[l];
                }
            }
        }
        for q in 0..4 {
            part[j + q] = combine(s[q], tail(cs[q]));
        }
        j += 4;
    }
    while j < k {
        let c = col(j);
        let mut s = [0.0f64; LANES];
        for (ch, wv) in wf.chunks_exact(LANES).enumerate() {
            let cv = &c[ch * LANES..ch * LANES + LANES];
            for l in 0..LANES {
                s[l] += cv[l] * wv[l];
            }
        }
        part[j] = combine(s, tail(c));
        j += 1;
    }
}

/// The f64 kernels on AVX2 (256-bit vectors, multiplies and adds kept apart, so every
/// element is the same sum as in the portable loops).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{block_products_any, BlockRows};
    use std::arch::x86_64::*;

    /// Columns ahead of the current four whose lines are prefetched.
    const AHEAD: usize = 16;

    /// [`super::block_products`] for f64: four columns of `A` at a time, four rows per
    /// vector, every column of `X` from the same loads; the rows of the columns `AHEAD`
    /// further on are prefetched, one line per eight rows.
    ///
    /// # Safety
    /// The CPU supports AVX2; `a` holds `m · k`, `x` `k · p`, `y` `m · p` elements and
    /// `i0 ≤ i1 ≤ m`, `p ≤ 4`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn products_f64(a: &[f64], x: &[f64], y: &mut [f64], rows: BlockRows) {
        let BlockRows { m, k, p, i0, i1 } = rows;
        if a.len() < m * k || x.len() < k * p || y.len() < m * p || i0 > i1 || i1 > m {
            return block_products_any(a, x, y, rows);
        }
        match p {
            1 => products_p::<1>(a, x, y, rows),
            2 => products_p::<2>(a, x, y, rows),
            3 => products_p::<3>(a, x, y, rows),
            4 => products_p::<4>(a, x, y, rows),
            _ => block_products_any(a, x, y, rows),
        }
    }

    /// [`products_f64`] for `P` columns of `X` (checked lengths).
    #[target_feature(enable = "avx2")]
    unsafe fn products_p<const P: usize>(a: &[f64], x: &[f64], y: &mut [f64], rows: BlockRows) {
        let BlockRows { m, k, i0, i1, .. } = rows;
        let r = i1 - i0;
        let rv = r / 4 * 4;
        for c in 0..P {
            y[c * m + i0..c * m + i1].fill(0.0);
        }
        let ap = a.as_ptr();
        let yb: [*mut f64; P] = std::array::from_fn(|c| y.as_mut_ptr().add(c * m + i0));
        let mut j = 0;
        while j + 4 <= k {
            let col = |q: usize| ap.add((j + q) * m + i0);
            let (a0, a1, a2, a3) = (col(0), col(1), col(2), col(3));
            let xc: [[__m256d; 4]; P] =
                std::array::from_fn(|c| std::array::from_fn(|q| _mm256_set1_pd(x[c * k + j + q])));
            let pf = j + AHEAD + 4 <= k;
            let mut i = 0;
            while i < rv {
                if pf && i % 8 == 0 {
                    for q in 0..4 {
                        _mm_prefetch::<_MM_HINT_T0>(ap.add((j + AHEAD + q) * m + i0 + i).cast());
                    }
                }
                let v0 = _mm256_loadu_pd(a0.add(i));
                let v1 = _mm256_loadu_pd(a1.add(i));
                let v2 = _mm256_loadu_pd(a2.add(i));
                let v3 = _mm256_loadu_pd(a3.add(i));
                for c in 0..P {
                    let yc = yb[c].add(i);
                    let mut s = _mm256_loadu_pd(yc);
                    s = _mm256_add_pd(s, _mm256_mul_pd(v0, xc[c][0]));
                    s = _mm256_add_pd(s, _mm256_mul_pd(v1, xc[c][1]));
                    s = _mm256_add_pd(s, _mm256_mul_pd(v2, xc[c][2]));
                    s = _mm256_add_pd(s, _mm256_mul_pd(v3, xc[c][3]));
                    _mm256_storeu_pd(yc, s);
                }
                i += 4;
            }
            for i in rv..r {
                for (c, &yc) in yb.iter().enumerate() {
                    let xq = &x[c * k + j..c * k + j + 4];
                    let yc = yc.add(i);
                    *yc = (((*yc + *a0.add(i) * xq[0]) + *a1.add(i) * xq[1]) + *a2.add(i) * xq[2])
                        + *a3.add(i) * xq[3];
                }
            }
            j += 4;
        }
        while j < k {
            for i in 0..r {
                let aij = *ap.add(j * m + i0 + i);
                for (c, &yc) in yb.iter().enumerate() {
                    *yc.add(i) += aij * x[c * k + j];
                }
            }
            j += 1;
        }
    }

    /// [`super::block_dots`] for f64: four columns at a time, lanes 0-3 and 4-7 of each
    /// in two vectors.
    ///
    /// # Safety
    /// The CPU supports AVX2; `a` holds `m · k` elements, `i0 + w.len() ≤ m`, `part`
    /// holds `k`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dots_f64(
        a: &[f64],
        w: &[f64],
        part: &mut [f64],
        m: usize,
        k: usize,
        i0: usize,
    ) {
        let r = w.len();
        if a.len() < m * k || i0 + r > m || part.len() < k {
            return super::block_dots_any(a, w, part, m, k, i0);
        }
        let full = r / 8 * 8;
        let ap = a.as_ptr();
        let wp = w.as_ptr();
        let finish = |s: [__m256d; 2], c: *const f64| -> f64 {
            let mut l = [0.0f64; 8];
            _mm256_storeu_pd(l.as_mut_ptr(), s[0]);
            _mm256_storeu_pd(l.as_mut_ptr().add(4), s[1]);
            let mut tail = 0.0;
            for (i, &wi) in w.iter().enumerate().skip(full) {
                tail += *c.add(i) * wi;
            }
            ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])) + tail
        };
        let mut j = 0;
        while j + 4 <= k {
            let c: [*const f64; 4] = std::array::from_fn(|q| ap.add((j + q) * m + i0));
            let mut s = [[_mm256_setzero_pd(); 2]; 4];
            let mut i = 0;
            while i < full {
                let w0 = _mm256_loadu_pd(wp.add(i));
                let w1 = _mm256_loadu_pd(wp.add(i + 4));
                for q in 0..4 {
                    let lo = _mm256_mul_pd(_mm256_loadu_pd(c[q].add(i)), w0);
                    let hi = _mm256_mul_pd(_mm256_loadu_pd(c[q].add(i + 4)), w1);
                    s[q][0] = _mm256_add_pd(s[q][0], lo);
                    s[q][1] = _mm256_add_pd(s[q][1], hi);
                }
                i += 8;
            }
            // ((s₀ + s₄) + (s₂ + s₆)) + ((s₁ + s₅) + (s₃ + s₇)) of the four columns at
            // once: t = lo + hi holds (a, b, c, d) = (s₀+s₄, s₁+s₅, s₂+s₆, s₃+s₇), and
            // (a + c) + (b + d) comes from one exchange of halves and a horizontal add.
            let t: [__m256d; 4] = std::array::from_fn(|q| _mm256_add_pd(s[q][0], s[q][1]));
            let s01 = _mm256_add_pd(
                _mm256_permute2f128_pd::<0x20>(t[0], t[1]),
                _mm256_permute2f128_pd::<0x31>(t[0], t[1]),
            );
            let s23 = _mm256_add_pd(
                _mm256_permute2f128_pd::<0x20>(t[2], t[3]),
                _mm256_permute2f128_pd::<0x31>(t[2], t[3]),
            );
            // (col 0, col 2, col 1, col 3) -> (col 0, col 1, col 2, col 3)
            let sums = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_hadd_pd(s01, s23));
            let mut tails = [0.0f64; 4];
            for (q, tq) in tails.iter_mut().enumerate() {
                for (i, &wi) in w.iter().enumerate().skip(full) {
                    *tq += *c[q].add(i) * wi;
                }
            }
            _mm256_storeu_pd(
                part.as_mut_ptr().add(j),
                _mm256_add_pd(sums, _mm256_loadu_pd(tails.as_ptr())),
            );
            j += 4;
        }
        while j < k {
            let c = ap.add(j * m + i0);
            let mut s = [_mm256_setzero_pd(); 2];
            let mut i = 0;
            while i < full {
                let lo = _mm256_mul_pd(_mm256_loadu_pd(c.add(i)), _mm256_loadu_pd(wp.add(i)));
                let hi = _mm256_mul_pd(
                    _mm256_loadu_pd(c.add(i + 4)),
                    _mm256_loadu_pd(wp.add(i + 4)),
                );
                s[0] = _mm256_add_pd(s[0], lo);
                s[1] = _mm256_add_pd(s[1], hi);
                i += 8;
            }
            part[j] = finish(s, c);
            j += 1;
        }
    }
}
