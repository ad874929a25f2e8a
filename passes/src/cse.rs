//! Common subexpression elimination: an instruction with the same op (attributes and
//! constants compared bitwise), the same operands and the same result types as an earlier
//! one is dropped and its results are replaced by the earlier results. Operands of
//! commutative `add` / `mul` are put in a canonical order first.

use crate::pipeline::{PassError, PassStats};
use std::collections::HashMap;
use tenferro_ir::{BinaryOp, Function, Op, TensorType, Value};

fn malformed(message: String) -> PassError {
    PassError::Failed {
        pass: "cse".to_string(),
        message,
    }
}

/// Operands in a canonical order: `add` and `mul` are commutative, so `mul b, a` is
/// written `mul a, b` (lower value first) and merges with it. IEEE addition and
/// multiplication commute exactly; only the payload of a NaN produced from two NaN
/// operands may differ, which LLVM does not preserve either.
fn canonical_operands(op: &Op, mut args: Vec<Value>) -> Vec<Value> {
    if matches!(op, Op::Binary(BinaryOp::Add | BinaryOp::Mul))
        && args.len() == 2
        && args[1] < args[0]
    {
        args.swap(0, 1);
    }
    args
}

/// Merges duplicate instructions of `f`. Counter: `merged`.
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
            .ok_or_else(|| malformed(format!("value {v} is used before it is defined")))
    };
    let mut seen: HashMap<(Op, Vec<Value>, Vec<TensorType>), Vec<Value>> = HashMap::new();
    let mut merged = 0u64;
    for inst in f.insts() {
        let args = inst
            .args
            .iter()
            .map(|&a| get(&map, a))
            .collect::<Result<Vec<_>, _>>()?;
        let tys: Vec<TensorType> = inst.results.iter().map(|&r| f.ty(r).clone()).collect();
        let key = (
            inst.op.clone(),
            canonical_operands(&inst.op, args.clone()),
            tys,
        );
        let res = match seen.get(&key) {
            Some(prev) => {
                merged += 1;
                prev.clone()
            }
            None => {
                let res = g.push_unchecked(key.0.clone(), args, key.2.clone());
                seen.insert(key, res.clone());
                res
            }
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
        changed: merged > 0,
        counters: vec![("merged", merged)],
    })
}
