//! The user-facing transforms on traced values: [`AdContext`] (which owns the extension
//! rules) with `grad`, `vjp`, `jvp` and their multi-input forms, and the method syntax of
//! [`TracedTensorAdExt`] (core rules only).

use crate::error::{AdError, Result};
use crate::jvp::jvp_function;
use crate::linearize::vjp_function;
use crate::rules::Rules;
use tenferro_runtime::{lower, LowerMode, Lowered, Params, TracedTensor};

/// Owns the rule set the transforms use: the built-in rules of every core primitive plus
/// the extension rules it was built with. There is no global registry; differentiating
/// through an extension op whose rules are not in the context is an error.
#[derive(Clone, Debug, Default)]
pub struct AdContext {
    rules: Rules,
}

/// Builder of an [`AdContext`].
#[derive(Debug, Default)]
pub struct AdContextBuilder {
    sets: Vec<Rules>,
}

impl AdContextBuilder {
    /// Adds an extension's rule set (callable several times).
    pub fn with_extension_rules(mut self, rules: Rules) -> AdContextBuilder {
        self.sets.push(rules);
        self
    }

    /// The context; [`AdError::DuplicateRule`] if two rule sets cover one op.
    pub fn build(self) -> Result<AdContext> {
        let mut rules = Rules::new();
        for set in self.sets {
            rules.merge(set)?;
        }
        Ok(AdContext { rules })
    }
}

/// `true` for dtypes with derivatives.
fn check_differentiable(transform: &str, i: usize, x: &TracedTensor) -> Result<()> {
    let ty = x.ty()?;
    if !ty.dtype.is_float() {
        return Err(AdError::NotDifferentiable(format!(
            "{transform}: input #{i} has type {ty}; only f32, f64, c32, c64 values can be differentiated"
        )));
    }
    Ok(())
}

/// Lowers the part of `y` that depends on `xs` (parameters: the `xs`, then free values).
fn lower_dependent(transform: &str, y: &TracedTensor, xs: &[&TracedTensor]) -> Result<Lowered> {
    for (i, x) in xs.iter().enumerate() {
        check_differentiable(transform, i, x)?;
    }
    Ok(lower(&[y], xs, LowerMode::Dependent)?)
}

/// The distinct values of `xs` (first occurrence order) and, for each entry of `xs`, its
/// index among them: a value listed twice is one input of the function.
fn distinct<'a>(xs: &[&'a TracedTensor]) -> (Vec<&'a TracedTensor>, Vec<usize>) {
    let mut uniq: Vec<&TracedTensor> = Vec::with_capacity(xs.len());
    let index = xs
        .iter()
        .map(|x| match uniq.iter().position(|u| u.same_as(x)) {
            Some(i) => i,
            None => {
                uniq.push(x);
                uniq.len() - 1
            }
        })
        .collect();
    (uniq, index)
}

/// The value, or zeros of `like`'s type for a symbolic zero.
fn or_zeros(t: Option<TracedTensor>, like: &TracedTensor) -> Result<TracedTensor> {
    match t {
        Some(t) => Ok(t),
        None => Ok(TracedTensor::zeros(&like.ty()?)),
    }
}

/// The type of a loss `grad` accepts: a float or complex value with one element.
fn check_scalar_loss(loss: &TracedTensor) -> Result<tenferro_ir::TensorType> {
    let ty = loss.ty()?;
    if ty.numel() != 1 {
        return Err(AdError::NonScalarLoss { ty: ty.to_string() });
    }
    if !ty.dtype.is_float() {
        return Err(AdError::NotDifferentiable(format!(
            "grad: the loss has type {ty}; it must be a float or complex scalar (as JAX)"
        )));
    }
    Ok(ty)
}

impl AdContext {
    /// A builder; `AdContext::builder().build()` has the core rules only.
    pub fn builder() -> AdContextBuilder {
        AdContextBuilder::default()
    }

    /// A context with the core rules only.
    pub fn new() -> AdContext {
        AdContext::default()
    }

    /// The extension rules of this context.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Gradient of a scalar `loss` (rank 0 or one element) with respect to `x`: the vjp
    /// with a cotangent of one. Zeros of `x`'s type if `loss` does not depend on `x`. For a
    /// complex `x` the result is `∂L/∂Re(x) + i·∂L/∂Im(x)`; a complex loss is
    /// differentiated through its real part.
    pub fn grad(&self, loss: &TracedTensor, x: &TracedTensor) -> Result<TracedTensor> {
        Ok(self.grad_many(loss, &[x])?.remove(0))
    }

