//! Eager mode: [`EagerTensor`]s compute at once on a backend, and record what they did so
//! that `loss.backward()` differentiates it with the same rules as traced mode.
//!
//! ## How an op runs
//!
//! Every eager op is the traced op applied to placeholders of its operands' types, lowered
//! to a tiny [`tenferro_ir::Function`], optimized (O1) and prepared on the backend once.
//! The prepared program is cached in the [`EagerContext`] by [`OpKey`] (the op and its
//! attributes) and the operand types, so running the op again on values of the same types
//! costs a hash lookup and the kernel. Broadcasting, dtype promotion and the error
//! messages are therefore exactly those of `TracedTensor`; eager methods report them at
//! once, and operators (which return a tensor, not a `Result`) carry them, located at the
//! operator, to the next fallible use (see [`EagerTensor`]).
//!
//! ## Modules
//!
//! Dependencies run one way: `fxhash` and `graph` (the recorded program) import no other
//! eager module; `context` (backend and caches) imports `graph`; `tensor` (values and the
//! op path) imports both; the op vocabularies and `transforms` sit on top.
//!
//! ## The tape
//!
//! When grad mode is on (see [`EagerContext::no_grad`]) and an operand is tracked (a leaf
//! made with [`EagerTensor::requires_grad`], or the result of a recorded op), the result
//! records a node: the op's cached function and the operands (their values and nodes).
//! There is no global tape: the graph lives in the tensors and is freed with them.
//!
//! ## Backward
//!
//! [`EagerTensor::backward`] walks the graph from the loss and differentiates it with the
//! autodiff crate's reverse mode and the context's [`crate::AdContext`] rules, reading the
//! forward values the nodes hold instead of computing them again: each recorded node keeps
//! its operands and results (buffers shared with the tensors, so little extra memory),
//! each node's function is linearized at its recorded operands, the chained linear map is
//! transposed, and every forward result the derivative reads is bound to the recorded
//! value. The backward program thus holds only the derivative's instructions (for a node
//! whose rule needs a value internal to its function, also that node's instructions up
//! to it). It runs once and its cotangents are added into each leaf's
//! [`EagerTensor::grad`]. The program is derived, compiled and cached by the recorded
//! graph's structure (the identity of each node's cached function and the wiring), so the
//! next backward of a computation of the same shape only executes. The graph is kept
//! after backward (it lives in the tensors), so backward can run again and accumulates.
//! Extension ops differentiate exactly when the context's rules cover them; a missing
//! rule is the same [`crate::AdError::MissingRule`] as in traced mode.

//! ## Functional transforms
//!
//! [`EagerContext::grad`], [`EagerContext::vjp`] and [`EagerContext::jvp`] (and their
//! `_many` forms) take a closure over eager tensors. They run it on fresh leaves, derive
//! the transformed program from what it recorded, and run it. When their inputs are
//! themselves tracked, the results are recorded as ops (the transformed program applied
//! to the inputs), so transforms compose: `ctx.jvp(|x| ctx.grad(f, x), &x, &v)` is a
//! Hessian-vector product, and `backward()` reaches through a `grad` too. A recorded
//! result must be a program of the inputs alone, so it recomputes the forward values it
//! needs; an unrecorded `grad` or `vjp` reads the recorded ones, as `backward` does.
//!
//! ## Costs and limits
//!
//! An [`EagerContext`] and its tensors are single-threaded (`Rc`); contexts are
//! independent (own kernels, rules, caches, grad mode). Caches are bounded and cleared
//! when full.

mod context;
mod fxhash;
mod graph;
mod ops;
mod sorting;
mod structural;
mod tensor;
#[cfg(test)]
mod tests;
mod transforms;
mod vocab;

pub use context::{EagerContext, EagerStats, NoGradGuard, OpKey};
pub use tensor::EagerTensor;
