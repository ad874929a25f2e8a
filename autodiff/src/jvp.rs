//! Forward mode: [`jvp_function`] evaluates a function on traced primal values and, next
//! to it, the tangent of every value, with one JVP rule per primitive. Tangents are
//! `Option<TracedTensor>`: `None` is a symbolic zero that is never materialised, and a
//! rule whose operand tangents are all zero is not run. Integer and bool values have no
//! tangent. Every tangent a rule builds is linear in the operand tangents (primal factors
//! are computed from primal values only), which is what lets [`crate::linearize()`]
//! separate the linear part and [`crate::transpose_function`] transpose it.

use crate::build::*;
use crate::custom::{barrier_jvp, JvpMode};
use crate::error::{AdError, Result};
use crate::rules::Rules;
use tenferro_ir::{
    BinaryOp, CmpOp, DType, Function, Op, ReduceOp, RuleBuilder, TensorType, UnaryJvp, UnaryOp,
};
use tenferro_runtime::TracedTensor;

/// Primal outputs of a function and their tangents (`None` = symbolic zero).
#[derive(Clone, Debug)]
pub struct JvpOutputs {
    /// The function's outputs, traced from the given primal arguments.
    pub primals: Vec<TracedTensor>,
    /// The tangent of each output; `None` when it is identically zero.
    pub tangents: Vec<Option<TracedTensor>>,
}

/// Evaluates `f` on `primals` (one per parameter) and pushes `tangents` (one per
/// parameter, `None` for zero) forward through it. Extension ops take their rules from
/// `rules`; an extension op reached by a nonzero tangent with no rule is
/// [`AdError::MissingRule`] (mode `jvp`).
pub fn jvp_function(
    f: &Function,
    rules: &Rules,
    primals: &[TracedTensor],
    tangents: &[Option<TracedTensor>],
) -> Result<JvpOutputs> {
    jvp_function_mode(f, rules, primals, tangents, JvpMode::Forward)
}

