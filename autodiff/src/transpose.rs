//! Reverse mode's core: [`transpose_function`] turns a function that is linear in its
//! first parameters into its adjoint, walking the instructions backwards and accumulating
//! cotangents (`None` = symbolic zero) with one transpose rule per linear primitive.
//!
//! The adjoint is taken under the real inner product `⟨a, b⟩ = Re(Σ conj(a)·b)`, so for a
//! linear map `L` the result satisfies `⟨ct, L·t⟩ = ⟨Lᵀ·ct, t⟩`: multiplying by a primal
//! `c` transposes to multiplying by `conj(c)`, `dot_general` uses the conjugate of the
//! primal operand, `real` (c → r) transposes to `ct + 0i`, `imag` to `i·ct`, `conj` to
//! `conj(ct)`, and a real → complex `convert` to `real(ct)`.

use crate::build::*;
use crate::error::{AdError, Result};
use crate::rules::{Rules, TransposeArg};
use tenferro_ir::{BinaryOp, DType, DotDims, Function, Op, ReduceOp, TensorType, UnaryOp};
use tenferro_runtime::TracedTensor;

/// Transposes `f`, which must be linear in its first `n_linear` parameters; its other
/// parameters are bound to `residuals` (primal values). `cotangents` has one entry per
/// output of `f` (`None` for zero). Returns the cotangent of each linear parameter
/// (`None` when it is zero).
///
/// Instructions that do not depend on a linear parameter are evaluated forward first (as
/// primal values). A linear value used by a nonlinear op is [`AdError::Internal`] naming
/// the op; an extension op without a transpose rule in `rules` is
/// [`AdError::MissingRule`] (mode `transpose`).
pub fn transpose_function(
    f: &Function,
    rules: &Rules,
    n_linear: usize,
    residuals: &[TracedTensor],
    cotangents: &[Option<TracedTensor>],
) -> Result<Vec<Option<TracedTensor>>> {
    let params = f.params();
    if n_linear > params.len() || residuals.len() != params.len() - n_linear {
        return Err(AdError::BadArgument {
            transform: "transpose",
            message: format!(
                "function `{}` has {} parameters; {} linear and {} residuals were given",
                f.name,
                params.len(),
                n_linear,
                residuals.len()
            ),
        });
    }
    if cotangents.len() != f.outputs().len() {
        return Err(AdError::BadArgument {
            transform: "transpose",
            message: format!(
                "function `{}` has {} outputs but {} cotangents were given",
                f.name,
                f.outputs().len(),
                cotangents.len()
            ),
        });
    }
    let n = f.num_values();
    let mut linear = vec![false; n];
    let mut primal: Vec<Option<TracedTensor>> = vec![None; n];
    for (i, &p) in params.iter().enumerate() {
        if i < n_linear {
            linear[p.index()] = true;
        } else {
            let r = &residuals[i - n_linear];
            let (got, want) = (r.ty()?, f.ty(p));
            if &got != want {
                return Err(AdError::BadArgument {
                    transform: "transpose",
                    message: format!(
                        "residual #{} has type {got} but parameter {p} has type {want}",
                        i - n_linear
                    ),
                });
            }
            primal[p.index()] = Some(r.clone());
        }
    }
    // Forward: evaluate the nonlinear part, mark what depends on a linear parameter.
    let mut linear_insts = Vec::new();
    for (k, inst) in f.insts().iter().enumerate() {
        if inst.args.iter().any(|a| linear[a.index()]) {
            for r in &inst.results {
                linear[r.index()] = true;
            }
            linear_insts.push(k);
            continue;
        }
        let args: Vec<&TracedTensor> = inst
            .args
            .iter()
            .map(|a| {
                primal[a.index()].as_ref().ok_or_else(|| {
                    AdError::Internal(format!("transpose: {a} is used before it is defined"))
                })
            })
            .collect::<Result<_>>()?;
        let outs = match &inst.op {
            Op::Constant(t) => vec![TracedTensor::from_tensor(t.clone())],
            op => TracedTensor::apply(op.clone(), &args),
        };
        for (&r, o) in inst.results.iter().zip(outs) {
            if let Some(e) = o.error() {
                return Err(e.into());
            }
            primal[r.index()] = Some(o);
        }
    }
    // Backward: accumulate cotangents of linear values.
    let mut ct: Vec<Vec<Term>> = vec![Vec::new(); n];
    for (i, (&o, c)) in f.outputs().iter().zip(cotangents).enumerate() {
        if let Some(c) = c {
            let (got, want) = (c.ty()?, f.ty(o));
            if &got != want {
                return Err(AdError::BadArgument {
                    transform: "transpose",
                    message: format!(
                        "cotangent #{i} has type {got} but output {o} has type {want}; they must be equal"
                    ),
                });
            }
            if linear[o.index()] {
                ct[o.index()].push(Term::Dense(c.clone()));
            }
        }
    }
    for &k in linear_insts.iter().rev() {
        let inst = &f.insts()[k];
        let cts: Vec<Option<TracedTensor>> = inst
            .results
            .iter()
            .map(|&r| sum_terms(std::mem::take(&mut ct[r.index()]), f.ty(r)))
            .collect();
        if cts.iter().all(Option::is_none) {
            continue;
        }
        let args: Vec<TransposeArg> = inst
            .args
            .iter()
            .map(|&a| {
                if linear[a.index()] {
                    Ok(TransposeArg::Linear(f.ty(a).clone()))
                } else {
                    primal[a.index()]
                        .clone()
                        .map(TransposeArg::Primal)
                        .ok_or_else(|| {
                            AdError::Internal(format!(
                                "transpose: {a} is used before it is defined"
                            ))
                        })
                }
            })
            .collect::<Result<_>>()?;
        if let (Op::Slice { starts, .. }, Some(c)) = (&inst.op, &cts[0]) {
            // The cotangent of a slice is kept as a piece of its operand's cotangent;
            // `sum_terms` places all pieces of a value at once.
            ct[inst.args[0].index()].push(Term::Piece {
                starts: starts.clone(),
                value: c.clone(),
            });
            continue;
        }
        let out_tys: Vec<TensorType> = inst.results.iter().map(|&r| f.ty(r).clone()).collect();
        let arg_cts = transpose_rule(rules, &inst.op, &args, &out_tys, &cts)?;
        if arg_cts.len() != inst.args.len() {
            return Err(AdError::Internal(format!(
                "transpose rule of `{}` returned {} cotangents for {} operands",
                inst.op.name(),
                arg_cts.len(),
                inst.args.len()
            )));
        }
        for (&a, c) in inst.args.iter().zip(arg_cts) {
            if !linear[a.index()] {
                continue;
            }
            if let Some(c) = &c {
                match c.ty() {
                    Err(e) => {
                        return Err(AdError::Internal(format!(
                            "transpose rule of `{}` built invalid IR: {e}",
                            inst.op.name()
                        )))
                    }
                    Ok(t) if &t != f.ty(a) => {
                        return Err(AdError::Internal(format!(
                            "transpose rule of `{}` returned a cotangent of type {t} for an operand of type {}",
                            inst.op.name(),
                            f.ty(a)
                        )))
                    }
                    Ok(_) => {}
                }
            }
            if let Some(c) = c {
                ct[a.index()].push(Term::Dense(c));
            }
        }
    }
    Ok(params[..n_linear]
        .iter()
        .map(|&p| sum_terms(std::mem::take(&mut ct[p.index()]), f.ty(p)))
        .collect())
}

