//! `vmap`: the batching transform, IR → IR. The per-example function is traced once on
//! placeholders, lowered, and re-emitted with a batch axis: one program for the whole
//! batch, not a loop over it.
//!
//! Inside the transform every batched value carries its batch axis **last**. In this
//! column-major library that makes each example a contiguous block, so column-major
//! `reshape` batches for free, and the linear-algebra convention (matrix axes first,
//! batch axes after them) is kept. Each primitive has a batching rule below
//! (`batch_inst`); an unbatched value stays unbatched (it is broadcast only where an
//! op needs both kinds of operands). Extension ops batch through the
//! [`crate::ExtensionRule::batch`] rule of the [`crate::AdContext`] given to
//! [`Vmapped::with_rules`] (no global registry).
//!
//! Results are ordinary traced values, so `vmap` composes with `grad`, `jvp`, `vjp` and
//! with itself.

use crate::error::{AdError, Result};
use crate::rules::Rules;
use tenferro_ir::{Function, Op, TensorType};
use tenferro_runtime::{lower, LowerMode, TracedTensor};

/// A traced value during batching: `batched` values carry the batch axis last.
#[derive(Clone)]
struct BVal {
    value: TracedTensor,
    batched: bool,
}

fn err(message: String) -> AdError {
    AdError::BadArgument {
        transform: "vmap",
        message,
    }
}

fn rt<T>(r: tenferro_runtime::Result<T>) -> Result<T> {
    r.map_err(AdError::from)
}

/// `x` with axis `from` moved to position `to` (the others keep their order).
fn move_axis(x: &TracedTensor, from: usize, to: usize) -> Result<TracedTensor> {
    let r = x.shape()?.len();
    if from == to {
        return Ok(x.clone());
    }
    let mut perm: Vec<usize> = (0..r).filter(|&a| a != from).collect();
    perm.insert(to, from);
    rt(x.transpose(&perm))
}

/// An unbatched value broadcast to carry a batch axis of size `b` last.
fn broadcast_batch(x: &TracedTensor, b: usize) -> Result<TracedTensor> {
    let mut shape = x.shape()?;
    let dims: Vec<usize> = (0..shape.len()).collect();
    shape.push(b);
    rt(x.broadcast_in_dim(&shape, &dims))
}

/// The value with the batch axis last (broadcast if unbatched).
fn batched(v: &BVal, b: usize) -> Result<TracedTensor> {
    if v.batched {
        Ok(v.value.clone())
    } else {
        broadcast_batch(&v.value, b)
    }
}

/// The per-example rank of a value (its rank without the batch axis).
fn example_rank(v: &BVal) -> Result<usize> {
    Ok(v.value.shape()?.len() - usize::from(v.batched))
}

fn one(value: TracedTensor) -> Vec<BVal> {
    vec![BVal {
        value,
        batched: true,
    }]
}

/// `x` gathered along `axis` at `idx` (clamped), per example: the batched form of
/// `gather` when the indices are batched. Both are brought to carry the batch axis; the
/// operand's `axis` and the batch axis are merged into one axis indexed by
/// `idx + n·example`.
fn batched_gather(
    x: &TracedTensor,
    idx: &TracedTensor,
    axis: usize,
    b: usize,
) -> Result<TracedTensor> {
    let xs = x.shape()?; // [..axis.., n, ..., b]
    let r = xs.len() - 1;
    let n = xs[axis];
    // [pre, post, n, b] → merge (n, b) into one axis of n·b (column-major: i + n·k).
    let mut perm: Vec<usize> = (0..r).filter(|&a| a != axis).collect();
    perm.push(axis);
    perm.push(r);
    let xt = rt(x.transpose(&perm))?;
    let mut merged: Vec<usize> = perm[..r - 1].iter().map(|&a| xs[a]).collect();
    merged.push(n * b);
    let xm = rt(xt.reshape(&merged))?;
    // clamp the indices as gather does, then offset each example's by n·k
    let it = idx.ty()?;
    let hi = TracedTensor::full(&it, (n.max(1) - 1) as f64);
    let lo = TracedTensor::zeros(&it);
    let clamped = idx.maximum(&lo).minimum(&hi);
    let k = rt(TracedTensor::iota(it.dtype, &it.shape, it.shape.len() - 1))?;
    let linear = &clamped + &(&k * n as i64);
    let g = rt(xm.gather(&linear, r - 1))?; // [pre.., post.., idx.., b] with idx incl. b
                                            // g: [pre (axis axes), post (r-1-axis axes), idx dims..., b]; put idx before post
    let gs = g.shape()?;
    let idx_rank = it.shape.len() - 1;
    let pre = axis;
    let post = r - 1 - axis;
    let mut p: Vec<usize> = (0..pre).collect();
    p.extend(pre + post..pre + post + idx_rank);
    p.extend(pre..pre + post);
    p.push(gs.len() - 1);
    rt(g.transpose(&p))
}

