//! The reference interpreter: evaluates ops ([`eval_op`]) and whole functions ([`eval`]) on
//! host [`Tensor`]s with plain column-major index arithmetic. It is the oracle of backend
//! tests and the engine of constant folding, so it aims to be obviously right, not fast.
//!
//! Numerical conventions (the backends must match them bit for bit):
//! - elementwise unary and binary ops compute the per-element semantics of the op table
//!   ([`crate::optable`], where each op states them for every dtype it accepts);
//! - reductions start from the identity (0, 1, -inf / the integer minimum, +inf / the
//!   integer maximum) and
//!   combine elements one at a time in column-major order of the operand;
//! - `dot_general` accumulates `acc + l*r` from 0, the contracting indices in column-major
//!   order (first contracting axis fastest);
//! - `scatter_add` adds updates one at a time in column-major order of the updates.
//! - `argsort` is a stable sort under [`sort_cmp`]'s total order (`-0 == +0`, NaN last and
//!   equal to every NaN); `descending` reverses the order, still stable;
//! - cumulative ops start from the first element of the line (no identity: a cumsum of
//!   `[-0.0]` is `[-0.0]`) and combine `acc ⊕ x` one element at a time, max/min with the
//!   NaN-propagating `maximum` / `minimum`, integers wrapping.
//!
//! [`eval_in_order`] evaluates with the terms of reductions and contractions visited in
//! another order ([`SumOrder`]); it tells a program whose value rounding decides from one
//! a backend computes wrongly.

use crate::dtype::{col_major_strides, DType, TensorType};
use crate::error::IrError;
use crate::function::Function;
use crate::infer::infer_types;
use crate::op::{BinaryOp, CmpOp, DotDims, Op, ReduceOp, UnaryOp};
use crate::optable::{max_f32, max_f64, min_f32, min_f64, ElemMap, ElemMap2};
use crate::tensor::{try_vec_with_capacity, Data, Tensor};
use num_complex::{Complex, Complex32, Complex64};

/// Runs `$body` with `$T` bound to the element type of dtype `$dt`.
macro_rules! with_elem {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
            DType::C32 => {
                type $T = Complex32;
                $body
            }
            DType::C64 => {
                type $T = Complex64;
                $body
            }
            DType::I32 => {
                type $T = i32;
                $body
            }
            DType::I64 => {
                type $T = i64;
                $body
            }
            DType::Bool => {
                type $T = bool;
                $body
            }
        }
    };
}

/// Evaluates `op` on `args`. The operand types are checked with [`infer_types`] first;
/// extension ops are an error (their kernels live in extension crates).
pub fn eval_op(op: &Op, args: &[&Tensor]) -> Result<Vec<Tensor>, IrError> {
    if let Op::Extension(e) = op {
        return Err(IrError::invalid(
            &e.name,
            format!(
                "the reference evaluator cannot run extension op `{}`",
                e.name
            ),
        ));
    }
    let tys: Vec<TensorType> = args.iter().map(|t| t.ty()).collect();
    let ty_refs: Vec<&TensorType> = tys.iter().collect();
    let out_tys = infer_types(op, &ty_refs)?;
    let out_ty = &out_tys[0];
    let shape = out_ty.shape.clone();
    let result = match op {
        Op::Unary(u) => eval_unary(op, *u, args[0])?,
        Op::Binary(b) => eval_binary(op, *b, args[0], args[1])?,
        Op::Compare(c) => eval_compare(op, *c, args[0], args[1])?,
        Op::Select => {
            let p = args[0].as_slice::<bool>()?;
            with_elem!(args[1].dtype(), T => {
                let t = args[1].as_slice::<T>()?;
                let f = args[2].as_slice::<T>()?;
                let v: Vec<T> = (0..p.len()).map(|i| if p[i] { t[i] } else { f[i] }).collect();
                Tensor::from_vec_col_major(shape, v)?
            })
        }
        Op::Reduce { kind, axes } => eval_reduce(op, *kind, axes, args[0], shape)?,
        Op::DotGeneral(d) => eval_dot(op, d, args[0], args[1], shape)?,
        Op::Transpose { perm } => {
            let x = args[0];
            let xs = col_major_strides(x.shape());
            let src = map_indices(op.name(), &shape, |r| {
                perm.iter()
                    .enumerate()
                    .map(|(i, &p)| r[i] * xs[p])
                    .sum::<usize>()
            })?;
            take(op.name(), x, shape, &src)?
        }
        Op::Reshape { .. } => args[0].reshaped(shape)?,
        Op::BroadcastInDim { dims, .. } => {
            let x = args[0];
            let xs = col_major_strides(x.shape());
            let src = map_indices(op.name(), &shape, |r| {
                dims.iter()
                    .enumerate()
                    .map(|(i, &d)| if x.shape()[i] == 1 { 0 } else { r[d] * xs[i] })
                    .sum::<usize>()
            })?;
            take(op.name(), x, shape, &src)?
        }
        Op::Slice { starts, .. } => {
            let x = args[0];
            let xs = col_major_strides(x.shape());
            let src = map_indices(op.name(), &shape, |r| {
                (0..r.len()).map(|a| (starts[a] + r[a]) * xs[a]).sum()
            })?;
            take(op.name(), x, shape, &src)?
        }
        Op::Pad { low, .. } => {
            let x = args[0];
            let xs = col_major_strides(x.shape());
            let src = map_indices(op.name(), &shape, |r| {
                let mut off = 0;
                for a in 0..r.len() {
                    if r[a] < low[a] || r[a] - low[a] >= x.shape()[a] {
                        return None;
                    }
                    off += (r[a] - low[a]) * xs[a];
                }
                Some(off)
            })?;
            with_elem!(x.dtype(), T => {
                let v = x.as_slice::<T>()?;
                let fill = args[1].as_slice::<T>()?[0];
                let out: Vec<T> = try_collect(op.name(), src.len(), src.iter().map(|s| s.map_or(fill, |i| v[i])))?;
                Tensor::from_vec_col_major(shape, out)?
            })
        }
        Op::Concatenate { axis } => {
            let axis = *axis;
            // For each output element: (operand, offset in that operand).
            let strides: Vec<Vec<usize>> =
                args.iter().map(|t| col_major_strides(t.shape())).collect();
            let src = map_indices(op.name(), &shape, |r| {
                let mut pos = r[axis];
                let mut k = 0;
                while pos >= args[k].shape()[axis] {
                    pos -= args[k].shape()[axis];
                    k += 1;
                }
                let off: usize = (0..r.len())
                    .map(|a| if a == axis { pos } else { r[a] } * strides[k][a])
                    .sum();
                (k, off)
            })?;
            with_elem!(args[0].dtype(), T => {
                let parts = args.iter().map(|t| t.as_slice::<T>()).collect::<Result<Vec<_>, _>>()?;
                let out: Vec<T> = try_collect(op.name(), src.len(), src.iter().map(|&(k, i)| parts[k][i]))?;
                Tensor::from_vec_col_major(shape, out)?
            })
        }
        Op::Gather { axis } => {
            let src = gather_offsets(op.name(), args[0].shape(), args[1], *axis)?;
            take(op.name(), args[0], shape, &src)?
        }
        Op::ScatterAdd { axis } => {
            let (base, upd) = (args[0], args[2]);
            let dst = gather_offsets(op.name(), base.shape(), args[1], *axis)?;
            macro_rules! scatter {
                ($T:ty, $add:expr) => {{
                    let mut out = base.as_slice::<$T>()?.to_vec();
                    for (j, &u) in upd.as_slice::<$T>()?.iter().enumerate() {
                        out[dst[j]] = $add(out[dst[j]], u);
                    }
                    Tensor::from_vec_col_major(shape, out)?
                }};
            }
            match base.dtype() {
                DType::F32 => scatter!(f32, |a: f32, b: f32| a + b),
                DType::F64 => scatter!(f64, |a: f64, b: f64| a + b),
                DType::C32 => scatter!(Complex32, |a: Complex32, b: Complex32| a + b),
                DType::C64 => scatter!(Complex64, |a: Complex64, b: Complex64| a + b),
                DType::I32 => scatter!(i32, |a: i32, b: i32| a.wrapping_add(b)),
                DType::I64 => scatter!(i64, |a: i64, b: i64| a.wrapping_add(b)),
                DType::Bool => {
                    return Err(IrError::invalid(
                        op.name(),
                        "bool operands are not supported",
                    ))
                }
            }
        }
        Op::Convert { to } => Tensor::new(shape, convert_data(args[0].data(), *to))?,
        Op::Iota { dim, .. } => {
            let pos: Vec<usize> = map_indices(op.name(), &shape, |r| r[*dim])?;
            let data = match out_ty.dtype {
                DType::F32 => Data::F32(try_collect(
                    op.name(),
                    pos.len(),
                    pos.iter().map(|&k| k as f32),
                )?),
                DType::F64 => Data::F64(try_collect(
                    op.name(),
                    pos.len(),
                    pos.iter().map(|&k| k as f64),
                )?),
                DType::C32 => Data::C32(try_collect(
                    op.name(),
                    pos.len(),
                    pos.iter().map(|&k| Complex32::new(k as f32, 0.0)),
                )?),
                DType::C64 => Data::C64(try_collect(
                    op.name(),
                    pos.len(),
                    pos.iter().map(|&k| Complex64::new(k as f64, 0.0)),
                )?),
                DType::I32 => Data::I32(try_collect(
                    op.name(),
                    pos.len(),
                    pos.iter().map(|&k| k as i32),
                )?),
                DType::I64 => Data::I64(try_collect(
                    op.name(),
                    pos.len(),
                    pos.iter().map(|&k| k as i64),
                )?),
                DType::Bool => {
                    return Err(IrError::invalid(op.name(), "bool iota is not supported"))
                }
            };
            Tensor::new(shape, data)?
        }
        Op::Constant(t) => t.clone(),
        Op::Argsort { axis, descending } => eval_argsort(op, args[0], *axis, *descending)?,
        Op::Cumulative {
            kind,
            axis,
            reverse,
        } => eval_cumulative(op, *kind, args[0], *axis, *reverse)?,
        Op::Extension(_) => unreachable!("handled above"),
        Op::Barrier { .. } => args[0].clone(),
    };
    debug_assert_eq!(
        result.ty(),
        *out_ty,
        "eval_op({op:?}) disagrees with infer_types"
    );
    Ok(vec![result])
}

