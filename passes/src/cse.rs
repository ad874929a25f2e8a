//! Common subexpression elimination: an instruction with the same op (attributes and
//! constants compared bitwise), the same operands and the same result types as an earlier
//! one is dropped and its results are replaced by the earlier results. Operands of
//! commutative `add` / `mul` are put in a canonical order first. An extension op that
//! declares a richer variant ([`ExtensionOp::superset`], e.g. singular values only beside
//! the full SVD) is replaced by that variant, computed once, when the function also holds
//! it on the same operands.

use crate::pipeline::{PassError, PassStats};
use crate::rebuild::Rebuild;
use std::collections::HashMap;
use tenferro_ir::{BinaryOp, ExtensionOp, Function, Inst, Op, TensorType, Value};

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

/// An extension op's identity without its result types: name, attributes, operands.
type ExtKey = (String, Vec<(String, tenferro_ir::Attr)>, Vec<Value>);

fn ext_key(e: &ExtensionOp, args: &[Value]) -> ExtKey {
    let attrs = e
        .attrs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (e.name.clone(), attrs, args.to_vec())
}

/// The richer variant in `f` of a declaring extension instruction (see
/// [`ExtensionOp::with_superset`]): that instruction, and where `inst`'s results sit among
/// its results, when the types agree.
fn richer<'f>(
    f: &'f Function,
    inst: &Inst,
    exts: &HashMap<ExtKey, &'f Inst>,
) -> Option<(&'f Inst, Vec<usize>)> {
    let Op::Extension(e) = &inst.op else {
        return None;
    };
    let (sup, positions) = e.superset()?;
    let t = *exts.get(&ext_key(&sup, &inst.args))?;
    let agree = positions
        .iter()
        .zip(&inst.results)
        .all(|(&p, &r)| t.results.get(p).is_some_and(|&tr| f.ty(tr) == f.ty(r)));
    agree.then_some((t, positions))
}

/// Merges duplicate instructions of `f`. Counter: `merged`.
pub fn run(f: &mut Function) -> Result<PassStats, PassError> {
    let mut r = Rebuild::new(f, "cse");
    let mut seen: HashMap<(Op, Vec<Value>, Vec<TensorType>), Vec<Value>> = HashMap::new();
    let mut merged = 0u64;
    let exts: HashMap<ExtKey, &Inst> = f
        .insts()
        .iter()
        .filter_map(|i| match &i.op {
            Op::Extension(e) => Some((ext_key(e, &i.args), i)),
            _ => None,
        })
        .collect();
    for inst in f.insts() {
        let args = r.args(inst)?;
        if let Some((t, positions)) = richer(f, inst, &exts) {
            let key = (t.op.clone(), args.clone(), r.result_types(t));
            let res = match seen.get(&key) {
                Some(prev) => prev.clone(),
                None => {
                    let res = r.g.push_unchecked(key.0.clone(), args, key.2.clone());
                    seen.insert(key, res.clone());
                    res
                }
            };
            let picked: Vec<Value> = positions.iter().map(|&p| res[p]).collect();
            r.bind(inst, &picked);
            merged += 1;
            continue;
        }
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
