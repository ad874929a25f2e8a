//! Typing rules: the result types of an op applied to operand types, or an error that
//! names the op, the operands and what was expected.

use crate::dtype::{DType, TensorType};
use crate::error::IrError;
use crate::op::{CmpOp, Op, ReduceOp};

fn arity(op: &Op, args: &[&TensorType], n: usize) -> Result<(), IrError> {
    if args.len() != n {
        return Err(IrError::Arity {
            op: op.name().to_string(),
            expected: n.to_string(),
            got: args.len(),
        });
    }
    Ok(())
}

fn err<T>(op: &Op, msg: String) -> Result<T, IrError> {
    Err(IrError::invalid(op.name(), msg))
}

fn check_axes_distinct(op: &Op, axes: &[usize], rank: usize, what: &str) -> Result<(), IrError> {
    let mut seen = vec![false; rank];
    for &a in axes {
        if a >= rank {
            return err(
                op,
                format!("{what} axis {a} is out of range for rank {rank}"),
            );
        }
        if seen[a] {
            return err(op, format!("{what} axis {a} appears twice in {axes:?}"));
        }
        seen[a] = true;
    }
    Ok(())
}

/// Number of elements of `shape`, or None if a buffer of that many elements (of the
/// widest dtype, 16 bytes) could not be addressed.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize / 16)
}

/// Result types of `op` applied to operands of types `args`.
pub fn infer_types(op: &Op, args: &[&TensorType]) -> Result<Vec<TensorType>, IrError> {
    for a in args {
        if checked_numel(&a.shape).is_none() {
            return err(
                op,
                format!(
                    "operand shape {:?} has more elements than fit in memory",
                    a.shape
                ),
            );
        }
    }
    let results = infer_unchecked(op, args)?;
    for r in &results {
        if checked_numel(&r.shape).is_none() {
            return err(
                op,
                format!(
                    "result shape {:?} has more elements than fit in memory",
                    r.shape
                ),
            );
        }
    }
    Ok(results)
}

/// What an elementwise op's dtype policy (from the op table) asks of its operands.
fn accepted_dtypes(accepts: impl Fn(DType) -> bool) -> String {
    let names: Vec<&str> = DType::ALL
        .into_iter()
        .filter(|&d| accepts(d))
        .map(|d| d.name())
        .collect();
    let kind = match (
        accepts(DType::F64),
        accepts(DType::C64),
        accepts(DType::I64),
    ) {
        (true, true, false) => "float or complex",
        (true, false, false) => "real float",
        (true, true, true) => "numeric, not bool",
        (true, false, true) => "real (complex numbers are not ordered)",
        _ => "of the listed dtypes",
    };
    format!("must be {kind} ({})", names.join(", "))
}