/// The order in which [`eval_in_order`] visits the terms of reductions and contractions.
/// Every order is a valid way to compute the op; they differ by rounding only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SumOrder {
    /// Column-major order, one term at a time (the module's conventions; [`eval`]).
    #[default]
    Sequential,
    /// The reverse of `Sequential`.
    Reversed,
    /// Eight interleaved partial results (term `i` into partial `i mod 8`) combined in
    /// turn, as an 8-lane vector loop adds; a contraction visits its terms `0, 8, 16, …,
    /// 1, 9, …`.
    Strided,
    /// `Sequential`, with each real contraction term added by a fused multiply-add (one
    /// rounding per term, as FMA-based GEMM kernels compute); a complex term `x·y` adds
    /// into each part by two, the real part's first (`re += x.re·y.re`, then
    /// `re -= x.im·y.im`; `im += x.re·y.im`, then `im += x.im·y.re`), as SIMD complex
    /// kernels do.
    Fused,
    /// The terms of every reduction and contraction summed pairwise (each half, then the
    /// two halves), whose rounding error grows with the logarithm of the count instead of
    /// the count: close to what a blocked kernel computes on a long sum, where
    /// `Sequential` is the one far from the exact value.
    Pairwise,
}

/// Partial results of [`SumOrder::Strided`].
const STRIDED_LANES: usize = 8;

thread_local! {
    static SUM_ORDER: std::cell::Cell<SumOrder> = const { std::cell::Cell::new(SumOrder::Sequential) };
}

/// [`eval`] with the terms of every reduction and contraction visited in `order`.
pub fn eval_in_order(
    f: &Function,
    inputs: &[Tensor],
    order: SumOrder,
) -> Result<Vec<Tensor>, IrError> {
    /// Restores the sequential order, also when evaluation unwinds.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            SUM_ORDER.with(|o| o.set(SumOrder::Sequential));
        }
    }
    SUM_ORDER.with(|o| o.set(order));
    let _reset = Reset;
    eval(f, inputs)
}

fn sum_order() -> SumOrder {
    SUM_ORDER.with(|o| o.get())
}

