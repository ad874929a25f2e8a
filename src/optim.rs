//! Optimizers as pure update functions over named parameter collections ([`Params`]).
//!
//! Every update takes traced values, so it runs inside a compiled training step
//! ([`Jit`](crate::runtime::Jit)); run-time scalars (the learning rate, Adam's step count
//! and so its bias correction) are traced operands, normally program inputs, never baked
//! constants, so a schedule does not recompile. Hyper-parameters that do not change
//! during training (momentum, betas, epsilon, weight decay) are plain `f64`s. Scalars are
//! converted to each parameter's dtype, so f32 weights stay f32.
//!
//! The same updates run on host tensors ("eager") through [`eager`], which compiles the
//! update with every tensor as a placeholder and runs it on the CPU backend.
//!
//! State travels as `Params` too; [`pack`] and [`unpack`] put several collections into
//! one (names prefixed `prefix/`) so a whole optimizer state is one argument of
//! [`Jit::call_params`](crate::runtime::Jit::call_params).

use tenferro_runtime::{DType, Params, Result, RuntimeError, Tensor, TracedTensor};

type P = Params<TracedTensor>;

fn like(s: &TracedTensor, p: &TracedTensor) -> Result<TracedTensor> {
    s.convert(p.dtype()?)
}

/// Zeros of every parameter's type (initial momentum / moment slots).
pub fn zeros_like(params: &P) -> Result<P> {
    params.try_map(|_, p| p.zeros_like())
}

/// SGD with optional momentum (PyTorch's form: `v ← μ·v + g`, step `v`, or `g + μ·v` with
/// Nesterov) and L2 weight decay added to the gradient. Returns the new parameters and
/// the new velocity (pass `zeros_like(params)` first; ignored when `momentum == 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sgd {
    /// Momentum μ (0 for plain SGD).
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty added to the gradient (`g + wd·p`).
    pub weight_decay: f64,
}

impl Sgd {
    /// One step with learning rate `lr` (a traced scalar).
    pub fn update(&self, params: &P, grads: &P, velocity: &P, lr: &TracedTensor) -> Result<(P, P)> {
        params.check_same_names(grads)?;
        params.check_same_names(velocity)?;
        let mut new_p = P::new();
        let mut new_v = P::new();
        for (name, p) in params.iter() {
            let mut g = grads[name].clone();
            if self.weight_decay != 0.0 {
                g = g + p * self.weight_decay;
            }
            let lr = like(lr, p)?;
            let (step, v) = if self.momentum != 0.0 {
                let v = &velocity[name] * self.momentum + &g;
                let step = if self.nesterov {
                    &g + &v * self.momentum
                } else {
                    v.clone()
                };
                (step, v)
            } else {
                (g, velocity[name].clone())
            };
            new_p.insert(name, p - &(&lr * &step));
            new_v.insert(name, v);
        }
        Ok((new_p, new_v))
    }
}

/// Adam's state: the step count (f64 scalar, steps taken so far) and the two moments.
#[derive(Clone, Debug)]
pub struct AdamState<T> {
    /// Steps taken (0 initially); a run-time value.
    pub step: T,
    /// First moment.
    pub m: Params<T>,
    /// Second moment.
    pub v: Params<T>,
}

impl AdamState<TracedTensor> {
    /// The initial state for `params` (step 0, zero moments), as traced constants.
    pub fn init(params: &P) -> Result<Self> {
        Ok(AdamState {
            step: TracedTensor::scalar(0.0_f64),
            m: zeros_like(params)?,
            v: zeros_like(params)?,
        })
    }
}

impl AdamState<Tensor> {
    /// The initial state for host `params`.
    pub fn init_host(params: &Params<Tensor>) -> Self {
        let z = params.map(|_, p| Tensor::zeros(&p.ty()));
        AdamState {
            step: Tensor::scalar(0.0_f64),
            m: z.clone(),
            v: z,
        }
    }
}

/// Adam (Kingma & Ba) and, with `decoupled` weight decay, AdamW (Loshchilov & Hutter):
/// `m ← β₁m + (1-β₁)g`, `v ← β₂v + (1-β₂)g²`, `t ← t + 1`,
/// `p ← p - lr·(m/(1-β₁ᵗ)) / (√(v/(1-β₂ᵗ)) + ε)` and, for AdamW, `- lr·wd·p`. Without
/// `decoupled`, `weight_decay` is an L2 term added to the gradient (PyTorch's Adam).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW).
    pub decoupled: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }
}

impl Adam {
    /// AdamW with weight decay `wd` (default betas and epsilon).
    pub fn adamw(wd: f64) -> Adam {
        Adam {
            weight_decay: wd,
            decoupled: true,
            ..Adam::default()
        }
    }

    /// One step with learning rate `lr` (traced scalar); returns the new parameters and
    /// state.
    pub fn update(
        &self,
        params: &P,
        grads: &P,
        state: &AdamState<TracedTensor>,
        lr: &TracedTensor,
    ) -> Result<(P, AdamState<TracedTensor>)> {
        params.check_same_names(grads)?;
        params.check_same_names(&state.m)?;
        params.check_same_names(&state.v)?;
        let t = &state.step.convert(DType::F64)? + 1.0;
        // bias corrections 1 - β^t, computed at run time from the step input
        let c1 = 1.0 - TracedTensor::scalar(self.beta1).pow(&t);
        let c2 = 1.0 - TracedTensor::scalar(self.beta2).pow(&t);
        let (mut np, mut nm, mut nv) = (P::new(), P::new(), P::new());
        for (name, p) in params.iter() {
            let mut g = grads[name].clone();
            if self.weight_decay != 0.0 && !self.decoupled {
                g = g + p * self.weight_decay;
            }
            let m = &state.m[name] * self.beta1 + &g * (1.0 - self.beta1);
            let v = &state.v[name] * self.beta2 + &(&g * &g) * (1.0 - self.beta2);
            let lr = like(lr, p)?;
            let mhat = &m / &like(&c1, p)?;
            let vhat = &v / &like(&c2, p)?;
            let mut step = mhat / (vhat.sqrt() + self.eps);
            if self.weight_decay != 0.0 && self.decoupled {
                step = step + p * self.weight_decay;
            }
            np.insert(name, p - &(&lr * &step));
            nm.insert(name, m);
            nv.insert(name, v);
        }
        Ok((
            np,
            AdamState {
                step: t,
                m: nm,
                v: nv,
            },
        ))
    }
}

