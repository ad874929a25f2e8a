//! `TracedTensor`: a value in a traced computation. Each is a node of an immutable,
//! reference-counted DAG (the trace); [`lower`] turns the part of the DAG that outputs
//! depend on into an [`ir::Function`](tenferro_ir::Function), and [`TracedTensor::call`]
//! lifts a function back into the trace, so IR → IR transforms compose.
//!
//! Operators cannot return `Result`, so a node whose op does not type-check records the
//! error; every node built on it carries the first error, and whoever consumes the value
//! (`compile`, `grad`, ...) reports it.

use crate::error::{Result, RuntimeError};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use tenferro_ir::{infer_types, DType, Element, Function, IrError, Op, Tensor, TensorType, Value};

pub(crate) enum NodeKind {
    /// A known value.
    Constant(Tensor),
    /// A placeholder whose value is given at run time.
    Input,
    /// An op applied to earlier nodes.
    Apply { op: Op, args: Vec<TracedTensor> },
}

pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) types: std::result::Result<Vec<TensorType>, RuntimeError>,
    /// The name of a placeholder made by [`TracedTensor::input_named`].
    pub(crate) name: Option<Arc<str>>,
}

impl Drop for Node {
    /// Frees the chain of nodes only this node keeps alive without recursion, so dropping
    /// a very deep trace cannot overflow the stack.
    fn drop(&mut self) {
        let NodeKind::Apply { args, .. } = &mut self.kind else {
            return;
        };
        let mut pending = std::mem::take(args);
        while let Some(t) = pending.pop() {
            if let Ok(mut node) = Arc::try_unwrap(t.node) {
                if let NodeKind::Apply { args, .. } = &mut node.kind {
                    pending.append(args);
                }
            }
        }
    }
}

/// A tensor in a traced computation: cheap to clone (a reference-counted node handle plus
/// a result index). Build it from data ([`TracedTensor::from_vec_col_major`]), as a
/// placeholder ([`TracedTensor::input`]), or by applying ops.
#[derive(Clone)]
pub struct TracedTensor {
    pub(crate) node: Arc<Node>,
    pub(crate) index: usize,
}

/// Identity of a traced value (its node and result index), usable as a map key while the
/// value is alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TracedId(usize, usize);

/// How a traced value is defined.
pub enum Definition<'a> {
    /// A constant with this value.
    Constant(&'a Tensor),
    /// A placeholder.
    Input,
    /// Result `index` of `op` applied to `args`.
    Apply {
        /// The op.
        op: &'a Op,
        /// Its operands.
        args: &'a [TracedTensor],
        /// Which of its results.
        index: usize,
    },
}

impl TracedTensor {
    fn from_node(
        kind: NodeKind,
        types: std::result::Result<Vec<TensorType>, RuntimeError>,
    ) -> Vec<TracedTensor> {
        let n = match &types {
            Ok(t) => t.len(),
            Err(_) => match &kind {
                NodeKind::Apply { op, .. } => op.num_results().max(1),
                _ => 1,
            },
        };
        let node = Arc::new(Node {
            kind,
            types,
            name: None,
        });
        (0..n)
            .map(|index| TracedTensor {
                node: node.clone(),
                index,
            })
            .collect()
    }

    /// A constant tensor from column-major data. A length that does not match `shape` is
    /// recorded as an error and reported by whatever consumes the value.
    pub fn from_vec_col_major<T: Element>(shape: Vec<usize>, data: Vec<T>) -> TracedTensor {
        match Tensor::from_vec_col_major(shape.clone(), data) {
            Ok(t) => TracedTensor::from_tensor(t),
            Err(e) => TracedTensor::from_node(
                NodeKind::Constant(Tensor::zeros(&TensorType::new(T::DTYPE, vec![0]))),
                Err(RuntimeError::Ir(IrError::invalid(
                    "from_vec_col_major",
                    e.to_string(),
                ))),
            )
            .remove(0),
        }
    }