/// Evaluates `f` on `inputs` (one per parameter, of the parameter's type).
pub fn eval(f: &Function, inputs: &[Tensor]) -> Result<Vec<Tensor>, IrError> {
    if inputs.len() != f.params().len() {
        return Err(IrError::Malformed(format!(
            "eval `{}`: {} inputs for {} parameters",
            f.name,
            inputs.len(),
            f.params().len()
        )));
    }
    let mut env: Vec<Option<Tensor>> = vec![None; f.num_values()];
    for (i, (&p, t)) in f.params().iter().zip(inputs).enumerate() {
        let want = f.ty(p);
        if t.ty() != *want {
            return Err(IrError::Malformed(format!(
                "eval `{}`: input {i} has type {} but parameter {p} has type {want}",
                f.name,
                t.ty()
            )));
        }
        env[p.index()] = Some(t.clone());
    }
    for (n, inst) in f.insts().iter().enumerate() {
        let args = inst
            .args
            .iter()
            .map(|a| {
                env.get(a.index())
                    .and_then(|t| t.as_ref())
                    .ok_or(IrError::UndefinedValue {
                        inst: n,
                        op: inst.op.name().to_string(),
                        value: a.index() as u32,
                    })
            })
            .collect::<Result<Vec<&Tensor>, IrError>>()?;
        let results = eval_op(&inst.op, &args)?;
        if results.len() != inst.results.len() {
            return Err(IrError::Malformed(format!(
                "instruction {n} ({}) has {} results but the op produces {}",
                inst.op.name(),
                inst.results.len(),
                results.len()
            )));
        }
        for (&r, t) in inst.results.iter().zip(results) {
            let recorded = f.try_ty(r).ok_or_else(|| {
                IrError::Malformed(format!(
                    "instruction {n}: result {r} is not in the function"
                ))
            })?;
            if *recorded != t.ty() {
                return Err(IrError::TypeMismatch {
                    inst: n,
                    op: inst.op.name().to_string(),
                    value: r.index() as u32,
                    recorded: recorded.to_string(),
                    inferred: t.ty().to_string(),
                });
            }
            env[r.index()] = Some(t);
        }
    }
    f.outputs()
        .iter()
        .map(|o| {
            env.get(o.index()).and_then(|t| t.clone()).ok_or_else(|| {
                IrError::Malformed(format!("eval `{}`: output {o} is never defined", f.name))
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Index arithmetic.

/// For every element of `shape` in column-major order, `g(multi_index)`;
/// [`IrError::AllocationFailed`] naming `op` when the list cannot be allocated.
fn map_indices<R>(
    op: &str,
    shape: &[usize],
    mut g: impl FnMut(&[usize]) -> R,
) -> Result<Vec<R>, IrError> {
    let n = crate::infer::checked_numel(shape).ok_or_else(|| {
        IrError::invalid(
            op,
            format!("shape {shape:?} has more elements than fit in memory"),
        )
    })?;
    let mut idx = vec![0usize; shape.len()];
    let mut out = try_vec_with_capacity(op, n)?;
    for _ in 0..n {
        out.push(g(&idx));
        for (a, &size) in shape.iter().enumerate() {
            idx[a] += 1;
            if idx[a] < size {
                break;
            }
            idx[a] = 0;
        }
    }
    Ok(out)
}

/// The items of `it` (which yields `n`), collected into a vector allocated fallibly:
/// [`IrError::AllocationFailed`] naming `op` when it cannot be.
fn try_collect<T>(op: &str, n: usize, it: impl IntoIterator<Item = T>) -> Result<Vec<T>, IrError> {
    let mut v = try_vec_with_capacity(op, n)?;
    v.extend(it);
    Ok(v)
}

/// `x`'s elements at offsets `src`, as a tensor of `shape`.
fn take(op: &str, x: &Tensor, shape: Vec<usize>, src: &[usize]) -> Result<Tensor, IrError> {
    with_elem!(x.dtype(), T => {
        let v = x.as_slice::<T>()?;
        Tensor::from_vec_col_major(shape, try_collect(op, src.len(), src.iter().map(|&i| v[i]))?)
    })
}

/// For each element of `gather(x, idx, axis)` (column-major), its offset in `x`, with
/// indices clamped into `[0, x_shape[axis] - 1]`.
fn gather_offsets(
    op: &str,
    x_shape: &[usize],
    idx: &Tensor,
    axis: usize,
) -> Result<Vec<usize>, IrError> {
    let indices = idx.as_slice::<i64>()?;
    let m = idx.shape().len();
    let xs = col_major_strides(x_shape);
    let is = col_major_strides(idx.shape());
    // The largest index, as an i64 (an axis longer than i64::MAX clamps at i64::MAX; an
    // empty axis, which the typing rule rejects, at 0).
    let hi = i64::try_from(x_shape[axis].saturating_sub(1)).unwrap_or(i64::MAX);
    let out_shape = crate::infer::gather_shape(x_shape, idx.shape(), axis);
    map_indices(op, &out_shape, |r| {
        let k: usize = (0..m).map(|j| r[axis + j] * is[j]).sum();
        let p = indices[k].clamp(0, hi) as usize;
        let mut off = p * xs[axis];
        for a in 0..axis {
            off += r[a] * xs[a];
        }
        for a in axis + 1..x_shape.len() {
            off += r[a - 1 + m] * xs[a];
        }
        off
    })
}

// ---------------------------------------------------------------------------------------
// Elementwise ops.

/// Maps a whole vector with the op table's per-element function.
struct Collect<'a, T>(&'a [T]);

impl<T: Copy, R> ElemMap<T, R> for Collect<'_, T> {
    type Out = Vec<R>;
    fn map<F: Fn(T) -> R + Copy>(self, f: F) -> Vec<R> {
        self.0.iter().map(|&a| f(a)).collect()
    }
}

/// Zips two vectors with the op table's per-element function.
struct Collect2<'a, T>(&'a [T], &'a [T]);

impl<T: Copy> ElemMap2<T> for Collect2<'_, T> {
    type Out = Vec<T>;
    fn map<F: Fn(T, T) -> T + Copy>(self, f: F) -> Vec<T> {
        self.0.iter().zip(self.1).map(|(&a, &b)| f(a, b)).collect()
    }
}

/// `u` applied to every element of `x` with the op table's semantics; `None` when the op
/// has no semantics for `x`'s dtype. The CPU backend's unfused kernels call this too.
pub fn unary_data(u: UnaryOp, x: &Data) -> Option<Data> {
    match x {
        Data::F32(v) => u.map_f32(Collect(v)).map(Data::F32),
        Data::F64(v) => u.map_f64(Collect(v)).map(Data::F64),
        Data::C32(v) => u
            .map_c32(Collect(v))
            .map(Data::C32)
            .or_else(|| u.map_c32_to_real(Collect(v)).map(Data::F32)),
        Data::C64(v) => u
            .map_c64(Collect(v))
            .map(Data::C64)
            .or_else(|| u.map_c64_to_real(Collect(v)).map(Data::F64)),
        Data::I32(v) => u.map_i32(Collect(v)).map(Data::I32),
        Data::I64(v) => u.map_i64(Collect(v)).map(Data::I64),
        Data::Bool(_) => None,
    }
}

/// `b` applied to the elements of `x` and `y` pairwise (same dtype and length) with the
/// op table's semantics; `None` when the op has no semantics for these operands.
pub fn binary_data(b: BinaryOp, x: &Data, y: &Data) -> Option<Data> {
    match (x, y) {
        (Data::F32(u), Data::F32(v)) => b.map_f32(Collect2(u, v)).map(Data::F32),
        (Data::F64(u), Data::F64(v)) => b.map_f64(Collect2(u, v)).map(Data::F64),
        (Data::C32(u), Data::C32(v)) => b.map_c32(Collect2(u, v)).map(Data::C32),
        (Data::C64(u), Data::C64(v)) => b.map_c64(Collect2(u, v)).map(Data::C64),
        (Data::I32(u), Data::I32(v)) => b.map_i32(Collect2(u, v)).map(Data::I32),
        (Data::I64(u), Data::I64(v)) => b.map_i64(Collect2(u, v)).map(Data::I64),
        _ => None,
    }
}

/// `u` applied to every element, with the op table's semantics.
fn eval_unary(op: &Op, u: UnaryOp, x: &Tensor) -> Result<Tensor, IrError> {
    match unary_data(u, x.data()) {
        Some(d) => Tensor::new(x.shape().to_vec(), d),
        None => Err(IrError::invalid(
            op.name(),
            format!("{} operands are not supported", x.dtype().name()),
        )),
    }
}

fn zip_map<T: Copy, R>(a: &[T], b: &[T], g: impl Fn(T, T) -> R) -> Vec<R> {
    a.iter().zip(b).map(|(&x, &y)| g(x, y)).collect()
}

/// `b` applied to every pair of elements, with the op table's semantics.
fn eval_binary(op: &Op, b: BinaryOp, x: &Tensor, y: &Tensor) -> Result<Tensor, IrError> {
    match binary_data(b, x.data(), y.data()) {
        Some(d) => Tensor::new(x.shape().to_vec(), d),
        None => Err(IrError::invalid(
            op.name(),
            format!("{} operands are not supported", x.dtype().name()),
        )),
    }
}

fn ordered<T: PartialOrd>(c: CmpOp, x: T, y: T) -> bool {
    match c {
        CmpOp::Eq => x == y,
        CmpOp::Ne => x != y,
        CmpOp::Lt => x < y,
        CmpOp::Le => x <= y,
        CmpOp::Gt => x > y,
        CmpOp::Ge => x >= y,
    }
}

fn eval_compare(op: &Op, c: CmpOp, x: &Tensor, y: &Tensor) -> Result<Tensor, IrError> {
    if x.dtype().is_complex() && !matches!(c, CmpOp::Eq | CmpOp::Ne) {
        return Err(IrError::invalid(
            op.name(),
            format!("{} on complex operands", c.name()),
        ));
    }
    let eq = c == CmpOp::Eq;
    let out: Vec<bool> = match (x.data(), y.data()) {
        (Data::F32(u), Data::F32(v)) => zip_map(u, v, |p, q| ordered(c, p, q)),
        (Data::F64(u), Data::F64(v)) => zip_map(u, v, |p, q| ordered(c, p, q)),
        (Data::I32(u), Data::I32(v)) => zip_map(u, v, |p, q| ordered(c, p, q)),
        (Data::I64(u), Data::I64(v)) => zip_map(u, v, |p, q| ordered(c, p, q)),
        (Data::Bool(u), Data::Bool(v)) => zip_map(u, v, |p, q| ordered(c, p, q)),
        (Data::C32(u), Data::C32(v)) => zip_map(u, v, |p, q| (p == q) == eq),
        (Data::C64(u), Data::C64(v)) => zip_map(u, v, |p, q| (p == q) == eq),
        _ => return Err(IrError::invalid(op.name(), "operands of different dtypes")),
    };
    Tensor::from_vec_col_major(x.shape().to_vec(), out)
}

// ---------------------------------------------------------------------------------------
// Reductions and contractions.

fn reduce_vec<T: Copy>(
    op: &str,
    xs: &[T],
    shape: &[usize],
    axes: &[usize],
    init: T,
    g: impl Fn(T, T) -> T,
) -> Result<Vec<T>, IrError> {
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let out_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
    let out_strides = col_major_strides(&out_shape);
    let mut stride_of_axis = vec![0usize; shape.len()];
    for (k, &a) in kept.iter().enumerate() {
        stride_of_axis[a] = out_strides[k];
    }
    let dst = map_indices(op, shape, |r| {
        r.iter()
            .zip(&stride_of_axis)
            .map(|(i, s)| i * s)
            .sum::<usize>()
    })?;
    let n = crate::infer::checked_numel(&out_shape).unwrap_or(usize::MAX);
    let mut acc = try_vec_with_capacity(op, n)?;
    acc.resize(n, init);
    match sum_order() {
        SumOrder::Sequential | SumOrder::Fused => {
            for (i, &o) in dst.iter().enumerate() {
                acc[o] = g(acc[o], xs[i]);
            }
        }
        SumOrder::Pairwise => {
            let mut terms: Vec<Vec<T>> = vec![Vec::new(); n];
            for (i, &o) in dst.iter().enumerate() {
                terms[o].push(xs[i]);
            }
            for (a, t) in acc.iter_mut().zip(&terms) {
                *a = pairwise_terms(t, init, &|p, x| g(p, *x), &g);
            }
        }
        SumOrder::Reversed => {
            for (i, &o) in dst.iter().enumerate().rev() {
                acc[o] = g(acc[o], xs[i]);
            }
        }
        SumOrder::Strided => {
            let mut part = try_vec_with_capacity(op, n.saturating_mul(STRIDED_LANES))?;
            part.resize(n * STRIDED_LANES, init);
            for (i, &o) in dst.iter().enumerate() {
                let at = o * STRIDED_LANES + i % STRIDED_LANES;
                part[at] = g(part[at], xs[i]);
            }
            for (o, a) in acc.iter_mut().enumerate() {
                for &p in &part[o * STRIDED_LANES..][..STRIDED_LANES] {
                    *a = g(*a, p);
                }
            }
        }
    }
    Ok(acc)
}

fn eval_reduce(
    op: &Op,
    kind: ReduceOp,
    axes: &[usize],
    x: &Tensor,
    shape: Vec<usize>,
) -> Result<Tensor, IrError> {
    let s = x.shape();
    macro_rules! real {
        ($v:expr, $t:ty, $max:ident, $min:ident) => {
            match kind {
                ReduceOp::Sum => reduce_vec(op.name(), $v, s, axes, 0.0, |a: $t, b: $t| a + b),
                ReduceOp::Prod => reduce_vec(op.name(), $v, s, axes, 1.0, |a: $t, b: $t| a * b),
                ReduceOp::Max => reduce_vec(op.name(), $v, s, axes, <$t>::NEG_INFINITY, $max),
                ReduceOp::Min => reduce_vec(op.name(), $v, s, axes, <$t>::INFINITY, $min),
            }
        };
    }
    macro_rules! int {
        ($v:expr, $t:ty) => {
            match kind {
                ReduceOp::Sum => reduce_vec(op.name(), $v, s, axes, 0, <$t>::wrapping_add),
                ReduceOp::Prod => reduce_vec(op.name(), $v, s, axes, 1, <$t>::wrapping_mul),
                ReduceOp::Max => reduce_vec(op.name(), $v, s, axes, <$t>::MIN, <$t>::max),
                ReduceOp::Min => reduce_vec(op.name(), $v, s, axes, <$t>::MAX, <$t>::min),
            }
        };
    }
    macro_rules! complex {
        ($v:expr, $t:ty) => {
            match kind {
                ReduceOp::Sum => reduce_vec(
                    op.name(),
                    $v,
                    s,
                    axes,
                    Complex::new(0.0, 0.0),
                    |a: Complex<$t>, b| a + b,
                ),
                ReduceOp::Prod => reduce_vec(
                    op.name(),
                    $v,
                    s,
                    axes,
                    Complex::new(1.0, 0.0),
                    |a: Complex<$t>, b| a * b,
                ),
                ReduceOp::Max | ReduceOp::Min => {
                    return Err(IrError::invalid(
                        op.name(),
                        "complex operands are not ordered",
                    ))
                }
            }
        };
    }
    let data = match x.data() {
        Data::F32(v) => Data::F32(real!(v, f32, max_f32, min_f32)?),
        Data::F64(v) => Data::F64(real!(v, f64, max_f64, min_f64)?),
        Data::C32(v) => Data::C32(complex!(v, f32)?),
        Data::C64(v) => Data::C64(complex!(v, f64)?),
        Data::I32(v) => Data::I32(int!(v, i32)?),
        Data::I64(v) => Data::I64(int!(v, i64)?),
        Data::Bool(_) => {
            return Err(IrError::invalid(
                op.name(),
                "bool operands are not supported",
            ))
        }
    };
    Tensor::new(shape, data)
}

#[allow(clippy::too_many_arguments)]
/// The sum of `terms` pairwise: each half's from `zero` (one term added by `term`), the
/// halves' joined by `add`.
fn pairwise_terms<T: Copy, X>(
    terms: &[X],
    zero: T,
    term: &impl Fn(T, &X) -> T,
    add: &impl Fn(T, T) -> T,
) -> T {
    match terms {
        [] => zero,
        [x] => term(zero, x),
        _ => {
            let (l, r) = terms.split_at(terms.len() / 2);
            add(
                pairwise_terms(l, zero, term, add),
                pairwise_terms(r, zero, term, add),
            )
        }
    }
}

fn dot_vec<T: Copy>(
    op: &str,
    l: &[T],
    ls: &[usize],
    r: &[T],
    rs: &[usize],
    d: &DotDims,
    out_shape: &[usize],
    (zero, one): (T, T),
    mac: impl Fn(T, T, T) -> T,
    fused: impl Fn(T, T, T) -> T,
) -> Result<Vec<T>, IrError> {
    let free = |rank: usize, batch: &[usize], contract: &[usize]| -> Vec<usize> {
        (0..rank)
            .filter(|a| !batch.contains(a) && !contract.contains(a))
            .collect()
    };
    // An empty result reads nothing (its contracting extent may still be huge).
    if out_shape.contains(&0) {
        return Ok(Vec::new());
    }
    let lfree = free(ls.len(), &d.lhs_batch, &d.lhs_contract);
    let rfree = free(rs.len(), &d.rhs_batch, &d.rhs_contract);
    let (lst, rst) = (col_major_strides(ls), col_major_strides(rs));
    let contract_shape: Vec<usize> = d.lhs_contract.iter().map(|&a| ls[a]).collect();
    // Offsets of every contracting index in lhs and rhs (column-major order).
    let coffs = map_indices(op, &contract_shape, |c| {
        let lo: usize = d
            .lhs_contract
            .iter()
            .zip(c)
            .map(|(&a, &i)| i * lst[a])
            .sum();
        let ro: usize = d
            .rhs_contract
            .iter()
            .zip(c)
            .map(|(&a, &i)| i * rst[a])
            .sum();
        (lo, ro)
    })?;
    let nb = d.lhs_batch.len();
    let order = sum_order();
    map_indices(op, out_shape, |o| {
        let mut lo = 0;
        let mut ro = 0;
        for k in 0..nb {
            lo += o[k] * lst[d.lhs_batch[k]];
            ro += o[k] * rst[d.rhs_batch[k]];
        }
        for (k, &a) in lfree.iter().enumerate() {
            lo += o[nb + k] * lst[a];
        }
        for (k, &a) in rfree.iter().enumerate() {
            ro += o[nb + lfree.len() + k] * rst[a];
        }
        let term = |acc, &(cl, cr): &(usize, usize)| mac(acc, l[lo + cl], r[ro + cr]);
        match order {
            SumOrder::Sequential => coffs.iter().fold(zero, term),
            // Halves summed apart, joined by `p + q·1` (exact).
            SumOrder::Pairwise => pairwise_terms(&coffs, zero, &term, &|p, q| mac(p, q, one)),
            SumOrder::Fused => coffs
                .iter()
                .fold(zero, |acc, &(cl, cr)| fused(acc, l[lo + cl], r[ro + cr])),
            SumOrder::Reversed => coffs.iter().rev().fold(zero, term),
            SumOrder::Strided => (0..STRIDED_LANES)
                .flat_map(|lane| coffs.iter().skip(lane).step_by(STRIDED_LANES))
                .fold(zero, term),
        }
    })
}

fn eval_dot(
    op: &Op,
    d: &DotDims,
    l: &Tensor,
    r: &Tensor,
    shape: Vec<usize>,
) -> Result<Tensor, IrError> {
    let (ls, rs) = (l.shape(), r.shape());
    // Integers wrap, as the reference evaluator's other integer arithmetic.
    macro_rules! int_dot {
        ($u:expr, $v:expr, $t:ty) => {
            dot_vec(
                op.name(),
                $u,
                ls,
                $v,
                rs,
                d,
                &shape,
                (0, 1),
                |a: $t, x: $t, y: $t| a.wrapping_add(x.wrapping_mul(y)),
                |a: $t, x: $t, y: $t| a.wrapping_add(x.wrapping_mul(y)),
            )
        };
    }
    // SumOrder::Fused's complex term: two fused multiply-adds per part.
    macro_rules! fused_complex {
        () => {
            |a, x, y| {
                Complex::new(
                    (-x.im).mul_add(y.im, x.re.mul_add(y.re, a.re)),
                    x.im.mul_add(y.re, x.re.mul_add(y.im, a.im)),
                )
            }
        };
    }
    let data = match (l.data(), r.data()) {
        (Data::F32(u), Data::F32(v)) => Data::F32(dot_vec(
            op.name(),
            u,
            ls,
            v,
            rs,
            d,
            &shape,
            (0.0, 1.0),
            |a, x, y| a + x * y,
            |a, x, y| x.mul_add(y, a),
        )?),
        (Data::F64(u), Data::F64(v)) => Data::F64(dot_vec(
            op.name(),
            u,
            ls,
            v,
            rs,
            d,
            &shape,
            (0.0, 1.0),
            |a, x, y| a + x * y,
            |a, x, y| x.mul_add(y, a),
        )?),
        (Data::C32(u), Data::C32(v)) => Data::C32(dot_vec(
            op.name(),
            u,
            ls,
            v,
            rs,
            d,
            &shape,
            (Complex::new(0.0, 0.0), Complex::new(1.0, 0.0)),
            |a, x, y| a + x * y,
            fused_complex!(),
        )?),
        (Data::C64(u), Data::C64(v)) => Data::C64(dot_vec(
            op.name(),
            u,
            ls,
            v,
            rs,
            d,
            &shape,
            (Complex::new(0.0, 0.0), Complex::new(1.0, 0.0)),
            |a, x, y| a + x * y,
            fused_complex!(),
        )?),
        (Data::I32(u), Data::I32(v)) => Data::I32(int_dot!(u, v, i32)?),
        (Data::I64(u), Data::I64(v)) => Data::I64(int_dot!(u, v, i64)?),
        _ => {
            return Err(IrError::invalid(
                op.name(),
                format!("{} operands are not supported", l.dtype()),
            ))
        }
    };
    Tensor::new(shape, data)
}

// ---------------------------------------------------------------------------------------
// Conversion.

/// Converts a buffer to `to`: float → integer with Rust `as` (truncating toward zero,
/// saturating, NaN → 0); between integers the bits wrap (i64 → i32 keeps the low 32
/// bits); → bool is `x != 0`; complex → real keeps the real part; bool → number is 0 / 1;
/// real → complex rounds to the target precision first. The CPU backend's convert kernel
/// calls this too.
pub fn convert_data(d: &Data, to: DType) -> Data {
    fn b2f(b: bool) -> f64 {
        if b {
            1.0
        } else {
            0.0
        }
    }
    match to {
        DType::Bool => Data::Bool(match d {
            Data::F32(v) => v.iter().map(|&x| x != 0.0).collect(),
            Data::F64(v) => v.iter().map(|&x| x != 0.0).collect(),
            Data::C32(v) => v.iter().map(|x| x.re != 0.0 || x.im != 0.0).collect(),
            Data::C64(v) => v.iter().map(|x| x.re != 0.0 || x.im != 0.0).collect(),
            Data::I32(v) => v.iter().map(|&x| x != 0).collect(),
            Data::I64(v) => v.iter().map(|&x| x != 0).collect(),
            Data::Bool(v) => v.clone(),
        }),
        DType::I32 => Data::I32(match d {
            Data::F32(v) => v.iter().map(|&x| x as i32).collect(),
            Data::F64(v) => v.iter().map(|&x| x as i32).collect(),
            Data::C32(v) => v.iter().map(|x| x.re as i32).collect(),
            Data::C64(v) => v.iter().map(|x| x.re as i32).collect(),
            Data::I32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as i32).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as i32).collect(),
        }),
        DType::I64 => Data::I64(match d {
            Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::F64(v) => v.iter().map(|&x| x as i64).collect(),
            Data::C32(v) => v.iter().map(|x| x.re as i64).collect(),
            Data::C64(v) => v.iter().map(|x| x.re as i64).collect(),
            Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I64(v) => v.clone(),
            Data::Bool(v) => v.iter().map(|&x| x as i64).collect(),
        }),
        DType::F32 => Data::F32(match d {
            Data::F32(v) => v.clone(),
            Data::F64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::C32(v) => v.iter().map(|x| x.re).collect(),
            Data::C64(v) => v.iter().map(|x| x.re as f32).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::Bool(v) => v.iter().map(|&x| b2f(x) as f32).collect(),
        }),
        DType::F64 => Data::F64(match d {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::C32(v) => v.iter().map(|x| x.re as f64).collect(),
            Data::C64(v) => v.iter().map(|x| x.re).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::Bool(v) => v.iter().map(|&x| b2f(x)).collect(),
        }),
        DType::C32 => Data::C32(match d {
            Data::C32(v) => v.clone(),
            Data::C64(v) => v
                .iter()
                .map(|x| Complex32::new(x.re as f32, x.im as f32))
                .collect(),
            real => match convert_data(real, DType::F32) {
                Data::F32(v) => v.into_iter().map(|x| Complex32::new(x, 0.0)).collect(),
                _ => unreachable!("convert to f32 yields f32"),
            },
        }),
        DType::C64 => Data::C64(match d {
            Data::C32(v) => v
                .iter()
                .map(|x| Complex64::new(x.re as f64, x.im as f64))
                .collect(),
            Data::C64(v) => v.clone(),
            real => match convert_data(real, DType::F64) {
                Data::F64(v) => v.into_iter().map(|x| Complex64::new(x, 0.0)).collect(),
                _ => unreachable!("convert to f64 yields f64"),
            },
        }),
    }
}