/// One contribution to a value's cotangent, in the order the backward walk produced it.
#[derive(Clone)]
enum Term {
    /// A cotangent of the value's type.
    Dense(TracedTensor),
    /// `value` at `starts` in zeros of the value's type: the transpose of a slice, kept
    /// unplaced so that many slices of one value are placed together (see [`place`]).
    Piece {
        starts: Vec<usize>,
        value: TracedTensor,
    },
}

/// The sum of a value's cotangent terms (`None` when there are none), of type `ty`.
///
/// Terms are added in order; each maximal run of consecutive pieces is placed by one
/// [`place`], so `n` slices of a value cost `O(n)` elements instead of `n` full-size pads
/// and adds. An element covered by at most one piece of a run gets the same value as
/// adding the run's pads one by one (up to the sign of a zero: `-0` is not turned into
/// `+0` by an added padding zero).
fn sum_terms(terms: Vec<Term>, ty: &TensorType) -> Option<TracedTensor> {
    let mut total: Option<TracedTensor> = None;
    let mut run: Vec<Piece> = Vec::new();
    for t in terms {
        match t {
            Term::Dense(d) => {
                if !run.is_empty() {
                    let placed = place(std::mem::take(&mut run), &ty.shape, ty.dtype);
                    total = add_opt(total, Some(placed));
                }
                total = add_opt(total, Some(d));
            }
            Term::Piece { starts, value } => match value.shape() {
                Ok(shape) => run.push(Piece {
                    starts,
                    shape,
                    value,
                }),
                // An invalid value carries its error into whatever uses it.
                Err(_) => total = add_opt(total, Some(value)),
            },
        }
    }
    if !run.is_empty() {
        total = add_opt(total, Some(place(run, &ty.shape, ty.dtype)));
    }
    total
}

