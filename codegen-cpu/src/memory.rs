//! The memory plan: which buffer each step's results go to and what happens to a buffer
//! after its last use, decided once at prepare time by simulating the run.
//!
//! - A value's buffer is released right after the step that last reads it (outputs never).
//! - A fused group's output reuses, in order of preference, the buffer of an input that
//!   dies at this step (*in place*; the schedule says which input / output pairs are safe),
//!   a released buffer of the same dtype and length (the *pool*), or a fresh allocation.
//! - The plan counts a released buffer as pooled only when a later step takes it (the
//!   steps marked "kept for reuse"); otherwise the plan counts it as dropped.
//! - Buffers shared with the caller or the program (parameters, constants), returned by
//!   extension kernels, or aliased by a reshape that does not consume its operand are never
//!   reused.
//!
//! `peak_bytes` is the largest total, over the run, of the bytes of the buffers the program
//! allocates (live values plus pooled buffers), parameters and constants excluded, kernel
//! scratch (tile slots, GEMM packing) excluded; a total beyond `usize::MAX` is reported as
//! `usize::MAX`.
//!
//! The executor goes further than the plan: every buffer a run releases (not only the
//! ones a later step takes) stays in the run's pool, and the pool is kept by the prepared
//! program for its next run (see `crate::buffer`; [`crate::CpuProgram::cached_bytes`]
//! reports it), so a steady-state run allocates only the buffers it returns. While a run
//! executes, the intermediates it has already released add to `peak_bytes`; between runs
//! the program holds them (at most one buffer per intermediate of the program).
//!
//! Imports no module of this crate; the program, the planner and the executor import it.

use std::collections::HashMap;
use tenferro_ir::{DType, TensorType};

/// Where a step result's buffer comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alloc {
    /// A new allocation (also every non-fused kernel's result).
    Fresh,
    /// A released buffer of the same dtype and length.
    Pool,
    /// The buffer of the step's `n`-th operand, which dies here.
    InPlace(usize),
    /// No new bytes: an alias (reshape) or a value owned elsewhere (constant).
    Alias,
}

/// How a step touches memory, as far as the plan is concerned.
#[derive(Clone, Debug)]
pub(crate) enum MemKind {
    /// Fused group: outputs may be in place (`(operand position, result position)`) or
    /// pooled.
    Fused { inplace: Vec<(usize, usize)> },
    /// Zero-copy reshape of operand 0.
    Reshape,
    /// Extension kernel: operands are shared with it, results never reused.
    Extension,
    /// Constant: the program's own tensor.
    Constant,
    /// Any other kernel: fresh results.
    Fresh,
}

/// What the memory plan decided for one step.
#[derive(Clone, Debug, Default)]
pub(crate) struct StepMemory {
    pub allocs: Vec<Alloc>,
    /// Released slots whose buffers go to the pool (a subset of the step's frees).
    pub recycle: Vec<usize>,
    /// For a reshape: the operand's buffer moves to the result (it dies here).
    pub reshape_moves: bool,
}

#[derive(Clone, Debug)]
struct Buffer {
    bytes: u128,
    key: (DType, usize),
    /// Owned by the program and unaliased: may be reused.
    reusable: bool,
    /// Counted in the program's bytes (not a parameter or constant).
    counted: bool,
    refs: usize,
}

/// The inputs of the plan for one step.
pub(crate) struct StepDesc<'a> {
    pub args: &'a [usize],
    pub results: &'a [usize],
    pub result_types: &'a [TensorType],
    pub frees: &'a [usize],
    pub kind: MemKind,
}

struct Sim {
    buffers: Vec<Buffer>,
    slot_buf: Vec<Option<usize>>,
    pool: HashMap<(DType, usize), Vec<usize>>,
    // Byte totals are u128: each buffer's size fits in usize, but a program may declare
    // more live bytes than the address space holds (it then fails to allocate at run
    // time), and the plan must not overflow computing that.
    live_bytes: u128,
    pool_bytes: u128,
    peak: u128,
}

impl Sim {
    fn new_buffer(&mut self, ty: &TensorType, reusable: bool, counted: bool) -> usize {
        let bytes = if counted { ty.size_bytes() as u128 } else { 0 };
        self.buffers.push(Buffer {
            bytes,
            key: (ty.dtype, ty.numel()),
            reusable,
            counted,
            refs: 0,
        });
        self.live_bytes += bytes;
        self.buffers.len() - 1
    }

    fn bind(&mut self, slot: usize, b: usize) {
        self.buffers[b].refs += 1;
        self.slot_buf[slot] = Some(b);
    }

    fn note_peak(&mut self) {
        self.peak = self.peak.max(self.live_bytes + self.pool_bytes);
    }
}

