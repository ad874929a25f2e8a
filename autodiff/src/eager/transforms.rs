//! The functional transforms of eager mode on [`EagerContext`]: `grad`, `value_and_grad`,
//! `vjp`, `jvp` and their multi-input forms. Each runs a closure over eager tensors on
//! fresh leaves and returns eager tensors; when its inputs are tracked the results are
//! recorded, so the transforms compose (`ctx.jvp(|x| ctx.grad(&f, x), &x, &v)`).

use super::context::EagerContext;
use super::graph::{bind, walk, Mode, Node, NodeRef, Source, Wrt};
use super::tensor::EagerTensor;
use crate::error::{AdError, Result};
use std::rc::Rc;
use tenferro_ir::Tensor;

impl EagerContext {
    /// Gradient of the scalar `f(x)` with respect to `x` (zeros of `x`'s type when `f`
    /// does not depend on `x`). `f` runs with recording on, even inside `no_grad`.
    pub fn grad<F>(&self, f: F, x: &EagerTensor) -> Result<EagerTensor>
    where
        F: FnOnce(&EagerTensor) -> Result<EagerTensor>,
    {
        Ok(self.value_and_grad(f, x)?.1)
    }

    /// `f(x)` and its gradient with respect to `x`.
    pub fn value_and_grad<F>(&self, f: F, x: &EagerTensor) -> Result<(EagerTensor, EagerTensor)>
    where
        F: FnOnce(&EagerTensor) -> Result<EagerTensor>,
    {
        let (y, mut g) = self.value_and_grad_many(|xs| f(&xs[0]), &[x])?;
        Ok((y, g.remove(0)))
    }

    /// Gradients of the scalar `f(xs)` with respect to each of `xs`.
    pub fn grad_many<F>(&self, f: F, xs: &[&EagerTensor]) -> Result<Vec<EagerTensor>>
    where
        F: FnOnce(&[EagerTensor]) -> Result<EagerTensor>,
    {
        Ok(self.value_and_grad_many(f, xs)?.1)
    }

    /// `f(xs)` and its gradients with respect to each of `xs`.
    pub fn value_and_grad_many<F>(
        &self,
        f: F,
        xs: &[&EagerTensor],
    ) -> Result<(EagerTensor, Vec<EagerTensor>)>
    where
        F: FnOnce(&[EagerTensor]) -> Result<EagerTensor>,
    {
        for (i, x) in xs.iter().enumerate() {
            check_input(self, "grad", i, x)?;
        }
        let t = transform(self, Mode::Vjp, xs, f, |y| {
            let ty = y.ty();
            if ty.numel() != 1 {
                return Err(AdError::NonScalarLoss { ty: ty.to_string() });
            }
            Ok(vec![self.from_tensor(Tensor::full(&ty, 1.0))])
        })?;
        Ok((t.output, t.results))
    }

    /// Vector-Jacobian product: `f(x)` and the cotangent of `x` given the cotangent of
    /// `f(x)` (which must have its type).
    pub fn vjp<F>(
        &self,
        f: F,
        x: &EagerTensor,
        cotangent: &EagerTensor,
    ) -> Result<(EagerTensor, EagerTensor)>
    where
        F: FnOnce(&EagerTensor) -> Result<EagerTensor>,
    {
        let (y, mut c) = self.vjp_many(|xs| f(&xs[0]), &[x], cotangent)?;
        Ok((y, c.remove(0)))
    }

    /// Vector-Jacobian product with respect to each of `xs`.
    pub fn vjp_many<F>(
        &self,
        f: F,
        xs: &[&EagerTensor],
        cotangent: &EagerTensor,
    ) -> Result<(EagerTensor, Vec<EagerTensor>)>
    where
        F: FnOnce(&[EagerTensor]) -> Result<EagerTensor>,
    {
        for (i, x) in xs.iter().enumerate() {
            check_input(self, "vjp", i, x)?;
        }
        cotangent.check()?;
        let t = transform(self, Mode::Vjp, xs, f, |y| {
            let (yt, ct) = (y.ty(), cotangent.ty());
            if yt != ct {
                return Err(AdError::BadArgument {
                    transform: "vjp",
                    message: format!(
                        "cotangent has type {ct} but the output has type {yt}; they must be equal"
                    ),
                });
            }
            Ok(vec![cotangent.clone()])
        })?;
        Ok((t.output, t.results))
    }

