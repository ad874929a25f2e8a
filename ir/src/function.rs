//! The arena SSA function: values are `u32` handles into the function's own arena; each
//! is defined once, by a parameter or by one result of one instruction. Instructions are
//! stored in a topological order (every operand is defined before its use).

use crate::dtype::TensorType;
use crate::error::IrError;
use crate::infer::infer_types;
use crate::op::Op;
use std::collections::HashMap;
use std::fmt;

/// An SSA value: a typed index into its function's value arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(u32);

impl Value {
    /// The value's index in the arena.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The value with arena index `i`.
    pub fn from_index(i: usize) -> Value {
        Value(i as u32)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// Where a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueDef {
    /// The `n`-th parameter of the function.
    Param(usize),
    /// Result `result` of instruction `inst`.
    Inst {
        /// Index of the instruction.
        inst: usize,
        /// Which of its results.
        result: usize,
    },
}

/// A value's static type and its definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueData {
    /// Static type.
    pub ty: TensorType,
    /// Definition.
    pub def: ValueDef,
}

/// One instruction: an op, its operands and its results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inst {
    /// The operation.
    pub op: Op,
    /// Operands, defined earlier.
    pub args: Vec<Value>,
    /// Results, one per result type of the op.
    pub results: Vec<Value>,
}

impl Inst {
    /// The first (for all core ops, the only) result.
    pub fn result(&self) -> Value {
        self.results[0]
    }
}

/// A function in SSA form: parameters, instructions in topological order, outputs.
#[derive(Clone, Debug, Default)]
pub struct Function {
    /// Name printed after `func @`.
    pub name: String,
    values: Vec<ValueData>,
    params: Vec<Value>,
    /// One per parameter: the name it was given, if any (printed, parsed, compared).
    param_names: Vec<Option<String>>,
    insts: Vec<Inst>,
    outputs: Vec<Value>,
}

impl Function {
    /// An empty function.
    pub fn new(name: impl Into<String>) -> Function {
        Function {
            name: name.into(),
            ..Function::default()
        }
    }

    /// Assembles a function from raw parts: the arena `values` (indexed by
    /// [`Value::index`]), the parameters, the instructions and the outputs. The result is
    /// checked with [`crate::verify()`], so a function made this way is as trustworthy as
    /// one built with [`Function::push`]; a malformed one is [`IrError::Malformed`].
    pub fn from_parts(
        name: impl Into<String>,
        values: Vec<ValueData>,
        params: Vec<Value>,
        insts: Vec<Inst>,
        outputs: Vec<Value>,
    ) -> Result<Function, IrError> {
        let f = Function {
            name: name.into(),
            values,
            param_names: vec![None; params.len()],
            params,
            insts,
            outputs,
        };
        crate::verify::verify(&f)?;
        Ok(f)
    }

    /// Appends a parameter of type `ty`.
    pub fn add_param(&mut self, ty: TensorType) -> Value {
        self.add_named_param(ty, None)
    }

    /// Appends a parameter of type `ty` with an optional name (a named placeholder's:
    /// printed in the text form and compared by equality).
    pub fn add_named_param(&mut self, ty: TensorType, name: Option<String>) -> Value {
        let v = Value(self.values.len() as u32);
        self.values.push(ValueData {
            ty,
            def: ValueDef::Param(self.params.len()),
        });
        self.params.push(v);
        self.param_names.push(name);
        v
    }

    /// Appends a copy of each parameter of `src` (type and name), in order; returns the
    /// new parameters (for passes that rebuild a function).
    pub fn add_params_of(&mut self, src: &Function) -> Vec<Value> {
        (0..src.params.len())
            .map(|i| {
                let ty = src.ty(src.params[i]).clone();
                self.add_named_param(ty, src.param_names[i].clone())
            })
            .collect()
    }

    /// The name of parameter `i`, if it has one.
    pub fn param_name(&self, i: usize) -> Option<&str> {
        self.param_names.get(i)?.as_deref()
    }

    /// Appends an instruction, inferring its result types; an error if the operands are
    /// undefined or do not type-check.
    pub fn push(&mut self, op: Op, args: &[Value]) -> Result<Vec<Value>, IrError> {
        for &a in args {
            if a.index() >= self.values.len() {
                return Err(IrError::UndefinedValue {
                    inst: self.insts.len(),
                    op: op.name().to_string(),
                    value: a.0,
                });
            }
        }
        let tys: Vec<&TensorType> = args.iter().map(|&a| &self.values[a.index()].ty).collect();
        let results = infer_types(&op, &tys)?;
        Ok(self.push_unchecked(op, args.to_vec(), results))
    }

    /// [`Function::push`] for single-result ops.
    pub fn push1(&mut self, op: Op, args: &[Value]) -> Result<Value, IrError> {
        let r = self.push(op, args)?;
        if r.len() != 1 {
            return Err(IrError::Malformed(format!(
                "push1: op produces {} results",
                r.len()
            )));
        }
        Ok(r[0])
    }

