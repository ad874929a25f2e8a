//! Sorting and scans of [`EagerTensor`]: the methods of `tenferro_runtime::sorting`
//! (`argsort`, `sort`, `top_k`, `cumsum`, `cumprod`, `cummax`, `cummin`, `cumulative`),
//! each the traced method run through [`EagerContext::apply_traced`], so semantics,
//! errors and gradients are those of traced mode.
//!
//! [`EagerContext::apply_traced`]: super::context::EagerContext::apply_traced

use super::context::OpKey;
use super::tensor::EagerTensor;
use crate::error::Result;
use tenferro_ir::ReduceOp;
use tenferro_runtime::TracedTensor;

/// Turns a traced value with a recorded error into `Err`.
fn ok(t: TracedTensor) -> tenferro_runtime::Result<Vec<TracedTensor>> {
    match t.error() {
        Some(e) => Err(e),
        None => Ok(vec![t]),
    }
}

fn kind_key(kind: ReduceOp) -> i64 {
    match kind {
        ReduceOp::Sum => 0,
        ReduceOp::Prod => 1,
        ReduceOp::Max => 2,
        ReduceOp::Min => 3,
    }
}

impl EagerTensor {
    /// `TracedTensor::argsort` eagerly (i64 stable sort permutation along `axis`).
    pub fn argsort(&self, axis: isize, descending: bool) -> Result<EagerTensor> {
        let k = vec![axis as i64, descending as i64];
        self.ctx
            .apply_traced1(OpKey::named("argsort", k), &[self], |t| {
                ok(t[0].argsort(axis, descending))
            })
    }

    /// `TracedTensor::sort` eagerly (differentiable).
    pub fn sort(&self, axis: isize, descending: bool) -> Result<EagerTensor> {
        let k = vec![axis as i64, descending as i64];
        self.ctx
            .apply_traced1(OpKey::named("sort", k), &[self], |t| {
                ok(t[0].sort(axis, descending))
            })
    }

    /// `TracedTensor::top_k` eagerly: the `k` largest values along the last axis and
    /// their indices.
    pub fn top_k(&self, k: usize) -> Result<(EagerTensor, EagerTensor)> {
        let mut v = self
            .ctx
            .apply_traced(OpKey::named("top_k", vec![k as i64]), &[self], |t| {
                let (values, indices) = t[0].top_k(k);
                if let Some(e) = values.error().or_else(|| indices.error()) {
                    return Err(e);
                }
                Ok(vec![values, indices])
            })?;
        let indices = v.pop().expect("two results");
        let values = v.pop().expect("two results");
        Ok((values, indices))
    }

    /// `TracedTensor::cumulative` eagerly: inclusive scan of `kind` along `axis`,
    /// last-to-first when `reverse`.
    pub fn cumulative(&self, kind: ReduceOp, axis: isize, reverse: bool) -> Result<EagerTensor> {
        let k = vec![kind_key(kind), axis as i64, reverse as i64];
        self.ctx
            .apply_traced1(OpKey::named("cumulative", k), &[self], |t| {
                ok(t[0].cumulative(kind, axis, reverse))
            })
    }

    /// `TracedTensor::cumsum` eagerly.
    pub fn cumsum(&self, axis: isize) -> Result<EagerTensor> {
        self.cumulative(ReduceOp::Sum, axis, false)
    }

    /// `TracedTensor::cumprod` eagerly.
    pub fn cumprod(&self, axis: isize) -> Result<EagerTensor> {
        self.cumulative(ReduceOp::Prod, axis, false)
    }

    /// `TracedTensor::cummax` eagerly.
    pub fn cummax(&self, axis: isize) -> Result<EagerTensor> {
        self.cumulative(ReduceOp::Max, axis, false)
    }

    /// `TracedTensor::cummin` eagerly.
    pub fn cummin(&self, axis: isize) -> Result<EagerTensor> {
        self.cumulative(ReduceOp::Min, axis, false)
    }
}
