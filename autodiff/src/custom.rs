//! User-defined differentiation of traced functions: [`AdContext::custom_jvp`],
//! [`AdContext::custom_vjp`] and [`AdContext::checkpoint`] (rematerialisation). Each
//! returns a [`CustomFn`] whose [`CustomFn::call`] applies the function to traced values.
//!
//! ## Design: region markers on the `barrier` op
//!
//! A call traces the user's function once on placeholders and lowers it to an
//! [`tenferro_ir::Function`] (its *body*); values the function captures (constants,
//! weights, ...) become extra parameters of the body (closure conversion), bound at the
//! call to the captured values. The body is then inlined into the trace between markers,
//! which are [`Op::Barrier`] instructions (identity on their first operand, opaque to every
//! pass, aliased in place by the CPU backend):
//!
//! ```text
//! b_i  = barrier {label = "ad.begin.<id>"} a_i              one per input a_i
//! o_j  = <body inlined on b>
//! y_j  = barrier {label = "ad.end.<id>.<j>"} o_j, a_0, a_1, ...   one per output
//! ```
//!
//! Evaluation needs nothing special: the barriers are identities, the body is ordinary
//! IR. Autodiff gives the markers their meaning through the region registry of the
//! [`AdContext`] that made the function (keyed by `<id>`, one entry per call site; no
//! global registry — differentiating with another context is an error naming the
//! function): a `begin` marker cuts the tangents into the body (the body itself is never
//! differentiated), and the `end` marker, which sees the region's inputs as its extra
//! operands, produces the outputs' tangents from the user's rule:
//!
//! - **custom_jvp**: the tangents are `rule(primals, tangents)`, built with traced ops, so
//!   they are differentiated again for higher orders (the rule must be linear in the
//!   tangents for reverse mode, as in JAX). Forward and reverse mode both use the rule.
//! - **custom_vjp**: reverse mode only. Under linearization the end marker emits a linear
//!   op `ad.custom_vjp` on (residuals from `fwd`, input tangents) whose transpose calls
//!   `bwd(residuals, cotangents)`. Forward mode (`jvp`, `jacfwd`, `hessian`) through a
//!   custom_vjp function is an error naming it (as JAX).
//! - **checkpoint**: forward mode differentiates the body as if inlined. Under
//!   linearization the end marker emits a linear op `ad.checkpoint` whose only residuals
//!   are the region's inputs; its transpose recomputes the body from
//!   `barrier {label = "ad.remat"} (input, cotangent)` and runs its vjp there. The barrier
//!   ties the recomputation to the cotangent, so it runs in the backward pass, and since
//!   no pass looks through a barrier (CSE merges only identical instructions on identical
//!   operands; fold and the e-graph treat it as opaque), the recomputed values are never
//!   identified with the forward ones — the recomputation is not undone.
//!
//! The `ad.custom_vjp` / `ad.checkpoint` linear ops live only in linear functions between
//! linearization and transposition ([`crate::linearize()`]); they are never executed.
//! A function with several outputs runs its rule (custom_jvp) or backward part (custom_vjp,
//! checkpoint) once per output; CSE merges the duplicated forward work of custom_jvp.

use crate::context::AdContext;
use crate::error::{AdError, Result};
use crate::linearize::vjp_function;
use crate::rules::{Rules, TransposeArg};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tenferro_ir::{Attr, ExtensionOp, Function, Op, TensorType};
use tenferro_runtime::{lower, LowerMode, TracedTensor};

/// A traced function of traced values.
pub type TracedFn = dyn Fn(&[TracedTensor]) -> Result<Vec<TracedTensor>> + Send + Sync;
/// A custom JVP rule: `(primals, tangents) -> output tangents` (tangents are never
/// symbolic zeros here: zeros are materialised).
pub type JvpRuleFn =
    dyn Fn(&[TracedTensor], &[TracedTensor]) -> Result<Vec<TracedTensor>> + Send + Sync;
/// The forward part of a custom VJP: `primals -> (outputs, residuals)`.
pub type VjpFwdFn =
    dyn Fn(&[TracedTensor]) -> Result<(Vec<TracedTensor>, Vec<TracedTensor>)> + Send + Sync;