/// The global L2 norm of all gradients (f64 scalar).
pub fn global_norm(grads: &P) -> Result<TracedTensor> {
    let mut total = TracedTensor::scalar(0.0_f64);
    for g in grads.values() {
        total = total + (g * g).sum().convert(DType::F64)?;
    }
    Ok(total.sqrt())
}

/// Scales all gradients by `max_norm / max(‖g‖, max_norm)` (optax's
/// `clip_by_global_norm`): unchanged when the global norm is at most `max_norm`.
pub fn clip_by_global_norm(grads: &P, max_norm: &TracedTensor) -> Result<P> {
    let norm = global_norm(grads)?;
    let mx = max_norm.convert(DType::F64)?;
    let scale = &mx / &norm.maximum(&mx);
    grads.try_map(|_, g| Ok(g * &like(&scale, g)?))
}

/// Clamps every gradient element to `[lo, hi]`.
pub fn clip_by_value(grads: &P, lo: f64, hi: f64) -> Result<P> {
    grads.try_map(|_, g| {
        let dt = g.dtype()?;
        let lo = TracedTensor::scalar(lo).convert(dt)?;
        let hi = TracedTensor::scalar(hi).convert(dt)?;
        Ok::<_, RuntimeError>(g.maximum(&lo).minimum(&hi))
    })
}

/// Several collections as one, names prefixed `prefix/`.
pub fn pack<T: Clone>(parts: &[(&str, &Params<T>)]) -> Params<T> {
    let mut out = Params::new();
    for (prefix, p) in parts {
        for (n, v) in p.iter() {
            out.insert(format!("{prefix}/{n}"), v.clone());
        }
    }
    out
}

/// The entries of `all` named `prefix/...`, with the prefix removed.
pub fn unpack<T: Clone>(all: &Params<T>, prefix: &str) -> Params<T> {
    let pre = format!("{prefix}/");
    all.iter()
        .filter_map(|(n, v)| n.strip_prefix(&pre).map(|s| (s.to_string(), v.clone())))
        .collect()
}

/// The updates on host tensors: each call compiles the update with every tensor as a
/// placeholder and runs it on the CPU backend (the same arithmetic as in a compiled step).
pub mod eager {
    use super::*;
    use tenferro_cpu::CpuBackend;
    use tenferro_runtime::Jit;

    fn run(inputs: &Params<Tensor>, f: impl Fn(&P) -> Result<P>) -> Result<Params<Tensor>> {
        let mut j = Jit::new(CpuBackend::new(), |p: &P, _: &[TracedTensor]| {
            Ok::<_, RuntimeError>((f(p)?, vec![]))
        });
        Ok(j.call_params(inputs, &[])?.0)
    }

    /// [`Sgd::update`] on host tensors; returns new parameters and velocity.
    pub fn sgd(
        opt: &Sgd,
        params: &Params<Tensor>,
        grads: &Params<Tensor>,
        velocity: &Params<Tensor>,
        lr: f64,
    ) -> Result<(Params<Tensor>, Params<Tensor>)> {
        let mut all = pack(&[("p", params), ("g", grads), ("v", velocity)]);
        all.insert("lr", Tensor::scalar(lr));
        let out = run(&all, |a| {
            let (p, v) = opt.update(&unpack(a, "p"), &unpack(a, "g"), &unpack(a, "v"), &a["lr"])?;
            Ok(pack(&[("p", &p), ("v", &v)]))
        })?;
        Ok((unpack(&out, "p"), unpack(&out, "v")))
    }

    /// [`Adam::update`] on host tensors; returns new parameters and state.
    pub fn adam(
        opt: &Adam,
        params: &Params<Tensor>,
        grads: &Params<Tensor>,
        state: &AdamState<Tensor>,
        lr: f64,
    ) -> Result<(Params<Tensor>, AdamState<Tensor>)> {
        let mut all = pack(&[
            ("p", params),
            ("g", grads),
            ("m", &state.m),
            ("v", &state.v),
        ]);
        all.insert("lr", Tensor::scalar(lr));
        all.insert("step", state.step.clone());
        let out = run(&all, |a| {
            let st = AdamState {
                step: a["step"].clone(),
                m: unpack(a, "m"),
                v: unpack(a, "v"),
            };
            let (p, s) = opt.update(&unpack(a, "p"), &unpack(a, "g"), &st, &a["lr"])?;
            let mut o = pack(&[("p", &p), ("m", &s.m), ("v", &s.v)]);
            o.insert("step", s.step);
            Ok(o)
        })?;
        Ok((
            unpack(&out, "p"),
            AdamState {
                step: out.require("step")?.clone(),
                m: unpack(&out, "m"),
                v: unpack(&out, "v"),
            },
        ))
    }
}