    /// A constant tensor.
    pub fn from_tensor(t: Tensor) -> TracedTensor {
        let ty = t.ty();
        TracedTensor::from_node(NodeKind::Constant(t), Ok(vec![ty])).remove(0)
    }

    /// A constant from a slice in row-major (NumPy) order, like `jnp.array(data)` of
    /// that shape: [`Tensor::from_slice`] as a traced constant; the error names
    /// `Tensor::from_slice`'s data length check.
    ///
    /// ```
    /// # use tenferro_runtime::TracedTensor;
    /// let m = TracedTensor::from_slice(&[1.0_f64, 2.0, 3.0, 4.0], &[2, 2])?; // [[1, 2], [3, 4]]
    /// assert_eq!(m.shape()?, [2, 2]);
    /// assert!(TracedTensor::from_slice(&[1.0_f64], &[2]).is_err());
    /// # Ok::<(), tenferro_runtime::RuntimeError>(())
    /// ```
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<TracedTensor> {
        Ok(TracedTensor::from_tensor(Tensor::from_slice(data, shape)?))
    }

    /// A constant whose element at `[i, j, ..]` is `f([i, j, ..])`: [`Tensor::from_fn`]
    /// as a traced constant (its errors, for a shape too large to allocate).
    ///
    /// ```
    /// # use tenferro_runtime::TracedTensor;
    /// let eye = TracedTensor::from_fn([3, 3], |[i, j]| f64::from(i == j))?;
    /// assert_eq!(eye.shape()?, [3, 3]);
    /// # Ok::<(), tenferro_runtime::RuntimeError>(())
    /// ```
    pub fn from_fn<T: Element, const N: usize>(
        shape: [usize; N],
        f: impl FnMut([usize; N]) -> T,
    ) -> Result<TracedTensor> {
        Ok(TracedTensor::from_tensor(Tensor::from_fn(shape, f)?))
    }

    /// A rank-0 constant.
    pub fn scalar<T: Element>(v: T) -> TracedTensor {
        TracedTensor::from_tensor(Tensor::scalar(v))
    }

    /// A constant of type `ty` with every element equal to `v` (converted to the dtype).
    /// A shape whose element count overflows, or a buffer the machine cannot allocate, is
    /// recorded as an error (naming `full`, and the bytes) and reported by whatever
    /// consumes the value.
    #[track_caller]
    pub fn full(ty: &TensorType, v: f64) -> TracedTensor {
        TracedTensor::full_for("full", ty, v)
    }

    /// Zeros of type `ty`; errors as [`TracedTensor::full`], naming `zeros`.
    #[track_caller]
    pub fn zeros(ty: &TensorType) -> TracedTensor {
        TracedTensor::full_for("zeros", ty, 0.0)
    }

    #[track_caller]
    fn full_for(op: &str, ty: &TensorType, v: f64) -> TracedTensor {
        match Tensor::try_full_for(op, ty, v) {
            Ok(t) => TracedTensor::from_tensor(t),
            Err(e) => TracedTensor::from_error(RuntimeError::Ir(e)),
        }
    }

    /// A placeholder of the given dtype and shape; its value is given at run time
    /// (`GraphExecutor::run_with_inputs`), so one compiled program runs on many values.
    pub fn input(dtype: DType, shape: &[usize]) -> TracedTensor {
        TracedTensor::from_node(
            NodeKind::Input,
            Ok(vec![TensorType::new(dtype, shape.to_vec())]),
        )
        .remove(0)
    }

    /// A named placeholder: as [`TracedTensor::input`], and the name appears in the
    /// value's `Debug` form and in input-binding errors (an unbound or mistyped input).
    pub fn input_named(name: impl Into<String>, dtype: DType, shape: &[usize]) -> TracedTensor {
        let name: String = name.into();
        TracedTensor {
            node: Arc::new(Node {
                kind: NodeKind::Input,
                types: Ok(vec![TensorType::new(dtype, shape.to_vec())]),
                name: Some(name.into()),
            }),
            index: 0,
        }
    }

    /// The name of a placeholder made by [`TracedTensor::input_named`].
    pub fn name(&self) -> Option<&str> {
        self.node.name.as_deref()
    }