    /// Gradients of a scalar `loss` with respect to each of `xs`.
    pub fn grad_many(
        &self,
        loss: &TracedTensor,
        xs: &[&TracedTensor],
    ) -> Result<Vec<TracedTensor>> {
        let ty = check_scalar_loss(loss)?;
        self.vjp_many(loss, xs, &TracedTensor::full(&ty, 1.0))
    }

    /// The loss and its gradient with respect to `x`.
    pub fn value_and_grad(
        &self,
        loss: &TracedTensor,
        x: &TracedTensor,
    ) -> Result<(TracedTensor, TracedTensor)> {
        let g = self.grad(loss, x)?;
        Ok((loss.clone(), g))
    }

    /// Gradients of a scalar `loss` with respect to every entry of a parameter
    /// collection, under the same names (JAX's `jax.grad` of a function of a dict).
    ///
    /// ```
    /// # use tenferro_ad::AdContext;
    /// # use tenferro_runtime::{DType, Params, TracedTensor};
    /// let p: Params<TracedTensor> = [("a", TracedTensor::input(DType::F64, &[2])),
    ///     ("b", TracedTensor::input(DType::F64, &[]))].into_iter().collect();
    /// let loss = (&p["a"] * &p["b"]).sum();
    /// let g = AdContext::new().grad_params(&loss, &p)?;
    /// assert_eq!(g.names().collect::<Vec<_>>(), ["a", "b"]);
    /// # Ok::<(), tenferro_ad::AdError>(())
    /// ```
    pub fn grad_params(
        &self,
        loss: &TracedTensor,
        params: &Params<TracedTensor>,
    ) -> Result<Params<TracedTensor>> {
        let xs: Vec<&TracedTensor> = params.values().collect();
        let grads = self.grad_many(loss, &xs)?;
        Ok(Params::from_names_values(
            params.names().map(str::to_string),
            grads,
        ))
    }

    /// Vector-Jacobian product: the cotangent of `x` given the cotangent of `y`
    /// (`cotangent` must have `y`'s type).
    pub fn vjp(
        &self,
        y: &TracedTensor,
        x: &TracedTensor,
        cotangent: &TracedTensor,
    ) -> Result<TracedTensor> {
        Ok(self.vjp_many(y, &[x], cotangent)?.remove(0))
    }

    /// Vector-Jacobian product with respect to each of `xs`.
    pub fn vjp_many(
        &self,
        y: &TracedTensor,
        xs: &[&TracedTensor],
        cotangent: &TracedTensor,
    ) -> Result<Vec<TracedTensor>> {
        self.vjp_many_optional(y, xs, cotangent)?
            .into_iter()
            .zip(xs)
            .map(|(c, x)| or_zeros(c, x))
            .collect()
    }

    /// [`AdContext::grad`] that returns `None` when `loss` does not depend on `x` (the
    /// gradient is then identically zero and never materialised).
    pub fn grad_optional(
        &self,
        loss: &TracedTensor,
        x: &TracedTensor,
    ) -> Result<Option<TracedTensor>> {
        Ok(self.grad_many_optional(loss, &[x])?.remove(0))
    }

    /// [`AdContext::grad_many`] with `None` for each input `loss` does not depend on.
    pub fn grad_many_optional(
        &self,
        loss: &TracedTensor,
        xs: &[&TracedTensor],
    ) -> Result<Vec<Option<TracedTensor>>> {
        let ty = check_scalar_loss(loss)?;
        self.vjp_many_optional(loss, xs, &TracedTensor::full(&ty, 1.0))
    }

    /// [`AdContext::vjp`] that returns `None` when `y` does not depend on `x`.
    pub fn vjp_optional(
        &self,
        y: &TracedTensor,
        x: &TracedTensor,
        cotangent: &TracedTensor,
    ) -> Result<Option<TracedTensor>> {
        Ok(self.vjp_many_optional(y, &[x], cotangent)?.remove(0))
    }

    /// [`AdContext::vjp_many`] with `None` for each input `y` does not depend on.
    /// "Depends" is structural: an input reaching `y` only through ops with a zero
    /// derivative (`stop_gradient`, comparisons, integer conversions) gives `None` too.
    pub fn vjp_many_optional(
        &self,
        y: &TracedTensor,
        xs: &[&TracedTensor],
        cotangent: &TracedTensor,
    ) -> Result<Vec<Option<TracedTensor>>> {
        let (yt, ct) = (y.ty()?, cotangent.ty()?);
        if yt != ct {
            return Err(AdError::BadArgument {
                transform: "vjp",
                message: format!(
                    "cotangent has type {ct} but the output has type {yt}; they must be equal"
                ),
            });
        }
        // An input listed twice gets the whole cotangent at each position (as PyTorch).
        let (uniq, index) = distinct(xs);
        let lowered = lower_dependent("vjp", y, &uniq)?;
        let (_, cts) = vjp_function(
            &lowered.function,
            &self.rules,
            &lowered.params,
            uniq.len(),
            &[Some(cotangent.clone())],
        )?;
        Ok(index.iter().map(|&i| cts[i].clone()).collect())
    }

