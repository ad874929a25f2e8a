//! The rebuild-with-remap that dce, cse and fold share: a new function is built from an
//! old one instruction by instruction, with every old value mapped to its new one.

use crate::pipeline::PassError;
use tenferro_ir::{Function, Inst, Op, TensorType, Value};

/// Builds a new function from `src`, mapping `src`'s values to the new function's.
/// Parameters are copied first, unchanged and in order.
pub(crate) struct Rebuild<'f> {
    src: &'f Function,
    pass: &'static str,
    /// The function being built.
    pub(crate) g: Function,
    map: Vec<Option<Value>>,
}

impl<'f> Rebuild<'f> {
    /// A rebuild of `src` by `pass` (named in errors), its parameters already copied.
    pub(crate) fn new(src: &'f Function, pass: &'static str) -> Rebuild<'f> {
        let mut g = Function::new(src.name.clone());
        let mut map = vec![None; src.num_values()];
        for (&p, q) in src.params().iter().zip(g.add_params_of(src)) {
            map[p.index()] = Some(q);
        }
        Rebuild { src, pass, g, map }
    }

    /// The pass's error for a malformed source function.
    pub(crate) fn error(&self, message: String) -> PassError {
        PassError::Failed {
            pass: self.pass.to_string(),
            message,
        }
    }

    /// The new value of the old value `v`; an error if `v` is not defined yet (a function
    /// the verifier would reject).
    pub(crate) fn get(&self, v: Value) -> Result<Value, PassError> {
        self.map
            .get(v.index())
            .copied()
            .flatten()
            .ok_or_else(|| self.error(format!("value {v} is used before it is defined")))
    }

    /// The new operands of `inst`.
    pub(crate) fn args(&self, inst: &Inst) -> Result<Vec<Value>, PassError> {
        inst.args.iter().map(|&a| self.get(a)).collect()
    }

    /// The result types `inst` has in the source.
    pub(crate) fn result_types(&self, inst: &Inst) -> Vec<TensorType> {
        inst.results
            .iter()
            .map(|&r| self.src.ty(r).clone())
            .collect()
    }

    /// Appends `op` on `args` with the result types of `inst` and maps `inst`'s results
    /// to the new ones.
    pub(crate) fn emit(&mut self, inst: &Inst, op: Op, args: Vec<Value>) -> Vec<Value> {
        let tys = self.result_types(inst);
        let res = self.g.push_unchecked(op, args, tys);
        self.bind(inst, &res);
        res
    }

    /// Maps `inst`'s results to existing new values.
    pub(crate) fn bind(&mut self, inst: &Inst, new: &[Value]) {
        for (&old, &n) in inst.results.iter().zip(new) {
            self.map[old.index()] = Some(n);
        }
    }

    /// The new function, with `src`'s outputs mapped.
    pub(crate) fn finish(mut self) -> Result<Function, PassError> {
        let outputs = self
            .src
            .outputs()
            .iter()
            .map(|&o| self.get(o))
            .collect::<Result<Vec<_>, _>>()?;
        self.g.set_outputs(outputs);
        Ok(self.g)
    }
}
