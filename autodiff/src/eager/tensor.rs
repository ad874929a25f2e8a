//! [`EagerTensor`]: a computed value with an optional place in the autograd graph; leaf
//! gradients, `backward` and `backward_with`; and the path every eager op takes
//! ([`EagerContext::apply_traced`]) with the constructors of tensors in a context. Imports
//! `graph` (the nodes it holds) and `context` (where its ops are cached and run).

use super::context::{EagerContext, OpKey};
use super::graph::{accumulate, bind, leaf_value, walk, Mode, Node, NodeRef, Wrt};
use crate::error::{AdError, Result};
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use tenferro_ir::{DType, Element, Op, Tensor, TensorType};
use tenferro_runtime::{RuntimeError, TracedTensor};

/// A tensor whose value is already computed. Methods run at once on its context's backend
/// and return `Result` (an invalid op is reported immediately, naming the op and the
/// operand types).
///
/// Operators (`&a + &b`, `&a * 2.0`, `-&a`, ...) return an `EagerTensor` instead: when
/// the op is invalid, the result *carries* the error, located at the operator's source
/// line, and the next fallible call that uses it (a method, [`EagerTensor::backward`],
/// [`EagerTensor::value`], a transform) reports it, as traced mode reports a recorded
/// error at compile time. An op on a value that carries an error runs nothing and carries
/// the first error on. [`EagerTensor::error`] asks explicitly.
///
/// A tensor is *tracked* when it is a leaf marked with [`EagerTensor::requires_grad`] or
/// was computed, with grad mode on, from a tracked tensor. Clones share the node: a clone
/// of a leaf sees the same [`EagerTensor::grad`].
#[derive(Clone)]
pub struct EagerTensor {
    pub(crate) ctx: EagerContext,
    pub(crate) value: Tensor,
    pub(crate) node: Option<NodeRef>,
    /// The error of the op that should have made this value (its `value` is then an
    /// empty placeholder).
    error: Option<Rc<AdError>>,
}

impl fmt::Debug for EagerTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = &self.error {
            return write!(f, "EagerTensor(error: {e})");
        }
        let kind = match &self.node {
            None => "untracked",
            Some(r) if matches!(*r.node, Node::Leaf { .. }) => "leaf",
            Some(_) => "recorded",
        };
        write!(
            f,
            "EagerTensor({}, {kind}: {:?})",
            self.value.ty(),
            self.value.data()
        )
    }
}

impl EagerTensor {
    pub(crate) fn new(ctx: EagerContext, value: Tensor, node: Option<NodeRef>) -> EagerTensor {
        EagerTensor {
            ctx,
            value,
            node,
            error: None,
        }
    }

    /// A value of `ctx` that carries `err` (for extension APIs that return a tensor, like
    /// operators, and detect a problem). Its type is the placeholder's, `f64[0]`.
    pub fn from_error(ctx: &EagerContext, err: AdError) -> EagerTensor {
        EagerTensor {
            ctx: ctx.clone(),
            value: Tensor::zeros(&TensorType::new(DType::F64, vec![0])),
            node: None,
            error: Some(Rc::new(err)),
        }
    }

    /// The error this value carries (from an operator whose op was invalid, or whose
    /// operand carried one), if any; as `TracedTensor::error`.
    pub fn error(&self) -> Option<AdError> {
        self.error.as_deref().cloned()
    }

    /// `Err` with the carried error, if any (every fallible use of a value starts here).
    pub(crate) fn check(&self) -> Result<()> {
        match &self.error {
            Some(e) => Err((**e).clone()),
            None => Ok(()),
        }
    }

    /// A new leaf holding `value` (in `ctx`), tracked with an empty gradient.
    pub(crate) fn leaf(ctx: &EagerContext, value: Tensor) -> EagerTensor {
        let node = Rc::new(Node::Leaf {
            value: value.clone(),
            grad: RefCell::new(None),
        });
        EagerTensor::new(ctx.clone(), value, Some(NodeRef { node, index: 0 }))
    }

    /// The context this tensor belongs to.
    pub fn context(&self) -> &EagerContext {
        &self.ctx
    }

    /// The value (cheap: the buffer is shared); the carried error, if any.
    pub fn value(&self) -> Result<Tensor> {
        self.check()?;
        Ok(self.value.clone())
    }

    /// The value, borrowed; the carried error, if any.
    pub fn tensor(&self) -> Result<&Tensor> {
        self.check()?;
        Ok(&self.value)
    }