    /// Jacobian-vector product: `f(x)` and its directional derivative along `tangent`
    /// (which must have `x`'s type).
    pub fn jvp<F>(
        &self,
        f: F,
        x: &EagerTensor,
        tangent: &EagerTensor,
    ) -> Result<(EagerTensor, EagerTensor)>
    where
        F: FnOnce(&EagerTensor) -> Result<EagerTensor>,
    {
        self.jvp_many(|xs| f(&xs[0]), &[x], &[tangent])
    }

    /// Jacobian-vector product with one tangent per input: `f(xs)` and
    /// `Σ_i ∂f/∂x_i · t_i`.
    pub fn jvp_many<F>(
        &self,
        f: F,
        xs: &[&EagerTensor],
        tangents: &[&EagerTensor],
    ) -> Result<(EagerTensor, EagerTensor)>
    where
        F: FnOnce(&[EagerTensor]) -> Result<EagerTensor>,
    {
        if xs.len() != tangents.len() {
            return Err(AdError::BadArgument {
                transform: "jvp",
                message: format!("{} inputs but {} tangents", xs.len(), tangents.len()),
            });
        }
        for (i, (x, t)) in xs.iter().zip(tangents).enumerate() {
            check_input(self, "jvp", i, x)?;
            t.check()?;
            let (xt, tt) = (x.ty(), t.ty());
            if xt != tt {
                return Err(AdError::BadArgument {
                    transform: "jvp",
                    message: format!(
                        "tangent #{i} has type {tt} but the input has type {xt}; they must be equal"
                    ),
                });
            }
        }
        let t = transform(self, Mode::Jvp, xs, f, |_| {
            Ok(tangents.iter().map(|&t| t.clone()).collect())
        })?;
        let mut r = t.results;
        Ok((t.output, r.remove(0)))
    }
}

/// The outcome of a functional transform: `f`'s output (recorded as a function of the
/// inputs when they are tracked) and the transform's results.
struct Transformed {
    pub(crate) output: EagerTensor,
    pub(crate) results: Vec<EagerTensor>,
}

/// Checks that `x` can be differentiated by `transform`.
fn check_input(ctx: &EagerContext, transform: &str, i: usize, x: &EagerTensor) -> Result<()> {
    x.check()?;
    if !x.ctx.same_as(ctx) {
        return Err(AdError::BadArgument {
            transform: "eager transform",
            message: format!("{transform}: input #{i} belongs to another EagerContext"),
        });
    }
    if !x.dtype().is_float() {
        return Err(AdError::NotDifferentiable(format!(
            "{transform}: input #{i} has type {}; only f32, f64, c32, c64 values can be differentiated",
            x.ty()
        )));
    }
    Ok(())
}