    /// Appends an instruction with the given result types, unchecked (the parser and
    /// passes use this; [`crate::verify()`] checks the result).
    pub fn push_unchecked(
        &mut self,
        op: Op,
        args: Vec<Value>,
        results: Vec<TensorType>,
    ) -> Vec<Value> {
        let inst = self.insts.len();
        let mut out = Vec::with_capacity(results.len());
        for (i, ty) in results.into_iter().enumerate() {
            let v = Value(self.values.len() as u32);
            self.values.push(ValueData {
                ty,
                def: ValueDef::Inst { inst, result: i },
            });
            out.push(v);
        }
        self.insts.push(Inst {
            op,
            args,
            results: out.clone(),
        });
        out
    }

    /// Sets the function's outputs.
    pub fn set_outputs(&mut self, outputs: Vec<Value>) {
        self.outputs = outputs;
    }

    /// Parameters, in order.
    pub fn params(&self) -> &[Value] {
        &self.params
    }

    /// Instructions, in a topological order.
    pub fn insts(&self) -> &[Inst] {
        &self.insts
    }

    /// Outputs, in order.
    pub fn outputs(&self) -> &[Value] {
        &self.outputs
    }

    /// Number of values in the arena (parameters and instruction results).
    pub fn num_values(&self) -> usize {
        self.values.len()
    }

    /// The type of a value. Panics on a value of another function (an internal bug).
    pub fn ty(&self, v: Value) -> &TensorType {
        &self.values[v.index()].ty
    }

    /// The type of a value, or None if it is not in this function.
    pub fn try_ty(&self, v: Value) -> Option<&TensorType> {
        self.values.get(v.index()).map(|d| &d.ty)
    }

    /// How `v` is defined.
    pub fn def(&self, v: Value) -> ValueDef {
        self.values[v.index()].def
    }

    /// Types of the parameters, in order.
    pub fn param_types(&self) -> Vec<TensorType> {
        self.params.iter().map(|&p| self.ty(p).clone()).collect()
    }

    /// Types of the outputs, in order.
    pub fn output_types(&self) -> Vec<TensorType> {
        self.outputs.iter().map(|&p| self.ty(p).clone()).collect()
    }

    /// For each value, the number of instruction operands and outputs that use it.
    pub fn use_counts(&self) -> Vec<usize> {
        let mut n = vec![0; self.values.len()];
        for inst in &self.insts {
            for a in &inst.args {
                n[a.index()] += 1;
            }
        }
        for o in &self.outputs {
            n[o.index()] += 1;
        }
        n
    }

    /// Appends the instructions of `callee` to `self`, with `args` bound to its
    /// parameters; returns the values of its outputs.
    pub fn inline(&mut self, callee: &Function, args: &[Value]) -> Result<Vec<Value>, IrError> {
        if args.len() != callee.params.len() {
            return Err(IrError::Malformed(format!(
                "inline: {} arguments for {} parameters",
                args.len(),
                callee.params.len()
            )));
        }
        let mut map: HashMap<Value, Value> = HashMap::new();
        for (&p, &a) in callee.params.iter().zip(args) {
            if self.try_ty(a) != Some(callee.ty(p)) {
                return Err(IrError::Malformed(format!(
                    "inline: argument {a} does not have parameter type {}",
                    callee.ty(p)
                )));
            }
            map.insert(p, a);
        }
        for inst in &callee.insts {
            let args: Vec<Value> = inst.args.iter().map(|a| map[a]).collect();
            let tys = inst.results.iter().map(|&r| callee.ty(r).clone()).collect();
            let res = self.push_unchecked(inst.op.clone(), args, tys);
            for (&old, new) in inst.results.iter().zip(res) {
                map.insert(old, new);
            }
        }
        Ok(callee.outputs.iter().map(|o| map[o]).collect())
    }

    /// Structural equality up to renaming of values: same parameter types and names, the
    /// same instruction sequence (ops, operands, result types) and the same outputs.
    pub fn structurally_eq(&self, other: &Function) -> bool {
        if self.name != other.name
            || self.params.len() != other.params.len()
            || self.param_names != other.param_names
            || self.insts.len() != other.insts.len()
            || self.outputs.len() != other.outputs.len()
        {
            return false;
        }
        let mut map: HashMap<Value, Value> = HashMap::new();
        for (&a, &b) in self.params.iter().zip(&other.params) {
            if self.ty(a) != other.ty(b) {
                return false;
            }
            map.insert(a, b);
        }
        for (x, y) in self.insts.iter().zip(&other.insts) {
            if x.op != y.op || x.args.len() != y.args.len() || x.results.len() != y.results.len() {
                return false;
            }
            if x.args
                .iter()
                .zip(&y.args)
                .any(|(a, b)| map.get(a) != Some(b))
            {
                return false;
            }
            for (&a, &b) in x.results.iter().zip(&y.results) {
                if self.ty(a) != other.ty(b) {
                    return false;
                }
                map.insert(a, b);
            }
        }
        self.outputs
            .iter()
            .zip(&other.outputs)
            .all(|(a, b)| map.get(a) == Some(b))
    }
}

impl PartialEq for Function {
    /// Equality up to renaming of values (see [`Function::structurally_eq`]).
    fn eq(&self, other: &Self) -> bool {
        self.structurally_eq(other)
    }
}
