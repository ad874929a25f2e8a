//! Constant folding: an instruction whose operands are all constants is evaluated with the
//! reference evaluator ([`tenferro_ir::eval::eval_op`]) and replaced by a constant, when
//! its result is small. The old constants stay (a later dce removes the unused ones).

use crate::pipeline::{PassError, PassStats};
use tenferro_ir::eval::eval_op;
use tenferro_ir::{Function, Op, Tensor, Value};

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
    let mut g = Function::new(f.name.clone());
    let mut map: Vec<Option<Value>> = vec![None; f.num_values()];
    for &p in f.params() {
        map[p.index()] = Some(g.add_param(f.ty(p).clone()));
    }
    let get = |map: &[Option<Value>], v: Value| {
        map.get(v.index())
            .copied()
            .flatten()
            .ok_or_else(|| failed(format!("value {v} is used before it is defined")))
    };
    // Constant value of each value of `g`, if it is defined by a constant.
    let mut consts: Vec<Option<Tensor>> = vec![None; g.num_values()];
    let mut folded = 0u64;
    for (i, inst) in f.insts().iter().enumerate() {
        let args = inst
            .args
            .iter()
            .map(|&a| get(&map, a))
            .collect::<Result<Vec<_>, _>>()?;
        let limit = match inst.op {
            Op::Iota { .. } | Op::BroadcastInDim { .. } => MAX_FOLDED_EXPANSION,
            _ => MAX_FOLDED_ELEMENTS,
        };
        let foldable = !matches!(inst.op, Op::Constant(_) | Op::Extension(_))
            && inst.results.len() == 1
            && f.ty(inst.results[0]).numel() <= limit
            && args.iter().all(|a| consts[a.index()].is_some());
        let res = if foldable {
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
            let res = g.push_unchecked(Op::Constant(t.clone()), vec![], vec![recorded.clone()]);
            consts.resize(g.num_values(), None);
            consts[res[0].index()] = Some(t);
            res
        } else {
            let tys = inst.results.iter().map(|&r| f.ty(r).clone()).collect();
            let res = g.push_unchecked(inst.op.clone(), args, tys);
            consts.resize(g.num_values(), None);
            if let (Op::Constant(t), Some(r)) = (&inst.op, res.first()) {
                consts[r.index()] = Some(t.clone());
            }
            res
        };
        for (&old, new) in inst.results.iter().zip(res) {
            map[old.index()] = Some(new);
        }
    }
    let outputs = f
        .outputs()
        .iter()
        .map(|&o| get(&map, o))
        .collect::<Result<Vec<_>, _>>()?;
    g.set_outputs(outputs);
    *f = g;
    Ok(PassStats {
        changed: folded > 0,
        counters: vec![("folded", folded)],
    })
}
