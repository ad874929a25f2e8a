//! `execute`: binds inputs to slots, runs each step's kernel, frees buffers after their
//! last use, and returns the outputs.

use crate::kernels::{dot, elementwise, index, reduce, with_slice};
use crate::plan::{internal, CpuProgram, Step, StepKind};
use crate::CpuBackend;
use tenferro_ir::{Data, Element, Tensor};
use tenferro_runtime::{ExtensionRegistry, Result, RuntimeError};

pub(crate) fn execute(
    backend: &CpuBackend,
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
    let mut slots: Vec<Option<Tensor>> = vec![None; program.num_slots];
    for (i, ((slot, ty), t)) in program.params.iter().zip(inputs).enumerate() {
        if t.ty() != *ty {
            return Err(RuntimeError::BadInput(format!(
                "program `{}`: input #{i} has type {} but the parameter has type {ty}",
                program.name,
                t.ty()
            )));
        }
        slots[*slot] = Some(t.clone());
    }
    for &s in &program.unused_params {
        slots[s] = None;
    }
    for step in &program.steps {
        let results = {
            let args = step
                .args
                .iter()
                .map(|&a| {
                    slots[a]
                        .as_ref()
                        .ok_or_else(|| internal(&step.op_name, format!("operand %{a} is not live")))
                })
                .collect::<Result<Vec<&Tensor>>>()?;
            run_step(backend, step, &args, extensions)?
        };
        for (&r, t) in step.results.iter().zip(results) {
            slots[r] = Some(t);
        }
        for &f in &step.free_after {
            slots[f] = None;
        }
    }
    program
        .outputs
        .iter()
        .map(|&o| {
            slots[o]
                .clone()
                .ok_or_else(|| internal("return", format!("output %{o} is not live")))
        })
        .collect()
}

/// Runs one step on its operands.
fn run_step(
    backend: &CpuBackend,
    step: &Step,
    args: &[&Tensor],
    extensions: &ExtensionRegistry,
) -> Result<Vec<Tensor>> {
    let name = step.op_name.as_str();
    let ty = &step.result_types[0];
    let data = |i: usize| -> Result<&Data> {
        args.get(i)
            .map(|t| t.data())
            .ok_or_else(|| internal(name, format!("missing operand {i}")))
    };
    let out: Data = match &step.kind {
        StepKind::Unary(u) => elementwise::unary(name, *u, data(0)?)?,
        StepKind::Binary(b) => elementwise::binary(name, *b, data(0)?, data(1)?)?,
        StepKind::Compare(c) => elementwise::compare(name, *c, data(0)?, data(1)?)?,
        StepKind::Select => elementwise::select(name, data(0)?, data(1)?, data(2)?)?,
        StepKind::Convert(to) => elementwise::convert(data(0)?, *to),
        StepKind::Reduce(kind, plan) => reduce::reduce(name, *kind, plan, data(0)?)?,
        StepKind::Dot(plan) => dot::dot(name, plan, data(0)?, data(1)?, backend.par())?,
        StepKind::Copy(copy) => with_slice!(data(0)?, v: T => {
            let mut out: Vec<T> = vec![first_or_default(v); ty.numel()];
            copy.run(v, &mut out);
            T::into_data(out)
        }),
        StepKind::Reshape(shape) => return Ok(vec![args[0].reshaped(shape.clone())?]),
        StepKind::Pad(copy) => {
            let fill = data(1)?;
            with_slice!(data(0)?, v: T => {
                let fill: &[T] = T::slice(fill)
                    .ok_or_else(|| internal(name, "padding value of another dtype"))?;
                let mut out: Vec<T> = vec![fill[0]; ty.numel()];
                copy.run(v, &mut out);
                T::into_data(out)
            })
        }
        StepKind::Concatenate(copies) => {
            let mut out = Data::zeros(ty.dtype, ty.numel());
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
        StepKind::Constant(t) => return Ok(vec![t.clone()]),
        StepKind::Extension(e) => return extensions.run(e, args),
    };
    Ok(vec![Tensor::new(ty.shape.clone(), out)?])
}

/// A value to initialise a buffer that a copy overwrites completely.
fn first_or_default<T: Element>(v: &[T]) -> T {
    match v.first() {
        Some(&x) => x,
        None => zero_of::<T>(),
    }
}

/// Any value of `T` (the buffer it fills is empty or fully overwritten).
fn zero_of<T: Element>() -> T {
    let d = Data::zeros(T::DTYPE, 1);
    T::slice(&d)
        .map(|s| s[0])
        .unwrap_or_else(|| unreachable!("zeros has T's dtype"))
}