/// The backward part of a custom VJP: `(residuals, output cotangents) -> input cotangents`.
pub type VjpBwdFn =
    dyn Fn(&[TracedTensor], &[TracedTensor]) -> Result<Vec<TracedTensor>> + Send + Sync;

/// Whether [`crate::jvp_function`] runs as forward mode or inside [`crate::linearize`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JvpMode {
    /// Tangents are computed (jvp).
    Forward,
    /// Tangents are linearized to be transposed (vjp, grad).
    Linearize,
}

#[derive(Clone)]
enum Kind {
    Jvp(Arc<JvpRuleFn>),
    Vjp(Arc<VjpFwdFn>, Arc<VjpBwdFn>),
    Checkpoint,
}

impl Kind {
    fn what(&self) -> &'static str {
        match self {
            Kind::Jvp(_) => "custom_jvp",
            Kind::Vjp(..) => "custom_vjp",
            Kind::Checkpoint => "checkpoint",
        }
    }
}

/// One call site: the body (user inputs, then captured values) and the rule.
struct Region {
    name: String,
    kind: Kind,
    body: Function,
    n_args: usize,
}

/// The region registry an [`AdContext`] shares with its clones.
#[derive(Clone, Default)]
pub(crate) struct Regions(Arc<RwLock<HashMap<u64, Arc<Region>>>>);

impl Regions {
    fn get(&self, id: u64) -> Option<Arc<Region>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    fn insert(&self, id: u64, r: Region) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::new(r));
    }
}

impl fmt::Debug for Regions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.read().map(|m| m.len()).unwrap_or(0);
        write!(f, "Regions({n})")
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A traced function with user-defined differentiation, made by [`AdContext::custom_jvp`],
/// [`AdContext::custom_vjp`] or [`AdContext::checkpoint`]. Cheap to clone.
#[derive(Clone)]
pub struct CustomFn {
    name: String,
    kind: Kind,
    f: Arc<TracedFn>,
    regions: Regions,
}

impl fmt::Debug for CustomFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomFn({} `{}`)", self.kind.what(), self.name)
    }
}

fn barrier(label: String, args: &[&TracedTensor]) -> Result<TracedTensor> {
    let t = TracedTensor::apply1(Op::Barrier { label }, args);
    match t.error() {
        Some(e) => Err(e.into()),
        None => Ok(t),
    }
}

impl CustomFn {
    /// The name given at definition.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Applies the function to `args`: the outputs of the user's function, which autodiff
    /// differentiates with the custom rule (see the [module docs](crate::custom)).
    pub fn call(&self, args: &[&TracedTensor]) -> Result<Vec<TracedTensor>> {
        let what = self.kind.what();
        let ph: Vec<TracedTensor> = args
            .iter()
            .map(|a| a.ty().map(|t| TracedTensor::input(t.dtype, &t.shape)))
            .collect::<std::result::Result<_, _>>()?;
        let outs = (self.f)(&ph)?;
        if outs.is_empty() {
            return Err(AdError::BadArgument {
                transform: what,
                message: format!("function `{}` returned no outputs", self.name),
            });
        }
        let out_refs: Vec<&TracedTensor> = outs.iter().collect();
        let cut: Vec<&TracedTensor> = ph.iter().collect();
        let mut lowered = lower(&out_refs, &cut, LowerMode::Dependent)?;
        lowered.function.name = format!("{what}_{}", self.name);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut all: Vec<TracedTensor> = args.iter().map(|a| (*a).clone()).collect();
        all.extend(lowered.params.drain(args.len()..));
        let begin: Vec<TracedTensor> = all
            .iter()
            .map(|a| barrier(format!("ad.begin.{id}"), &[a]))
            .collect::<Result<_>>()?;
        let brefs: Vec<&TracedTensor> = begin.iter().collect();
        let body_outs = TracedTensor::call(&lowered.function, &brefs)?;
        let mut result = Vec::with_capacity(body_outs.len());
        for (j, o) in body_outs.iter().enumerate() {
            let mut ops: Vec<&TracedTensor> = vec![o];
            ops.extend(all.iter());
            result.push(barrier(format!("ad.end.{id}.{j}"), &ops)?);
        }
        self.regions.insert(
            id,
            Region {
                name: self.name.clone(),
                kind: self.kind.clone(),
                body: lowered.function,
                n_args: args.len(),
            },
        );
        Ok(result)
    }

