//! # tenferro-cpu
//!
//! The CPU backend: [`CpuBackend`] implements [`tenferro_runtime::Backend`].
//!
//! Running a function has two phases. [`Backend::prepare`] checks the function (operands
//! defined before use, recorded types equal to the inferred ones) and turns it into a
//! [`CpuProgram`]: a list of steps, one per instruction, each with its kernel choice and
//! every shape, stride and offset the kernel needs precomputed, plus the values to free
//! after the step (their last use). [`Backend::execute`] walks the steps.
//!
//! Kernels work on whole column-major buffers: the dtype and op are matched once per step,
//! then a tight loop runs. Strided ops (transpose, broadcast, slice, pad, concatenate) are
//! one strided-copy kernel over coalesced axes; `dot_general` views or packs its operands
//! as batches of column-major matrices and calls faer's GEMM for floats. Results match the
//! reference evaluator [`tenferro_ir::eval`] bit for bit except for the summation order of
//! `dot_general` on floats.

mod exec;
mod kernels;
mod plan;
mod strided;
pub mod vmath;

pub use plan::{CpuProgram, Step};

use std::num::NonZeroUsize;
use tenferro_ir::{Function, Tensor};
use tenferro_runtime::{Backend, ExtensionRegistry, Result};

/// The CPU backend. `threads` bounds the parallelism of its kernels (GEMM today).
#[derive(Clone, Debug)]
pub struct CpuBackend {
    threads: usize,
}

impl CpuBackend {
    /// A backend using every available core (`std::thread::available_parallelism`).
    pub fn new() -> CpuBackend {
        let threads = std::thread::available_parallelism()
            .map(NonZeroUsize::get)
            .unwrap_or(1);
        CpuBackend { threads }
    }

    /// A backend using `threads` threads (0 is treated as 1).
    pub fn with_threads(threads: usize) -> CpuBackend {
        CpuBackend {
            threads: threads.max(1),
        }
    }

    /// The number of threads kernels may use.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// faer's parallelism setting for this backend.
    pub(crate) fn par(&self) -> faer::Par {
        if self.threads <= 1 {
            faer::Par::Seq
        } else {
            faer::Par::rayon(self.threads)
        }
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
        plan::prepare(f)
    }

    fn execute(
        &self,
        prepared: &CpuProgram,
        inputs: &[Tensor],
        extensions: &ExtensionRegistry,
    ) -> Result<Vec<Tensor>> {
        exec::execute(self, prepared, inputs, extensions)
    }
}
