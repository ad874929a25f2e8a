//! Common subexpression elimination: an instruction with the same op (attributes and
//! constants compared bitwise), the same operands and the same result types as an earlier
//! one is dropped and its results are replaced by the earlier results. Operands of
//! commutative `add` / `mul` are put in a canonical order first.

use crate::pipeline::{PassError, PassStats};
use crate::rebuild::Rebuild;
use std::collections::HashMap;
use tenferro_ir::{BinaryOp, Function, Op, TensorType, Value};

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
    let mut r = Rebuild::new(f, "cse");
    let mut seen: HashMap<(Op, Vec<Value>, Vec<TensorType>), Vec<Value>> = HashMap::new();
    let mut merged = 0u64;
    for inst in f.insts() {
        let args = r.args(inst)?;
        let key = (
            inst.op.clone(),
            canonical_operands(&inst.op, args.clone()),
            r.result_types(inst),
        );
        match seen.get(&key) {
            Some(prev) => {
                merged += 1;
                r.bind(inst, prev);
            }
            None => {
                let res = r.emit(inst, key.0.clone(), args);
                seen.insert(key, res);
            }
        }
    }
    *f = r.finish()?;
    Ok(PassStats {
        changed: merged > 0,
        counters: vec![("merged", merged)],
    })
}
