//! # tenferro-runtime
//!
//! The front end and driver: [`TracedTensor`] records a computation; [`GraphCompiler`]
//! lowers it to IR and runs the pass pipeline into a [`Program`]; [`GraphExecutor`] runs
//! programs on a [`Backend`] with the extension kernels registered on it. Host values are
//! [`Tensor`]s (re-exported from `tenferro-ir`, where constants use them too).

pub mod axes;
pub mod compile;
pub mod error;
pub mod exec;
pub mod ops;
pub mod traced;

pub use compile::{CompileOptions, GraphCompiler, PassObserver, Program};
pub use error::{Result, RuntimeError};
pub use exec::{Backend, ExtensionKernel, ExtensionRegistry, GraphExecutor};
pub use tenferro_ir as ir;
pub use tenferro_ir::{DType, Data, Element, Tensor, TensorType};
pub use tenferro_passes::{OptLevel, PassEvent, PassRecord, PassSpec, PassStats, Pipeline};
pub use traced::{lower, Definition, LowerMode, Lowered, TracedId, TracedTensor};