    /// A copy of the elements in column-major order; an error if `T` is not the dtype, or
    /// the carried error.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.check()?;
        self.value.to_vec().map_err(|e| AdError::Runtime(e.into()))
    }

    /// The value's type (`f64[0]` for a value that carries an error).
    pub fn ty(&self) -> TensorType {
        self.value.ty()
    }

    /// The value's shape (`[0]` for a value that carries an error).
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The value's dtype (f64 for a value that carries an error).
    pub fn dtype(&self) -> DType {
        self.value.dtype()
    }

    /// `true` if ops on this tensor are recorded for differentiation (PyTorch's
    /// `requires_grad` attribute).
    pub fn is_tracked(&self) -> bool {
        self.node.is_some()
    }

    /// `true` for a tracked leaf (made by `requires_grad(true)`).
    pub fn is_leaf(&self) -> bool {
        matches!(&self.node, Some(r) if matches!(*r.node, Node::Leaf { .. }))
    }

    /// `requires_grad(true)` makes this value a new leaf whose gradient `backward`
    /// accumulates; `requires_grad(false)` is [`EagerTensor::detach`]. On a recorded
    /// (non-leaf) tensor, `true` also starts a new leaf: gradients stop there. Leaves of
    /// integer or bool dtype are rejected by `backward` (they have no derivative). A value
    /// that carries an error keeps it.
    pub fn requires_grad(self, on: bool) -> EagerTensor {
        if !on {
            return self.detach();
        }
        if self.is_leaf() || self.error.is_some() {
            return self;
        }
        EagerTensor::leaf(&self.ctx, self.value)
    }

    /// The same value, untracked (or the same carried error).
    pub fn detach(&self) -> EagerTensor {
        EagerTensor {
            node: None,
            ..self.clone()
        }
    }

    /// The gradient accumulated in this leaf by `backward`, if any (`None` for tensors
    /// that are not leaves, and for leaves before the first backward or after
    /// [`EagerTensor::zero_grad`]).
    pub fn grad(&self) -> Option<Tensor> {
        match &self.node {
            Some(r) => match &*r.node {
                Node::Leaf { grad, .. } => grad.borrow().clone(),
                _ => None,
            },
            None => None,
        }
    }

    /// Clears this leaf's gradient (PyTorch's `x.grad = None`); a no-op for other tensors.
    pub fn zero_grad(&self) {
        if let Some(r) = &self.node {
            if let Node::Leaf { grad, .. } = &*r.node {
                *grad.borrow_mut() = None;
            }
        }
    }

    /// Back-propagates from this scalar (rank 0 or one element): adds `d self / d leaf`
    /// to the gradient of every tracked leaf it depends on. The gradient program is
    /// derived and compiled once per structure of the recorded computation and cached.
    /// Errors: a non-scalar tensor (use [`EagerTensor::backward_with`]), a tensor that is
    /// not tracked, an op without AD rules in the context, the carried error.
    pub fn backward(&self) -> Result<()> {
        self.check()?;
        let ty = self.ty();
        if ty.numel() != 1 {
            return Err(AdError::BadArgument {
                transform: "backward",
                message: format!(
                    "the loss must be a scalar (rank 0 or one element), got {ty}; use backward_with(cotangent) for a non-scalar output"
                ),
            });
        }
        let seed = Tensor::full(&ty, 1.0);
        self.backward_impl(seed)
    }

    /// Vector-Jacobian product into the leaves: adds `cotangentᵀ · d self / d leaf`
    /// (under the real inner product, as traced `vjp`) to every leaf's gradient.
    /// `cotangent` must have this tensor's type.
    pub fn backward_with(&self, cotangent: &EagerTensor) -> Result<()> {
        self.check()?;
        cotangent.check()?;
        let (yt, ct) = (self.ty(), cotangent.ty());
        if yt != ct {
            return Err(AdError::BadArgument {
                transform: "backward_with",
                message: format!(
                    "cotangent has type {ct} but the output has type {yt}; they must be equal"
                ),
            });
        }
        self.backward_impl(cotangent.value.clone())
    }

    fn backward_impl(&self, seed: Tensor) -> Result<()> {
        let Some(root) = &self.node else {
            return Err(AdError::NotDifferentiable(format!(
                "backward: this {} tensor is not tracked: no leaf it depends on has requires_grad(true), or it was computed under no_grad",
                self.ty()
            )));
        };
        let w = walk(root, Wrt::AllLeaves, Mode::Backward);
        let t = self.ctx.transform_for(&w)?;
        let wrt: Vec<Tensor> = w.wrt.iter().map(|l| leaf_value(l).clone()).collect();
        let grads = self
            .ctx
            .run_transform(&t, &bind(&t.derived, &w, &wrt, &[seed])?)?;
        accumulate(&w.wrt, grads)
    }
}

impl EagerContext {
    /// An untracked tensor holding `value`.
    pub fn from_tensor(&self, value: Tensor) -> EagerTensor {
        EagerTensor::new(self.clone(), value, None)
    }

