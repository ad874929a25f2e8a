//! The state of a run: the slot table binding values to buffers or shared tensors, and
//! [`RunState`], what a [`crate::CpuProgram`] keeps between runs. Imports only `buffer`
//! and `error`; the program holds a `RunState`, the executor fills and drains it.

use crate::buffer::BufferPool;
use crate::error::internal;
use tenferro_ir::{Data, Tensor};
use tenferro_runtime::Result;

/// A value during a run: a buffer the program owns (reusable; its shape is the slot's
/// type in the program) or a tensor shared with the caller, the program or an extension
/// kernel.
pub(crate) enum Slot {
    Empty,
    Owned(Data),
    Shared(Tensor),
}

impl Slot {
    pub(crate) fn data(&self) -> Option<&Data> {
        match self {
            Slot::Empty => None,
            Slot::Owned(d) => Some(d),
            Slot::Shared(t) => Some(t.data()),
        }
    }

    pub(crate) fn into_tensor(self, shape: &[usize]) -> Result<Option<Tensor>> {
        Ok(match self {
            Slot::Empty => None,
            Slot::Owned(d) => Some(Tensor::new(shape.to_vec(), d)?),
            Slot::Shared(t) => Some(t),
        })
    }

    /// Makes the slot shared (an owned buffer is wrapped without copying).
    pub(crate) fn share(&mut self, shape: &[usize]) -> Result<Tensor> {
        let s = std::mem::replace(self, Slot::Empty);
        let t = s
            .into_tensor(shape)?
            .ok_or_else(|| internal("share", "value is not live"))?;
        *self = Slot::Shared(t.clone());
        Ok(t)
    }
}

/// What a program keeps between runs: released buffers, the (empty) slot table, and a
/// handle on each result it returned, so that a result its caller has dropped comes back
/// to the pool at the next run instead of a fresh allocation.
#[derive(Default)]
pub(crate) struct RunState {
    pub(crate) pool: BufferPool,
    pub(crate) slots: Vec<Slot>,
    pub(crate) returned: Vec<Tensor>,
}

impl std::fmt::Debug for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunState")
            .field("pool", &self.pool)
            .field("slots", &self.slots.len())
            .finish()
    }
}
