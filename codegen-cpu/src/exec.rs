//! `execute`: binds inputs to slots, runs each step (fused groups through their schedules,
//! single steps through their kernels), follows the memory plan (in-place updates, a pool
//! of released buffers), and returns the outputs. A run whose memory plan needs more than
//! the machine has available fails before it starts. It imports the program, the run
//! state, the kernels, the machine-memory check and the backend's threads; only the crate
//! root imports it.

use crate::buffer::{self, with_slice, BufferPool};
use crate::error::internal;
use crate::kernels::{dot, elementwise, fused, index, reduce, scan, shared_matrix};
use crate::memory::Alloc;
use crate::program::{CpuProgram, Step, StepKind, INLINE_EXTENSION_ELEMENTS};
use crate::state::{RunState, Slot};
use crate::threads::Threads;
use tenferro_ir::tensor::try_vec_with_capacity;
use tenferro_ir::{Data, Element, Tensor, TensorType};
use tenferro_runtime::{ExtensionRegistry, Result, RuntimeError};

/// The buffer for result `ty` of step `op`: a pooled buffer of the same dtype and length
/// (a released intermediate, or a result of an earlier run its caller dropped), else a
/// fresh allocation; an allocation failure is an error naming the op and the bytes. Its
/// contents are zeros or stale values: the kernel must write every element.
fn result_buffer(op: &str, pool: &mut BufferPool, ty: &TensorType) -> Result<Data> {
    let n = ty.try_numel(op)?;
    if let Some(d) = pool.take(ty.dtype, n) {
        return Ok(d);
    }
    buffer::try_fresh(op, ty.dtype, n)
}

/// The program's largest value, as `` `op` type (bytes) ``.
fn largest_value(program: &CpuProgram) -> String {
    program
        .graph
        .iter()
        .flat_map(|n| n.types.iter().map(move |t| (n, t)))
        .max_by_key(|(_, t)| t.size_bytes())
        .map_or_else(
            || "unknown".into(),
            |(n, t)| format!("`{}` {t} ({} bytes)", n.op, t.size_bytes()),
        )
}

pub(crate) fn execute(
    threads: &Threads,
    program: &CpuProgram,
    inputs: &[Tensor],
    extensions: &ExtensionRegistry,
) -> Result<Vec<Tensor>> {
    if inputs.len() != program.params.len() {
        return Err(RuntimeError::BadInput(format!(
            "program `{}` takes {} input(s), got {}",
            program.name,
            program.params.len(),
            inputs.len()
        )));
    }
    let RunState {
        mut pool,
        mut slots,
        returned,
    } = program.cache.take();
    // Results of the last run that only we still hold: their callers dropped them.
    for t in returned {
        if let Ok(d) = t.try_into_data() {
            pool.put(d);
        }
    }
    crate::sysmem::check_fits(
        &program.name,
        program.peak_bytes.saturating_sub(pool.bytes()),
        crate::sysmem::available_bytes,
        || largest_value(program),
    )?;
    slots.clear();
    slots.resize_with(program.num_slots, || Slot::Empty);
    for (i, ((slot, ty), t)) in program.params.iter().zip(inputs).enumerate() {
        if t.dtype() != ty.dtype || t.shape() != ty.shape.as_slice() {
            return Err(RuntimeError::BadInput(format!(
                "program `{}`: input #{i} has type {} but the parameter has type {ty}",
                program.name,
                t.ty()
            )));
        }
        slots[*slot] = Slot::Shared(t.clone());
    }
    for &s in &program.unused_params {
        slots[s] = Slot::Empty;
    }
    let shape = |v: usize| program.shapes[v].as_slice();
    for step in &program.steps {
        match &step.kind {
            StepKind::Fused(_) => run_fused(threads, step, &mut slots, &mut pool)?,
            StepKind::Reshape(to) => {
                let a = step.args[0];
                let r = step.results[0];
                if step.memory.reshape_moves {
                    match std::mem::replace(&mut slots[a], Slot::Empty) {
                        Slot::Owned(d) => slots[r] = Slot::Owned(d),
                        Slot::Shared(t) => slots[r] = Slot::Shared(t.reshaped(to.clone())?),
                        Slot::Empty => return Err(internal("reshape", "operand is not live")),
                    }
                } else {
                    let t = slots[a].share(shape(a))?;
                    slots[r] = Slot::Shared(t.reshaped(to.clone())?);
                }
            }
            StepKind::Extension(e) => {
                let args = step
                    .args
                    .iter()
                    .map(|&a| slots[a].share(shape(a)))
                    .collect::<Result<Vec<Tensor>>>()?;
                let refs: Vec<&Tensor> = args.iter().collect();
                // Small operands: on the calling thread (no pool round trip); large ones
                // inside the pool, so that a kernel using rayon uses the backend's threads.
                let numel: usize = refs.iter().map(|t| t.numel()).sum();
                let results = if numel < INLINE_EXTENSION_ELEMENTS {
                    extensions.run(e, &refs)?
                } else {
                    threads.install(|| extensions.run(e, &refs))?
                };
                for (&r, t) in step.results.iter().zip(results) {
                    slots[r] = Slot::Shared(t);
                }
            }
            StepKind::Constant(t) => slots[step.results[0]] = Slot::Shared(t.clone()),
            _ => {
                let out = {
                    let args = step
                        .args
                        .iter()
                        .map(|&a| {
                            slots[a].data().ok_or_else(|| {
                                internal(&step.op_name, format!("operand %{a} is not live"))
                            })
                        })
                        .collect::<Result<Vec<&Data>>>()?;
                    run_step(threads, step, &args, &mut pool)?
                };
                slots[step.results[0]] = Slot::Owned(out);
            }
        }
        for &f in &step.free_after {
            if let Slot::Owned(d) = std::mem::replace(&mut slots[f], Slot::Empty) {
                pool.put(d);
            }
        }
    }
    let mut out = Vec::with_capacity(program.outputs.len());
    for (i, &o) in program.outputs.iter().enumerate() {
        // An output returned twice shares its buffer.
        let repeated = program.outputs[i + 1..].contains(&o);
        let t = if repeated {
            Some(slots[o].share(shape(o))?)
        } else {
            std::mem::replace(&mut slots[o], Slot::Empty).into_tensor(shape(o))?
        };
        match t {
            Some(t) => out.push(t),
            None => {
                // Returned earlier in the list: look it up among the results so far.
                let j = program.outputs[..i]
                    .iter()
                    .position(|&p| p == o)
                    .ok_or_else(|| internal("return", format!("output %{o} is not live")))?;
                out.push(out[j].clone());
            }
        }
    }
    // Buffers still owned (results nobody reads are freed by their step; this is only
    // what an error path would leave) go back with the pool.
    for s in slots.iter_mut() {
        if let Slot::Owned(d) = std::mem::replace(s, Slot::Empty) {
            pool.put(d);
        }
    }
    slots.clear();
    // At most one buffer per value of the program is worth keeping for the next run.
    pool.trim(program.num_slots);
    let returned = out.clone();
    program.cache.give(
        RunState {
            pool,
            slots,
            returned,
        },
        |kept, new| kept.pool.len() > new.pool.len(),
    );
    Ok(out)
}

