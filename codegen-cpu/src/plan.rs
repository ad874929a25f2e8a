//! `prepare`: checks a function and builds its [`CpuProgram`]: fusion groups (see
//! [`crate::fusion`]) with their kernel schedules, single steps with their kernel choice
//! and precomputed shapes / strides / offsets, the values each step is the last user of
//! (released right after it), and the memory plan (see [`crate::memory`]). It imports the
//! program's types and the kernels' plan constructors; nothing but the crate root imports it.

use crate::buffer::RunCache;
use crate::error::internal;
use crate::fusion::{self, Unit, ValueClass};
use crate::kernels::dot::DotPlan;
use crate::kernels::index::GatherPlan;
use crate::kernels::reduce::ReducePlan;
use crate::kernels::scan::ScanPlan;
use crate::kernels::shared_matrix::SharedMatrixPlan;
use crate::memory::{self, Alloc, MemKind, StepDesc, StepMemory};
use crate::program::{CpuProgram, GraphNode, Step, StepKind};
use crate::schedule;
use crate::strided::StridedCopy;
use tenferro_ir::{col_major_strides, infer_types, Function, IrError, Op, TensorType, ValueDef};
use tenferro_runtime::Result;

/// Checks `f`, partitions it into fusion groups (when `fuse`), plans every step and the
/// memory.
pub(crate) fn prepare(f: &Function, fuse: bool) -> Result<CpuProgram> {
    let n = f.num_values();
    let mut defined = vec![false; n];
    let mut params = Vec::with_capacity(f.params().len());
    for (i, &p) in f.params().iter().enumerate() {
        if p.index() >= n || f.def(p) != (ValueDef::Param(i)) {
            return Err(IrError::Malformed(format!(
                "prepare `{}`: parameter {i} ({p}) is not a parameter of the function",
                f.name
            ))
            .into());
        }
        defined[p.index()] = true;
        params.push((p.index(), f.ty(p).clone()));
    }
    let mut is_output = vec![false; n];
    for o in f.outputs() {
        match is_output.get_mut(o.index()) {
            Some(x) => *x = true,
            None => {
                return Err(IrError::Malformed(format!(
                    "prepare `{}`: output {o} is not in the function",
                    f.name
                ))
                .into())
            }
        }
    }

    // Type-check every instruction and plan it as a single step.
    let mut singles: Vec<(StepKind, Vec<TensorType>)> = Vec::with_capacity(f.insts().len());
    for (k, inst) in f.insts().iter().enumerate() {
        for &a in &inst.args {
            if a.index() >= n || !defined[a.index()] {
                return Err(IrError::UndefinedValue {
                    inst: k,
                    op: inst.op.name().to_string(),
                    value: a.index() as u32,
                }
                .into());
            }
        }
        let arg_tys: Vec<&TensorType> = inst.args.iter().map(|&a| f.ty(a)).collect();
        let inferred = infer_types(&inst.op, &arg_tys)?;
        if inferred.len() != inst.results.len() {
            return Err(IrError::Malformed(format!(
                "instruction {k} ({}) has {} results but the op produces {}",
                inst.op.name(),
                inst.results.len(),
                inferred.len()
            ))
            .into());
        }
        for (&r, ty) in inst.results.iter().zip(&inferred) {
            let recorded = f.try_ty(r).ok_or_else(|| {
                IrError::Malformed(format!(
                    "instruction {k}: result {r} is not in the function"
                ))
            })?;
            if recorded != ty || defined[r.index()] {
                return Err(IrError::TypeMismatch {
                    inst: k,
                    op: inst.op.name().to_string(),
                    value: r.index() as u32,
                    recorded: recorded.to_string(),
                    inferred: ty.to_string(),
                }
                .into());
            }
            defined[r.index()] = true;
        }
        // An op without results (an extension op may declare none) computes nothing the
        // program can read; the backend plans only ops that produce a value.
        let Some(out) = inferred.first() else {
            return Err(IrError::invalid(
                inst.op.name(),
                format!(
                    "instruction {k} declares no results; the CPU backend runs only ops that produce a value"
                ),
            )
            .into());
        };
        let kind = plan_op(&inst.op, &arg_tys, out)?;
        singles.push((kind, inferred));
    }
    for o in f.outputs() {
        if !defined[o.index()] {
            return Err(IrError::Malformed(format!(
                "prepare `{}`: output {o} is never defined",
                f.name
            ))
            .into());
        }
    }

    // Partition (or one step per instruction).
    let (groups, class, units, notes, composed) = if fuse {
        let p = fusion::partition(f);
        (p.groups, p.class, p.units, p.notes, p.composed_views)
    } else {
        (
            Vec::new(),
            vec![ValueClass::Materialized; n],
            (0..f.insts().len()).map(Unit::Single).collect(),
            Vec::new(),
            Vec::new(),
        )
    };
    let mut group_of_inst: Vec<Option<usize>> = vec![None; f.insts().len()];
    for g in &groups {
        for &k in &g.insts {
            group_of_inst[k] = Some(g.id);
        }
    }
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, inst) in f.insts().iter().enumerate() {
        for a in &inst.args {
            consumers[a.index()].push(k);
        }
    }
    let mut singles: Vec<Option<(StepKind, Vec<TensorType>)>> =
        singles.into_iter().map(Some).collect();

    // A product read only by a transpose writes the transposed result itself where
    // `DotPlan::absorb_transpose` can: the transpose step disappears.
    let mut def_inst: Vec<Option<usize>> = vec![None; n];
    for (k, inst) in f.insts().iter().enumerate() {
        for r in &inst.results {
            def_inst[r.index()] = Some(k);
        }
    }
    // Transpose instruction -> the product that writes its result.
    let mut transposed_by: Vec<Option<usize>> = vec![None; f.insts().len()];
    for (k, inst) in f.insts().iter().enumerate() {
        let Op::Transpose { perm } = &inst.op else {
            continue;
        };
        let a = inst.args[0].index();
        let t = inst.results[0].index();
        let Some(d) = def_inst[a] else { continue };
        if is_output[a] || consumers[a].as_slice() != [k] {
            continue;
        }
        if !matches!(class[a], ValueClass::Materialized)
            || !matches!(class[t], ValueClass::Materialized)
        {
            continue;
        }
        if let Some((StepKind::Dot(plan), tys)) = &mut singles[d] {
            if plan.absorb_transpose(perm) {
                *tys = vec![f.ty(inst.results[0]).clone()];
                transposed_by[k] = Some(d);
            }
        }
    }
    // A batched product read only by another product, as one operand, leaves its result
    // in its `[m, n, batch]` scratch and the reader reads it through those strides: the
    // unbatching copy becomes at most the reader's pack, a copy within each batch's block.
    let mut product_result: Vec<Option<usize>> = vec![None; f.insts().len()];
    let mut producer = def_inst;
    for (k, d) in transposed_by.iter().enumerate() {
        if let Some(d) = d {
            let t = f.insts()[k].results[0].index();
            product_result[*d] = Some(t);
            producer[t] = Some(*d);
        }
    }
    for (c, inst) in f.insts().iter().enumerate() {
        if !matches!(&inst.op, Op::DotGeneral(_)) || inst.args.len() != 2 {
            continue;
        }
        for side in 0..2 {
            let v = inst.args[side].index();
            if is_output[v]
                || consumers[v].as_slice() != [c]
                || !matches!(class[v], ValueClass::Materialized)
            {
                continue;
            }
            let Some(d) = producer[v] else { continue };
            let strides = match &singles[d] {
                Some((StepKind::Dot(p), _)) => p.scratch_strides(),
                _ => None,
            };
            let Some(strides) = strides else { continue };
            let Some((StepKind::Dot(reader), _)) = &mut singles[c] else {
                continue;
            };
            if reader.on_lanes() {
                continue;
            }
            reader.read_with_strides(side, strides);
            if let Some((StepKind::Dot(p), _)) = &mut singles[d] {
                p.keep_scratch_layout();
            }
        }
    }

    let mut steps: Vec<Step> = Vec::with_capacity(units.len());
    for unit in &units {
        match *unit {
            Unit::Single(k) if transposed_by[k].is_some() => {}
            Unit::Single(k) => {
                let inst = &f.insts()[k];
                let (mut kind, result_types) = singles[k]
                    .take()
                    .ok_or_else(|| internal(inst.op.name(), "instruction planned twice"))?;
                let mut args: Vec<usize> = inst.args.iter().map(|a| a.index()).collect();
                // A view of a view: one strided copy from the underlying buffer.
                if let Some((_, vi)) = composed.iter().find(|(i, _)| *i == k) {
                    let shape = &result_types[0].shape;
                    kind = StepKind::Copy(StridedCopy::new(
                        shape,
                        vi.offset,
                        &vi.strides,
                        0,
                        &col_major_strides(shape),
                    ));
                    args = vec![vi.base];
                }
                let results = match product_result[k] {
                    Some(t) => vec![t],
                    None => inst.results.iter().map(|r| r.index()).collect(),
                };
                let mut op_name = match product_result[k] {
                    Some(_) => format!("{} + transpose", inst.op.name()),
                    None => inst.op.name().to_string(),
                };
                if let Some(layout) = match &kind {
                    StepKind::Dot(p) => p.direct_layout(),
                    _ => None,
                } {
                    op_name.push_str(", ");
                    op_name.push_str(layout);
                }
                steps.push(Step {
                    op_name,
                    kind,
                    args,
                    results,
                    result_types,
                    free_after: Vec::new(),
                    memory: StepMemory::default(),
                });
            }
            Unit::Group(g) => {
                let group = &groups[g];
                let stored = |v: usize| -> bool {
                    if is_output[v] {
                        return true;
                    }
                    consumers[v].iter().any(|&k| group_of_inst[k] != Some(g))
                };
                let sched = schedule::build(f, group, &class, &stored);
                steps.push(Step {
                    op_name: format!("fused g{g}"),
                    args: sched.inputs.iter().map(|(v, _)| *v).collect(),
                    results: sched.outputs.iter().map(|o| o.value).collect(),
                    result_types: sched.outputs.iter().map(|o| o.ty.clone()).collect(),
                    kind: StepKind::Fused(Box::new(sched)),
                    free_after: Vec::new(),
                    memory: StepMemory::default(),
                });
            }
        }
    }

    merge_shared_matrix(f, &mut steps, &is_output);

    // Last use of every slot over the steps; outputs are never freed.
    let mut last_use: Vec<Option<usize>> = vec![None; n];
    for (si, s) in steps.iter().enumerate() {
        for &a in &s.args {
            last_use[a] = Some(si);
        }
    }
    for (si, s) in steps.iter_mut().enumerate() {
        let mut free_after: Vec<usize> = Vec::new();
        for &a in &s.args {
            if last_use[a] == Some(si) && !is_output[a] && !free_after.contains(&a) {
                free_after.push(a);
            }
        }
        // Results nobody reads are dropped at once.
        for &r in &s.results {
            if last_use[r].is_none() && !is_output[r] {
                free_after.push(r);
            }
        }
        s.free_after = free_after;
    }
    let unused_params = params
        .iter()
        .map(|(s, _)| *s)
        .filter(|&s| last_use[s].is_none() && !is_output[s])
        .collect();

    // Memory plan.
    let descs: Vec<StepDesc<'_>> = steps
        .iter()
        .map(|s| StepDesc {
            args: &s.args,
            results: &s.results,
            result_types: &s.result_types,
            frees: &s.free_after,
            kind: match &s.kind {
                StepKind::Fused(k) => MemKind::Fused {
                    inplace: k.inplace_candidates.clone(),
                },
                StepKind::Reshape(_) => MemKind::Reshape,
                StepKind::Extension(_) => MemKind::Extension,
                StepKind::Constant(_) => MemKind::Constant,
                _ => MemKind::Fresh,
            },
        })
        .collect();
    let param_slots: Vec<usize> = params.iter().map(|(s, _)| *s).collect();
    let (mems, peak_bytes) = memory::plan(n, &param_slots, &descs);
    drop(descs);
    for (s, m) in steps.iter_mut().zip(mems) {
        if let StepKind::Fused(k) = &mut s.kind {
            for (ri, a) in m.allocs.iter().enumerate() {
                if let Alloc::InPlace(ai) = a {
                    k.apply_inplace(*ai, ri);
                }
            }
        }
        s.memory = m;
    }

    let graph = f
        .insts()
        .iter()
        .enumerate()
        .map(|(k, inst)| GraphNode {
            op: inst.op.name().to_string(),
            args: inst.args.iter().map(|a| a.index()).collect(),
            results: inst.results.iter().map(|r| r.index()).collect(),
            types: inst.results.iter().map(|r| f.ty(*r).clone()).collect(),
            group: group_of_inst[k],
            view: group_of_inst[k].is_none()
                && matches!(class[inst.results[0].index()], ValueClass::View(_)),
        })
        .collect();
    let shapes: Vec<Vec<usize>> = (0..n)
        .map(|v| {
            f.try_ty(tenferro_ir::Value::from_index(v))
                .map(|t| t.shape.clone())
                .unwrap_or_default()
        })
        .collect();
    let threaded_steps = steps.iter().filter(|s| s.uses_threads(&shapes)).count();
    Ok(CpuProgram {
        name: f.name.clone(),
        num_slots: n,
        params,
        steps,
        outputs: f.outputs().iter().map(|o| o.index()).collect(),
        unused_params,
        groups,
        notes,
        graph,
        peak_bytes,
        fused: fuse,
        shapes,
        cache: RunCache::default(),
        threaded_steps,
    })
}