/// A block of a cotangent: `value`, of shape `shape`, at `starts`.
struct Piece {
    starts: Vec<usize>,
    shape: Vec<usize>,
    value: TracedTensor,
}

/// The sum of `pieces` (in order), each placed at its starts in zeros of `shape`.
///
/// Guillotine cuts: along the first axis on which the pieces fall into several disjoint
/// groups of overlapping extents (or leave a gap), the result is the concatenation of
/// each group placed in its own band and zeros for the gaps. A group that no axis splits
/// is a single piece covering its region (the piece itself), or overlapping pieces, which
/// are padded to the region and added in order. Pieces that do not overlap therefore
/// cost the elements of the region plus those of the pieces, whatever their number.
fn place(mut pieces: Vec<Piece>, shape: &[usize], dtype: DType) -> TracedTensor {
    if pieces.len() == 1 && pieces[0].shape == shape {
        if let Some(p) = pieces.pop() {
            return p.value;
        }
    }
    for axis in 0..shape.len() {
        // Pieces sorted by start on `axis` (stable: ties keep their order), then grouped
        // into bands of overlapping extents.
        let mut order: Vec<usize> = (0..pieces.len()).collect();
        order.sort_by_key(|&i| pieces[i].starts[axis]);
        let mut bands: Vec<(usize, usize, Vec<usize>)> = Vec::new();
        for i in order {
            let (lo, hi) = (
                pieces[i].starts[axis],
                pieces[i].starts[axis] + pieces[i].shape[axis],
            );
            match bands.last_mut() {
                Some((_, end, members)) if lo < *end => {
                    *end = (*end).max(hi);
                    members.push(i);
                }
                _ => bands.push((lo, hi, vec![i])),
            }
        }
        if bands.len() == 1 && bands[0].0 == 0 && bands[0].1 == shape[axis] {
            continue;
        }
        let mut slots: Vec<Option<Piece>> = pieces.into_iter().map(Some).collect();
        let mut parts: Vec<TracedTensor> = Vec::with_capacity(2 * bands.len() + 1);
        let mut cursor = 0;
        let zeros_band = |from: usize, to: usize| {
            let mut s = shape.to_vec();
            s[axis] = to - from;
            zeros(&TensorType::new(dtype, s))
        };
        for (lo, hi, mut members) in bands {
            if lo > cursor {
                parts.push(zeros_band(cursor, lo));
            }
            // Back to arrival order, so overlapping pieces are added in that order.
            members.sort_unstable();
            let band: Vec<Piece> = members
                .into_iter()
                .filter_map(|i| slots[i].take())
                .map(|mut p| {
                    p.starts[axis] -= lo;
                    p
                })
                .collect();
            let mut band_shape = shape.to_vec();
            band_shape[axis] = hi - lo;
            parts.push(place(band, &band_shape, dtype));
            cursor = hi;
        }
        if cursor < shape[axis] {
            parts.push(zeros_band(cursor, shape[axis]));
        }
        if parts.len() == 1 {
            if let Some(p) = parts.pop() {
                return p;
            }
        }
        let refs: Vec<&TracedTensor> = parts.iter().collect();
        return TracedTensor::apply1(Op::Concatenate { axis }, &refs);
    }
    // No axis separates the pieces: they overlap (or interlock), so pad each to the
    // region and add them in order.
    let zero = scalar(dtype, 0.0);
    let mut total: Option<TracedTensor> = None;
    for p in pieces {
        let high: Vec<usize> = (0..shape.len())
            .map(|a| shape[a] - p.starts[a] - p.shape[a])
            .collect();
        let padded = if p.shape == shape {
            p.value
        } else {
            TracedTensor::apply1(
                Op::Pad {
                    low: p.starts,
                    high,
                },
                &[&p.value, &zero],
            )
        };
        total = add_opt(total, Some(padded));
    }
    total.unwrap_or_else(|| zeros(&TensorType::new(dtype, shape.to_vec())))
}

