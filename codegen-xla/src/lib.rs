//! # tenferro-xla
//!
//! tenferro beyond one machine: [`to_stablehlo`] exports a function (or a compiled
//! [`Program`](tenferro_runtime::Program), [`program_to_stablehlo`]) to a StableHLO module
//! in MLIR text; [`XlaBackend`] implements the runtime's [`Backend`](tenferro_runtime::Backend)
//! by compiling that module with XLA through a PJRT plugin loaded at run time (path from
//! [`XlaBackend::new`] or `TENFERRO_PJRT_PLUGIN`; `pip install xla-cpu-pjrt` provides the
//! CPU one), so `GraphExecutor::new(XlaBackend::from_env()?)` runs the same programs,
//! gradients included, as the CPU backend. [`Sharding`] (a [`Mesh`] and a
//! [`PartitionSpec`] per parameter and output) exports Shardy annotations and runs one
//! program over several devices ([`XlaBackend::prepare_sharded`]).
//!
//! The PJRT binding ([`pjrt`]) is a small hand-written FFI layer over the C API (0.81)
//! with `libloading`; the `CompileOptionsProto` it needs is hand-encoded.

pub mod backend;
pub mod pjrt;
pub mod sharding;
pub mod stablehlo;

pub use backend::{ShardedPrepared, ShardedResult, XlaBackend, XlaPrepared};
pub use pjrt::PLUGIN_ENV;
pub use sharding::{Mesh, PartitionSpec, Sharding};
pub use stablehlo::{program_to_stablehlo, to_stablehlo, to_stablehlo_sharded};