/// Batches one instruction: `args` are the batched operands, `b` the batch size.
fn batch_inst(rules: &Rules, op: &Op, args: &[BVal], b: usize) -> Result<Vec<BVal>> {
    if !args.iter().any(|a| a.batched) {
        let refs: Vec<&TracedTensor> = args.iter().map(|a| &a.value).collect();
        let outs = match op {
            Op::Constant(t) => vec![TracedTensor::from_tensor(t.clone())],
            op => TracedTensor::apply(op.clone(), &refs),
        };
        return Ok(outs
            .into_iter()
            .map(|value| BVal {
                value,
                batched: false,
            })
            .collect());
    }
    let all = |args: &[BVal]| -> Result<Vec<TracedTensor>> {
        args.iter().map(|a| batched(a, b)).collect()
    };
    let apply = |op: Op, xs: &[TracedTensor]| -> Vec<BVal> {
        let refs: Vec<&TracedTensor> = xs.iter().collect();
        TracedTensor::apply(op, &refs)
            .into_iter()
            .map(|value| BVal {
                value,
                batched: true,
            })
            .collect()
    };
    Ok(match op {
        // elementwise: every operand carries the batch axis
        Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::Convert { .. } => {
            apply(op.clone(), &all(args)?)
        }
        // the batch axis is last, so reduced, sorted and scanned axes keep their numbers
        Op::Reduce { .. } | Op::Argsort { .. } | Op::Cumulative { .. } => {
            apply(op.clone(), &all(args)?)
        }
        Op::Transpose { perm } => {
            let mut p = perm.clone();
            p.push(perm.len());
            apply(Op::Transpose { perm: p }, &all(args)?)
        }
        Op::Reshape { shape } => {
            let mut s = shape.clone();
            s.push(b);
            apply(Op::Reshape { shape: s }, &all(args)?)
        }
        Op::BroadcastInDim { shape, dims } => {
            let (mut s, mut d) = (shape.clone(), dims.clone());
            d.push(s.len());
            s.push(b);
            apply(Op::BroadcastInDim { shape: s, dims: d }, &all(args)?)
        }
        Op::Slice { starts, limits } => {
            let (mut s, mut l) = (starts.clone(), limits.clone());
            s.push(0);
            l.push(b);
            apply(
                Op::Slice {
                    starts: s,
                    limits: l,
                },
                &all(args)?,
            )
        }
        Op::Pad { low, high } => {
            if args[1].batched {
                return Err(err(
                    "pad with a padding value that differs between examples is not supported; \
                     pad with a constant and select the value in"
                        .into(),
                ));
            }
            let (mut l, mut h) = (low.clone(), high.clone());
            l.push(0);
            h.push(0);
            let x = batched(&args[0], b)?;
            apply(Op::Pad { low: l, high: h }, &[x, args[1].value.clone()])
        }
        Op::Concatenate { .. } => apply(op.clone(), &all(args)?),
        Op::DotGeneral(d) => {
            let (l, r) = (&args[0], &args[1]);
            let (rl, rr) = (example_rank(l)?, example_rank(r)?);
            let nb = d.lhs_batch.len();
            let lfree = rl - nb - d.lhs_contract.len();
            match (l.batched, r.batched) {
                (true, true) => {
                    let mut dims = d.clone();
                    dims.lhs_batch.insert(0, rl);
                    dims.rhs_batch.insert(0, rr);
                    let y = rt(l.value.dot_general(&r.value, dims))?;
                    one(move_axis(&y, 0, y.shape()?.len() - 1)?)
                }
                (true, false) => {
                    // the batch axis is lhs's last free axis: after lhs's other free axes
                    let y = rt(l.value.dot_general(&r.value, d.clone()))?;
                    one(move_axis(&y, nb + lfree, y.shape()?.len() - 1)?)
                }
                (false, true) => {
                    // rhs's last free axis: already the result's last axis
                    one(rt(l.value.dot_general(&r.value, d.clone()))?)
                }
                (false, false) => unreachable!("handled above"),
            }
        }
        Op::Gather { axis } => {
            let (x, idx) = (&args[0], &args[1]);
            if !idx.batched {
                // the batch axis of x stays last in the result
                apply(op.clone(), &[x.value.clone(), idx.value.clone()])
            } else {
                let xb = batched(x, b)?;
                one(batched_gather(&xb, &idx.value, *axis, b)?)
            }
        }
        Op::ScatterAdd { .. } => {
            if args[1].batched {
                return Err(err(
                    "scatter_add with indices that differ between examples is not supported".into(),
                ));
            }
            let base = batched(&args[0], b)?;
            let upd = batched(&args[2], b)?;
            apply(op.clone(), &[base, args[1].value.clone(), upd])
        }
        // an optimisation barrier orders its operands: it batches them all
        Op::Barrier { .. } => apply(op.clone(), &all(args)?),
        Op::Iota { .. } | Op::Constant(_) => unreachable!("no operands: never batched"),
        Op::Extension(e) => {
            let rule = rules.get(&e.name).ok_or_else(|| AdError::MissingRule {
                op: e.name.clone(),
                mode: "vmap",
            })?;
            let inputs: Vec<(TracedTensor, bool)> =
                args.iter().map(|a| (a.value.clone(), a.batched)).collect();
            rule.batch(e, &inputs, b)?
                .into_iter()
                .map(|value| BVal {
                    value,
                    batched: true,
                })
                .collect()
        }
    })
}