fn nonlinear(op: &Op) -> AdError {
    AdError::Internal(format!(
        "transpose: op `{}` uses a linear (tangent) value nonlinearly, so it cannot be transposed",
        op.name()
    ))
}

fn linear_ty(a: &TransposeArg) -> Option<&TensorType> {
    match a {
        TransposeArg::Linear(t) => Some(t),
        TransposeArg::Primal(_) => None,
    }
}

/// The type of an operand, linear or primal.
fn arg_ty(a: &TransposeArg) -> Result<TensorType> {
    match a {
        TransposeArg::Linear(t) => Ok(t.clone()),
        TransposeArg::Primal(p) => Ok(p.ty()?),
    }
}

/// The primal value of an operand that must not be linear.
fn need_primal<'a>(op: &Op, a: &'a TransposeArg) -> Result<&'a TracedTensor> {
    a.primal().ok_or_else(|| nonlinear(op))
}

/// Cotangents of `op`'s operands given its results' cotangents (at least one nonzero).
fn transpose_rule(
    rules: &Rules,
    op: &Op,
    args: &[TransposeArg],
    out_tys: &[TensorType],
    cts: &[Option<TracedTensor>],
) -> Result<Vec<Option<TracedTensor>>> {
    if let Op::Extension(e) = op {
        if let Some(r) = crate::custom::linear_transpose(rules, e, args, cts)? {
            return Ok(r);
        }
        let rule = rules.get(&e.name).ok_or_else(|| AdError::MissingRule {
            op: e.name.clone(),
            mode: "transpose",
        })?;
        return rule.transpose(e, args, cts);
    }
    let ct = match &cts[0] {
        Some(c) => c,
        None => return Ok(vec![None; args.len()]),
    };
    let out_ty = &out_tys[0];
    let lin: Vec<bool> = args.iter().map(TransposeArg::is_linear).collect();
    let only = |v: Option<TracedTensor>| -> Vec<Option<TracedTensor>> {
        let mut r = vec![None; args.len()];
        r[0] = v;
        r
    };
    Ok(match op {
        Op::Unary(u) => {
            let xt = arg_ty(&args[0])?;
            let dt = xt.dtype;
            vec![match u {
                UnaryOp::Neg => Some(neg(ct)),
                UnaryOp::Conj => Some(conj(ct, dt)),
                UnaryOp::Real => Some(convert(ct, out_ty.dtype, dt)),
                UnaryOp::Imag => {
                    if dt.is_complex() {
                        let c = convert(ct, out_ty.dtype, dt);
                        Some(mul(&c, &imag_unit(dt, &xt.shape)))
                    } else {
                        None
                    }
                }
                _ => return Err(nonlinear(op)),
            }]
        }
        Op::Binary(b) => match b {
            BinaryOp::Add => vec![lin[0].then(|| ct.clone()), lin[1].then(|| ct.clone())],
            BinaryOp::Sub => vec![lin[0].then(|| ct.clone()), lin[1].then(|| neg(ct))],
            BinaryOp::Mul => match (&args[0], &args[1]) {
                (TransposeArg::Linear(_), TransposeArg::Primal(c)) => {
                    vec![Some(mul(ct, &conj(c, out_ty.dtype))), None]
                }
                (TransposeArg::Primal(c), TransposeArg::Linear(_)) => {
                    vec![None, Some(mul(&conj(c, out_ty.dtype), ct))]
                }
                _ => return Err(nonlinear(op)),
            },
            BinaryOp::Div => {
                let c = need_primal(op, &args[1])?;
                vec![Some(div(ct, &conj(c, out_ty.dtype))), None]
            }
            _ => return Err(nonlinear(op)),
        },
        Op::Select => {
            let p = need_primal(op, &args[0])?;
            let z = zeros(out_ty);
            vec![
                None,
                lin[1].then(|| select(p, ct, &z)),
                lin[2].then(|| select(p, &z, ct)),
            ]
        }
        Op::Reduce {
            kind: ReduceOp::Sum,
            axes,
        } => {
            let xt = arg_ty(&args[0])?;
            let kept: Vec<usize> = (0..xt.rank()).filter(|a| !axes.contains(a)).collect();
            only(Some(broadcast_in_dim(ct, &xt.shape, &kept)))
        }
        Op::DotGeneral(dims) => match (&args[0], &args[1]) {
            (TransposeArg::Linear(lt), TransposeArg::Primal(r)) => {
                let rt = r.ty()?;
                vec![Some(dot_transpose_lhs(ct, r, dims, lt, &rt)), None]
            }
            (TransposeArg::Primal(l), TransposeArg::Linear(rt)) => {
                let lt = l.ty()?;
                vec![None, Some(dot_transpose_rhs(ct, l, dims, &lt, rt))]
            }
            _ => return Err(nonlinear(op)),
        },
        Op::Transpose { perm } => only(Some(transpose(ct, &inverse_perm(perm)))),
        Op::Reshape { shape } => {
            let xt = arg_ty(&args[0])?;
            only(Some(reshape(ct, shape, &xt.shape)))
        }
        Op::BroadcastInDim { shape, dims } => {
            let xt = arg_ty(&args[0])?;
            // Sum over the new axes and the axes broadcast from size 1, then restore
            // the operand's size-1 axes.
            let summed: Vec<usize> = (0..shape.len())
                .filter(|&a| match dims.iter().position(|&d| d == a) {
                    None => true,
                    Some(i) => xt.shape[i] == 1 && shape[a] != 1,
                })
                .collect();
            let kept_shape: Vec<usize> = (0..shape.len())
                .filter(|a| !summed.contains(a))
                .map(|a| shape[a])
                .collect();
            only(Some(reshape(
                &reduce_sum(ct, &summed),
                &kept_shape,
                &xt.shape,
            )))
        }
        // The backward walk keeps slices' cotangents as pieces (see `Term`); this is the
        // rule for a single slice.
        Op::Slice { starts, limits } => {
            let xt = arg_ty(&args[0])?;
            let high: Vec<usize> = (0..xt.rank()).map(|a| xt.shape[a] - limits[a]).collect();
            only(Some(TracedTensor::apply1(
                Op::Pad {
                    low: starts.clone(),
                    high,
                },
                &[ct, &scalar(xt.dtype, 0.0)],
            )))
        }
        Op::Pad { low, .. } => {
            let xt = arg_ty(&args[0])?;
            let limits: Vec<usize> = (0..xt.rank()).map(|a| low[a] + xt.shape[a]).collect();
            let inner = TracedTensor::apply1(
                Op::Slice {
                    starts: low.clone(),
                    limits,
                },
                &[ct],
            );
            let all: Vec<usize> = (0..xt.rank()).collect();
            // The padding value appears at every padded position.
            let ct_value = lin[1].then(|| sub(&reduce_sum(ct, &all), &reduce_sum(&inner, &all)));
            vec![lin[0].then_some(inner), ct_value]
        }
        Op::Concatenate { axis } => {
            let mut out = Vec::with_capacity(args.len());
            let mut start = 0;
            for a in args {
                let t = arg_ty(a)?;
                let len = t.shape[*axis];
                out.push(a.is_linear().then(|| {
                    let mut starts = vec![0; t.rank()];
                    let mut limits = out_ty.shape.clone();
                    starts[*axis] = start;
                    limits[*axis] = start + len;
                    TracedTensor::apply1(Op::Slice { starts, limits }, &[ct])
                }));
                start += len;
            }
            out
        }
        Op::Gather { axis } => {
            let xt = linear_ty(&args[0]).ok_or_else(|| nonlinear(op))?;
            let idx = need_primal(op, &args[1])?;
            only(Some(TracedTensor::apply1(
                Op::ScatterAdd { axis: *axis },
                &[&zeros(xt), idx, ct],
            )))
        }
        Op::ScatterAdd { axis } => {
            let idx = need_primal(op, &args[1])?;
            vec![
                lin[0].then(|| ct.clone()),
                None,
                lin[2].then(|| TracedTensor::apply1(Op::Gather { axis: *axis }, &[ct, idx])),
            ]
        }
        Op::Convert { to } => {
            let from = arg_ty(&args[0])?.dtype;
            if !from.is_float() || !to.is_float() {
                return Err(nonlinear(op));
            }
            only(Some(convert_transpose(ct, from, *to)))
        }
        // The adjoint of an inclusive prefix sum is the suffix sum.
        Op::Cumulative {
            kind: ReduceOp::Sum,
            axis,
            reverse,
        } => only(Some(TracedTensor::apply1(
            Op::Cumulative {
                kind: ReduceOp::Sum,
                axis: *axis,
                reverse: !*reverse,
            },
            &[ct],
        ))),
        // Identity in operand 0; the other operands are dependencies only.
        Op::Barrier { .. } => {
            let mut r = vec![None; args.len()];
            if lin[0] {
                r[0] = Some(ct.clone());
            }
            r
        }
        Op::Compare(_)
        | Op::Reduce { .. }
        | Op::Argsort { .. }
        | Op::Cumulative { .. }
        | Op::Iota { .. }
        | Op::Constant(_)
        | Op::Extension(_) => return Err(nonlinear(op)),
    })
}