    /// This value's type `ty` as messages show it: after the name of a named placeholder
    /// (`` `x` f64[3] ``), else alone.
    pub(crate) fn described(&self, ty: &TensorType) -> String {
        match self.name() {
            Some(n) => format!("`{n}` {ty}"),
            None => ty.to_string(),
        }
    }

    /// Applies `op` to `args`, returning one traced value per result. If the operands do
    /// not type-check (or carry an earlier error) every result records the error.
    #[track_caller]
    pub fn apply(op: Op, args: &[&TracedTensor]) -> Vec<TracedTensor> {
        let at = std::panic::Location::caller();
        let types = (|| {
            let mut tys = Vec::with_capacity(args.len());
            for a in args {
                tys.push(a.ty()?);
            }
            let refs: Vec<&TensorType> = tys.iter().collect();
            infer_types(&op, &refs).map_err(|e| RuntimeError::from(e).located(at))
        })();
        let args = args.iter().map(|&a| a.clone()).collect();
        TracedTensor::from_node(NodeKind::Apply { op, args }, types)
    }

    /// [`TracedTensor::apply`] for single-result ops.
    #[track_caller]
    pub fn apply1(op: Op, args: &[&TracedTensor]) -> TracedTensor {
        TracedTensor::apply(op, args).remove(0)
    }

    /// A value that carries `err` (for extension APIs that detect a problem while tracing
    /// but must return a value). An invalid-op error without a location, or located inside
    /// this crate, is located at the caller.
    #[track_caller]
    pub fn from_error(err: RuntimeError) -> TracedTensor {
        let err = err.at_caller(file!(), std::panic::Location::caller());
        TracedTensor::from_node(NodeKind::Input, Err(err)).remove(0)
    }

    /// The value's static type, or the error recorded while tracing it.
    pub fn ty(&self) -> Result<TensorType> {
        match &self.node.types {
            Ok(t) => Ok(t[self.index].clone()),
            Err(e) => Err(e.clone()),
        }
    }

    /// The value's shape, or the error recorded while tracing it.
    pub fn shape(&self) -> Result<Vec<usize>> {
        self.ty().map(|t| t.shape)
    }

    /// The value's dtype, or the error recorded while tracing it.
    pub fn dtype(&self) -> Result<DType> {
        self.ty().map(|t| t.dtype)
    }

    /// The error recorded while tracing this value, if any.
    pub fn error(&self) -> Option<RuntimeError> {
        self.node.types.as_ref().err().cloned()
    }

    /// Identity of this value.
    pub fn id(&self) -> TracedId {
        TracedId(Arc::as_ptr(&self.node) as *const u8 as usize, self.index)
    }

    /// `true` if both handles denote the same traced value.
    pub fn same_as(&self, other: &TracedTensor) -> bool {
        Arc::ptr_eq(&self.node, &other.node) && self.index == other.index
    }

