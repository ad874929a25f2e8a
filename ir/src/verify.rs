//! The verifier: checks every invariant of a [`Function`] and reports the first one that
//! is broken. Invariants, in the order they are checked:
//!
//! 1. Parameter `i` is a value of the arena whose definition is `Param(i)`, and a dense
//!    buffer of its type fits in memory (see [`crate::infer::checked_numel`]).
//! 2. For each instruction, in order: every operand is defined earlier (by a parameter or
//!    an earlier instruction) — else [`IrError::UndefinedValue`]; every result is a value
//!    of the arena whose definition is this instruction and result index —
//!    else [`IrError::Malformed`] (so no value is defined twice); the op type-checks on its operands (the error of
//!    [`infer_types`], with the instruction named in the message of
//!    [`IrError::InvalidOp`]); it produces as many results as the instruction defines
//!    (for an extension op, its declared `results`) — else [`IrError::Malformed`]; each
//!    result's recorded type is the inferred one — else [`IrError::TypeMismatch`].
//! 3. Every value of the arena is defined by a parameter or an instruction.
//! 4. Every output is a defined value.

use crate::error::IrError;
use crate::function::{Function, Value, ValueDef};
use crate::infer::infer_types;

/// Checks `f`; the first broken invariant is returned as an error.
pub fn verify(f: &Function) -> Result<(), IrError> {
    let n = f.num_values();
    let mut defined = vec![false; n];
    for (i, &p) in f.params().iter().enumerate() {
        if p.index() >= n {
            return Err(IrError::Malformed(format!(
                "parameter {i} is {p}, outside the arena of {n} values"
            )));
        }
        if f.def(p) != ValueDef::Param(i) {
            return Err(IrError::Malformed(format!(
                "parameter {i} is {p}, whose definition is recorded as {:?}",
                f.def(p)
            )));
        }
        let ty = f.ty(p);
        if crate::infer::checked_numel(&ty.shape).is_none() {
            return Err(IrError::Malformed(format!(
                "parameter {i} ({p}) has type {ty}, whose element count or byte size does not fit in memory"
            )));
        }
        defined[p.index()] = true;
    }
    for (i, inst) in f.insts().iter().enumerate() {
        let op = inst.op.name();
        for &a in &inst.args {
            if a.index() >= n || !defined[a.index()] {
                return Err(IrError::UndefinedValue {
                    inst: i,
                    op: op.to_string(),
                    value: a.index() as u32,
                });
            }
        }
        for (j, &r) in inst.results.iter().enumerate() {
            if r.index() >= n {
                return Err(IrError::Malformed(format!(
                    "instruction {i} ({op}): result {j} is {r}, outside the arena of {n} values"
                )));
            }
            let want = ValueDef::Inst { inst: i, result: j };
            if f.def(r) != want {
                return Err(IrError::Malformed(format!(
                    "instruction {i} ({op}): result {j} is {r}, whose definition is recorded as {:?}",
                    f.def(r)
                )));
            }
        }
        let arg_types: Vec<_> = inst.args.iter().map(|&a| f.ty(a)).collect();
        let inferred = infer_types(&inst.op, &arg_types).map_err(|e| match e {
            IrError::InvalidOp { op, message } => IrError::InvalidOp {
                op,
                message: format!("{message} (instruction {i})"),
            },
            e => e,
        })?;
        if inferred.len() != inst.results.len() {
            return Err(IrError::Malformed(format!(
                "instruction {i} ({op}): the op produces {} result(s) but the instruction defines {}",
                inferred.len(),
                inst.results.len()
            )));
        }
        for (&r, ty) in inst.results.iter().zip(&inferred) {
            if f.ty(r) != ty {
                return Err(IrError::TypeMismatch {
                    inst: i,
                    op: op.to_string(),
                    value: r.index() as u32,
                    recorded: f.ty(r).to_string(),
                    inferred: ty.to_string(),
                });
            }
            defined[r.index()] = true;
        }
    }
    if let Some(v) = defined.iter().position(|&d| !d) {
        return Err(IrError::Malformed(format!(
            "{} is in the arena but no parameter or instruction defines it",
            Value::from_index(v)
        )));
    }
    for (k, &o) in f.outputs().iter().enumerate() {
        if o.index() >= n {
            return Err(IrError::Malformed(format!(
                "output {k} is {o}, which is not defined"
            )));
        }
    }
    Ok(())
}