/// Adjoint of `convert: from → to` applied to a cotangent of dtype `to`.
fn convert_transpose(ct: &TracedTensor, from: DType, to: DType) -> TracedTensor {
    // real → complex embeds x as x + 0i; its adjoint keeps the real part. complex → real
    // keeps the real part; its adjoint embeds r as r + 0i (convert does that).
    let (c, d) = if to.is_complex() && !from.is_complex() {
        (unary(UnaryOp::Real, ct), to.real())
    } else {
        (ct.clone(), to)
    };
    convert(&c, d, from)
}

/// Cotangent of the lhs of `y = dot_general(lhs, rhs)` for a linear lhs:
/// `ct_lhs = ct · conj(rhs)` contracted over rhs's free axes, permuted to lhs's axes.
fn dot_transpose_lhs(
    ct: &TracedTensor,
    rhs: &TracedTensor,
    dims: &DotDims,
    lt: &TensorType,
    rt: &TensorType,
) -> TracedTensor {
    let nb = dims.lhs_batch.len();
    let lfree: Vec<usize> = (0..lt.rank())
        .filter(|a| !dims.lhs_batch.contains(a) && !dims.lhs_contract.contains(a))
        .collect();
    let rfree: Vec<usize> = (0..rt.rank())
        .filter(|a| !dims.rhs_batch.contains(a) && !dims.rhs_contract.contains(a))
        .collect();
    let nlf = lfree.len();
    let d = DotDims {
        lhs_contract: (nb + nlf..nb + nlf + rfree.len()).collect(),
        rhs_contract: rfree,
        lhs_batch: (0..nb).collect(),
        rhs_batch: dims.rhs_batch.clone(),
    };
    let prod = dot_general(ct, &conj(rhs, rt.dtype), &d);
    // Result axes: batch, lhs free, then rhs's contracted axes in increasing order,
    // which pair with lhs's contracted axes.
    let mut order: Vec<usize> = dims.lhs_batch.clone();
    order.extend(&lfree);
    let mut pairs: Vec<(usize, usize)> = dims
        .rhs_contract
        .iter()
        .zip(&dims.lhs_contract)
        .map(|(&r, &l)| (r, l))
        .collect();
    pairs.sort_unstable();
    order.extend(pairs.iter().map(|&(_, l)| l));
    transpose(&prod, &inverse_perm(&order))
}

