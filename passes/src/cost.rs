//! The cost model: flops and bytes moved per op, computed from static shapes, and the
//! scalar score the e-graph extraction and the O2 "never worse" check minimise.
//!
//! Flops follow XLA's cost analysis (what the issue compares against): one flop per result
//! element for elementwise ops (transcendentals too; their extra price is in the score
//! only), `2·batch·m·n·k` for `dot_general`, one per operand element for reductions, none
//! for data movement; a cumulative op one per element, argsort `n·log2(n)` comparisons
//! per line of n. Bytes are operand sizes plus result sizes; `reshape` is free (memory
//! order never changes). Ops that fuse with their neighbours (elementwise, broadcast,
//! iota) are scored with a fraction of their bytes: inside a fusion group their operands
//! and results stay in registers or L1.

use std::ops::{Add, AddAssign};
use tenferro_ir::{ElemCost, Function, Op, ReduceOp, TensorType};

/// Estimated work of an op or a function.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CostEstimate {
    /// Floating-point (or integer) operations.
    pub flops: f64,
    /// Bytes read and written.
    pub bytes: f64,
}

impl Add for CostEstimate {
    type Output = CostEstimate;
    fn add(self, o: CostEstimate) -> CostEstimate {
        CostEstimate {
            flops: self.flops + o.flops,
            bytes: self.bytes + o.bytes,
        }
    }
}

impl AddAssign for CostEstimate {
    fn add_assign(&mut self, o: CostEstimate) {
        *self = *self + o;
    }
}

/// Score of one byte moved, in flops.
pub const BYTE_WEIGHT: f64 = 0.5;
/// Fraction of its bytes a fusible op is charged.
pub const FUSED_BYTE_FRACTION: f64 = 0.125;
/// Score of one instruction, whatever it does (dispatch, buffer, a node in the schedule).
pub const INST_OVERHEAD: f64 = 8.0;
/// Extra score per element of a transcendental (exp, log, sin, cos, tanh, ...).
pub const TRANSCENDENTAL_WEIGHT: f64 = 16.0;

/// `true` for ops a fusion group absorbs: elementwise ops, broadcasts, reshapes, iota.
pub fn fuses(op: &Op) -> bool {
    op.is_elementwise()
        || matches!(
            op,
            Op::BroadcastInDim { .. } | Op::Reshape { .. } | Op::Iota { .. }
        )
}

/// Ops whose per-element cost is above a few instructions (the op table's cost class).
fn is_transcendental(op: &Op) -> bool {
    match op {
        Op::Unary(u) => u.cost() != ElemCost::Cheap,
        Op::Binary(b) => b.cost() == ElemCost::Transcendental,
        _ => false,
    }
}

/// Flops and bytes of `op` applied to operands of types `args` with results `results`.
pub fn op_cost(op: &Op, args: &[&TensorType], results: &[&TensorType]) -> CostEstimate {
    let bytes_of = |ts: &[&TensorType]| ts.iter().map(|t| t.size_bytes() as f64).sum::<f64>();
    let out_elems: f64 = results.iter().map(|t| t.numel() as f64).sum();
    let flops = match op {
        Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => out_elems,
        // n - 1 combinations per output of n inputs (as XLA's cost analysis counts).
        Op::Reduce { .. } => match (args.first(), results.first()) {
            (Some(x), Some(r)) => (x.numel() as f64 - r.numel() as f64).max(0.0),
            _ => 0.0,
        },
        Op::DotGeneral(d) => match (args.first(), results.first()) {
            (Some(l), Some(r)) => {
                let k: f64 = d.lhs_contract.iter().map(|&a| l.shape[a] as f64).product();
                let mul = if l.dtype.is_complex() { 4.0 } else { 1.0 };
                2.0 * r.numel() as f64 * k * mul
            }
            _ => 0.0,
        },
        Op::ScatterAdd { .. } => args.get(2).map_or(0.0, |t| t.numel() as f64),
        // One combination per element (n - 1 per line of n).
        Op::Cumulative { .. } => out_elems,
        // A comparison sort: n·log2(n) comparisons per line of n.
        Op::Argsort { axis, .. } => match args.first() {
            Some(x) if *axis < x.rank() => {
                let n = x.shape[*axis] as f64;
                x.numel() as f64 * n.max(2.0).log2()
            }
            _ => 0.0,
        },
        _ => 0.0,
    };
    let bytes = match op {
        Op::Reshape { .. } => 0.0,
        Op::Constant(_) => 0.0,
        _ => bytes_of(args) + results.iter().map(|t| t.size_bytes() as f64).sum::<f64>(),
    };
    CostEstimate { flops, bytes }
}

/// The scalar score of one instruction: flops, weighted bytes (a fraction for fusible
/// ops), a surcharge for transcendentals, and a fixed per-instruction overhead.
pub fn op_score(op: &Op, args: &[&TensorType], results: &[&TensorType]) -> f64 {
    let c = op_cost(op, args, results);
    let byte_weight = if fuses(op) {
        BYTE_WEIGHT * FUSED_BYTE_FRACTION
    } else {
        BYTE_WEIGHT
    };
    let mut s = c.flops + byte_weight * c.bytes + INST_OVERHEAD;
    if is_transcendental(op) {
        s += TRANSCENDENTAL_WEIGHT * results.iter().map(|t| t.numel() as f64).sum::<f64>();
    }
    if matches!(
        op,
        Op::Reduce {
            kind: ReduceOp::Max | ReduceOp::Min,
            ..
        }
    ) {
        s += c.flops;
    }
    s
}

fn inst_types<'a>(
    f: &'a Function,
    inst: &tenferro_ir::Inst,
) -> (Vec<&'a TensorType>, Vec<&'a TensorType>) {
    (
        inst.args.iter().map(|&a| f.ty(a)).collect(),
        inst.results.iter().map(|&r| f.ty(r)).collect(),
    )
}

/// Estimated flops and bytes of running `f` once (the sum over its instructions).
pub fn estimate(f: &Function) -> CostEstimate {
    let mut total = CostEstimate::default();
    for inst in f.insts() {
        let (args, results) = inst_types(f, inst);
        total += op_cost(&inst.op, &args, &results);
    }
    total
}

/// The score of `f`: the sum of [`op_score`] over its instructions.
pub fn score(f: &Function) -> f64 {
    f.insts()
        .iter()
        .map(|inst| {
            let (args, results) = inst_types(f, inst);
            op_score(&inst.op, &args, &results)
        })
        .sum()
}