    /// Jacobian-vector product: the directional derivative of `y` along `tangent` (which
    /// must have `x`'s type).
    pub fn jvp(
        &self,
        y: &TracedTensor,
        x: &TracedTensor,
        tangent: &TracedTensor,
    ) -> Result<TracedTensor> {
        self.jvp_many(y, &[x], &[tangent])
    }

    /// Jacobian-vector product with one tangent per input: `Σ_i ∂y/∂x_i · t_i`.
    pub fn jvp_many(
        &self,
        y: &TracedTensor,
        xs: &[&TracedTensor],
        tangents: &[&TracedTensor],
    ) -> Result<TracedTensor> {
        let dy = self.jvp_many_optional(y, xs, tangents)?;
        or_zeros(dy, y)
    }

    /// [`AdContext::jvp`] that returns `None` when `y` does not depend on `x`.
    pub fn jvp_optional(
        &self,
        y: &TracedTensor,
        x: &TracedTensor,
        tangent: &TracedTensor,
    ) -> Result<Option<TracedTensor>> {
        self.jvp_many_optional(y, &[x], &[tangent])
    }

    /// [`AdContext::jvp_many`] that returns `None` when `y` depends on none of `xs`.
    pub fn jvp_many_optional(
        &self,
        y: &TracedTensor,
        xs: &[&TracedTensor],
        tangents: &[&TracedTensor],
    ) -> Result<Option<TracedTensor>> {
        if xs.len() != tangents.len() {
            return Err(AdError::BadArgument {
                transform: "jvp",
                message: format!("{} inputs but {} tangents", xs.len(), tangents.len()),
            });
        }
        for (i, (x, t)) in xs.iter().zip(tangents).enumerate() {
            let (xt, tt) = (x.ty()?, t.ty()?);
            if xt != tt {
                return Err(AdError::BadArgument {
                    transform: "jvp",
                    message: format!(
                        "tangent #{i} has type {tt} but the input has type {xt}; they must be equal"
                    ),
                });
            }
        }
        // An input listed twice moves along the sum of its tangents.
        let (uniq, index) = distinct(xs);
        let mut summed: Vec<Option<TracedTensor>> = vec![None; uniq.len()];
        for (&i, &t) in index.iter().zip(tangents) {
            summed[i] = Some(match summed[i].take() {
                Some(acc) => &acc + t,
                None => t.clone(),
            });
        }
        let lowered = lower_dependent("jvp", y, &uniq)?;
        let mut ts = summed;
        ts.resize(lowered.params.len(), None);
        let out = jvp_function(&lowered.function, &self.rules, &lowered.params, &ts)?;
        Ok(out.tangents.into_iter().next().flatten())
    }
}

/// Method syntax for the transforms with the core rules only (`loss.grad(&x)?`). Use an
/// [`AdContext`] to differentiate through extension ops.
pub trait TracedTensorAdExt {
    /// Gradient of this scalar with respect to `x` (see [`AdContext::grad`]).
    fn grad(&self, x: &TracedTensor) -> Result<TracedTensor>;
    /// Vector-Jacobian product (see [`AdContext::vjp`]).
    fn vjp(&self, x: &TracedTensor, cotangent: &TracedTensor) -> Result<TracedTensor>;
    /// Jacobian-vector product (see [`AdContext::jvp`]).
    fn jvp(&self, x: &TracedTensor, tangent: &TracedTensor) -> Result<TracedTensor>;
}

impl TracedTensorAdExt for TracedTensor {
    fn grad(&self, x: &TracedTensor) -> Result<TracedTensor> {
        AdContext::new().grad(self, x)
    }

    fn vjp(&self, x: &TracedTensor, cotangent: &TracedTensor) -> Result<TracedTensor> {
        AdContext::new().vjp(self, x, cotangent)
    }

    fn jvp(&self, x: &TracedTensor, tangent: &TracedTensor) -> Result<TracedTensor> {
        AdContext::new().jvp(self, x, tangent)
    }
}
