//! # tenferro-cpu
//!
//! The CPU backend: [`CpuBackend`] implements [`tenferro_runtime::Backend`].
//!
//! Running a function has two phases. [`Backend::prepare`] checks the function (operands
//! defined before use, recorded types equal to the inferred ones) and turns it into a
//! [`CpuProgram`]:
//! 1. [`fusion`] partitions the instructions into [`FusionGroup`]s (elementwise chains,
//!    broadcasts and slices read as strided loads, reductions as epilogues) and single
//!    steps (GEMM, extension ops, gather / scatter, layout copies), recording every
//!    decision with its reason ([`FusionNote`]);
//! 2. each group gets a [`KernelSchedule`] ([`schedule`]): a loop over L1-sized tiles,
//!    blocks of tiles split over the backend's threads, and a fixed reduction order;
//! 3. a product `A·X` (at most four columns), the group computing `w` from it row by row
//!    and the product `Aᵀ·w` become one step that reads `A` once, block of rows by block
//!    of rows (`shared_matrix`: the gradient of `Σ g(A·x)` and its Hessian-vector
//!    products), when nothing else reads the values between them;
//! 4. the [`memory`] plan decides in-place updates and buffer reuse and reports
//!    [`CpuProgram::peak_bytes`]; released intermediates are kept for the next run.
//!
//! [`Backend::execute`] walks the steps. Single-step kernels match dtype and op once per
//! step; fused kernels once per op per tile (tile ops are compiled for AVX2 as well, chosen
//! at run time). Results are written into uninitialised or pooled buffers that the kernels
//! fill completely. `dot_general` views or packs its operands as batches of column-major
//! matrices and runs a GEMM per batch: `gemm512` (register-tiled AVX-512) for f32 and
//! large f64 products, faer's for the others; small matrices whose batch axis comes first
//! run on batch lanes (`lane_dot`). A 2-D product read only by its transpose writes the
//! transpose directly. Elementwise results match the reference evaluator
//! [`tenferro_ir::eval`] up to the accuracy of the vectorised transcendentals and of
//! complex `abs` / `sign` (`sqrt(re² + im²)`, `hypot` where that would over- or
//! underflow); reductions fold in the documented order of [`schedule`].
//!
//! Threads: groups of more than 16K elements split into blocks over the backend's pool
//! (work stealing), products above 2^20 multiply-adds (2^18 for matrix-vector-like ones)
//! run on the pool, batched ones a GEMM per task and single ones a panel of the result per
//! thread, each GEMM sequential; smaller work runs on the calling thread without a pool
//! round trip.
//!
//! `CpuProgram`'s `Display` prints the groups, every schedule and the memory plan;
//! [`CpuProgram::to_dot`] writes a Graphviz picture with groups as clusters.
//!
//! Modules form a DAG: `plan` builds a `program` (the steps and their kernels' plan
//! types), `exec` runs it with the run `state` and the backend's `threads`; `kernels`
//! import only `buffer`, `error`, `strided`, `schedule`, `math` and `vmath` (and each
//! other: `fused` imports `tile`; `shared_matrix` imports `fused` and `tile`); `schedule`
//! imports `fusion`; this root imports `plan` and `exec` and nothing imports it.

mod buffer;
mod error;
mod exec;
pub mod fusion;
mod inspect;
mod kernels;
mod math;
pub mod memory;
mod plan;
mod program;
pub mod schedule;
mod state;
mod strided;
mod sysmem;
mod threads;
pub mod vmath;

pub use fusion::{FusionGroup, FusionNote, MAX_GROUP_OPS};
pub use math::fused_ulps;
pub use memory::Alloc;
pub use program::{CpuProgram, Step};
pub use schedule::KernelSchedule;

use std::num::NonZeroUsize;
use tenferro_ir::{Function, Tensor};
use tenferro_runtime::{Backend, ExtensionRegistry, Result};
use threads::Threads;

/// The CPU backend: `threads` workers (a work-stealing rayon pool owned by the backend)
/// split fused kernels' blocks and GEMMs; fusion can be switched off to run one step per
/// instruction.
#[derive(Clone)]
pub struct CpuBackend {
    threads: Threads,
    fusion: bool,
}

impl std::fmt::Debug for CpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuBackend")
            .field("threads", &self.threads.count())
            .field("fusion", &self.fusion)
            .finish()
    }
}

impl CpuBackend {
    /// A backend using every available core (`std::thread::available_parallelism`).
    pub fn new() -> CpuBackend {
        let threads = std::thread::available_parallelism()
            .map(NonZeroUsize::get)
            .unwrap_or(1);
        CpuBackend::with_threads(threads)
    }

    /// A backend using `threads` threads (0 is treated as 1). With more than one thread
    /// the backend owns a rayon pool of that size; if the pool cannot be created the
    /// backend runs on the calling thread.
    pub fn with_threads(threads: usize) -> CpuBackend {
        CpuBackend {
            threads: Threads::new(threads),
            fusion: true,
        }
    }

    /// The same backend with fusion on (the default) or off (one step per instruction,
    /// whole-buffer kernels bit-identical to the reference evaluator).
    pub fn with_fusion(mut self, on: bool) -> CpuBackend {
        self.fusion = on;
        self
    }

    /// The number of threads kernels may use.
    pub fn threads(&self) -> usize {
        self.threads.count()
    }

    /// `true` when `prepare` fuses.
    pub fn fusion(&self) -> bool {
        self.fusion
    }
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend::new()
    }
}

impl Backend for CpuBackend {
    type Prepared = CpuProgram;

    fn prepare(&self, f: &Function) -> Result<CpuProgram> {
        plan::prepare(f, self.fusion)
    }

    fn execute(
        &self,
        prepared: &CpuProgram,
        inputs: &[Tensor],
        extensions: &ExtensionRegistry,
    ) -> Result<Vec<Tensor>> {
        // A program that hands work to the threads more than once runs as a whole on a
        // pool thread: the workers stay awake between its steps, where each step's own
        // hand-off would park the calling thread and wake a worker (tens of µs on a VM).
        // A program with at most one such step stays on the calling thread, which spares
        // small programs the round trip.
        if prepared.threaded_steps > 1 {
            self.threads
                .install(|| exec::execute(&self.threads, prepared, inputs, extensions))
        } else {
            exec::execute(&self.threads, prepared, inputs, extensions)
        }
    }
}