// ---------------------------------------------------------------------------------------
// Sorting and scans.

/// The element order of `argsort`: numbers by value with `-0.0 == 0.0`, every NaN after
/// every number and equal to every other NaN (the order of `jnp.sort`).
pub trait SortKey: Copy {
    /// `self` compared with `other` in the sort order.
    fn sort_cmp(self, other: Self) -> std::cmp::Ordering;
}

macro_rules! float_sort_key {
    ($t:ty) => {
        impl SortKey for $t {
            #[inline]
            fn sort_cmp(self, other: $t) -> std::cmp::Ordering {
                match (self.is_nan(), other.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    (false, false) => self.partial_cmp(&other).unwrap(),
                }
            }
        }
    };
}
float_sort_key!(f32);
float_sort_key!(f64);

impl SortKey for i32 {
    #[inline]
    fn sort_cmp(self, other: i32) -> std::cmp::Ordering {
        self.cmp(&other)
    }
}

impl SortKey for i64 {
    #[inline]
    fn sort_cmp(self, other: i64) -> std::cmp::Ordering {
        self.cmp(&other)
    }
}

impl SortKey for bool {
    #[inline]
    fn sort_cmp(self, other: bool) -> std::cmp::Ordering {
        self.cmp(&other)
    }
}

/// `a` compared with `b` in `argsort`'s order (see [`SortKey`]).
pub fn sort_cmp<T: SortKey>(a: T, b: T) -> std::cmp::Ordering {
    a.sort_cmp(b)
}

/// The offsets of the first element of every line along `axis` of `shape`, column-major.
fn line_starts(op: &str, shape: &[usize], axis: usize) -> Result<Vec<usize>, IrError> {
    if shape[axis] == 0 {
        return Ok(Vec::new());
    }
    let strides = col_major_strides(shape);
    let mut lines = shape.to_vec();
    lines[axis] = 1;
    map_indices(op, &lines, |r| {
        r.iter().zip(&strides).map(|(i, s)| i * s).sum()
    })
}

fn argsort_vec<T: SortKey>(
    op: &str,
    v: &[T],
    shape: &[usize],
    axis: usize,
    descending: bool,
) -> Result<Vec<i64>, IrError> {
    let stride = col_major_strides(shape)[axis];
    let n = shape[axis];
    let mut out = try_vec_with_capacity(op, v.len())?;
    out.resize(v.len(), 0i64);
    let mut perm: Vec<usize> = Vec::with_capacity(n);
    for start in line_starts(op, shape, axis)? {
        perm.clear();
        perm.extend(0..n);
        // `sort_by` is stable; a descending sort compares with the operands swapped.
        if descending {
            perm.sort_by(|&i, &j| v[start + j * stride].sort_cmp(v[start + i * stride]));
        } else {
            perm.sort_by(|&i, &j| v[start + i * stride].sort_cmp(v[start + j * stride]));
        }
        for (k, &p) in perm.iter().enumerate() {
            out[start + k * stride] = p as i64;
        }
    }
    Ok(out)
}

fn eval_argsort(op: &Op, x: &Tensor, axis: usize, descending: bool) -> Result<Tensor, IrError> {
    let s = x.shape();
    let name = op.name();
    let v = match x.data() {
        Data::F32(v) => argsort_vec(name, v, s, axis, descending)?,
        Data::F64(v) => argsort_vec(name, v, s, axis, descending)?,
        Data::I32(v) => argsort_vec(name, v, s, axis, descending)?,
        Data::I64(v) => argsort_vec(name, v, s, axis, descending)?,
        Data::Bool(v) => argsort_vec(name, v, s, axis, descending)?,
        Data::C32(_) | Data::C64(_) => {
            return Err(IrError::invalid(name, "complex operands are not ordered"))
        }
    };
    Tensor::from_vec_col_major(s.to_vec(), v)
}

