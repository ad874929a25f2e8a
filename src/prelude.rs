//! `use tenferro::prelude::*;` brings in what a program needs: the tensor types, the
//! function-style transforms ([`jit`], [`grad`], [`jvp`], [`eval`]...), [`einsum`], the
//! linalg methods on traced values, and the crate's [`Error`] / [`Result`].
//!
//! ```
//! use tenferro::prelude::*;
//! let a = TracedTensor::from_tensor(Tensor::from_slice(&[4.0_f64, 2.0, 2.0, 5.0], &[2, 2])?);
//! let l = eval(&a.cholesky()?)?;
//! assert_eq!(l.to_vec_row_major::<f64>()?, [2.0, 0.0, 1.0, 2.0]);
//! # Ok::<(), tenferro::Error>(())
//! ```

pub use crate::functional::{
    ad_context, compile, cpu_executor, eval, eval_many, grad, grad_many, grad_params, jit,
    jit_params, jvp, Error, Result,
};
pub use tenferro_ad::{AdContext, EagerContext, EagerTensor};
pub use tenferro_cpu::CpuBackend;
pub use tenferro_einsum::einsum;
pub use tenferro_linalg::{TracedTensorLinalgExt, TriangularSolve};
pub use tenferro_runtime::{DType, Params, Tensor, TracedTensor};