/// Runs `f` with a batch axis: `params[i]` is bound to `args[i]`.
fn batch_function(rules: &Rules, f: &Function, args: &[BVal], b: usize) -> Result<Vec<BVal>> {
    let mut vals: Vec<Option<BVal>> = vec![None; f.num_values()];
    for (&p, a) in f.params().iter().zip(args) {
        vals[p.index()] = Some(a.clone());
    }
    for inst in f.insts() {
        let ins: Vec<BVal> = inst
            .args
            .iter()
            .map(|a| {
                vals[a.index()].clone().ok_or_else(|| {
                    AdError::Internal(format!("vmap: {a} is used before it is defined"))
                })
            })
            .collect::<Result<_>>()?;
        let outs = batch_inst(rules, &inst.op, &ins, b)?;
        for o in &outs {
            if let Some(e) = o.value.error() {
                return Err(e.into());
            }
        }
        for (&r, o) in inst.results.iter().zip(outs) {
            vals[r.index()] = Some(o);
        }
    }
    f.outputs()
        .iter()
        .map(|o| {
            vals[o.index()]
                .clone()
                .ok_or_else(|| AdError::Internal(format!("vmap: output {o} is undefined")))
        })
        .collect()
}

/// A function over traced values, vectorised over a batch axis (see [`vmap`]).
pub struct Vmapped<F> {
    f: F,
    in_axes: Vec<Option<usize>>,
    out_axes: Vec<usize>,
    rules: Rules,
}