    /// [`CustomFn::call`] of a function with one output.
    pub fn call1(&self, args: &[&TracedTensor]) -> Result<TracedTensor> {
        let mut v = self.call(args)?;
        if v.len() != 1 {
            return Err(AdError::BadArgument {
                transform: self.kind.what(),
                message: format!("function `{}` has {} outputs, not one", self.name, v.len()),
            });
        }
        Ok(v.remove(0))
    }
}

impl AdContext {
    fn custom_fn(&self, name: &str, kind: Kind, f: Arc<TracedFn>) -> CustomFn {
        CustomFn {
            name: name.to_string(),
            kind,
            f,
            regions: self.rules().regions.clone(),
        }
    }

    /// A function `f` whose derivative is given by `rule(primals, tangents)` (JAX's
    /// `custom_jvp`): `rule` returns one tangent per output, built with traced ops that
    /// are linear in the tangents. Forward and reverse mode use the rule; it is itself
    /// differentiated for higher orders. Values `f` captures are treated as constants by
    /// the rule: differentiating with respect to one through `f` is an error (pass it as
    /// an argument instead). Only this context (and its clones) knows the rule.
    pub fn custom_jvp<F, R>(&self, name: &str, f: F, rule: R) -> CustomFn
    where
        F: Fn(&[TracedTensor]) -> Result<Vec<TracedTensor>> + Send + Sync + 'static,
        R: Fn(&[TracedTensor], &[TracedTensor]) -> Result<Vec<TracedTensor>>
            + Send
            + Sync
            + 'static,
    {
        self.custom_fn(name, Kind::Jvp(Arc::new(rule)), Arc::new(f))
    }

    /// A function `f` differentiated in reverse mode by `fwd` (outputs and residuals) and
    /// `bwd(residuals, output cotangents)` (one cotangent per input of `f`), as JAX's
    /// `custom_vjp`. Forward mode through it is an error naming it.
    pub fn custom_vjp<F, Fw, Bw>(&self, name: &str, f: F, fwd: Fw, bwd: Bw) -> CustomFn
    where
        F: Fn(&[TracedTensor]) -> Result<Vec<TracedTensor>> + Send + Sync + 'static,
        Fw: Fn(&[TracedTensor]) -> Result<(Vec<TracedTensor>, Vec<TracedTensor>)>
            + Send
            + Sync
            + 'static,
        Bw: Fn(&[TracedTensor], &[TracedTensor]) -> Result<Vec<TracedTensor>>
            + Send
            + Sync
            + 'static,
    {
        self.custom_fn(name, Kind::Vjp(Arc::new(fwd), Arc::new(bwd)), Arc::new(f))
    }

    /// `f` with rematerialisation (JAX's `checkpoint` / `remat`): reverse mode stores only
    /// its inputs (and captured values) and recomputes its insides in the backward pass.
    /// Values and derivatives are those of `f` itself; captured values are differentiated
    /// too.
    pub fn checkpoint<F>(&self, name: &str, f: F) -> CustomFn
    where
        F: Fn(&[TracedTensor]) -> Result<Vec<TracedTensor>> + Send + Sync + 'static,
    {
        self.custom_fn(name, Kind::Checkpoint, Arc::new(f))
    }
}

enum Marker {
    Begin(u64),
    End(u64, usize),
    Plain,
}

fn parse_label(label: &str) -> Marker {
    let mut parts = label.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("ad"), Some("begin"), Some(id), None) => match id.parse() {
            Ok(id) => Marker::Begin(id),
            Err(_) => Marker::Plain,
        },
        (Some("ad"), Some("end"), Some(id), Some(j)) => match (id.parse(), j.parse()) {
            (Ok(id), Ok(j)) => Marker::End(id, j),
            _ => Marker::Plain,
        },
        _ => Marker::Plain,
    }
}

fn region(rules: &Rules, id: u64, label: &str) -> Result<Arc<Region>> {
    rules.regions.get(id).ok_or_else(|| {
        AdError::NotDifferentiable(format!(
            "barrier `{label}` marks a custom_jvp / custom_vjp / checkpoint function defined on \
             another AdContext; differentiate with the context that defined it (or a clone)"
        ))
    })
}