    /// How this value is defined.
    pub fn definition(&self) -> Definition<'_> {
        match &self.node.kind {
            NodeKind::Constant(t) => Definition::Constant(t),
            NodeKind::Input => Definition::Input,
            NodeKind::Apply { op, args } => Definition::Apply {
                op,
                args,
                index: self.index,
            },
        }
    }

    /// The constant's value, if this is a constant.
    pub fn constant_value(&self) -> Option<&Tensor> {
        match &self.node.kind {
            NodeKind::Constant(t) if self.node.types.is_ok() => Some(t),
            _ => None,
        }
    }

    /// `true` for placeholders made by [`TracedTensor::input`].
    pub fn is_input(&self) -> bool {
        matches!(self.node.kind, NodeKind::Input) && self.node.types.is_ok()
    }

    /// Applies `f` to `args`: inlines its instructions into the trace and returns its
    /// outputs (the inverse of [`lower`]).
    pub fn call(f: &Function, args: &[&TracedTensor]) -> Result<Vec<TracedTensor>> {
        if args.len() != f.params().len() {
            return Err(RuntimeError::Invalid(format!(
                "call of `{}`: {} arguments for {} parameters",
                f.name,
                args.len(),
                f.params().len()
            )));
        }
        let mut env: Vec<Option<TracedTensor>> = vec![None; f.num_values()];
        for (&p, &a) in f.params().iter().zip(args) {
            let ty = a.ty()?;
            if &ty != f.ty(p) {
                return Err(RuntimeError::Invalid(format!(
                    "call of `{}`: argument of type {ty} for parameter {p} of type {}",
                    f.name,
                    f.ty(p)
                )));
            }
            env[p.index()] = Some(a.clone());
        }
        for inst in f.insts() {
            let mut targs = Vec::with_capacity(inst.args.len());
            for a in &inst.args {
                targs.push(env[a.index()].clone().ok_or_else(|| {
                    RuntimeError::Invalid(format!(
                        "call of `{}`: {a} used before definition",
                        f.name
                    ))
                })?);
            }
            let refs: Vec<&TracedTensor> = targs.iter().collect();
            let res = match &inst.op {
                Op::Constant(t) => vec![TracedTensor::from_tensor(t.clone())],
                op => TracedTensor::apply(op.clone(), &refs),
            };
            for (&r, t) in inst.results.iter().zip(res) {
                if let Some(e) = t.error() {
                    return Err(e);
                }
                env[r.index()] = Some(t);
            }
        }
        f.outputs()
            .iter()
            .map(|o| {
                env[o.index()].clone().ok_or_else(|| {
                    RuntimeError::Invalid(format!("call of `{}`: output {o} undefined", f.name))
                })
            })
            .collect()
    }
}

impl From<Tensor> for TracedTensor {
    /// A constant ([`TracedTensor::from_tensor`]).
    fn from(t: Tensor) -> TracedTensor {
        TracedTensor::from_tensor(t)
    }
}

impl fmt::Debug for TracedTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.node.kind {
            NodeKind::Constant(_) => "constant".to_string(),
            NodeKind::Input => match &self.node.name {
                Some(n) => format!("input `{n}`"),
                None => "input".to_string(),
            },
            NodeKind::Apply { op, .. } => op.name().to_string(),
        };
        match &self.node.types {
            Ok(t) => write!(f, "TracedTensor({what}: {})", t[self.index]),
            Err(e) => write!(f, "TracedTensor({what}: error: {e})"),
        }
    }
}

/// What [`lower`] turns into function parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LowerMode {
    /// Placeholders become parameters; constants become `constant` instructions.
    Program,
    /// The `cut` values become the first parameters; every other value that does not
    /// depend on a cut value (constants, placeholders, and whole subgraphs) becomes a
    /// further parameter, so the function holds only what depends on the cut. This is how
    /// autodiff isolates the part of a computation it differentiates.
    Dependent,
}

/// A function lowered from a trace, and the traced value bound to each of its parameters.
pub struct Lowered {
    /// The lowered function.
    pub function: Function,
    /// `params[i]` is the traced value of the function's parameter `i`.
    pub params: Vec<TracedTensor>,
}

/// Lowers the part of the trace that `outputs` depend on into a function whose outputs are
/// `outputs`. `cut` values become the first parameters (in order) whatever defines them.
/// Errors recorded while tracing are returned here.
pub fn lower(outputs: &[&TracedTensor], cut: &[&TracedTensor], mode: LowerMode) -> Result<Lowered> {
    let mut l = Lowering {
        function: Function::new("main"),
        params: Vec::new(),
        map: HashMap::new(),
        depends: HashMap::new(),
        mode,
    };
    for &c in cut {
        let ty = c.ty()?;
        if l.map.contains_key(&c.id()) {
            return Err(RuntimeError::Invalid(
                "lower: a value is listed twice as a cut".into(),
            ));
        }
        let v = l.function.add_named_param(ty, c.name().map(String::from));
        l.map.insert(c.id(), v);
        l.depends.insert(c.id(), true);
        l.params.push(c.clone());
    }
    let mut outs = Vec::with_capacity(outputs.len());
    for &o in outputs {
        if let Some(e) = o.error() {
            return Err(e);
        }
        if mode == LowerMode::Dependent {
            l.mark_dependence(o);
        }
        outs.push(l.lower_value(o)?);
    }
    l.function.set_outputs(outs);
    Ok(Lowered {
        function: l.function,
        params: l.params,
    })
}

