//! The functional transforms of eager mode on [`EagerContext`]: `grad`, `value_and_grad`,
//! `vjp`, `jvp` and their multi-input forms. Each runs a closure over eager tensors on
//! fresh leaves and returns eager tensors; when its inputs are tracked the results are
//! recorded, so the transforms compose (`ctx.jvp(|x| ctx.grad(&f, x), &x, &v)`).

use super::context::EagerContext;
use super::graph::{check_input, transform, Mode};
use super::tensor::EagerTensor;
use crate::error::{AdError, Result};
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