fn materialise(ts: &[Option<TracedTensor>], like: &[TracedTensor]) -> Result<Vec<TracedTensor>> {
    ts.iter()
        .zip(like)
        .map(|(t, x)| match t {
            Some(t) => Ok(t.clone()),
            None => Ok(TracedTensor::zeros(&x.ty()?)),
        })
        .collect()
}

/// Tangent of a `barrier` given its operands `x`, result `y` and operand tangents `dx`.
pub(crate) fn barrier_jvp(
    rules: &Rules,
    mode: JvpMode,
    label: &str,
    x: &[TracedTensor],
    y: &TracedTensor,
    dx: &[Option<TracedTensor>],
) -> Result<Option<TracedTensor>> {
    match parse_label(label) {
        Marker::Plain => Ok(dx[0].clone()),
        Marker::Begin(id) => {
            let r = region(rules, id, label)?;
            match (&r.kind, mode) {
                // Forward mode through a checkpoint is plain forward mode of the body.
                (Kind::Checkpoint, JvpMode::Forward) => Ok(dx[0].clone()),
                _ => Ok(None),
            }
        }
        Marker::End(id, j) => {
            let r = region(rules, id, label)?;
            let (args, targs) = (&x[1..], &dx[1..]);
            let ty = y.ty()?;
            if !ty.dtype.is_float() {
                return Ok(None);
            }
            if let Kind::Checkpoint = r.kind {
                if mode == JvpMode::Forward {
                    return Ok(dx[0].clone());
                }
            } else if let Some(k) = targs[r.n_args..].iter().position(Option::is_some) {
                return Err(AdError::NotDifferentiable(format!(
                    "{} function `{}` captures a value (its captured value #{k}) that is being \
                     differentiated; pass that value as an argument so the rule can see it",
                    r.kind.what(),
                    r.name
                )));
            }
            match &r.kind {
                Kind::Jvp(rule) => {
                    let primals = &args[..r.n_args];
                    let ts = materialise(&targs[..r.n_args], primals)?;
                    let outs = rule(primals, &ts)?;
                    let n_out = r.body.outputs().len();
                    if outs.len() != n_out {
                        return Err(AdError::BadArgument {
                            transform: "custom_jvp",
                            message: format!(
                                "the rule of `{}` returned {} tangents for {n_out} outputs",
                                r.name,
                                outs.len()
                            ),
                        });
                    }
                    let t = outs[j].clone();
                    let tt = t.ty()?;
                    if tt != ty {
                        return Err(AdError::BadArgument {
                            transform: "custom_jvp",
                            message: format!(
                                "the rule of `{}` returned a tangent of type {tt} for output #{j} of type {ty}",
                                r.name
                            ),
                        });
                    }
                    Ok(Some(t))
                }
                Kind::Vjp(fwd, _) => {
                    if mode == JvpMode::Forward {
                        return Err(AdError::NotDifferentiable(format!(
                            "jvp: `{}` is a custom_vjp function, which has no forward-mode rule \
                             (forward mode is used by jvp, jacfwd and hessian); define it with \
                             AdContext::custom_jvp instead, or differentiate it in reverse mode \
                             only (grad, vjp, jacrev)",
                            r.name
                        )));
                    }
                    let primals = &args[..r.n_args];
                    let (_, residuals) = fwd(primals)?;
                    let ts = materialise(&targs[..r.n_args], primals)?;
                    linear_op("ad.custom_vjp", id, j, &ty, &residuals, &ts)
                }
                Kind::Checkpoint => {
                    let ts = materialise(targs, args)?;
                    linear_op("ad.checkpoint", id, j, &ty, args, &ts)
                }
            }
        }
    }
}

/// The linear op `name` on (primal operands, tangents), result type `ty`.
fn linear_op(
    name: &str,
    id: u64,
    j: usize,
    ty: &TensorType,
    primals: &[TracedTensor],
    tangents: &[TracedTensor],
) -> Result<Option<TracedTensor>> {
    let op = ExtensionOp::new(name, vec![ty.clone()])
        .with_attr("id", Attr::Int(id as i64))
        .with_attr("out", Attr::Int(j as i64))
        .with_attr("n_primal", Attr::Int(primals.len() as i64));
    let mut ops: Vec<&TracedTensor> = primals.iter().collect();
    ops.extend(tangents.iter());
    let t = TracedTensor::apply1(Op::Extension(op), &ops);
    match t.error() {
        Some(e) => Err(e.into()),
        None => Ok(Some(t)),
    }
}