/// Runs `f` on fresh leaves holding the values of `xs` (recording on), then the `mode`
/// transform of what it recorded with seeds from `seeds(output)`: the cotangent of the
/// output (vjp) or one tangent per input (jvp). Results are recorded as ops of the
/// inputs, constants and seeds when grad mode is on and one of them is tracked.
fn transform<F, S>(
    ctx: &EagerContext,
    mode: Mode,
    xs: &[&EagerTensor],
    f: F,
    seeds: S,
) -> Result<Transformed>
where
    F: FnOnce(&[EagerTensor]) -> Result<EagerTensor>,
    S: FnOnce(&EagerTensor) -> Result<Vec<EagerTensor>>,
{
    let leaves: Vec<EagerTensor> = xs
        .iter()
        .map(|x| EagerTensor::leaf(ctx, x.value.clone()))
        .collect();
    let y = ctx.with_grad(|| f(&leaves))?;
    y.check()?;
    if !y.ctx.same_as(ctx) {
        return Err(AdError::BadArgument {
            transform: "eager transform",
            message: "the function returned a tensor of another EagerContext".into(),
        });
    }
    let seeds = seeds(&y)?;
    let leaf_nodes: Vec<Rc<Node>> = leaves
        .iter()
        .filter_map(|l| l.node.as_ref().map(|r| r.node.clone()))
        .collect();
    let w = y
        .node
        .as_ref()
        .map(|r| walk(r, Wrt::Leaves(&leaf_nodes), mode));
    let Some(w) = w.filter(|w| w.output.is_some()) else {
        // The output does not depend on the inputs: zero derivatives.
        let zeros = match mode {
            Mode::Vjp | Mode::Backward => xs
                .iter()
                .map(|x| ctx.from_tensor(Tensor::zeros(&x.ty())))
                .collect(),
            Mode::Jvp => vec![ctx.from_tensor(Tensor::zeros(&y.ty()))],
        };
        return Ok(Transformed {
            output: y,
            results: zeros,
        });
    };
    let record = ctx.is_grad_enabled()
        && (xs.iter().any(|x| x.node.is_some())
            || seeds.iter().any(|s| s.node.is_some())
            || w.consts.iter().any(|(_, n)| n.is_some()));
    let mut w = w;
    if mode == Mode::Vjp && !record {
        // Nothing differentiates the result again: read the recorded forward values.
        w.set_mode(Mode::Backward);
    }
    let t = ctx.transform_for(&w)?;
    let wrt: Vec<Tensor> = xs.iter().map(|x| x.value.clone()).collect();
    let seed_vals: Vec<Tensor> = seeds.iter().map(|s| s.value.clone()).collect();
    let inputs = bind(&t.derived, &w, &wrt, &seed_vals)?;
    let outs = ctx.run_transform(&t, &inputs)?;
    if !record {
        return Ok(Transformed {
            output: y.detach(),
            results: outs.into_iter().map(|v| ctx.from_tensor(v)).collect(),
        });
    }
    let args: Vec<Option<NodeRef>> = t
        .derived
        .sources
        .iter()
        .map(|s| match *s {
            Source::Wrt(i) => Ok(xs[i].node.clone()),
            Source::Const(i) => Ok(w.consts[i].1.clone()),
            Source::Seed(i) => Ok(seeds[i].node.clone()),
            // Only a program of the inputs is recorded (mode Vjp or Jvp, never Backward).
            Source::Output(..) => Err(AdError::Internal(
                "eager: a recorded transform reads a forward value".into(),
            )),
        })
        .collect::<Result<_>>()?;
    let node = Rc::new(Node::Apply {
        func: t.derived.program.clone(),
        values: inputs,
        outputs: outs.clone(),
        args,
    });
    let results = outs
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            EagerTensor::new(
                ctx.clone(),
                v,
                Some(NodeRef {
                    node: node.clone(),
                    index,
                }),
            )
        })
        .collect();
    // Re-root the output on the outer inputs: the recorded function applied to them.
    let mut values = wrt;
    values.extend(w.consts.iter().map(|(v, _)| v.clone()));
    let mut args: Vec<Option<NodeRef>> = xs.iter().map(|x| x.node.clone()).collect();
    args.extend(w.consts.iter().map(|(_, n)| n.clone()));
    let fwd = Rc::new(Node::Apply {
        func: t.derived.forward.clone(),
        values,
        outputs: vec![y.value.clone()],
        args,
    });
    let output = EagerTensor::new(
        ctx.clone(),
        y.value.clone(),
        Some(NodeRef {
            node: fwd,
            index: 0,
        }),
    );
    Ok(Transformed { output, results })
}