    /// A tensor from column-major data; an error if the length does not match `shape`.
    pub fn from_vec_col_major<T: Element>(
        &self,
        shape: Vec<usize>,
        data: Vec<T>,
    ) -> Result<EagerTensor> {
        let t = Tensor::from_vec_col_major(shape, data)
            .map_err(|e| RuntimeError::invalid_op("from_vec_col_major", e.to_string()))?;
        Ok(self.from_tensor(t))
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(&self, v: T) -> EagerTensor {
        self.from_tensor(Tensor::scalar(v))
    }

    /// A tensor of type `ty` with every element `v` (converted to the dtype); an error
    /// naming `full` when the element count overflows or the machine cannot provide the
    /// bytes.
    pub fn full(&self, ty: &TensorType, v: f64) -> Result<EagerTensor> {
        self.full_for("full", ty, v)
    }

    /// Zeros of type `ty`; errors as [`EagerContext::full`], naming `zeros`.
    pub fn zeros(&self, ty: &TensorType) -> Result<EagerTensor> {
        self.full_for("zeros", ty, 0.0)
    }

    fn full_for(&self, op: &str, ty: &TensorType, v: f64) -> Result<EagerTensor> {
        let t = Tensor::try_full_for(op, ty, v).map_err(RuntimeError::Ir)?;
        Ok(self.from_tensor(t))
    }

    /// Indices along axis `dim` of a tensor of type `dtype[shape]`.
    pub fn iota(&self, dtype: DType, shape: &[usize], dim: usize) -> Result<EagerTensor> {
        let op = Op::Iota {
            ty: TensorType::new(dtype, shape.to_vec()),
            dim,
        };
        self.apply_traced1(OpKey::Ir(op), &[], |_| {
            Ok(vec![TracedTensor::iota(dtype, shape, dim)?])
        })
    }

    /// Runs an op eagerly: `trace` builds the op on placeholders of the operands' types
    /// (it is called only when `key` and those types are not in the cache yet); the
    /// program it traces is lowered, optimized, prepared, cached and run on the operands'
    /// values. Results are recorded on the tape when grad mode is on and an operand is
    /// tracked. An operand that carries an error is that error, and nothing runs. This is
    /// how every eager method is built, and how extension crates add their own
    /// (`tenferro_linalg::EagerTensorLinalgExt`).
    pub fn apply_traced<F>(
        &self,
        key: OpKey,
        args: &[&EagerTensor],
        trace: F,
    ) -> Result<Vec<EagerTensor>>
    where
        F: FnOnce(&[TracedTensor]) -> tenferro_runtime::Result<Vec<TracedTensor>>,
    {
        for a in args {
            a.check()?;
        }
        for (i, a) in args.iter().enumerate() {
            if !Rc::ptr_eq(&a.ctx.shared, &self.shared) {
                return Err(RuntimeError::invalid_op(
                    key.name(),
                    format!("operand #{i} ({}) belongs to another EagerContext", a.ty()),
                )
                .into());
            }
        }
        let inputs: Vec<Tensor> = args.iter().map(|a| a.value.clone()).collect();
        // Eager ops report a tracing error at once, at the user's call: the location the
        // traced op recorded is this crate's, so it is dropped.
        let op = self.cached_op(key, &inputs, trace).map_err(|e| match e {
            AdError::Runtime(r) => AdError::Runtime(r.unlocated()),
            other => other,
        })?;
        let outs = self.run_op(&op, &inputs)?;
        let node = if self.is_grad_enabled() && args.iter().any(|a| a.node.is_some()) {
            Some(Rc::new(Node::Apply {
                func: op.function.clone(),
                values: inputs,
                outputs: outs.clone(),
                args: args.iter().map(|a| a.node.clone()).collect(),
            }))
        } else {
            None
        };
        Ok(outs
            .into_iter()
            .enumerate()
            .map(|(index, v)| {
                let r = node.as_ref().map(|n| NodeRef {
                    node: n.clone(),
                    index,
                });
                EagerTensor::new(self.clone(), v, r)
            })
            .collect())
    }

    /// [`EagerContext::apply_traced`] for ops with one result.
    pub fn apply_traced1<F>(
        &self,
        key: OpKey,
        args: &[&EagerTensor],
        trace: F,
    ) -> Result<EagerTensor>
    where
        F: FnOnce(&[TracedTensor]) -> tenferro_runtime::Result<Vec<TracedTensor>>,
    {
        let mut v = self.apply_traced(key, args, trace)?;
        if v.len() != 1 {
            return Err(AdError::BadArgument {
                transform: "apply_traced1",
                message: format!("the op has {} results; use apply_traced", v.len()),
            });
        }
        Ok(v.remove(0))
    }
}
