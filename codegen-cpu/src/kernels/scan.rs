//! Scans (cumsum / cumprod / cummax / cummin) and argsort along one axis. The operand is
//! viewed as `[pre, n, post]` (`pre` = product of the faster axes, `post` of the slower
//! ones): every `(p, k)` pair is a line of `n` elements at stride `pre`.
//!
//! A scan walks each line sequentially, element `i` being `acc ⊕ x_i` with `acc` the
//! previous result (the first element is copied), exactly as the reference evaluator does,
//! so results are bit-identical to it; the `pre` lines of a block advance together (one
//! contiguous row of `pre` elements per step). Argsort copies each line into a scratch
//! buffer and sorts its indices stably with the evaluator's order
//! ([`tenferro_ir::eval::SortKey`]). Blocks (one per `k`) are independent: with a thread
//! pool and enough work they run in parallel, which changes no result.

use crate::error::internal;
use rayon::prelude::*;
use tenferro_ir::eval::SortKey;
use tenferro_ir::optable::{max_f32, max_f64, min_f32, min_f64};
use tenferro_ir::tensor::try_vec_with_capacity;
use tenferro_ir::{Data, ReduceOp};
use tenferro_runtime::Result;

/// Elements below which a scan or sort runs on the calling thread.
const PAR_ELEMS: usize = 4096;

/// Geometry of a scan or argsort along one axis.
#[derive(Clone, Debug)]
pub(crate) struct ScanPlan {
    pre: usize,
    n: usize,
    post: usize,
    reverse: bool,
}

impl ScanPlan {
    /// The plan of a scan (or sort) of an operand of `shape` along `axis`; `reverse`
    /// walks each line from its last element (scans only).
    pub(crate) fn new(shape: &[usize], axis: usize, reverse: bool) -> ScanPlan {
        let product = |d: &[usize]| d.iter().fold(1usize, |a, &b| a.saturating_mul(b));
        ScanPlan {
            pre: product(&shape[..axis]),
            n: shape[axis],
            post: product(&shape[axis + 1..]),
            reverse,
        }
    }

    fn is_empty(&self) -> bool {
        self.pre == 0 || self.n == 0 || self.post == 0
    }

    /// Elements of one block (`pre · n`).
    fn block(&self) -> usize {
        self.pre * self.n
    }

    /// Runs `f(input block, output block)` over the blocks, in parallel when worth it.
    fn blocks<T: Sync, R: Send>(
        &self,
        x: &[T],
        out: &mut [R],
        pool: Option<&rayon::ThreadPool>,
        f: impl Fn(&[T], &mut [R]) + Sync,
    ) {
        let b = self.block();
        match pool {
            Some(pool) if self.post > 1 && x.len() >= PAR_ELEMS => pool.install(|| {
                out.par_chunks_mut(b)
                    .zip(x.par_chunks(b))
                    .for_each(|(o, v)| f(v, o))
            }),
            _ => out
                .chunks_mut(b)
                .zip(x.chunks(b))
                .for_each(|(o, v)| f(v, o)),
        }
    }
}

/// The inclusive scan of `x` along the planned axis with `g` (`acc ⊕ x_i`).
fn scan_vec<T: Copy + Send + Sync>(
    name: &str,
    plan: &ScanPlan,
    x: &[T],
    pool: Option<&rayon::ThreadPool>,
    g: impl Fn(T, T) -> T + Sync,
) -> Result<Vec<T>> {
    let mut out: Vec<T> = try_vec_with_capacity(name, x.len())?;
    out.extend_from_slice(x);
    if plan.is_empty() {
        return Ok(out);
    }
    let (pre, n) = (plan.pre, plan.n);
    plan.blocks(x, &mut out, pool, |v, o| {
        // Row `i` in scan order: elements `pre·i .. pre·(i+1)` of the block.
        let row = |k: usize| {
            let i = if plan.reverse { n - 1 - k } else { k };
            i * pre
        };
        for k in 1..n {
            let (prev, cur) = (row(k - 1), row(k));
            for p in 0..pre {
                o[cur + p] = g(o[prev + p], v[cur + p]);
            }
        }
    });
    Ok(out)
}

