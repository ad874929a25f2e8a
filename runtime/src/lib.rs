//! # tenferro-runtime
//!
//! The front end and driver: [`TracedTensor`] records a computation; [`GraphCompiler`]
//! lowers it to IR and runs the pass pipeline into a [`Program`]; [`GraphExecutor`] runs
//! programs on a [`Backend`] with the extension kernels registered on it. Host values are
//! [`Tensor`]s (re-exported from `tenferro-ir`, where constants use them too).
//!
//! ## Type promotion (as JAX)
//!
//! Binary operators, comparisons and `select` promote their operands to one dtype before
//! the op; the IR itself never mixes dtypes.
//!
//! | operands | result |
//! |---|---|
//! | two tensors | the wider along `bool < i32 < i64 < f32 < f64` (`i32 + i64 → i64`, `i32 + f32 → f32`); real with complex gives the complex dtype of the wider precision (`f32 · c32 → c32`, `f64 · c32 → c64`) |
//! | tensor and a Rust `f64` (`&x * 0.5`) | the scalar is weak: a float or complex tensor keeps its dtype (`f32 * 2.0` is f32); an integer or `bool` tensor becomes the default float, f64 (`i64 * 0.5` and `i32 * 0.5` are f64) |
//! | tensor and a Rust `i64` (`&x * 2`) | the scalar is weak: the tensor keeps its dtype (`f32 * 2` is f32, `i64 * 2` is i64, `i32 * 2` is i32; a scalar outside the i32 range is an error, as in JAX); a `bool` tensor becomes i64 |
//! | `mean` of an integer tensor | f64 (as NumPy and JAX) |
//!
//! Index operands (`take`, `take_along_axis`, `one_hot`, `dynamic_slice` starts,
//! `scatter_add`) accept i32 or i64 indices (i32 ones are converted to i64); the index
//! results of `argmax`, `argmin`, `argsort` and `top_k` are i64.

pub mod activations;
pub mod arith;
pub mod axes;
pub mod compile;
pub mod constructors;
pub mod error;
pub mod exec;
pub mod jit;
pub mod ops;
pub mod reductions;
pub mod sorting;
pub mod structural;
pub mod traced;

pub use compile::{CompileOptions, GraphCompiler, PassObserver, Program};
pub use error::{Result, RuntimeError};
pub use exec::{Backend, ExtensionKernel, ExtensionRegistry, GraphExecutor};
pub use jit::{Jit, JitStats, Params};
pub use tenferro_ir as ir;
pub use tenferro_ir::{DType, Data, Element, Tensor, TensorType};
pub use tenferro_passes::{OptLevel, PassEvent, PassRecord, PassSpec, PassStats, Pipeline};
pub use traced::{lower, Definition, LowerMode, Lowered, TracedId, TracedTensor};
