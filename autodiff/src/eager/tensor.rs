//! [`EagerTensor`]: a computed value with an optional place in the autograd graph; leaf
//! gradients, `backward` and `backward_with`.

use super::context::EagerContext;
use super::graph::{backward, Node, NodeRef};
use crate::error::{AdError, Result};
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use tenferro_ir::{DType, Element, Tensor, TensorType};

/// A tensor whose value is already computed. Ops on it run at once on its context's
/// backend and return `Result` (an invalid op is reported immediately, naming the op and
/// the operand types).
///
/// A tensor is *tracked* when it is a leaf marked with [`EagerTensor::requires_grad`] or
/// was computed, with grad mode on, from a tracked tensor. Clones share the node: a clone
/// of a leaf sees the same [`EagerTensor::grad`].
#[derive(Clone)]
pub struct EagerTensor {
    pub(crate) ctx: EagerContext,
    pub(crate) value: Tensor,
    pub(crate) node: Option<NodeRef>,
}

impl fmt::Debug for EagerTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        EagerTensor { ctx, value, node }
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

    /// The value (cheap: the buffer is shared).
    pub fn value(&self) -> Tensor {
        self.value.clone()
    }

    /// The value, borrowed.
    pub fn tensor(&self) -> &Tensor {
        &self.value
    }

    /// A copy of the elements in column-major order; an error if `T` is not the dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.value.to_vec().map_err(|e| AdError::Runtime(e.into()))
    }

    /// The value's type.
    pub fn ty(&self) -> TensorType {
        self.value.ty()
    }

    /// The value's shape.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The value's dtype.
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
    /// integer or bool dtype are rejected by `backward` (they have no derivative).
    pub fn requires_grad(self, on: bool) -> EagerTensor {
        if !on {
            return self.detach();
        }
        if self.is_leaf() {
            return self;
        }
        EagerTensor::leaf(&self.ctx, self.value)
    }

    /// The same value, untracked.
    pub fn detach(&self) -> EagerTensor {
        EagerTensor::new(self.ctx.clone(), self.value.clone(), None)
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
    /// not tracked, an op without AD rules in the context.
    pub fn backward(&self) -> Result<()> {
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
        backward(&self.ctx, root, seed)
    }
}