fn scan_vec<T: Copy>(
    op: &str,
    v: &[T],
    shape: &[usize],
    axis: usize,
    reverse: bool,
    g: impl Fn(T, T) -> T,
) -> Result<Vec<T>, IrError> {
    let stride = col_major_strides(shape)[axis];
    let n = shape[axis];
    let mut out = try_collect(op, v.len(), v.iter().copied())?;
    for start in line_starts(op, shape, axis)? {
        let at = |k: usize| start + (if reverse { n - 1 - k } else { k }) * stride;
        let mut acc = v[at(0)];
        for k in 1..n {
            acc = g(acc, v[at(k)]);
            out[at(k)] = acc;
        }
    }
    Ok(out)
}

fn eval_cumulative(
    op: &Op,
    kind: ReduceOp,
    x: &Tensor,
    axis: usize,
    reverse: bool,
) -> Result<Tensor, IrError> {
    let s = x.shape();
    let name = op.name();
    macro_rules! real {
        ($v:expr, $t:ty, $max:ident, $min:ident) => {
            match kind {
                ReduceOp::Sum => scan_vec(name, $v, s, axis, reverse, |a: $t, b: $t| a + b),
                ReduceOp::Prod => scan_vec(name, $v, s, axis, reverse, |a: $t, b: $t| a * b),
                ReduceOp::Max => scan_vec(name, $v, s, axis, reverse, $max),
                ReduceOp::Min => scan_vec(name, $v, s, axis, reverse, $min),
            }
        };
    }
    macro_rules! int {
        ($v:expr, $t:ty) => {
            match kind {
                ReduceOp::Sum => scan_vec(name, $v, s, axis, reverse, <$t>::wrapping_add),
                ReduceOp::Prod => scan_vec(name, $v, s, axis, reverse, <$t>::wrapping_mul),
                ReduceOp::Max => scan_vec(name, $v, s, axis, reverse, <$t>::max),
                ReduceOp::Min => scan_vec(name, $v, s, axis, reverse, <$t>::min),
            }
        };
    }
    macro_rules! complex {
        ($v:expr, $t:ty) => {
            match kind {
                ReduceOp::Sum => scan_vec(name, $v, s, axis, reverse, |a: $t, b: $t| a + b),
                ReduceOp::Prod => scan_vec(name, $v, s, axis, reverse, |a: $t, b: $t| a * b),
                ReduceOp::Max | ReduceOp::Min => {
                    return Err(IrError::invalid(name, "complex operands are not ordered"))
                }
            }
        };
    }
    let data = match x.data() {
        Data::F32(v) => Data::F32(real!(v, f32, max_f32, min_f32)?),
        Data::F64(v) => Data::F64(real!(v, f64, max_f64, min_f64)?),
        Data::C32(v) => Data::C32(complex!(v, Complex32)?),
        Data::C64(v) => Data::C64(complex!(v, Complex64)?),
        Data::I32(v) => Data::I32(int!(v, i32)?),
        Data::I64(v) => Data::I64(int!(v, i64)?),
        Data::Bool(_) => return Err(IrError::invalid(name, "bool operands are not supported")),
    };
    Tensor::new(s.to_vec(), data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::ExtensionOp;

    fn f64s(shape: &[usize], v: &[f64]) -> Tensor {
        Tensor::from_vec_col_major(shape.to_vec(), v.to_vec()).unwrap()
    }
    fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_vec_col_major(shape.to_vec(), v.to_vec()).unwrap()
    }
    fn c64s(shape: &[usize], v: &[(f64, f64)]) -> Tensor {
        let v: Vec<Complex64> = v.iter().map(|&(r, i)| Complex64::new(r, i)).collect();
        Tensor::from_vec_col_major(shape.to_vec(), v).unwrap()
    }
    fn run(op: Op, args: &[&Tensor]) -> Tensor {
        let mut r = eval_op(&op, args).unwrap();
        assert_eq!(r.len(), 1);
        r.pop().unwrap()
    }
    fn un(u: UnaryOp, x: &Tensor) -> Tensor {
        run(Op::Unary(u), &[x])
    }
    fn bin(b: BinaryOp, x: &Tensor, y: &Tensor) -> Tensor {
        run(Op::Binary(b), &[x, y])
    }
    fn v64(t: &Tensor) -> Vec<f64> {
        t.to_vec::<f64>().unwrap()
    }
    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{a:?} vs {b:?}");
        }
    }
    fn cclose(t: &Tensor, want: &[(f64, f64)]) {
        let v = t.to_vec::<Complex64>().unwrap();
        assert_eq!(v.len(), want.len());
        for (z, &(r, i)) in v.iter().zip(want) {
            assert!(
                (z.re - r).abs() < 1e-12 && (z.im - i).abs() < 1e-12,
                "{v:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn real_unary_ops() {
        let x = f64s(&[1], &[4.0]);
        assert_eq!(v64(&un(UnaryOp::Neg, &x)), [-4.0]);
        assert_eq!(v64(&un(UnaryOp::Sqrt, &x)), [2.0]);
        assert_eq!(v64(&un(UnaryOp::Rsqrt, &x)), [0.5]);
        let z = f64s(&[1], &[0.0]);
        assert_eq!(v64(&un(UnaryOp::Exp, &z)), [1.0]);
        assert_eq!(v64(&un(UnaryOp::Sin, &z)), [0.0]);
        assert_eq!(v64(&un(UnaryOp::Cos, &z)), [1.0]);
        assert_eq!(v64(&un(UnaryOp::Tanh, &z)), [0.0]);
        assert_eq!(v64(&un(UnaryOp::Log, &f64s(&[1], &[1.0]))), [0.0]);
        // expm1 / log1p keep accuracy near 0 where exp(x)-1 would not.
        let tiny = f64s(&[1], &[1e-20]);
        assert_eq!(v64(&un(UnaryOp::Expm1, &tiny)), [1e-20]);
        assert_eq!(v64(&un(UnaryOp::Log1p, &tiny)), [1e-20]);
        let s = v64(&un(
            UnaryOp::Sign,
            &f64s(&[5], &[-2.0, 0.0, -0.0, 3.0, f64::NAN]),
        ));
        assert_eq!(&s[..2], [-1.0, 0.0]);
        assert!(s[2] == 0.0 && s[2].is_sign_negative());
        assert_eq!(s[3], 1.0);
        assert!(s[4].is_nan());
        let y = f64s(&[2], &[-3.0, 2.0]);
        assert_eq!(v64(&un(UnaryOp::Abs, &y)), [3.0, 2.0]);
        assert_eq!(v64(&un(UnaryOp::Conj, &y)), [-3.0, 2.0]);
        assert_eq!(v64(&un(UnaryOp::Real, &y)), [-3.0, 2.0]);
        assert_eq!(v64(&un(UnaryOp::Imag, &y)), [0.0, 0.0]);
        let x32 = Tensor::from_vec_col_major(vec![2], vec![4.0f32, -1.0]).unwrap();
        let r = un(UnaryOp::Sqrt, &x32).to_vec::<f32>().unwrap();
        assert_eq!(r[0], 2.0);
        assert!(r[1].is_nan());
    }

    #[test]
    fn complex_unary_ops() {
        let z = c64s(&[2], &[(3.0, 4.0), (0.0, 0.0)]);
        let a = un(UnaryOp::Abs, &z);
        assert_eq!(a.dtype(), DType::F64);
        assert_eq!(v64(&a), [5.0, 0.0]);
        assert_eq!(v64(&un(UnaryOp::Real, &z)), [3.0, 0.0]);
        assert_eq!(v64(&un(UnaryOp::Imag, &z)), [4.0, 0.0]);
        cclose(&un(UnaryOp::Conj, &z), &[(3.0, -4.0), (0.0, 0.0)]);
        cclose(&un(UnaryOp::Sign, &z), &[(0.6, 0.8), (0.0, 0.0)]);
        cclose(&un(UnaryOp::Neg, &z), &[(-3.0, -4.0), (0.0, 0.0)]);
        let m4 = c64s(&[1], &[(-4.0, 0.0)]);
        cclose(&un(UnaryOp::Sqrt, &m4), &[(0.0, 2.0)]);
        cclose(&un(UnaryOp::Rsqrt, &m4), &[(0.0, -0.5)]);
        let ipi = c64s(&[1], &[(0.0, std::f64::consts::PI)]);
        cclose(&un(UnaryOp::Exp, &ipi), &[(-1.0, 0.0)]);
        cclose(&un(UnaryOp::Expm1, &ipi), &[(-2.0, 0.0)]);
        cclose(
            &un(UnaryOp::Log, &c64s(&[1], &[(-1.0, 0.0)])),
            &[(0.0, std::f64::consts::PI)],
        );
        cclose(
            &un(UnaryOp::Log1p, &c64s(&[1], &[(-2.0, 0.0)])),
            &[(0.0, std::f64::consts::PI)],
        );
        // sin(i) = i sinh(1), cos(i) = cosh(1), tanh(i) = i tan(1)
        let i = c64s(&[1], &[(0.0, 1.0)]);
        cclose(&un(UnaryOp::Sin, &i), &[(0.0, 1f64.sinh())]);
        cclose(&un(UnaryOp::Cos, &i), &[(1f64.cosh(), 0.0)]);
        cclose(&un(UnaryOp::Tanh, &i), &[(0.0, 1f64.tan())]);
        let z32 = Tensor::from_vec_col_major(vec![1], vec![Complex32::new(3.0, 4.0)]).unwrap();
        assert_eq!(un(UnaryOp::Abs, &z32).to_vec::<f32>().unwrap(), [5.0]);
    }

    #[test]
    fn integer_unary_ops_and_rejections() {
        let x = i64s(&[3], &[-5, 0, i64::MIN]);
        assert_eq!(
            un(UnaryOp::Neg, &x).to_vec::<i64>().unwrap(),
            [5, 0, i64::MIN]
        );
        assert_eq!(
            un(UnaryOp::Abs, &x).to_vec::<i64>().unwrap(),
            [5, 0, i64::MIN]
        );
        assert_eq!(un(UnaryOp::Sign, &x).to_vec::<i64>().unwrap(), [-1, 0, -1]);
        assert_eq!(un(UnaryOp::Imag, &x).to_vec::<i64>().unwrap(), [0, 0, 0]);
        assert!(eval_op(&Op::Unary(UnaryOp::Exp), &[&x]).is_err());
        let b = Tensor::from_vec_col_major(vec![1], vec![true]).unwrap();
        assert!(eval_op(&Op::Unary(UnaryOp::Neg), &[&b]).is_err());
    }

    #[test]
    fn binary_ops() {
        let x = f64s(&[2], &[6.0, 2.0]);
        let y = f64s(&[2], &[3.0, 0.5]);
        assert_eq!(v64(&bin(BinaryOp::Add, &x, &y)), [9.0, 2.5]);
        assert_eq!(v64(&bin(BinaryOp::Sub, &x, &y)), [3.0, 1.5]);
        assert_eq!(v64(&bin(BinaryOp::Mul, &x, &y)), [18.0, 1.0]);
        assert_eq!(v64(&bin(BinaryOp::Div, &x, &y)), [2.0, 4.0]);
        close(&v64(&bin(BinaryOp::Pow, &x, &y)), &[216.0, 2f64.sqrt()]);
        let p = f64s(&[4], &[f64::NAN, 1.0, -0.0, 0.0]);
        let q = f64s(&[4], &[1.0, f64::NAN, 0.0, -0.0]);
        let mx = v64(&bin(BinaryOp::Max, &p, &q));
        let mn = v64(&bin(BinaryOp::Min, &p, &q));
        assert!(mx[0].is_nan() && mx[1].is_nan() && mn[0].is_nan() && mn[1].is_nan());
        assert!(mx[2] == 0.0 && mx[2].is_sign_positive() && mx[3].is_sign_positive());
        assert!(mn[2].is_sign_negative() && mn[3].is_sign_negative());
        assert_eq!(v64(&bin(BinaryOp::Max, &x, &y)), [6.0, 2.0]);
        assert_eq!(v64(&bin(BinaryOp::Min, &x, &y)), [3.0, 0.5]);

        let a = i64s(&[4], &[-7, 7, 5, i64::MAX]);
        let b = i64s(&[4], &[2, 0, -5, 1]);
        assert_eq!(
            bin(BinaryOp::Div, &a, &b).to_vec::<i64>().unwrap(),
            [-3, 0, -1, i64::MAX]
        );
        assert_eq!(
            bin(BinaryOp::Add, &a, &b).to_vec::<i64>().unwrap(),
            [-5, 7, 0, i64::MIN]
        );
        assert_eq!(
            bin(BinaryOp::Max, &a, &b).to_vec::<i64>().unwrap(),
            [2, 7, 5, i64::MAX]
        );
        assert_eq!(
            bin(BinaryOp::Min, &a, &b).to_vec::<i64>().unwrap(),
            [-7, 0, -5, 1]
        );
        assert!(eval_op(&Op::Binary(BinaryOp::Pow), &[&a, &b]).is_err());

        let z = c64s(&[2], &[(1.0, 2.0), (0.0, 1.0)]);
        let w = c64s(&[2], &[(3.0, 4.0), (2.0, 0.0)]);
        cclose(&bin(BinaryOp::Mul, &z, &w), &[(-5.0, 10.0), (0.0, 2.0)]);
        cclose(
            &bin(BinaryOp::Div, &z, &w),
            &[(11.0 / 25.0, 2.0 / 25.0), (0.0, 0.5)],
        );
        cclose(&bin(BinaryOp::Sub, &z, &w), &[(-2.0, -2.0), (-2.0, 1.0)]);
        // i^2 = -1 (via exp(2 ln i)); z^0 = 1.
        cclose(
            &bin(BinaryOp::Pow, &z, &w).reshaped(vec![2]).unwrap(),
            &[
                {
                    let r = Complex64::new(1.0, 2.0).powc(Complex64::new(3.0, 4.0));
                    (r.re, r.im)
                },
                (-1.0, 0.0),
            ],
        );
        let zero = c64s(&[1], &[(0.0, 0.0)]);
        cclose(
            &bin(BinaryOp::Pow, &c64s(&[1], &[(5.0, 1.0)]), &zero),
            &[(1.0, 0.0)],
        );
        assert!(eval_op(&Op::Binary(BinaryOp::Max), &[&z, &w]).is_err());
        assert!(eval_op(&Op::Binary(BinaryOp::Add), &[&z, &x]).is_err());
    }

    #[test]
    fn compare_and_select() {
        let x = f64s(&[3], &[1.0, f64::NAN, 3.0]);
        let y = f64s(&[3], &[2.0, f64::NAN, 3.0]);
        let cmp = |c| run(Op::Compare(c), &[&x, &y]).to_vec::<bool>().unwrap();
        assert_eq!(cmp(CmpOp::Lt), [true, false, false]);
        assert_eq!(cmp(CmpOp::Le), [true, false, true]);
        assert_eq!(cmp(CmpOp::Eq), [false, false, true]);
        assert_eq!(cmp(CmpOp::Ne), [true, true, false]);
        assert_eq!(cmp(CmpOp::Gt), [false, false, false]);
        assert_eq!(cmp(CmpOp::Ge), [false, false, true]);
        let z = c64s(&[2], &[(1.0, 2.0), (1.0, 0.0)]);
        let w = c64s(&[2], &[(1.0, 2.0), (1.0, 1.0)]);
        assert_eq!(
            run(Op::Compare(CmpOp::Eq), &[&z, &w])
                .to_vec::<bool>()
                .unwrap(),
            [true, false]
        );
        assert_eq!(
            run(Op::Compare(CmpOp::Ne), &[&z, &w])
                .to_vec::<bool>()
                .unwrap(),
            [false, true]
        );
        assert!(eval_op(&Op::Compare(CmpOp::Lt), &[&z, &w]).is_err());
        let p = Tensor::from_vec_col_major(vec![3], vec![true, false, true]).unwrap();
        assert_eq!(v64(&run(Op::Select, &[&p, &x, &y]))[..1], [1.0]);
        assert_eq!(v64(&run(Op::Select, &[&p, &x, &y]))[2], 3.0);
        let s = run(Op::Select, &[&p, &y, &x]);
        assert!(v64(&s)[1].is_nan());
        assert_eq!(v64(&s)[0], 2.0);
    }

    #[test]
    fn reductions_are_column_major() {
        // [[1,3,5],[2,4,6]]
        let x = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let red = |kind, axes: &[usize], x: &Tensor| {
            run(
                Op::Reduce {
                    kind,
                    axes: axes.to_vec(),
                },
                &[x],
            )
        };
        assert_eq!(v64(&red(ReduceOp::Sum, &[0], &x)), [3.0, 7.0, 11.0]);
        assert_eq!(v64(&red(ReduceOp::Sum, &[1], &x)), [9.0, 12.0]);
        assert_eq!(v64(&red(ReduceOp::Sum, &[0, 1], &x)), [21.0]);
        assert_eq!(red(ReduceOp::Sum, &[0, 1], &x).shape(), &[] as &[usize]);
        assert_eq!(v64(&red(ReduceOp::Prod, &[1], &x)), [15.0, 48.0]);
        assert_eq!(v64(&red(ReduceOp::Max, &[0], &x)), [2.0, 4.0, 6.0]);
        assert_eq!(v64(&red(ReduceOp::Min, &[1], &x)), [1.0, 2.0]);
        assert_eq!(v64(&red(ReduceOp::Sum, &[], &x)), v64(&x));
        let n = f64s(&[3], &[1.0, f64::NAN, 5.0]);
        assert!(v64(&red(ReduceOp::Max, &[0], &n))[0].is_nan());
        assert!(v64(&red(ReduceOp::Min, &[0], &n))[0].is_nan());
        let empty = f64s(&[0, 2], &[]);
        assert_eq!(
            v64(&red(ReduceOp::Max, &[0], &empty)),
            [f64::NEG_INFINITY; 2]
        );
        assert_eq!(v64(&red(ReduceOp::Min, &[0], &empty)), [f64::INFINITY; 2]);
        assert_eq!(v64(&red(ReduceOp::Prod, &[0], &empty)), [1.0; 2]);
        // sum starts from +0: the sum of a single -0 is +0.
        assert!(v64(&red(ReduceOp::Sum, &[0], &f64s(&[1], &[-0.0])))[0].is_sign_positive());
        let i = i64s(&[2, 2], &[1, 2, 3, 4]);
        assert_eq!(
            red(ReduceOp::Max, &[1], &i).to_vec::<i64>().unwrap(),
            [3, 4]
        );
        assert_eq!(
            red(ReduceOp::Prod, &[0], &i).to_vec::<i64>().unwrap(),
            [2, 12]
        );
        let e = i64s(&[0], &[]);
        assert_eq!(
            red(ReduceOp::Max, &[0], &e).to_vec::<i64>().unwrap(),
            [i64::MIN]
        );
        let z = c64s(&[2], &[(1.0, 1.0), (1.0, -1.0)]);
        cclose(&red(ReduceOp::Prod, &[0], &z), &[(2.0, 0.0)]);
        cclose(&red(ReduceOp::Sum, &[0], &z), &[(2.0, 0.0)]);
        assert!(eval_op(
            &Op::Reduce {
                kind: ReduceOp::Max,
                axes: vec![0]
            },
            &[&z]
        )
        .is_err());
    }

    #[test]
    fn dot_general_layouts() {
        // A = [[1,3,5],[2,4,6]], B = [[1,4],[2,5],[3,6]]; A·B = [[22,49],[28,64]].
        let a = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let b = f64s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let c = run(Op::DotGeneral(DotDims::matmul()), &[&a, &b]);
        assert_eq!(c.shape(), &[2, 2]);
        assert_eq!(v64(&c), [22.0, 28.0, 49.0, 64.0]);
        // Batch axis 0 of lhs [b,k], batch axis 1 of rhs [k,b]: per-batch dot products.
        let l = f64s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let r = f64s(&[2, 2], &[5.0, 6.0, 7.0, 8.0]);
        let d = DotDims {
            lhs_contract: vec![1],
            rhs_contract: vec![0],
            lhs_batch: vec![0],
            rhs_batch: vec![1],
        };
        assert_eq!(v64(&run(Op::DotGeneral(d), &[&l, &r])), [23.0, 46.0]);
        // Outer product: result = lhs free ++ rhs free, r[i,j] = l[i]*r[j].
        let u = f64s(&[2], &[1.0, 2.0]);
        let v = f64s(&[3], &[10.0, 20.0, 30.0]);
        let o = run(Op::DotGeneral(DotDims::default()), &[&u, &v]);
        assert_eq!(o.shape(), &[2, 3]);
        assert_eq!(v64(&o), [10.0, 20.0, 20.0, 40.0, 30.0, 60.0]);
        // Batch first, then lhs free: lhs [m,b] batch 1, rhs [b] batch 0 -> [b,m].
        let d = DotDims {
            lhs_contract: vec![],
            rhs_contract: vec![],
            lhs_batch: vec![1],
            rhs_batch: vec![0],
        };
        let w = f64s(&[2], &[10.0, 100.0]);
        let o = run(Op::DotGeneral(d), &[&l, &w]);
        assert_eq!(o.shape(), &[2, 2]);
        assert_eq!(v64(&o), [10.0, 300.0, 20.0, 400.0]);
        // Two contracting axes: full inner product.
        let d = DotDims {
            lhs_contract: vec![0, 1],
            rhs_contract: vec![1, 0],
            lhs_batch: vec![],
            rhs_batch: vec![],
        };
        // sum_ij a[i,j] * b[j,i] = trace(A·B) = 22 + 64
        assert_eq!(v64(&run(Op::DotGeneral(d), &[&a, &b])), [86.0]);
        let z = c64s(&[1, 1], &[(0.0, 1.0)]);
        cclose(
            &run(Op::DotGeneral(DotDims::matmul()), &[&z, &z]),
            &[(-1.0, 0.0)],
        );
        let i = i64s(&[1, 2], &[3, 4]);
        let j = i64s(&[2, 1], &[5, 6]);
        assert_eq!(
            run(Op::DotGeneral(DotDims::matmul()), &[&i, &j])
                .to_vec::<i64>()
                .unwrap(),
            [39]
        );
        let empty = f64s(&[2, 0], &[]);
        let empty_r = f64s(&[0, 1], &[]);
        assert_eq!(
            v64(&run(Op::DotGeneral(DotDims::matmul()), &[&empty, &empty_r])),
            [0.0, 0.0]
        );
    }

    #[test]
    fn layout_ops() {
        let x = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let t = run(Op::Transpose { perm: vec![1, 0] }, &[&x]);
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(v64(&t), [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
        // rank 3: result[a,b,c] = x[b,c,a] for perm [2,0,1].
        let y: Vec<f64> = (0..24).map(|k| k as f64).collect();
        let y = f64s(&[2, 3, 4], &y);
        let t = run(
            Op::Transpose {
                perm: vec![2, 0, 1],
            },
            &[&y],
        );
        assert_eq!(t.shape(), &[4, 2, 3]);
        let tv = v64(&t);
        for a in 0..4 {
            for b in 0..2 {
                for c in 0..3 {
                    assert_eq!(tv[a + 4 * (b + 2 * c)], (b + 2 * (c + 3 * a)) as f64);
                }
            }
        }
        let r = run(Op::Reshape { shape: vec![3, 2] }, &[&x]);
        assert_eq!(r.shape(), &[3, 2]);
        assert_eq!(v64(&r), v64(&x));

        let v = f64s(&[3], &[1.0, 2.0, 3.0]);
        let b = run(
            Op::BroadcastInDim {
                shape: vec![2, 3],
                dims: vec![1],
            },
            &[&v],
        );
        assert_eq!(v64(&b), [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        let w = f64s(&[2], &[1.0, 2.0]);
        let b = run(
            Op::BroadcastInDim {
                shape: vec![2, 3],
                dims: vec![0],
            },
            &[&w],
        );
        assert_eq!(v64(&b), [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
        let one = f64s(&[1, 3], &[1.0, 2.0, 3.0]);
        let b = run(
            Op::BroadcastInDim {
                shape: vec![2, 3],
                dims: vec![0, 1],
            },
            &[&one],
        );
        assert_eq!(v64(&b), [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        let s = run(
            Op::BroadcastInDim {
                shape: vec![2],
                dims: vec![],
            },
            &[&f64s(&[], &[7.0])],
        );
        assert_eq!(v64(&s), [7.0, 7.0]);

        let m: Vec<f64> = (0..9).map(|k| k as f64).collect();
        let m = f64s(&[3, 3], &m);
        let s = run(
            Op::Slice {
                starts: vec![1, 0],
                limits: vec![3, 2],
            },
            &[&m],
        );
        assert_eq!(s.shape(), &[2, 2]);
        assert_eq!(v64(&s), [1.0, 2.0, 4.0, 5.0]);

        let pv = f64s(&[], &[-1.0]);
        let p = run(
            Op::Pad {
                low: vec![1],
                high: vec![2],
            },
            &[&w, &pv],
        );
        assert_eq!(v64(&p), [-1.0, 1.0, 2.0, -1.0, -1.0]);
        let p = run(
            Op::Pad {
                low: vec![1, 0],
                high: vec![0, 1],
            },
            &[&f64s(&[1, 1], &[7.0]), &pv],
        );
        assert_eq!(p.shape(), &[2, 2]);
        assert_eq!(v64(&p), [-1.0, 7.0, -1.0, -1.0]);

        let a = f64s(&[2, 1], &[1.0, 2.0]);
        let c = f64s(&[2, 2], &[3.0, 4.0, 5.0, 6.0]);
        let k = run(Op::Concatenate { axis: 1 }, &[&a, &c]);
        assert_eq!(k.shape(), &[2, 3]);
        assert_eq!(v64(&k), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let a = f64s(&[1, 2], &[1.0, 2.0]);
        let k = run(Op::Concatenate { axis: 0 }, &[&a, &c, &a]);
        assert_eq!(k.shape(), &[4, 2]);
        assert_eq!(v64(&k), [1.0, 3.0, 4.0, 1.0, 2.0, 5.0, 6.0, 2.0]);
    }

    #[test]
    fn gather_and_scatter_add_clamp() {
        // x[i,j] = 1 + i + 3j
        let x = f64s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let idx = i64s(&[3], &[5, -1, 1]);
        let g = run(Op::Gather { axis: 0 }, &[&x, &idx]);
        assert_eq!(g.shape(), &[3, 2]);
        assert_eq!(v64(&g), [3.0, 1.0, 2.0, 6.0, 4.0, 5.0]);
        // x[i,j] = 1 + i + 2j, axis 1, 2-D indices: r[i,k0,k1] = x[i, idx[k0,k1]].
        let x = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let idx = i64s(&[2, 2], &[2, 0, 1, 1]);
        let g = run(Op::Gather { axis: 1 }, &[&x, &idx]);
        assert_eq!(g.shape(), &[2, 2, 2]);
        assert_eq!(v64(&g), [5.0, 6.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0]);

        let base = f64s(&[3], &[0.5, 0.0, 0.0]);
        let idx = i64s(&[4], &[0, 2, 2, 7]);
        let upd = f64s(&[4], &[1.0, 2.0, 3.0, 4.0]);
        let s = run(Op::ScatterAdd { axis: 0 }, &[&base, &idx, &upd]);
        assert_eq!(v64(&s), [1.5, 0.0, 9.0]);
        // axis 1 of a [2,2] base with updates [2,1]: column idx gets the update column.
        let base = f64s(&[2, 2], &[0.0; 4]);
        let idx = i64s(&[1], &[1]);
        let upd = f64s(&[2, 1], &[5.0, 6.0]);
        let s = run(Op::ScatterAdd { axis: 1 }, &[&base, &idx, &upd]);
        assert_eq!(v64(&s), [0.0, 0.0, 5.0, 6.0]);
        let bi = i64s(&[2], &[1, 1]);
        let s = run(
            Op::ScatterAdd { axis: 0 },
            &[&bi, &i64s(&[2], &[-3, -3]), &i64s(&[2], &[2, 3])],
        );
        assert_eq!(s.to_vec::<i64>().unwrap(), [6, 1]);
    }

    #[test]
    fn convert_rules() {
        let x = f64s(&[5], &[1.7, -1.7, f64::NAN, 1e300, -0.0]);
        let to = |t: &Tensor, d| run(Op::Convert { to: d }, &[t]);
        assert_eq!(
            to(&x, DType::I64).to_vec::<i64>().unwrap(),
            [1, -1, 0, i64::MAX, 0]
        );
        assert_eq!(
            to(&x, DType::Bool).to_vec::<bool>().unwrap(),
            [true, true, true, true, false]
        );
        let f = to(&x, DType::F32).to_vec::<f32>().unwrap();
        assert_eq!(f[0], 1.7f32);
        assert!(f[3].is_infinite());
        let c = to(&x, DType::C64).to_vec::<Complex64>().unwrap();
        assert_eq!(c[0], Complex64::new(1.7, 0.0));
        let z = c64s(&[3], &[(3.5, 4.0), (0.0, 1.0), (0.0, 0.0)]);
        assert_eq!(v64(&to(&z, DType::F64)), [3.5, 0.0, 0.0]);
        assert_eq!(to(&z, DType::I64).to_vec::<i64>().unwrap(), [3, 0, 0]);
        assert_eq!(
            to(&z, DType::Bool).to_vec::<bool>().unwrap(),
            [true, true, false]
        );
        assert_eq!(
            to(&z, DType::C32).to_vec::<Complex32>().unwrap(),
            [
                Complex32::new(3.5, 4.0),
                Complex32::new(0.0, 1.0),
                Complex32::new(0.0, 0.0)
            ]
        );
        let b = Tensor::from_vec_col_major(vec![2], vec![true, false]).unwrap();
        assert_eq!(v64(&to(&b, DType::F64)), [1.0, 0.0]);
        assert_eq!(to(&b, DType::I64).to_vec::<i64>().unwrap(), [1, 0]);
        assert_eq!(
            to(&b, DType::C32).to_vec::<Complex32>().unwrap(),
            [Complex32::new(1.0, 0.0), Complex32::new(0.0, 0.0)]
        );
        // i64 -> f32 rounds once: via f64, 2^60 + 2^36 + 1 would become a tie and round
        // down to 2^60; rounded directly it goes up to 2^60 + 2^37.
        let n = (1i64 << 60) + (1 << 36) + 1;
        let big = i64s(&[1], &[n]);
        assert_eq!(
            to(&big, DType::F32).to_vec::<f32>().unwrap(),
            [(1i64 << 60) as f32 + (1i64 << 37) as f32]
        );
        assert_eq!(to(&big, DType::I64).to_vec::<i64>().unwrap(), [n]);
    }

    #[test]
    fn i32_semantics_wrap_at_32_bits() {
        let i32s = |v: &[i32]| Tensor::from_vec_col_major(vec![v.len()], v.to_vec()).unwrap();
        let a = i32s(&[i32::MAX, -7, 5, i32::MIN, 1]);
        let b = i32s(&[1, 2, 0, -1, 31]);
        let get = |t: Tensor| t.to_vec::<i32>().unwrap();
        assert_eq!(
            get(bin(BinaryOp::Add, &a, &b)),
            [i32::MIN, -5, 5, i32::MAX, 32]
        );
        assert_eq!(
            get(bin(BinaryOp::Mul, &a, &b)),
            [i32::MAX, -14, 0, i32::MIN, 31]
        );
        assert_eq!(
            get(bin(BinaryOp::Div, &a, &b)),
            [i32::MAX, -3, 0, i32::MIN, 0]
        );
        assert_eq!(get(bin(BinaryOp::Rem, &a, &b)), [0, -1, 0, 0, 1]);
        assert_eq!(
            get(bin(BinaryOp::Xor, &a, &b)),
            [i32::MAX - 1, -5, 5, i32::MAX, 30]
        );
        // shifts act on the 32-bit pattern: 1 << 31 is i32::MIN, 32 is out of range
        let one = i32s(&[1, 1, -1, -1, 1]);
        let by = i32s(&[31, 32, 28, 31, -1]);
        assert_eq!(
            get(bin(BinaryOp::ShiftLeft, &one, &by)),
            [i32::MIN, 0, -(1 << 28), i32::MIN, 0]
        );
        assert_eq!(
            get(bin(BinaryOp::ShiftRightLogical, &one, &by)),
            [0, 0, 15, 1, 0]
        );
        assert_eq!(get(un(UnaryOp::Neg, &a)), [-i32::MAX, 7, -5, i32::MIN, -1]);
        assert_eq!(get(un(UnaryOp::Abs, &a)), [i32::MAX, 7, 5, i32::MIN, 1]);
        assert_eq!(get(un(UnaryOp::Sign, &a)), [1, -1, 1, -1, 1]);
        let lt = run(Op::Compare(CmpOp::Lt), &[&a, &b]);
        assert_eq!(
            lt.to_vec::<bool>().unwrap(),
            [false, true, false, true, true]
        );
        let sum = run(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: vec![0],
            },
            &[&a],
        );
        assert_eq!(
            sum.to_vec::<i32>().unwrap(),
            [i32::MAX - 7 + 5 + i32::MIN + 1]
        );
        let max = run(
            Op::Reduce {
                kind: ReduceOp::Max,
                axes: vec![0],
            },
            &[&i32s(&[])],
        );
        assert_eq!(max.to_vec::<i32>().unwrap(), [i32::MIN]);
        let cum = run(
            Op::Cumulative {
                kind: ReduceOp::Prod,
                axis: 0,
                reverse: false,
            },
            &[&i32s(&[1 << 16, 1 << 16, 3])],
        );
        assert_eq!(cum.to_vec::<i32>().unwrap(), [1 << 16, 0, 0]);
        let order = run(
            Op::Argsort {
                axis: 0,
                descending: false,
            },
            &[&a],
        );
        assert_eq!(order.to_vec::<i64>().unwrap(), [3, 1, 4, 2, 0]);
    }

    #[test]
    fn i32_converts_to_and_from_every_dtype() {
        let to = |t: &Tensor, d| run(Op::Convert { to: d }, &[t]);
        let x = f64s(&[5], &[1.7, -1.7, f64::NAN, 1e300, -3e300]);
        // float → i32 truncates toward zero and saturates, NaN → 0 (as float → i64)
        assert_eq!(
            to(&x, DType::I32).to_vec::<i32>().unwrap(),
            [1, -1, 0, i32::MAX, i32::MIN]
        );
        // i64 → i32 keeps the low 32 bits; i32 → i64 is exact
        let big = i64s(&[3], &[(1 << 32) + 5, -1, i64::MAX]);
        assert_eq!(to(&big, DType::I32).to_vec::<i32>().unwrap(), [5, -1, -1]);
        let v = Tensor::from_vec_col_major(vec![4], vec![i32::MIN, -3, 0, i32::MAX]).unwrap();
        for d in DType::ALL {
            let back = to(&to(&v, d), DType::I32);
            let want: Vec<i32> = match d {
                DType::Bool => vec![1, 1, 0, 1],
                // f32 rounds i32::MAX up to 2^31, which saturates back to i32::MAX
                _ => vec![i32::MIN, -3, 0, i32::MAX],
            };
            assert_eq!(back.to_vec::<i32>().unwrap(), want, "via {d}");
        }
        assert_eq!(
            to(&v, DType::I64).to_vec::<i64>().unwrap(),
            [i32::MIN as i64, -3, 0, i32::MAX as i64]
        );
        assert_eq!(
            to(&v, DType::F64).to_vec::<f64>().unwrap(),
            [i32::MIN as f64, -3.0, 0.0, i32::MAX as f64]
        );
    }

    #[test]
    fn iota_constant_and_extension() {
        let io = |dtype, dim| {
            run(
                Op::Iota {
                    ty: TensorType::new(dtype, vec![2, 3]),
                    dim,
                },
                &[],
            )
        };
        assert_eq!(v64(&io(DType::F64, 1)), [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
        assert_eq!(
            io(DType::I64, 0).to_vec::<i64>().unwrap(),
            [0, 1, 0, 1, 0, 1]
        );
        assert_eq!(io(DType::C32, 0).dtype(), DType::C32);
        let k = f64s(&[2], &[1.0, f64::NAN]);
        assert!(run(Op::Constant(k.clone()), &[]).bits_eq(&k));
        let ext = Op::Extension(ExtensionOp::new(
            "linalg.cholesky",
            vec![TensorType::new(DType::F64, vec![2, 2])],
        ));
        let e = eval_op(&ext, &[&k]).unwrap_err().to_string();
        assert!(
            e.contains("cannot run extension op `linalg.cholesky`"),
            "{e}"
        );
        // Type errors are reported by infer_types.
        let e = eval_op(&Op::Binary(BinaryOp::Add), &[&k, &f64s(&[3], &[0.0; 3])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("add"), "{e}");
    }

    #[test]
    fn eval_function() {
        let mut f = Function::new("f");
        let x = f.add_param(TensorType::new(DType::F64, vec![2, 3]));
        let sq = f.push1(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap();
        let s = f
            .push1(
                Op::Reduce {
                    kind: ReduceOp::Sum,
                    axes: vec![1],
                },
                &[sq],
            )
            .unwrap();
        f.set_outputs(vec![s, x]);
        let input = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let out = eval(&f, std::slice::from_ref(&input)).unwrap();
        assert_eq!(v64(&out[0]), [1.0 + 9.0 + 25.0, 4.0 + 16.0 + 36.0]);
        assert!(out[1].bits_eq(&input));
        assert!(eval(&f, &[]).is_err());
        let e = eval(&f, &[f64s(&[3, 2], &[0.0; 6])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("input 0"), "{e}");
        // A wrongly recorded result type is caught.
        let mut g = Function::new("g");
        let x = g.add_param(TensorType::new(DType::F64, vec![2]));
        let y = g.push_unchecked(
            Op::Unary(UnaryOp::Neg),
            vec![x],
            vec![TensorType::new(DType::F32, vec![2])],
        );
        g.set_outputs(y);
        assert!(matches!(
            eval(&g, &[f64s(&[2], &[1.0, 2.0])]),
            Err(IrError::TypeMismatch { .. })
        ));
    }

    /// The other sum orders visit the same terms in another order: a sum whose value
    /// rounding decides comes out differently, and the sequential order stays the default
    /// (also after an order's evaluation).
    #[test]
    fn sum_orders_reorder_terms() {
        let f = crate::parse_and_verify(
            "func @f(%x: f64[9], %y: f64[9]) -> (f64[], f64[]) {\n\
             %s = reduce_sum {axes = [0]} %x : f64[]\n\
             %d = dot_general {lhs_batch = [], rhs_batch = [], lhs_contract = [0], \
             rhs_contract = [0]} %x, %y : f64[]\n\
             return %s, %d\n}\n",
        )
        .unwrap();
        let mut x = [0.0; 9];
        (x[0], x[1], x[8]) = (1e16, 1.0, -1e16);
        let inputs = [f64s(&[9], &x), f64s(&[9], &[1.0; 9])];
        let sums = |order| -> Vec<f64> {
            let out = eval_in_order(&f, &inputs, order).unwrap();
            out.iter().map(|t| v64(t)[0]).collect()
        };
        // 1e16 + 1 rounds back to 1e16; the 8-lane order pairs 1e16 with -1e16 first.
        assert_eq!(sums(SumOrder::Sequential), [0.0, 0.0]);
        assert_eq!(sums(SumOrder::Strided), [1.0, 1.0]);
        assert_eq!(sums(SumOrder::Reversed), [0.0, 0.0]);
        (x[0], x[1], x[8]) = (1.0, 1e16, -1e16);
        let inputs = [f64s(&[9], &x), f64s(&[9], &[1.0; 9])];
        let out = eval_in_order(&f, &inputs, SumOrder::Reversed).unwrap();
        assert_eq!(v64(&out[0])[0], 1.0);
        assert_eq!(v64(&eval(&f, &inputs).unwrap()[0])[0], 0.0);
        // Each 1 added to 1e16 alone rounds away; pairwise, the ones meet each other first.
        let mut x = [1.0; 9];
        x[0] = 1e16;
        let inputs = [f64s(&[9], &x), f64s(&[9], &[1.0; 9])];
        assert_eq!(v64(&eval(&f, &inputs).unwrap()[0])[0], 1e16);
        let out = eval_in_order(&f, &inputs, SumOrder::Pairwise).unwrap();
        assert_eq!(v64(&out[0])[0], 1e16 + 8.0);
        assert_eq!(v64(&out[1])[0], 1e16 + 8.0);
        // A fused multiply-add keeps the product (1 + 2^-30)(1 - 2^-30) = 1 - 2^-60 whole.
        let g = crate::parse_and_verify(
            "func @g(%x: f64[2], %y: f64[2]) -> (f64[]) {\n\
             %d = dot_general {lhs_batch = [], rhs_batch = [], lhs_contract = [0], \
             rhs_contract = [0]} %x, %y : f64[]\n\
             return %d\n}\n",
        )
        .unwrap();
        let t = 2f64.powi(-30);
        let inputs = [f64s(&[2], &[-1.0, 1.0 + t]), f64s(&[2], &[1.0, 1.0 - t])];
        let dot = |order| v64(&eval_in_order(&g, &inputs, order).unwrap()[0])[0];
        assert_eq!(dot(SumOrder::Sequential), 0.0);
        assert_eq!(dot(SumOrder::Fused), -(t * t));
    }
}