/// `kind` accumulated along the planned axis: the result of `cumsum` / `cumprod` /
/// `cummax` / `cummin` (integers wrap; max/min propagate NaN as `maximum`/`minimum`).
pub(crate) fn cumulative(
    name: &str,
    kind: ReduceOp,
    plan: &ScanPlan,
    x: &Data,
    pool: Option<&rayon::ThreadPool>,
) -> Result<Data> {
    macro_rules! arith {
        ($v:expr) => {
            match kind {
                ReduceOp::Sum => scan_vec(name, plan, $v, pool, |a, b| a + b)?,
                ReduceOp::Prod => scan_vec(name, plan, $v, pool, |a, b| a * b)?,
                _ => return Err(internal(name, "complex operands are not ordered")),
            }
        };
    }
    // Integers wrap, as the reference evaluator's scans.
    macro_rules! int {
        ($v:expr, $t:ty) => {
            match kind {
                ReduceOp::Sum => scan_vec(name, plan, $v, pool, <$t>::wrapping_add)?,
                ReduceOp::Prod => scan_vec(name, plan, $v, pool, <$t>::wrapping_mul)?,
                ReduceOp::Max => scan_vec(name, plan, $v, pool, <$t>::max)?,
                ReduceOp::Min => scan_vec(name, plan, $v, pool, <$t>::min)?,
            }
        };
    }
    Ok(match x {
        Data::F32(v) => Data::F32(match kind {
            ReduceOp::Max => scan_vec(name, plan, v, pool, max_f32)?,
            ReduceOp::Min => scan_vec(name, plan, v, pool, min_f32)?,
            _ => arith!(v),
        }),
        Data::F64(v) => Data::F64(match kind {
            ReduceOp::Max => scan_vec(name, plan, v, pool, max_f64)?,
            ReduceOp::Min => scan_vec(name, plan, v, pool, min_f64)?,
            _ => arith!(v),
        }),
        Data::C32(v) => Data::C32(arith!(v)),
        Data::C64(v) => Data::C64(arith!(v)),
        Data::I32(v) => Data::I32(int!(v, i32)),
        Data::I64(v) => Data::I64(int!(v, i64)),
        Data::Bool(_) => return Err(internal(name, "bool operand")),
    })
}

fn argsort_vec<T: SortKey + Send + Sync>(
    name: &str,
    plan: &ScanPlan,
    x: &[T],
    descending: bool,
    pool: Option<&rayon::ThreadPool>,
) -> Result<Vec<i64>> {
    let mut out: Vec<i64> = try_vec_with_capacity(name, x.len())?;
    out.resize(x.len(), 0);
    if plan.is_empty() {
        return Ok(out);
    }
    let (pre, n) = (plan.pre, plan.n);
    plan.blocks(x, &mut out, pool, |v, o| {
        let mut line: Vec<(T, usize)> = Vec::with_capacity(n);
        for p in 0..pre {
            line.clear();
            line.extend((0..n).map(|i| (v[p + i * pre], i)));
            // `sort_by` is stable; descending compares with the operands swapped.
            if descending {
                line.sort_by(|a, b| b.0.sort_cmp(a.0));
            } else {
                line.sort_by(|a, b| a.0.sort_cmp(b.0));
            }
            for (k, &(_, i)) in line.iter().enumerate() {
                o[p + k * pre] = i as i64;
            }
        }
    });
    Ok(out)
}

/// The stable sort permutation of `x` along the planned axis (i64).
pub(crate) fn argsort(
    name: &str,
    plan: &ScanPlan,
    descending: bool,
    x: &Data,
    pool: Option<&rayon::ThreadPool>,
) -> Result<Data> {
    Ok(Data::I64(match x {
        Data::F32(v) => argsort_vec(name, plan, v, descending, pool)?,
        Data::F64(v) => argsort_vec(name, plan, v, descending, pool)?,
        Data::I32(v) => argsort_vec(name, plan, v, descending, pool)?,
        Data::I64(v) => argsort_vec(name, plan, v, descending, pool)?,
        Data::Bool(v) => argsort_vec(name, plan, v, descending, pool)?,
        Data::C32(_) | Data::C64(_) => {
            return Err(internal(name, "complex operands are not ordered"))
        }
    }))
}