/// Runs a fused step: takes the output buffers (in place, pooled or fresh), runs the
/// schedule, binds the results.
fn run_fused(
    threads: &Threads,
    step: &Step,
    slots: &mut [Slot],
    pool: &mut BufferPool,
) -> Result<()> {
    let StepKind::Fused(sched) = &step.kind else {
        return Err(internal(&step.op_name, "not a fused step"));
    };
    let name = step.op_name.as_str();
    // Donated operands move into their outputs first.
    let mut outputs: Vec<Data> = Vec::with_capacity(step.results.len());
    let mut donated: Vec<usize> = Vec::new();
    for (ty, alloc) in step.result_types.iter().zip(&step.memory.allocs) {
        let buf = match alloc {
            Alloc::InPlace(ai) => {
                let a = step.args[*ai];
                donated.push(*ai);
                match std::mem::replace(&mut slots[a], Slot::Empty) {
                    Slot::Owned(d) => d,
                    // Not owned after all: copy (correct, just slower).
                    Slot::Shared(t) => t.data().clone(),
                    Slot::Empty => return Err(internal(name, format!("operand %{a} is not live"))),
                }
            }
            // A schedule writes every element of every output: a `Tiles` output
            // is the destination of exactly one tile op, run over every tile of every
            // block (blocks cover `0..numel`); a row reduction's chunk is filled with the
            // identity before folding, and blocks' chunks cover the output; a whole
            // reduction's buffer is replaced by the combined partial; an empty iteration
            // space sets every reduction output to the identity (see `fused::run`).
            _ => result_buffer(name, pool, ty)?,
        };
        outputs.push(buf);
    }
    let empty = Data::Bool(Vec::new());
    {
        let input = |i: usize, a: usize| -> Result<&Data> {
            if donated.contains(&i) {
                Ok(&empty)
            } else {
                slots[a]
                    .data()
                    .ok_or_else(|| internal(name, format!("operand %{a} is not live")))
            }
        };
        // Few operands: no allocation for the operand list.
        let mut few: [&Data; 4] = [&empty; 4];
        let many: Vec<&Data>;
        let inputs: &[&Data] = if step.args.len() <= few.len() {
            for (i, &a) in step.args.iter().enumerate() {
                few[i] = input(i, a)?;
            }
            &few[..step.args.len()]
        } else {
            many = step
                .args
                .iter()
                .enumerate()
                .map(|(i, &a)| input(i, a))
                .collect::<Result<Vec<&Data>>>()?;
            &many
        };
        fused::run(name, sched, inputs, &mut outputs, threads.pool())?;
    }
    for (&r, d) in step.results.iter().zip(outputs) {
        slots[r] = Slot::Owned(d);
    }
    Ok(())
}