struct Lowering {
    function: Function,
    params: Vec<TracedTensor>,
    map: HashMap<TracedId, Value>,
    /// In `Dependent` mode: whether a node depends on a cut value (keyed by result 0 of its node).
    depends: HashMap<TracedId, bool>,
    mode: LowerMode,
}

impl Lowering {
    fn node_key(t: &TracedTensor) -> TracedId {
        TracedId(Arc::as_ptr(&t.node) as *const u8 as usize, usize::MAX)
    }

    /// Computes, without recursion, whether each node reachable from `root` depends on a cut.
    fn mark_dependence(&mut self, root: &TracedTensor) {
        let mut stack: Vec<(TracedTensor, bool)> = vec![(root.clone(), false)];
        while let Some((t, expanded)) = stack.pop() {
            let key = Self::node_key(&t);
            if self.depends.contains_key(&t.id()) || self.depends.contains_key(&key) {
                continue;
            }
            match &t.node.kind {
                NodeKind::Apply { args, .. } => {
                    if expanded {
                        let d = args.iter().any(|a| {
                            self.depends.get(&a.id()).copied().unwrap_or(false)
                                || self
                                    .depends
                                    .get(&Self::node_key(a))
                                    .copied()
                                    .unwrap_or(false)
                        });
                        self.depends.insert(key, d);
                    } else {
                        stack.push((t.clone(), true));
                        for a in args {
                            stack.push((a.clone(), false));
                        }
                    }
                }
                _ => {
                    self.depends.insert(key, false);
                }
            }
        }
    }

    fn is_dependent(&self, t: &TracedTensor) -> bool {
        self.depends.get(&t.id()).copied().unwrap_or(false)
            || self
                .depends
                .get(&Self::node_key(t))
                .copied()
                .unwrap_or(false)
    }

    fn param_for(&mut self, t: &TracedTensor) -> Result<Value> {
        let v = self
            .function
            .add_named_param(t.ty()?, t.name().map(String::from));
        self.map.insert(t.id(), v);
        self.params.push(t.clone());
        Ok(v)
    }

    /// Lowers `root` and everything it needs, iteratively (traces can be deep).
    fn lower_value(&mut self, root: &TracedTensor) -> Result<Value> {
        let mut stack: Vec<(TracedTensor, bool)> = vec![(root.clone(), false)];
        while let Some((t, expanded)) = stack.pop() {
            if self.map.contains_key(&t.id()) {
                continue;
            }
            if let Some(e) = t.error() {
                return Err(e);
            }
            if self.mode == LowerMode::Dependent && !self.is_dependent(&t) {
                self.param_for(&t)?;
                continue;
            }
            match &t.node.kind {
                NodeKind::Input => {
                    self.param_for(&t)?;
                }
                NodeKind::Constant(c) => {
                    let v = self.function.push1(Op::Constant(c.clone()), &[])?;
                    self.map.insert(t.id(), v);
                }
                NodeKind::Apply { op, args } => {
                    if expanded {
                        let vals: Vec<Value> = args.iter().map(|a| self.map[&a.id()]).collect();
                        let tys = t.node.types.clone()?;
                        let res = self.function.push_unchecked(op.clone(), vals, tys);
                        for (i, v) in res.into_iter().enumerate() {
                            self.map.insert(
                                TracedTensor {
                                    node: t.node.clone(),
                                    index: i,
                                }
                                .id(),
                                v,
                            );
                        }
                    } else {
                        stack.push((t.clone(), true));
                        for a in args.iter().rev() {
                            if !self.map.contains_key(&a.id()) {
                                stack.push((a.clone(), false));
                            }
                        }
                    }
                }
            }
        }
        Ok(self.map[&root.id()])
    }
}