/// JAX's `vmap`: `f` maps per-example values to per-example results; `vmap(f, in_axes,
/// out_axes).call(args)` applies it to a whole batch in one program. `in_axes[i]` is the
/// batch axis of argument `i`, or `None` for an argument shared by every example;
/// `out_axes[k]` is where result `k` gets the batch axis (an empty list means axis 0 for
/// every result). `f` is traced once per call on placeholders of the per-example types.
pub fn vmap<F>(f: F, in_axes: &[Option<usize>], out_axes: &[usize]) -> Vmapped<F>
where
    F: Fn(&[TracedTensor]) -> Result<Vec<TracedTensor>>,
{
    Vmapped {
        f,
        in_axes: in_axes.to_vec(),
        out_axes: out_axes.to_vec(),
        rules: Rules::default(),
    }
}

impl<F> Vmapped<F>
where
    F: Fn(&[TracedTensor]) -> Result<Vec<TracedTensor>>,
{
    /// Uses the batching rules of `rules`' extension ops (e.g. `tenferro_linalg::ad_rules()`).
    pub fn with_rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// The batched results for `args` (one per argument of `f`).
    pub fn call(&self, args: &[&TracedTensor]) -> Result<Vec<TracedTensor>> {
        if args.len() != self.in_axes.len() {
            return Err(err(format!(
                "{} arguments but {} in_axes",
                args.len(),
                self.in_axes.len()
            )));
        }
        // batch size and per-example types
        let mut b: Option<usize> = None;
        let mut examples: Vec<TensorType> = Vec::with_capacity(args.len());
        let mut bargs: Vec<BVal> = Vec::with_capacity(args.len());
        for (i, (a, ax)) in args.iter().zip(&self.in_axes).enumerate() {
            let ty = a.ty()?;
            match ax {
                None => {
                    examples.push(ty);
                    bargs.push(BVal {
                        value: (*a).clone(),
                        batched: false,
                    });
                }
                Some(ax) => {
                    if *ax >= ty.rank() {
                        return Err(err(format!(
                            "in_axes[{i}] = {ax} but argument {i} is {ty} (rank {})",
                            ty.rank()
                        )));
                    }
                    let n = ty.shape[*ax];
                    if let Some(prev) = b.filter(|&p| p != n) {
                        return Err(err(format!(
                            "argument {i} has batch size {n} on axis {ax} but an earlier argument has {prev}"
                        )));
                    }
                    b = Some(n);
                    let mut shape = ty.shape.clone();
                    shape.remove(*ax);
                    examples.push(TensorType::new(ty.dtype, shape));
                    bargs.push(BVal {
                        value: move_axis(a, *ax, ty.rank() - 1)?,
                        batched: true,
                    });
                }
            }
        }
        let b =
            b.ok_or_else(|| err("no argument is batched (every in_axes entry is None)".into()))?;
        let placeholders: Vec<TracedTensor> = examples
            .iter()
            .map(|t| TracedTensor::input(t.dtype, &t.shape))
            .collect();
        let ys = (self.f)(&placeholders)?;
        let refs: Vec<&TracedTensor> = ys.iter().collect();
        let cut: Vec<&TracedTensor> = placeholders.iter().collect();
        let lowered = lower(&refs, &cut, LowerMode::Dependent)?;
        // parameters beyond the placeholders are values `f` captured: shared by all examples
        let mut params = bargs;
        params.extend(lowered.params[placeholders.len()..].iter().map(|v| BVal {
            value: v.clone(),
            batched: false,
        }));
        let outs = batch_function(&self.rules, &lowered.function, &params, b)?;
        outs.iter()
            .enumerate()
            .map(|(k, o)| {
                let y = batched(o, b)?;
                let last = y.shape()?.len() - 1;
                let to = self.out_axes.get(k).copied().unwrap_or(0);
                if to > last {
                    return Err(err(format!(
                        "out_axes[{k}] = {to} but result {k} has rank {}",
                        last + 1
                    )));
                }
                move_axis(&y, last, to)
            })
            .collect()
    }
}
