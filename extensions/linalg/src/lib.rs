//! # tenferro-linalg
//!
//! Linear algebra for tenferro, as an extension: the ops are [`tenferro_ir::ExtensionOp`]s
//! named `linalg.<op>` (see [`ops`] for the primitive set and their typing), their kernels
//! call faer and are registered per executor with [`register_runtime`], and their
//! differentiation rules (feature `autodiff`) are handed to an `AdContext` with
//! [`ad_rules`]. There is no global state: an executor or AD context knows linalg only if
//! it was given it. This crate uses only the public extension API, the same one a user's
//! crate has (see `examples/custom_op.rs` in the workspace root).
//!
//! Layout: matrices are the first two axes, batch axes follow (column-major).
//!
//! ```
//! use tenferro_cpu::CpuBackend;
//! use tenferro_linalg::TracedTensorLinalgExt;
//! use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};
//!
//! let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![4.0_f64, 2.0, 2.0, 5.0]);
//! let l = a.cholesky().unwrap(); // trace: a `linalg.cholesky` instruction
//! let program = GraphCompiler::new().compile(&l).unwrap();
//! let mut executor = GraphExecutor::new(CpuBackend::new());
//! executor.register_extension(tenferro_linalg::register_runtime).unwrap();
//! let out = executor.run(&program).unwrap();
//! assert_eq!(out.as_slice::<f64>().unwrap(), &[2.0, 1.0, 0.0, 2.0]);
//! ```
//!
//! Differentiating needs the rules: `AdContext::builder()
//! .with_extension_rules(tenferro_linalg::ad_rules()?)` (feature `autodiff`).

pub mod attrs;
#[cfg(feature = "autodiff")]
mod eager;
mod eig;
mod expm;
mod full_piv;
mod kernels;
mod lu;
mod norm;
pub mod ops;
#[cfg(feature = "autodiff")]
mod rules;
mod spectral;
mod traced;
mod util;

pub use attrs::{LinalgOp, TriangularSolve};
#[cfg(feature = "autodiff")]
pub use eager::EagerTensorLinalgExt;
pub use expm::EXPM_MAX_SQUARINGS;
pub use full_piv::FullPivLu;
pub use kernels::register_runtime;
pub use norm::{MatrixNorm, NormOrd};
#[cfg(feature = "autodiff")]
pub use rules::ad_rules;
pub use spectral::Lstsq;
pub use traced::TracedTensorLinalgExt;