/// [`jvp_function`] in forward mode or as the first step of [`crate::linearize`] (which
/// custom_vjp and checkpoint regions treat differently, see [`crate::custom`]).
pub(crate) fn jvp_function_mode(
    f: &Function,
    rules: &Rules,
    primals: &[TracedTensor],
    tangents: &[Option<TracedTensor>],
    mode: JvpMode,
) -> Result<JvpOutputs> {
    let params = f.params();
    if primals.len() != params.len() || tangents.len() != params.len() {
        return Err(AdError::BadArgument {
            transform: "jvp",
            message: format!(
                "function `{}` has {} parameters but {} primals and {} tangents were given",
                f.name,
                params.len(),
                primals.len(),
                tangents.len()
            ),
        });
    }
    let mut primal: Vec<Option<TracedTensor>> = vec![None; f.num_values()];
    let mut tangent: Vec<Option<TracedTensor>> = vec![None; f.num_values()];
    for (i, &p) in params.iter().enumerate() {
        let want = f.ty(p);
        let got = primals[i].ty()?;
        if &got != want {
            return Err(AdError::BadArgument {
                transform: "jvp",
                message: format!("primal #{i} has type {got} but parameter {p} has type {want}"),
            });
        }
        primal[p.index()] = Some(primals[i].clone());
        if let Some(t) = &tangents[i] {
            let tt = t.ty()?;
            if &tt != want {
                return Err(AdError::BadArgument {
                    transform: "jvp",
                    message: format!(
                        "tangent #{i} has type {tt} but the input has type {want}; they must be equal"
                    ),
                });
            }
            if !want.dtype.is_float() {
                return Err(AdError::NotDifferentiable(format!(
                    "jvp: input #{i} of type {want} has no tangent (only f32, f64, c32, c64 values are differentiable)"
                )));
            }
            tangent[p.index()] = Some(t.clone());
        }
    }
    for inst in f.insts() {
        let args: Vec<TracedTensor> = inst
            .args
            .iter()
            .map(|a| {
                primal[a.index()].clone().ok_or_else(|| {
                    AdError::Internal(format!("jvp: {a} is used before it is defined"))
                })
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&TracedTensor> = args.iter().collect();
        let outs = match &inst.op {
            Op::Constant(t) => vec![TracedTensor::from_tensor(t.clone())],
            op => TracedTensor::apply(op.clone(), &refs),
        };
        for o in &outs {
            if let Some(e) = o.error() {
                return Err(e.into());
            }
        }
        let arg_tangents: Vec<Option<TracedTensor>> = inst
            .args
            .iter()
            .map(|a| tangent[a.index()].clone())
            .collect();
        if arg_tangents.iter().any(Option::is_some) {
            let ts = match &inst.op {
                Op::Barrier { label } => vec![barrier_jvp(
                    rules,
                    mode,
                    label,
                    &args,
                    &outs[0],
                    &arg_tangents,
                )?],
                op => jvp_rule(rules, op, &args, &outs, &arg_tangents)?,
            };
            if ts.len() != outs.len() {
                return Err(AdError::Internal(format!(
                    "jvp rule of `{}` returned {} tangents for {} results",
                    inst.op.name(),
                    ts.len(),
                    outs.len()
                )));
            }
            for ((&r, t), o) in inst.results.iter().zip(ts).zip(&outs) {
                let ty = o.ty()?;
                if let Some(t) = &t {
                    check_tangent(inst.op.name(), t, &ty)?;
                }
                tangent[r.index()] = if ty.dtype.is_float() { t } else { None };
            }
        }
        for (&r, o) in inst.results.iter().zip(outs) {
            primal[r.index()] = Some(o);
        }
    }
    let mut out = JvpOutputs {
        primals: Vec::new(),
        tangents: Vec::new(),
    };
    for o in f.outputs() {
        out.primals.push(
            primal[o.index()]
                .clone()
                .ok_or_else(|| AdError::Internal(format!("jvp: output {o} is undefined")))?,
        );
        out.tangents.push(tangent[o.index()].clone());
    }
    Ok(out)
}

/// A rule's tangent must type-check and have its primal's type.
fn check_tangent(op: &str, t: &TracedTensor, ty: &TensorType) -> Result<()> {
    match t.ty() {
        Err(e) => Err(AdError::Internal(format!(
            "jvp rule of `{op}` built invalid IR: {e}"
        ))),
        Ok(tt) if &tt != ty => Err(AdError::Internal(format!(
            "jvp rule of `{op}` returned a tangent of type {tt} for a result of type {ty}"
        ))),
        Ok(_) => Ok(()),
    }
}

fn ty_of(t: &TracedTensor) -> Result<TensorType> {
    Ok(t.ty()?)
}

/// The tangent, or zeros of `ty` when it is a symbolic zero (for ops that need every operand).
fn or_zeros(t: &Option<TracedTensor>, ty: &TensorType) -> TracedTensor {
    t.clone().unwrap_or_else(|| zeros(ty))
}

/// Tangents of `op`'s results given its primal operands `x`, primal results `y` and
/// operand tangents `dx` (at least one nonzero).
fn jvp_rule(
    rules: &Rules,
    op: &Op,
    x: &[TracedTensor],
    y: &[TracedTensor],
    dx: &[Option<TracedTensor>],
) -> Result<Vec<Option<TracedTensor>>> {
    let one = |t: Option<TracedTensor>| Ok(vec![t]);
    match op {
        Op::Unary(u) => {
            let d = match &dx[0] {
                Some(d) => d,
                None => return one(None),
            };
            one(unary_jvp(*u, &x[0], &y[0], d)?)
        }
        Op::Binary(b) => one(binary_jvp(*b, &x[0], &x[1], &y[0], &dx[0], &dx[1])?),
        Op::Compare(_) | Op::Iota { .. } | Op::Constant(_) => one(None),
        Op::Select => {
            let ty = ty_of(&y[0])?;
            if dx[1].is_none() && dx[2].is_none() {
                return one(None);
            }
            one(Some(select(
                &x[0],
                &or_zeros(&dx[1], &ty),
                &or_zeros(&dx[2], &ty),
            )))
        }
        Op::Reduce { kind, axes } => {
            let d = match &dx[0] {
                Some(d) => d,
                None => return one(None),
            };
            one(Some(reduce_jvp(*kind, axes, &x[0], &y[0], d)?))
        }
        Op::DotGeneral(dims) => one(add_opt(
            dx[0].as_ref().map(|d| dot_general(d, &x[1], dims)),
            dx[1].as_ref().map(|d| dot_general(&x[0], d, dims)),
        )),
        Op::Transpose { .. }
        | Op::Reshape { .. }
        | Op::BroadcastInDim { .. }
        | Op::Slice { .. }
        | Op::Gather { .. } => {
            // Linear in operand 0; any other operand (gather's indices) is an integer.
            let d = match &dx[0] {
                Some(d) => d,
                None => return one(None),
            };
            let mut args: Vec<&TracedTensor> = vec![d];
            args.extend(x[1..].iter());
            one(Some(TracedTensor::apply1(op.clone(), &args)))
        }
        Op::Convert { to } => {
            let from = x[0].dtype()?;
            match &dx[0] {
                Some(d) if to.is_float() && from.is_float() => one(Some(convert(d, from, *to))),
                _ => one(None),
            }
        }
        Op::Pad { .. } => {
            let tx = ty_of(&x[0])?;
            let tv = ty_of(&x[1])?;
            one(Some(TracedTensor::apply1(
                op.clone(),
                &[&or_zeros(&dx[0], &tx), &or_zeros(&dx[1], &tv)],
            )))
        }
        Op::Concatenate { .. } => {
            let parts: Vec<TracedTensor> = x
                .iter()
                .zip(dx)
                .map(|(xi, di)| Ok(or_zeros(di, &ty_of(xi)?)))
                .collect::<Result<_>>()?;
            let refs: Vec<&TracedTensor> = parts.iter().collect();
            one(Some(TracedTensor::apply1(op.clone(), &refs)))
        }
        Op::ScatterAdd { .. } => {
            if dx[0].is_none() && dx[2].is_none() {
                return one(None);
            }
            let tb = ty_of(&x[0])?;
            let tu = ty_of(&x[2])?;
            one(Some(TracedTensor::apply1(
                op.clone(),
                &[&or_zeros(&dx[0], &tb), &x[1], &or_zeros(&dx[2], &tu)],
            )))
        }
        // An integer permutation: no tangent.
        Op::Argsort { .. } => one(None),
        Op::Cumulative {
            kind,
            axis,
            reverse,
        } => {
            let d = match &dx[0] {
                Some(d) => d,
                None => return one(None),
            };
            one(Some(cumulative_jvp(
                *kind, *axis, *reverse, &x[0], &y[0], d,
            )?))
        }
        Op::Extension(e) => {
            let rule = rules.get(&e.name).ok_or_else(|| AdError::MissingRule {
                op: e.name.clone(),
                mode: "jvp",
            })?;
            rule.jvp(e, x, y, dx)
        }
        Op::Barrier { .. } => Err(AdError::Internal("barrier handled by jvp_function".into())),
    }
}

/// Builds the table's JVP expressions (`tenferro_ir::optable`) on traced values.
struct TracedRules;

impl RuleBuilder for TracedRules {
    type V = TracedTensor;
    fn unary(&self, u: UnaryOp, x: &TracedTensor) -> TracedTensor {
        unary(u, x)
    }
    fn add(&self, x: &TracedTensor, y: &TracedTensor) -> TracedTensor {
        add(x, y)
    }
    fn sub(&self, x: &TracedTensor, y: &TracedTensor) -> TracedTensor {
        sub(x, y)
    }
    fn mul(&self, x: &TracedTensor, y: &TracedTensor) -> TracedTensor {
        mul(x, y)
    }
    fn div(&self, x: &TracedTensor, y: &TracedTensor) -> TracedTensor {
        div(x, y)
    }
    fn scalar(&self, like: &TracedTensor, v: f64) -> TracedTensor {
        match like.ty() {
            Ok(ty) => splat(&ty, v),
            // An errored value stays errored: the rule's result reports it.
            Err(_) => like.clone(),
        }
    }
}

/// Tangent of `y = u(x)` for a nonzero operand tangent `d`: the op table's rule, or for
/// the dtype-dependent ops, the rules below.
fn unary_jvp(
    u: UnaryOp,
    x: &TracedTensor,
    y: &TracedTensor,
    d: &TracedTensor,
) -> Result<Option<TracedTensor>> {
    match u.jvp_kind() {
        UnaryJvp::Tangent | UnaryJvp::Linear => {
            let t = u.tangent(&TracedRules, x, y, d).ok_or_else(|| {
                AdError::Internal(format!("the op table has no tangent for `{}`", u.name()))
            })?;
            Ok(Some(t))
        }
        UnaryJvp::Special => special_unary_jvp(u, x, y, d),
        UnaryJvp::Zero => Ok(None),
    }
}

/// The JVP rules of the unary ops whose rule depends on the dtype.
fn special_unary_jvp(
    u: UnaryOp,
    x: &TracedTensor,
    y: &TracedTensor,
    d: &TracedTensor,
) -> Result<Option<TracedTensor>> {
    let ty = ty_of(x)?;
    let dt = ty.dtype;
    Ok(Some(match u {
        UnaryOp::Abs => {
            let s = unary(UnaryOp::Sign, x);
            if dt.is_complex() {
                // d|z| = Re(conj(z/|z|) · dz); 0 at z = 0.
                unary(UnaryOp::Real, &mul(d, &conj(&s, dt)))
            } else {
                // d|x| = sign(x) · dx; 0 at x = 0 (as JAX).
                mul(d, &s)
            }
        }
        UnaryOp::Sign => {
            if !dt.is_complex() {
                return Ok(None);
            }
            // s = z/|z| = e^{iθ}: ds = i·s·dθ with dθ = Im(conj(s)·dz)/|z|; 0 at z = 0.
            let rt = ty.with_dtype(dt.real());
            let r = unary(UnaryOp::Abs, x);
            let at_zero = compare(CmpOp::Eq, &r, &zeros(&rt));
            let safe_r = select(&at_zero, &splat(&rt, 1.0), &r);
            let dtheta = div(&unary(UnaryOp::Imag, &mul(d, &conj(y, dt))), &safe_r);
            let dtheta = select(&at_zero, &zeros(&rt), &dtheta);
            let i_s = mul(y, &imag_unit(dt, &ty.shape));
            mul(&convert(&dtheta, rt.dtype, dt), &i_s)
        }
        UnaryOp::Conj => conj(d, dt),
        UnaryOp::Real => {
            if dt.is_complex() {
                unary(UnaryOp::Real, d)
            } else {
                d.clone()
            }
        }
        UnaryOp::Imag => {
            if dt.is_complex() {
                unary(UnaryOp::Imag, d)
            } else {
                return Ok(None);
            }
        }
        other => {
            return Err(AdError::Internal(format!(
                "`{}` has a table JVP rule, not a special one",
                other.name()
            )))
        }
    }))
}

/// Tangent of `y = a ∘ b`.
fn binary_jvp(
    op: BinaryOp,
    a: &TracedTensor,
    b: &TracedTensor,
    y: &TracedTensor,
    da: &Option<TracedTensor>,
    db: &Option<TracedTensor>,
) -> Result<Option<TracedTensor>> {
    let ty = ty_of(a)?;
    let c = |v: f64| splat(&ty, v);
    Ok(match op {
        BinaryOp::Add => add_opt(da.clone(), db.clone()),
        BinaryOp::Sub => match (da, db) {
            (Some(x), Some(z)) => Some(sub(x, z)),
            (Some(x), None) => Some(x.clone()),
            (None, Some(z)) => Some(neg(z)),
            (None, None) => None,
        },
        BinaryOp::Mul => add_opt(
            da.as_ref().map(|d| mul(d, b)),
            db.as_ref().map(|d| mul(a, d)),
        ),
        // d(a/b) = da/b - db·(y/b).
        BinaryOp::Div => add_opt(
            da.as_ref().map(|d| div(d, b)),
            db.as_ref().map(|d| neg(&mul(d, &div(y, b)))),
        ),
        BinaryOp::Pow => {
            let zero = c(0.0);
            // ∂/∂a = b·a^(b-1), taken as 0 where b = 0 (so 0^0 has derivative 0, as JAX).
            let ta = da.as_ref().map(|d| {
                let b_is_zero = compare(CmpOp::Eq, b, &zero);
                let jac = mul(b, &binary(BinaryOp::Pow, a, &sub(b, &c(1.0))));
                mul(d, &select(&b_is_zero, &zero, &jac))
            });
            // ∂/∂b = ln(a)·a^b, with ln taken at 1 where a = 0 (as JAX).
            let tb = db.as_ref().map(|d| {
                let a_is_zero = compare(CmpOp::Eq, a, &zero);
                let safe_a = select(&a_is_zero, &c(1.0), a);
                mul(d, &mul(&unary(UnaryOp::Log, &safe_a), y))
            });
            add_opt(ta, tb)
        }
        // d atan2(a, b) = (b·da - a·db) / (a² + b²).
        BinaryOp::Atan2 => {
            let r2 = add(&mul(a, a), &mul(b, b));
            add_opt(
                da.as_ref().map(|d| div(&mul(d, b), &r2)),
                db.as_ref().map(|d| neg(&div(&mul(d, a), &r2))),
            )
        }
        // d rem(a, b) = da - db·trunc(a/b) (as JAX).
        BinaryOp::Rem => {
            let q = div(a, b);
            let trunc = mul(
                &unary(UnaryOp::Sign, &q),
                &unary(UnaryOp::Floor, &unary(UnaryOp::Abs, &q)),
            );
            add_opt(da.clone(), db.as_ref().map(|d| neg(&mul(d, &trunc))))
        }
        // Integer bit operations: integers carry no tangent.
        BinaryOp::And
        | BinaryOp::Or
        | BinaryOp::Xor
        | BinaryOp::ShiftLeft
        | BinaryOp::ShiftRightLogical => None,
        BinaryOp::Max | BinaryOp::Min => {
            // The tangent of the operand that is the result; ties split evenly (as JAX).
            let weight = |p: &TracedTensor, q: &TracedTensor| {
                let p_is = compare(CmpOp::Eq, p, y);
                let q_is = compare(CmpOp::Eq, q, y);
                select(&p_is, &select(&q_is, &c(0.5), &c(1.0)), &c(0.0))
            };
            add_opt(
                da.as_ref().map(|d| mul(d, &weight(a, b))),
                db.as_ref().map(|d| mul(d, &weight(b, a))),
            )
        }
    })
}

/// Tangent of a reduction `y = reduce(x, axes)` for operand tangent `d`.
fn reduce_jvp(
    kind: ReduceOp,
    axes: &[usize],
    x: &TracedTensor,
    y: &TracedTensor,
    d: &TracedTensor,
) -> Result<TracedTensor> {
    let tx = ty_of(x)?;
    let kept: Vec<usize> = (0..tx.rank()).filter(|a| !axes.contains(a)).collect();
    Ok(match kind {
        ReduceOp::Sum => reduce_sum(d, axes),
        ReduceOp::Max | ReduceOp::Min => {
            // Mean of the tangents at the locations of the extremum (as JAX).
            let yb = broadcast_in_dim(y, &tx.shape, &kept);
            let mask = convert(&compare(CmpOp::Eq, x, &yb), DType::Bool, tx.dtype);
            let count = reduce_sum(&mask, axes);
            div(&reduce_sum(&mul(d, &mask), axes), &count)
        }
        ReduceOp::Prod => {
            // dy = Σ_i dx_i · Π_{j≠i} x_j in O(n), exact at zeros: with z the number of
            // zeros in the group and P the product of its non-zero elements,
            // Π_{j≠i} x_j = P / x_i if z = 0; P at the zero if z = 1; 0 otherwise.
            let bcast = |t: &TracedTensor| broadcast_in_dim(t, &tx.shape, &kept);
            let full = |v: f64| splat(&tx, v);
            let is_zero = compare(CmpOp::Eq, x, &full(0.0));
            let safe_x = select(&is_zero, &full(1.0), x);
            let nonzero_prod = bcast(&reduce(ReduceOp::Prod, &safe_x, axes));
            let zeros = bcast(&reduce_sum(
                &convert(&is_zero, DType::Bool, DType::I64),
                axes,
            ));
            let zeros_ty = TensorType::new(DType::I64, tx.shape.clone());
            let none = compare(CmpOp::Eq, &zeros, &splat(&zeros_ty, 0.0));
            let one = compare(CmpOp::Eq, &zeros, &splat(&zeros_ty, 1.0));
            let at_only_zero = select(&is_zero, &one, &is_zero);
            let others = select(
                &none,
                &div(&nonzero_prod, &safe_x),
                &select(&at_only_zero, &nonzero_prod, &full(0.0)),
            );
            reduce_sum(&mul(d, &others), axes)
        }
    })
}

/// Tangent of an inclusive scan `y = cumulative(kind, x, axis, reverse)` for operand
/// tangent `d`. Every branch is linear in `d` (scans, gathers, pads, selects and products
/// with primal factors), so it linearizes and transposes.
///
/// - sum: `cumsum(d)`;
/// - prod: `dy_i = Σ_{j≤i} (Π_{k≤i, k≠j} x_k) dx_j` in O(n), exact at zeros: with `z_i`
///   the number of zeros among `x_0..=x_i` and `P_i` the product of its non-zero ones,
///   `dy_i = P_i · cumsum(dx / x)_i` if `z_i = 0`, `P_i · dx_f` (f the first zero) if
///   `z_i = 1`, and 0 otherwise;
/// - max / min: the mean of the tangents at the positions `j ≤ i` where `x_j` equals the
///   running extremum `y_i` (as `reduce_max`'s rule; for two tied elements this is JAX's
///   even split, for more JAX's associative-scan rule weighs ties by its tree, which is
///   not reproduced). After a NaN the running extremum is NaN and the tangent is the mean
///   of the tangents at the NaNs seen so far.
fn cumulative_jvp(
    kind: ReduceOp,
    axis: usize,
    reverse: bool,
    x: &TracedTensor,
    y: &TracedTensor,
    d: &TracedTensor,
) -> Result<TracedTensor> {
    let tx = ty_of(x)?;
    let scan = |k: ReduceOp, t: &TracedTensor| {
        TracedTensor::apply1(
            Op::Cumulative {
                kind: k,
                axis,
                reverse,
            },
            &[t],
        )
    };
    Ok(match kind {
        ReduceOp::Sum => scan(ReduceOp::Sum, d),
        ReduceOp::Prod => {
            let full = |v: f64| splat(&tx, v);
            let is_zero = compare(CmpOp::Eq, x, &full(0.0));
            let safe_x = select(&is_zero, &full(1.0), x);
            let p = scan(ReduceOp::Prod, &safe_x);
            let zi = TensorType::new(DType::I64, tx.shape.clone());
            let z = scan(ReduceOp::Sum, &convert(&is_zero, DType::Bool, DType::I64));
            let no_zero = compare(CmpOp::Eq, &z, &splat(&zi, 0.0));
            let one_zero = compare(CmpOp::Eq, &z, &splat(&zi, 1.0));
            // is_zero && z == 1: the first zero in scan order.
            let first_zero = select(&is_zero, &one_zero, &is_zero);
            let t0 = mul(&p, &scan(ReduceOp::Sum, &div(d, &safe_x)));
            let t1 = mul(
                &p,
                &scan(ReduceOp::Sum, &select(&first_zero, d, &zeros(&tx))),
            );
            select(&no_zero, &t0, &select(&one_zero, &t1, &zeros(&tx)))
        }
        ReduceOp::Max | ReduceOp::Min => {
            let n = tx.shape[axis];
            if n <= 1 {
                return Ok(d.clone());
            }
            // Work in scan order.
            let flip = |t: &TracedTensor| {
                if reverse {
                    tenferro_runtime::sorting::reverse_axis(t, axis)
                } else {
                    t.clone()
                }
            };
            let (xf, yf, df) = (flip(x), flip(y), flip(d));
            let fwd = |k: ReduceOp, t: &TracedTensor| {
                TracedTensor::apply1(
                    Op::Cumulative {
                        kind: k,
                        axis,
                        reverse: false,
                    },
                    &[t],
                )
            };
            let bt = tx.with_dtype(DType::Bool);
            let yes = splat(&bt, 1.0);
            // a == b, or both NaN.
            let same = |a: &TracedTensor, b: &TracedTensor| {
                let both_nan = select(
                    &compare(CmpOp::Ne, a, a),
                    &compare(CmpOp::Ne, b, b),
                    &compare(CmpOp::Ne, a, a),
                );
                select(&compare(CmpOp::Eq, a, b), &yes, &both_nan)
            };
            let rank = tx.rank();
            let slice = |t: &TracedTensor, lo: usize, hi: usize| {
                let mut starts = vec![0; rank];
                let mut limits = tx.shape.clone();
                starts[axis] = lo;
                limits[axis] = hi;
                TracedTensor::apply1(Op::Slice { starts, limits }, &[t])
            };
            // y shifted by one along the axis (position 0 compares with itself).
            let y_prev = TracedTensor::apply1(
                Op::Concatenate { axis },
                &[&slice(&yf, 0, 1), &slice(&yf, 0, n - 1)],
            );
            // Start of the plateau of equal running extrema that position i is in.
            let ii = tx.with_dtype(DType::I64);
            let iota = TracedTensor::apply1(
                Op::Iota {
                    ty: ii.clone(),
                    dim: axis,
                },
                &[],
            );
            let start = fwd(
                ReduceOp::Max,
                &select(&same(&yf, &y_prev), &zeros(&ii), &iota),
            );
            // Positions where x is the running extremum; their tangents and count,
            // accumulated, minus the accumulation before the plateau.
            let at = convert(&same(&xf, &yf), DType::Bool, tx.dtype);
            let s = fwd(ReduceOp::Sum, &mul(&df, &at));
            let c = fwd(ReduceOp::Sum, &at);
            let mut low = vec![0; rank];
            low[axis] = 1;
            let before = |t: &TracedTensor| {
                let padded = TracedTensor::apply1(
                    Op::Pad {
                        low: low.clone(),
                        high: vec![0; rank],
                    },
                    &[t, &scalar(tx.dtype, 0.0)],
                );
                tenferro_runtime::sorting::take_along(&padded, &start, axis)
            };
            let t = div(&sub(&s, &before(&s)), &sub(&c, &before(&c)));
            flip(&t)
        }
    })
}