/// Simulates the steps; `taken` says which `(step, slot)` releases feed a later pool
/// allocation (all of them on the first pass). Returns the decisions, the peak and the
/// releases that were taken from the pool.
fn simulate(
    num_slots: usize,
    params: &[usize],
    steps: &[StepDesc<'_>],
    recycle_ok: &dyn Fn(usize, usize) -> bool,
) -> (Vec<StepMemory>, usize, Vec<(usize, usize)>) {
    let mut sim = Sim {
        buffers: Vec::new(),
        slot_buf: vec![None; num_slots],
        pool: HashMap::new(),
        live_bytes: 0,
        pool_bytes: 0,
        peak: 0,
    };
    for &p in params {
        let b = sim.buffers.len();
        sim.buffers.push(Buffer {
            bytes: 0,
            key: (DType::Bool, 0),
            reusable: false,
            counted: false,
            refs: 0,
        });
        sim.bind(p, b);
    }
    let mut origin: HashMap<usize, (usize, usize)> = HashMap::new(); // buffer -> release
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let mut out = Vec::with_capacity(steps.len());
    for (si, st) in steps.iter().enumerate() {
        let mut mem = StepMemory::default();
        match &st.kind {
            MemKind::Fused { inplace } => {
                for (ri, (&r, ty)) in st.results.iter().zip(st.result_types).enumerate() {
                    let donor = inplace.iter().find(|(_, o)| *o == ri).and_then(|&(ai, _)| {
                        let a = st.args[ai];
                        let b = sim.slot_buf[a]?;
                        let buf = &sim.buffers[b];
                        (buf.reusable && buf.refs == 1 && st.frees.contains(&a))
                            .then_some((ai, a, b))
                    });
                    if let Some((ai, a, b)) = donor {
                        // The operand's buffer becomes the result's.
                        sim.slot_buf[a] = None;
                        sim.buffers[b].refs -= 1;
                        sim.bind(r, b);
                        mem.allocs.push(Alloc::InPlace(ai));
                        continue;
                    }
                    let key = (ty.dtype, ty.numel());
                    if let Some(b) = sim.pool.get_mut(&key).and_then(|v| v.pop()) {
                        sim.pool_bytes -= sim.buffers[b].bytes;
                        sim.live_bytes += sim.buffers[b].bytes;
                        if let Some(rel) = origin.get(&b) {
                            taken.push(*rel);
                        }
                        sim.bind(r, b);
                        mem.allocs.push(Alloc::Pool);
                    } else {
                        let b = sim.new_buffer(ty, true, true);
                        sim.bind(r, b);
                        mem.allocs.push(Alloc::Fresh);
                    }
                }
            }
            MemKind::Reshape => {
                let a = st.args[0];
                let r = st.results[0];
                if let Some(b) = sim.slot_buf[a] {
                    let moves = sim.buffers[b].reusable
                        && sim.buffers[b].refs == 1
                        && st.frees.contains(&a);
                    if moves {
                        sim.slot_buf[a] = None;
                        sim.buffers[b].refs -= 1;
                    } else {
                        sim.buffers[b].reusable = false;
                    }
                    mem.reshape_moves = moves;
                    sim.bind(r, b);
                }
                mem.allocs.push(Alloc::Alias);
            }
            MemKind::Constant => {
                for (&r, ty) in st.results.iter().zip(st.result_types) {
                    let b = sim.new_buffer(ty, false, false);
                    sim.bind(r, b);
                    mem.allocs.push(Alloc::Alias);
                }
            }
            MemKind::Extension | MemKind::Fresh => {
                let shared = matches!(st.kind, MemKind::Extension);
                if shared {
                    for &a in st.args {
                        if let Some(b) = sim.slot_buf[a] {
                            sim.buffers[b].reusable = false;
                        }
                    }
                }
                for (&r, ty) in st.results.iter().zip(st.result_types) {
                    let b = sim.new_buffer(ty, !shared, true);
                    sim.bind(r, b);
                    mem.allocs.push(Alloc::Fresh);
                }
            }
        }
        sim.note_peak();
        for &s in st.frees {
            let Some(b) = sim.slot_buf[s].take() else {
                continue;
            };
            sim.buffers[b].refs -= 1;
            if sim.buffers[b].refs > 0 {
                continue;
            }
            let bytes = sim.buffers[b].bytes;
            sim.live_bytes -= bytes;
            if sim.buffers[b].reusable && sim.buffers[b].counted && recycle_ok(si, s) {
                sim.pool_bytes += bytes;
                let key = sim.buffers[b].key;
                sim.pool.entry(key).or_default().push(b);
                origin.insert(b, (si, s));
                mem.recycle.push(s);
            }
        }
        out.push(mem);
    }
    (out, usize::try_from(sim.peak).unwrap_or(usize::MAX), taken)
}

/// Plans the memory of `steps`; returns each step's decisions and the peak bytes.
pub(crate) fn plan(
    num_slots: usize,
    params: &[usize],
    steps: &[StepDesc<'_>],
) -> (Vec<StepMemory>, usize) {
    let (_, _, taken) = simulate(num_slots, params, steps, &|_, _| true);
    let (mems, peak, _) = simulate(num_slots, params, steps, &|si, s| taken.contains(&(si, s)));
    (mems, peak)
}
