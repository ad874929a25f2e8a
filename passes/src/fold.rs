//! Constant folding: an instruction whose operands are all constants is evaluated with the
//! reference evaluator ([`tenferro_ir::eval::eval_op`]) and replaced by a constant, when
//! its result is small. The old constants stay (a later dce removes the unused ones).

use crate::pipeline::{PassError, PassStats};
use crate::rebuild::Rebuild;
use tenferro_ir::eval::eval_op;
use tenferro_ir::{Function, Op, Tensor};

/// Results with more elements than this are never folded.
pub const MAX_FOLDED_ELEMENTS: usize = 4096;
/// `iota` and `broadcast_in_dim` results above this size are not folded: materialising
/// them as constants would make the program bigger, not simpler.
pub const MAX_FOLDED_EXPANSION: usize = 64;

fn failed(message: String) -> PassError {
    PassError::Failed {
        pass: "fold".to_string(),
        message,
    }
}

/// Folds constant instructions of `f`. Counter: `folded`.
pub fn run(f: &mut Function) -> Result<PassStats, PassError> {
    let mut r = Rebuild::new(f, "fold");
    // Constant value of each value of the new function, if it is defined by a constant.
    let mut consts: Vec<Option<Tensor>> = vec![None; r.g.num_values()];
    let mut folded = 0u64;
    for (i, inst) in f.insts().iter().enumerate() {
        let args = r.args(inst)?;
        let limit = match inst.op {
            Op::Iota { .. } | Op::BroadcastInDim { .. } => MAX_FOLDED_EXPANSION,
            _ => MAX_FOLDED_ELEMENTS,
        };
        let foldable = !matches!(
            inst.op,
            Op::Constant(_) | Op::Extension(_) | Op::Barrier { .. }
        ) && inst.results.len() == 1
            && f.ty(inst.results[0]).numel() <= limit
            && args.iter().all(|a| consts[a.index()].is_some());
        if foldable {
            let operands: Vec<&Tensor> = args
                .iter()
                .filter_map(|a| consts[a.index()].as_ref())
                .collect();
            let mut out = eval_op(&inst.op, &operands)
                .map_err(|e| failed(format!("instruction {i} ({}): {e}", inst.op.name())))?;
            let t = out.pop().ok_or_else(|| {
                failed(format!(
                    "instruction {i} ({}) produced no result",
                    inst.op.name()
                ))
            })?;
            let recorded = f.ty(inst.results[0]);
            if t.ty() != *recorded {
                return Err(failed(format!(
                    "instruction {i} ({}): result is recorded as {recorded} but evaluates to {}",
                    inst.op.name(),
                    t.ty()
                )));
            }
            folded += 1;
            let res = r.emit(inst, Op::Constant(t.clone()), vec![]);
            consts.resize(r.g.num_values(), None);
            consts[res[0].index()] = Some(t);
        } else {
            let res = r.emit(inst, inst.op.clone(), args);
            consts.resize(r.g.num_values(), None);
            if let (Op::Constant(t), Some(v)) = (&inst.op, res.first()) {
                consts[v.index()] = Some(t.clone());
            }
        }
    }
    *f = r.finish()?;
    Ok(PassStats {
        changed: folded > 0,
        counters: vec![("folded", folded)],
    })
}