/// Merges a product `y = A·X`, the fused group computing `w` from `y` row by row, and the
/// product `Aᵀ·w` into one [`StepKind::SharedMatrix`] step at the place of the last one,
/// which reads `A` once (see [`crate::kernels::shared_matrix`]), where `y` and `w` are read
/// by no other step and are not outputs.
fn merge_shared_matrix(f: &Function, steps: &mut Vec<Step>, is_output: &[bool]) {
    let n = f.num_values();
    let ty = |v: usize| f.ty(tenferro_ir::Value::from_index(v));
    let mut def_inst: Vec<Option<usize>> = vec![None; n];
    for (k, inst) in f.insts().iter().enumerate() {
        for r in &inst.results {
            def_inst[r.index()] = Some(k);
        }
    }
    let mut step_of: Vec<Option<usize>> = vec![None; n];
    let mut readers = vec![0usize; n];
    for (si, s) in steps.iter().enumerate() {
        for &r in &s.results {
            step_of[r] = Some(si);
        }
        for &a in &s.args {
            readers[a] += 1;
        }
    }
    let dot_of = |v: usize| -> Option<&tenferro_ir::DotDims> {
        match &f.insts()[def_inst[v]?].op {
            Op::DotGeneral(d) if d.lhs_batch.is_empty() && d.rhs_batch.is_empty() => Some(d),
            _ => None,
        }
    };
    // A value in a product's `[m, n, batch]` scratch layout is not column-major.
    let column_major = |v: usize, steps: &[Step]| match step_of[v].map(|s| &steps[s].kind) {
        Some(StepKind::Dot(p)) => !p.writes_scratch_layout(),
        _ => true,
    };
    let private = |v: usize| !is_output[v] && readers[v] == 1;
    let mut removed = vec![false; steps.len()];
    for s3 in 0..steps.len() {
        if !matches!(steps[s3].kind, StepKind::Dot(_)) || steps[s3].args.len() != 2 {
            continue;
        }
        let r3 = steps[s3].results[0];
        let Some(d3) = dot_of(r3) else { continue };
        if d3.lhs_contract != [0] || d3.rhs_contract != [0] {
            continue;
        }
        let (l, r) = (steps[s3].args[0], steps[s3].args[1]);
        let (a, wv) = match (ty(l).rank(), ty(r).rank()) {
            (2, 1) => (l, r),
            (1, 2) => (r, l),
            _ => continue,
        };
        let (m, k, dtype) = (ty(a).shape[0], ty(a).shape[1], ty(a).dtype);
        if ty(wv).shape != [m] || ty(wv).dtype != dtype || !private(wv) {
            continue;
        }
        let Some(s2) = step_of[wv] else { continue };
        let StepKind::Fused(sched) = &steps[s2].kind else {
            continue;
        };
        if steps[s2].results != [wv] {
            continue;
        }
        let mut merged = None;
        for (yi, &y) in steps[s2].args.iter().enumerate() {
            if !private(y) {
                continue;
            }
            let Some(s1) = step_of[y] else { continue };
            if !matches!(steps[s1].kind, StepKind::Dot(_)) || steps[s1].results != [y] {
                continue;
            }
            let Some(d1) = dot_of(y) else { continue };
            let (a1, x) = (steps[s1].args[0], steps[s1].args[1]);
            if a1 != a || d1.lhs_contract != [1] || d1.rhs_contract != [0] {
                continue;
            }
            let p = match ty(x).shape.as_slice() {
                [kx] if *kx == k => 1,
                [kx, p] if *kx == k => *p,
                _ => continue,
            };
            let y_shape: &[usize] = &ty(y).shape;
            if !(y_shape == [m] && p == 1 || y_shape == [m, p]) || ty(x).dtype != dtype {
                continue;
            }
            if !column_major(a, steps) || !column_major(x, steps) {
                continue;
            }
            let Some(plan) = SharedMatrixPlan::new(dtype, [m, k, p], (**sched).clone(), yi) else {
                continue;
            };
            let mut args = vec![a, x];
            args.extend(
                steps[s2]
                    .args
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != yi)
                    .map(|(_, &v)| v),
            );
            merged = Some((s1, plan, args));
            break;
        }
        let Some((s1, plan, args)) = merged else {
            continue;
        };
        let step = &mut steps[s3];
        step.op_name = format!("dot_general + fused g{} + dot_general", plan.sched.group);
        step.kind = StepKind::SharedMatrix(Box::new(plan));
        step.args = args;
        removed[s1] = true;
        removed[s2] = true;
    }
    let mut i = 0;
    steps.retain(|_| {
        i += 1;
        !removed[i - 1]
    });
}