/// Cotangent of the rhs of `y = dot_general(lhs, rhs)` for a linear rhs: the lhs rule
/// applied to `y' = dot_general(rhs, lhs)` with the roles swapped, whose result axes are
/// `y`'s with the lhs-free and rhs-free groups exchanged.
fn dot_transpose_rhs(
    ct: &TracedTensor,
    lhs: &TracedTensor,
    dims: &DotDims,
    lt: &TensorType,
    rt: &TensorType,
) -> TracedTensor {
    let nb = dims.lhs_batch.len();
    let nlf = lt.rank() - nb - dims.lhs_contract.len();
    let nrf = rt.rank() - nb - dims.rhs_contract.len();
    // y axes: batch, lhs free, rhs free  →  y' axes: batch, rhs free, lhs free.
    let mut perm: Vec<usize> = (0..nb).collect();
    perm.extend(nb + nlf..nb + nlf + nrf);
    perm.extend(nb..nb + nlf);
    let swapped = DotDims {
        lhs_contract: dims.rhs_contract.clone(),
        rhs_contract: dims.lhs_contract.clone(),
        lhs_batch: dims.rhs_batch.clone(),
        rhs_batch: dims.lhs_batch.clone(),
    };
    dot_transpose_lhs(&transpose(ct, &perm), lhs, &swapped, rt, lt)
}
