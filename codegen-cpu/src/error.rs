//! The error for an internal inconsistency between a plan and the buffers it meets.
//! Imports no module of this crate; kernels, the run state and the executor use it.

use std::fmt;
use tenferro_runtime::RuntimeError;

/// An internal inconsistency between a plan and the buffers it meets (a bug, reported
/// instead of panicking), naming the op.
pub(crate) fn internal(op: &str, what: impl fmt::Display) -> RuntimeError {
    RuntimeError::kernel(op, format!("internal error of the CPU backend: {what}"))
}