/// Chooses the kernel of one (type-checked) op and precomputes its plan.
fn plan_op(op: &Op, args: &[&TensorType], out: &TensorType) -> Result<StepKind> {
    Ok(match op {
        Op::Unary(u) => StepKind::Unary(*u),
        Op::Binary(b) => StepKind::Binary(*b),
        Op::Compare(c) => StepKind::Compare(*c),
        Op::Select => StepKind::Select,
        Op::Convert { to } => StepKind::Convert(*to),
        Op::Reduce { kind, axes } => StepKind::Reduce(*kind, ReducePlan::new(&args[0].shape, axes)),
        Op::DotGeneral(d) => StepKind::Dot(Box::new(DotPlan::new(d, args[0], args[1], out)?)),
        Op::Transpose { perm } => {
            let xs = col_major_strides(&args[0].shape);
            let src: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
            StepKind::Copy(StridedCopy::new(
                &out.shape,
                0,
                &src,
                0,
                &col_major_strides(&out.shape),
            ))
        }
        Op::Reshape { shape } => StepKind::Reshape(shape.clone()),
        // The value of operand 0 in the same buffer (an alias, like a reshape); the other
        // operands are only dependencies, kept alive until this step.
        Op::Barrier { .. } => StepKind::Reshape(args[0].shape.clone()),
        Op::BroadcastInDim { dims, .. } => {
            let x = &args[0].shape;
            let xs = col_major_strides(x);
            let mut src = vec![0usize; out.rank()];
            for (i, &d) in dims.iter().enumerate() {
                if x[i] != 1 {
                    src[d] = xs[i];
                }
            }
            StepKind::Copy(StridedCopy::new(
                &out.shape,
                0,
                &src,
                0,
                &col_major_strides(&out.shape),
            ))
        }
        Op::Slice { starts, .. } => {
            let xs = col_major_strides(&args[0].shape);
            let offset = saturating_dot(starts, &xs);
            StepKind::Copy(StridedCopy::new(
                &out.shape,
                offset,
                &xs,
                0,
                &col_major_strides(&out.shape),
            ))
        }
        Op::Pad { low, .. } => {
            let x = &args[0].shape;
            let os = col_major_strides(&out.shape);
            let offset = saturating_dot(low, &os);
            StepKind::Pad(StridedCopy::new(x, 0, &col_major_strides(x), offset, &os))
        }
        Op::Concatenate { axis } => {
            let os = col_major_strides(&out.shape);
            let mut at: usize = 0;
            let copies = args
                .iter()
                .map(|x| {
                    let c = StridedCopy::new(
                        &x.shape,
                        0,
                        &col_major_strides(&x.shape),
                        at.saturating_mul(os[*axis]),
                        &os,
                    );
                    at = at.saturating_add(x.shape[*axis]);
                    c
                })
                .collect();
            StepKind::Concatenate(copies)
        }
        Op::Gather { axis } => StepKind::Gather(GatherPlan::new(&args[0].shape, args[1], *axis)),
        Op::ScatterAdd { axis } => {
            StepKind::ScatterAdd(GatherPlan::new(&args[0].shape, args[1], *axis))
        }
        Op::Iota { ty, dim } => StepKind::Iota {
            pre: saturating_product(&ty.shape[..*dim]),
            n: ty.shape[*dim],
            post: saturating_product(&ty.shape[*dim + 1..]),
        },
        Op::Constant(t) => StepKind::Constant(t.clone()),
        Op::Extension(e) => StepKind::Extension(e.clone()),
        Op::Cumulative {
            kind,
            axis,
            reverse,
        } => StepKind::Scan(*kind, ScanPlan::new(&args[0].shape, *axis, *reverse)),
        Op::Argsort { axis, descending } => {
            StepKind::Argsort(*descending, ScanPlan::new(&args[0].shape, *axis, false))
        }
    })
}

/// `Σ a[i]·b[i]`, saturating at `usize::MAX`: an element offset. It saturates only for an
/// empty result (whose strides may saturate, see [`col_major_strides`]), where no offset
/// addresses an element.
fn saturating_dot(a: &[usize], b: &[usize]) -> usize {
    a.iter().zip(b).fold(0usize, |acc, (x, y)| {
        acc.saturating_add(x.saturating_mul(*y))
    })
}

/// Product of `dims`, saturating at `usize::MAX` (only for an empty shape, whose partial
/// products address no element).
fn saturating_product(dims: &[usize]) -> usize {
    dims.iter().fold(1usize, |acc, &d| acc.saturating_mul(d))
}