fn int_attr(e: &ExtensionOp, key: &str) -> Result<usize> {
    match e.attrs.get(key) {
        Some(Attr::Int(v)) if *v >= 0 => Ok(*v as usize),
        _ => Err(AdError::Internal(format!(
            "`{}` without attribute `{key}`",
            e.name
        ))),
    }
}

/// Transpose of the linear ops `ad.custom_vjp` / `ad.checkpoint`; `None` for other ops.
pub(crate) fn linear_transpose(
    rules: &Rules,
    e: &ExtensionOp,
    args: &[TransposeArg],
    cts: &[Option<TracedTensor>],
) -> Result<Option<Vec<Option<TracedTensor>>>> {
    let checkpoint = match e.name.as_str() {
        "ad.custom_vjp" => false,
        "ad.checkpoint" => true,
        _ => return Ok(None),
    };
    let (id, j, np) = (
        int_attr(e, "id")? as u64,
        int_attr(e, "out")?,
        int_attr(e, "n_primal")?,
    );
    let r = region(rules, id, &e.name)?;
    let mut out = vec![None; args.len()];
    let Some(ct) = &cts[0] else {
        return Ok(Some(out));
    };
    let primals: Vec<TracedTensor> = args[..np]
        .iter()
        .map(|a| {
            a.primal().cloned().ok_or_else(|| {
                AdError::Internal(format!("`{}`: a residual operand is linear", e.name))
            })
        })
        .collect::<Result<_>>()?;
    let out_tys = r.body.output_types();
    let in_cts: Vec<Option<TracedTensor>> = if checkpoint {
        // Recompute the body from inputs tied to the cotangent, then run its vjp there.
        let tied: Vec<TracedTensor> = primals
            .iter()
            .map(|p| barrier("ad.remat".to_string(), &[p, ct]))
            .collect::<Result<_>>()?;
        let trefs: Vec<&TracedTensor> = tied.iter().collect();
        let outs = TracedTensor::call(&r.body, &trefs)?;
        let float: Vec<usize> = (0..tied.len())
            .filter(|&i| tied[i].ty().map(|t| t.dtype.is_float()).unwrap_or(false))
            .collect();
        let cut: Vec<&TracedTensor> = float.iter().map(|&i| &tied[i]).collect();
        let lowered = lower(&[&outs[j]], &cut, LowerMode::Dependent)?;
        let (_, g) = vjp_function(
            &lowered.function,
            rules,
            &lowered.params,
            cut.len(),
            &[Some(ct.clone())],
        )?;
        let mut full = vec![None; tied.len()];
        for (&i, g) in float.iter().zip(g) {
            full[i] = g;
        }
        full
    } else {
        let Kind::Vjp(_, bwd) = &r.kind else {
            return Err(AdError::Internal(
                "ad.custom_vjp of a non-vjp region".into(),
            ));
        };
        let all_cts: Vec<TracedTensor> = out_tys
            .iter()
            .enumerate()
            .map(|(k, t)| {
                if k == j {
                    ct.clone()
                } else {
                    TracedTensor::zeros(t)
                }
            })
            .collect();
        let g = bwd(&primals, &all_cts)?;
        if g.len() != r.n_args {
            return Err(AdError::BadArgument {
                transform: "custom_vjp",
                message: format!(
                    "the bwd of `{}` returned {} cotangents for {} inputs",
                    r.name,
                    g.len(),
                    r.n_args
                ),
            });
        }
        let want = &r.body.param_types()[..r.n_args];
        for (i, (c, w)) in g.iter().zip(want).enumerate() {
            let ct = c.ty()?;
            if &ct != w {
                return Err(AdError::BadArgument {
                    transform: "custom_vjp",
                    message: format!(
                        "the bwd of `{}` returned a cotangent of type {ct} for input #{i} of type {w}",
                        r.name
                    ),
                });
            }
        }
        g.into_iter().map(Some).collect()
    };
    for (k, c) in in_cts.into_iter().enumerate() {
        if np + k < args.len() && args[np + k].is_linear() {
            out[np + k] = c;
        }
    }
    Ok(Some(out))
}