/// Runs one single (non-fused, non-aliasing) step on its operands.
fn run_step(threads: &Threads, step: &Step, args: &[&Data], pool: &mut BufferPool) -> Result<Data> {
    let name = step.op_name.as_str();
    let ty = &step.result_types[0];
    let data = |i: usize| -> Result<&Data> {
        args.get(i)
            .copied()
            .ok_or_else(|| internal(name, format!("missing operand {i}")))
    };
    Ok(match &step.kind {
        StepKind::Unary(u) => elementwise::unary(name, *u, data(0)?)?,
        StepKind::Binary(b) => elementwise::binary(name, *b, data(0)?, data(1)?)?,
        StepKind::Compare(c) => elementwise::compare(name, *c, data(0)?, data(1)?)?,
        StepKind::Select => elementwise::select(name, data(0)?, data(1)?, data(2)?)?,
        // The reference evaluator's conversion, so results are bit-identical to it.
        StepKind::Convert(to) => tenferro_ir::eval::convert_data(data(0)?, *to),
        StepKind::Reduce(kind, plan) => reduce::reduce(name, *kind, plan, data(0)?)?,
        StepKind::Dot(plan) => {
            let (l, r) = (data(0)?, data(1)?);
            // `dot::dot` writes every element of `out` (see its documentation).
            let mut out = result_buffer(name, pool, ty)?;
            match threads.pool() {
                Some(tp) if plan.worth_threads() => {
                    let par = threads.par();
                    tp.install(|| dot::dot(name, plan, l, r, &mut out, pool, par))?
                }
                _ => dot::dot(name, plan, l, r, &mut out, pool, faer::Par::Seq)?,
            }
            out
        }
        StepKind::SharedMatrix(plan) => {
            // The pass writes every element of `out` (the sum of the blocks' partials).
            let mut out = result_buffer(name, pool, ty)?;
            shared_matrix::run(name, plan, args, &mut out, pool, threads.pool())?;
            out
        }
        StepKind::Copy(copy) => {
            let src = data(0)?;
            // The copy of a transpose, broadcast, slice or composed view iterates
            // over the result's shape and writes its column-major positions: every
            // element once.
            let mut out = result_buffer(name, pool, ty)?;
            let parts = copy.parts(threads.count());
            with_slice!(&mut out, o: T => {
                let s: &[T] = T::slice(src)
                    .ok_or_else(|| internal(name, "operand of another dtype"))?;
                match threads.pool() {
                    Some(tp) if parts > 1 => tp.install(|| copy.run_parts(s, o, parts)),
                    _ => copy.run(s, o),
                }
            });
            out
        }
        StepKind::Pad(copy) => {
            let fill = data(1)?;
            with_slice!(data(0)?, v: T => {
                let fill: &[T] = T::slice(fill)
                    .ok_or_else(|| internal(name, "padding value of another dtype"))?;
                let n = ty.try_numel(name)?;
                let mut out: Vec<T> = try_vec_with_capacity(name, n)?;
                out.resize(n, fill[0]);
                copy.run(v, &mut out);
                T::into_data(out)
            })
        }
        StepKind::Concatenate(copies) => {
            let mut out = Data::try_zeros(name, ty.dtype, ty.try_numel(name)?)?;
            for (i, copy) in copies.iter().enumerate() {
                let src = data(i)?;
                with_slice!(&mut out, o: T => {
                    let s: &[T] = T::slice(src)
                        .ok_or_else(|| internal(name, "operands of different dtypes"))?;
                    copy.run(s, o);
                })
            }
            out
        }
        StepKind::Gather(plan) => index::gather(name, plan, data(0)?, data(1)?)?,
        StepKind::ScatterAdd(plan) => index::scatter_add(name, plan, data(0)?, data(1)?, data(2)?)?,
        StepKind::Iota { pre, n, post } => index::iota(name, ty.dtype, *pre, *n, *post)?,
        StepKind::Scan(kind, plan) => {
            scan::cumulative(name, *kind, plan, data(0)?, threads.pool())?
        }
        StepKind::Argsort(desc, plan) => {
            scan::argsort(name, plan, *desc, data(0)?, threads.pool())?
        }
        StepKind::Fused(_)
        | StepKind::Reshape(_)
        | StepKind::Constant(_)
        | StepKind::Extension(_) => {
            return Err(internal(name, "step kind handled by the executor"))
        }
    })
}
