//! # tenferro
//!
//! Differentiable tensor programs in Rust: trace a computation on [`TracedTensor`]s,
//! transform it (`grad`, `vjp`, `jvp`, composed to any order), compile it through an
//! inspectable pass pipeline, and run it on the CPU backend.
//!
//! This facade re-exports the workspace crates:
//! [`ir`] (tenferro-ir), [`passes`] (tenferro-passes), [`runtime`] (tenferro-runtime),
//! [`ad`] (tenferro-ad), [`cpu`] (tenferro-cpu) and [`linalg`] (tenferro-linalg).
//!
//! Programs start with `use tenferro::prelude::*;` ([`prelude`]): the tensor types and the
//! function-style [`jit`], [`grad`], [`grad_params`], [`jvp`], [`eval`] and [`compile`]
//! ([`functional`]), with every extension's kernels and AD rules wired in.

// The README's code blocks run as doctests of this crate.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub mod functional;
pub mod fuzz;
pub mod interop;
pub mod nn;
pub mod optim;
pub mod prelude;
pub mod random;

/// Guides: idioms of JAX and PyTorch and their tenferro spelling. Their code blocks are
/// compiled and run as doctests.
pub mod guides {
    #[doc = include_str!("../docs/coming-from-jax.md")]
    pub mod coming_from_jax {}
    #[doc = include_str!("../docs/coming-from-pytorch.md")]
    pub mod coming_from_pytorch {}
}

pub use tenferro_ad as ad;
pub use tenferro_cpu as cpu;
pub use tenferro_einsum as einsum;
pub use tenferro_ir as ir;
pub use tenferro_linalg as linalg;
pub use tenferro_passes as passes;
pub use tenferro_runtime as runtime;

pub use functional::{
    ad_context, compile, cpu_executor, eval, eval_many, grad, grad_many, grad_params, jit,
    jit_params, jvp, Error, Result,
};
pub use tenferro_runtime::{
    CompileOptions, DType, GraphCompiler, GraphExecutor, Jit, OptLevel, Params, Program, Tensor,
    TracedTensor,
};