fn infer_unchecked(op: &Op, args: &[&TensorType]) -> Result<Vec<TensorType>, IrError> {
    let one = |t: TensorType| Ok(vec![t]);
    match op {
        Op::Unary(u) => {
            arity(op, args, 1)?;
            let x = args[0];
            match u.result_dtype(x.dtype) {
                Some(d) => one(x.with_dtype(d)),
                None => err(
                    op,
                    format!("operand {x}: {}", accepted_dtypes(|d| u.accepts(d))),
                ),
            }
        }
        Op::Binary(b) => {
            arity(op, args, 2)?;
            let (x, y) = (args[0], args[1]);
            if x != y {
                return err(op, format!("operands {x} and {y} must have one type"));
            }
            if !b.accepts(x.dtype) {
                return err(
                    op,
                    format!("operands {x}: {}", accepted_dtypes(|d| b.accepts(d))),
                );
            }
            one(x.clone())
        }
        Op::Compare(c) => {
            arity(op, args, 2)?;
            let (x, y) = (args[0], args[1]);
            if x != y {
                return err(op, format!("operands {x} and {y} must have one type"));
            }
            if x.dtype.is_complex() && !matches!(c, CmpOp::Eq | CmpOp::Ne) {
                return err(
                    op,
                    format!(
                        "{} on complex operands {x}: only eq and ne are defined",
                        c.name()
                    ),
                );
            }
            one(x.with_dtype(DType::Bool))
        }
        Op::Select => {
            arity(op, args, 3)?;
            let (p, t, f) = (args[0], args[1], args[2]);
            if p.dtype != DType::Bool {
                return err(op, format!("predicate {p} must be bool"));
            }
            if t != f {
                return err(op, format!("branches {t} and {f} must have one type"));
            }
            if p.shape != t.shape {
                return err(
                    op,
                    format!("predicate {p} must have the shape of the branches {t}"),
                );
            }
            one(t.clone())
        }
        Op::Reduce { kind, axes } => {
            arity(op, args, 1)?;
            let x = args[0];
            check_axes_distinct(op, axes, x.rank(), "reduction")?;
            if x.dtype == DType::Bool {
                return err(op, format!("operand {x} must be numeric, not bool"));
            }
            if matches!(kind, ReduceOp::Max | ReduceOp::Min) && x.dtype.is_complex() {
                return err(
                    op,
                    format!("operand {x} must be real (complex numbers are not ordered)"),
                );
            }
            let shape = (0..x.rank())
                .filter(|a| !axes.contains(a))
                .map(|a| x.shape[a])
                .collect::<Vec<_>>();
            one(TensorType::new(x.dtype, shape))
        }
        Op::DotGeneral(d) => {
            arity(op, args, 2)?;
            let (l, r) = (args[0], args[1]);
            if l.dtype != r.dtype {
                return err(op, format!("operands {l} and {r} must have one dtype"));
            }
            if l.dtype == DType::Bool {
                return err(op, format!("operands {l} must be numeric, not bool"));
            }
            if d.lhs_contract.len() != d.rhs_contract.len()
                || d.lhs_batch.len() != d.rhs_batch.len()
            {
                return err(
                    op,
                    format!("dimension numbers {d:?} pair unequal numbers of axes"),
                );
            }
            let lhs_axes: Vec<usize> = d.lhs_batch.iter().chain(&d.lhs_contract).copied().collect();
            let rhs_axes: Vec<usize> = d.rhs_batch.iter().chain(&d.rhs_contract).copied().collect();
            check_axes_distinct(op, &lhs_axes, l.rank(), "lhs")?;
            check_axes_distinct(op, &rhs_axes, r.rank(), "rhs")?;
            for (&a, &b) in lhs_axes.iter().zip(&rhs_axes) {
                if l.shape[a] != r.shape[b] {
                    return err(
                        op,
                        format!(
                            "lhs {l} axis {a} (size {}) does not match rhs {r} axis {b} (size {})",
                            l.shape[a], r.shape[b]
                        ),
                    );
                }
            }
            let mut shape: Vec<usize> = d.lhs_batch.iter().map(|&a| l.shape[a]).collect();
            shape.extend(
                (0..l.rank())
                    .filter(|a| !lhs_axes.contains(a))
                    .map(|a| l.shape[a]),
            );
            shape.extend(
                (0..r.rank())
                    .filter(|a| !rhs_axes.contains(a))
                    .map(|a| r.shape[a]),
            );
            one(TensorType::new(l.dtype, shape))
        }
        Op::Transpose { perm } => {
            arity(op, args, 1)?;
            let x = args[0];
            if perm.len() != x.rank() {
                return err(
                    op,
                    format!(
                        "permutation {perm:?} has length {} but operand {x} has rank {}",
                        perm.len(),
                        x.rank()
                    ),
                );
            }
            check_axes_distinct(op, perm, x.rank(), "permutation")?;
            one(TensorType::new(
                x.dtype,
                perm.iter().map(|&p| x.shape[p]).collect::<Vec<_>>(),
            ))
        }
        Op::Reshape { shape } => {
            arity(op, args, 1)?;
            let x = args[0];
            let n = checked_numel(shape).ok_or_else(|| {
                IrError::invalid(
                    op.name(),
                    format!("target shape {shape:?} has more elements than fit in memory"),
                )
            })?;
            if n != x.numel() {
                return err(
                    op,
                    format!(
                        "cannot reshape {x} ({} elements) to {shape:?} ({n} elements)",
                        x.numel()
                    ),
                );
            }
            one(TensorType::new(x.dtype, shape.clone()))
        }
        Op::BroadcastInDim { shape, dims } => {
            arity(op, args, 1)?;
            let x = args[0];
            if dims.len() != x.rank() {
                return err(
                    op,
                    format!("dims {dims:?} must have one entry per axis of operand {x}"),
                );
            }
            check_axes_distinct(op, dims, shape.len(), "broadcast")?;
            if dims.windows(2).any(|w| w[0] >= w[1]) {
                return err(op, format!("dims {dims:?} must be increasing"));
            }
            for (i, &d) in dims.iter().enumerate() {
                if x.shape[i] != 1 && x.shape[i] != shape[d] {
                    return err(op, format!("operand {x} axis {i} (size {}) cannot broadcast to size {} of result axis {d} in {shape:?}", x.shape[i], shape[d]));
                }
            }
            one(TensorType::new(x.dtype, shape.clone()))
        }
        Op::Slice { starts, limits } => {
            arity(op, args, 1)?;
            let x = args[0];
            if starts.len() != x.rank() || limits.len() != x.rank() {
                return err(op, format!("starts {starts:?} and limits {limits:?} must have one entry per axis of operand {x}"));
            }
            for a in 0..x.rank() {
                if starts[a] > limits[a] || limits[a] > x.shape[a] {
                    return err(
                        op,
                        format!(
                            "axis {a}: need start {} <= limit {} <= size {} of operand {x}",
                            starts[a], limits[a], x.shape[a]
                        ),
                    );
                }
            }
            one(TensorType::new(
                x.dtype,
                limits
                    .iter()
                    .zip(starts)
                    .map(|(l, s)| l - s)
                    .collect::<Vec<_>>(),
            ))
        }
        Op::Pad { low, high } => {
            arity(op, args, 2)?;
            let (x, v) = (args[0], args[1]);
            if low.len() != x.rank() || high.len() != x.rank() {
                return err(
                    op,
                    format!(
                        "low {low:?} and high {high:?} must have one entry per axis of operand {x}"
                    ),
                );
            }
            if v.rank() != 0 || v.dtype != x.dtype {
                return err(
                    op,
                    format!("padding value {v} must be a scalar of operand {x}'s dtype"),
                );
            }
            let mut shape = Vec::with_capacity(x.rank());
            for a in 0..x.rank() {
                let size = low[a]
                    .checked_add(x.shape[a])
                    .and_then(|n| n.checked_add(high[a]));
                match size {
                    Some(n) => shape.push(n),
                    None => {
                        return err(
                            op,
                            format!(
                                "axis {a}: low {} + size {} + high {} of operand {x} overflows",
                                low[a], x.shape[a], high[a]
                            ),
                        )
                    }
                }
            }
            one(TensorType::new(x.dtype, shape))
        }
        Op::Concatenate { axis } => {
            if args.is_empty() {
                return Err(IrError::Arity {
                    op: op.name().into(),
                    expected: "at least 1".into(),
                    got: 0,
                });
            }
            let first = args[0];
            if *axis >= first.rank() {
                return err(
                    op,
                    format!("axis {axis} is out of range for operand {first}"),
                );
            }
            let mut shape = first.shape.clone();
            for x in &args[1..] {
                let same = x.dtype == first.dtype
                    && x.rank() == first.rank()
                    && (0..x.rank()).all(|a| a == *axis || x.shape[a] == first.shape[a]);
                if !same {
                    return err(
                        op,
                        format!("operand {x} does not match {first} outside axis {axis}"),
                    );
                }
                shape[*axis] = match shape[*axis].checked_add(x.shape[*axis]) {
                    Some(n) => n,
                    None => {
                        return err(
                            op,
                            format!(
                                "the sizes of axis {axis} of operands {} overflow",
                                args.iter()
                                    .map(|t| t.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    }
                };
            }
            one(TensorType::new(first.dtype, shape))
        }
        Op::Gather { axis } => {
            arity(op, args, 2)?;
            let (x, idx) = (args[0], args[1]);
            if *axis >= x.rank() {
                return err(op, format!("axis {axis} is out of range for operand {x}"));
            }
            if idx.dtype != DType::I64 {
                return err(op, format!("indices {idx} must be i64"));
            }
            if x.shape[*axis] == 0 {
                return err(
                    op,
                    format!("cannot gather from empty axis {axis} of operand {x}"),
                );
            }
            one(TensorType::new(
                x.dtype,
                gather_shape(&x.shape, &idx.shape, *axis),
            ))
        }
        Op::ScatterAdd { axis } => {
            arity(op, args, 3)?;
            let (base, idx, upd) = (args[0], args[1], args[2]);
            if *axis >= base.rank() {
                return err(
                    op,
                    format!("axis {axis} is out of range for operand {base}"),
                );
            }
            if idx.dtype != DType::I64 {
                return err(op, format!("indices {idx} must be i64"));
            }
            if base.shape[*axis] == 0 {
                return err(
                    op,
                    format!("cannot scatter into empty axis {axis} of operand {base}"),
                );
            }
            let want = TensorType::new(base.dtype, gather_shape(&base.shape, &idx.shape, *axis));
            if *upd != want {
                return err(
                    op,
                    format!(
                        "updates {upd} must have type {want} for operand {base} and indices {idx}"
                    ),
                );
            }
            if base.dtype == DType::Bool {
                return err(op, format!("operand {base} must be numeric, not bool"));
            }
            one(base.clone())
        }
        Op::Convert { to } => {
            arity(op, args, 1)?;
            one(args[0].with_dtype(*to))
        }
        Op::Iota { ty, dim } => {
            arity(op, args, 0)?;
            if *dim >= ty.rank() {
                return err(op, format!("dimension {dim} is out of range for {ty}"));
            }
            if ty.dtype == DType::Bool {
                return err(op, format!("type {ty} must be numeric"));
            }
            one(ty.clone())
        }
        Op::Constant(t) => {
            arity(op, args, 0)?;
            one(t.ty())
        }
        Op::Argsort { axis, .. } => {
            arity(op, args, 1)?;
            let x = args[0];
            if *axis >= x.rank() {
                return err(op, format!("axis {axis} is out of range for operand {x}"));
            }
            if x.dtype.is_complex() {
                return err(
                    op,
                    format!("operand {x} must be real (complex numbers are not ordered)"),
                );
            }
            one(x.with_dtype(DType::I64))
        }
        Op::Cumulative { kind, axis, .. } => {
            arity(op, args, 1)?;
            let x = args[0];
            if *axis >= x.rank() {
                return err(op, format!("axis {axis} is out of range for operand {x}"));
            }
            if x.dtype == DType::Bool {
                return err(op, format!("operand {x} must be numeric, not bool"));
            }
            if matches!(kind, ReduceOp::Max | ReduceOp::Min) && x.dtype.is_complex() {
                return err(
                    op,
                    format!("operand {x} must be real (complex numbers are not ordered)"),
                );
            }
            one(x.clone())
        }
        Op::Extension(e) => Ok(e.results.clone()),
        Op::Barrier { .. } => match args.first() {
            Some(x) => one((*x).clone()),
            None => err(op, "expected at least one operand".to_string()),
        },
    }
}

/// Shape of `gather(x, idx, axis)`: `x[..axis] ++ idx ++ x[axis+1..]`.
pub fn gather_shape(x: &[usize], idx: &[usize], axis: usize) -> Vec<usize> {
    let mut s = x[..axis].to_vec();
    s.extend_from_slice(idx);
    s.extend_from_slice(&x[axis + 1..]);
    s
}
