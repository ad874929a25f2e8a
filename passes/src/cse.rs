//! Common subexpression elimination: an instruction with the same op (attributes and
//! constants compared bitwise), the same operands and the same result types as an earlier
//! one is dropped and its results are replaced by the earlier results.

use crate::pipeline::{PassError, PassStats};
use std::collections::HashMap;
use tenferro_ir::{Function, Op, TensorType, Value};

fn malformed(message: String) -> PassError {
    PassError::Failed {
        pass: "cse".to_string(),
        message,
    }
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
        let key = (inst.op.clone(), args, tys);
        let res = match seen.get(&key) {
            Some(prev) => {
                merged += 1;
                prev.clone()
            }
            None => {
                let res = g.push_unchecked(key.0.clone(), key.1.clone(), key.2.clone());
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
