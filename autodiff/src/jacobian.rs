//! Whole Jacobians and Hessians: [`AdContext::jacfwd`], [`AdContext::jacrev`],
//! [`AdContext::hessian`] and their `_many` forms.
//!
//! There is no batching (vmap) transform yet, so a Jacobian is built as ONE traced program
//! that stacks the JVPs along every standard basis vector of the input (`jacfwd`, one
//! forward pass per input element) or the VJPs along every basis vector of the output
//! (`jacrev`, one backward pass per output element). The function is linearized once, so
//! the primal computation and the residuals are shared by all the products; the basis
//! vectors are one-hot constants.
//!
//! ## Shape and layout
//!
//! As JAX, the Jacobian of `y` (shape `S_y`) with respect to `x` (shape `S_x`) has shape
//! `S_y ++ S_x`: `J[o..., i...] = ∂y[o...] / ∂x[i...]`. Tensors are column-major (axis 0
//! fastest), so in the flat data the output index varies fastest:
//! `J.data[flat(o) + numel(y) · flat(i)]` where `flat` is the column-major flat index —
//! i.e. the flat data is the `numel(y) × numel(x)` Jacobian matrix in column-major order
//! (one column per input element). The Hessian of a scalar `y` has shape `S_x ++ S_x`.
//!
//! Only real (f32 / f64) inputs and outputs are supported: a complex Jacobian needs a
//! holomorphy convention (JAX's `holomorphic=True`), which is not implemented.

use crate::context::AdContext;
use crate::custom::JvpMode;
use crate::error::{AdError, Result};
use crate::linearize::{linearize_mode, Linearized};
use tenferro_ir::{Data, Tensor, TensorType};
use tenferro_runtime::{lower, LowerMode, TracedTensor};

/// The one-hot tensor of type `ty` with a one at column-major flat index `k`.
fn one_hot(ty: &TensorType, k: usize) -> TracedTensor {
    let mut t = Tensor::zeros(ty);
    match t.data_mut() {
        Data::F32(v) => v[k] = 1.0,
        Data::F64(v) => v[k] = 1.0,
        _ => unreachable!("jacobians are only built for real values"),
    }
    TracedTensor::from_tensor(t)
}

fn check_real(transform: &'static str, what: &str, t: &TracedTensor) -> Result<TensorType> {
    let ty = t.ty()?;
    if !matches!(ty.dtype, tenferro_ir::DType::F32 | tenferro_ir::DType::F64) {
        return Err(AdError::NotDifferentiable(format!(
            "{transform}: {what} has type {ty}; Jacobians are built for real (f32, f64) values only \
             (a complex Jacobian needs a holomorphy convention, not implemented)"
        )));
    }
    Ok(ty)
}

/// `S_y ++ S_x`.
fn jac_shape(y: &TensorType, x: &TensorType) -> Vec<usize> {
    let mut s = y.shape.clone();
    s.extend_from_slice(&x.shape);
    s
}

impl AdContext {
    /// Linearization of `y` with respect to `x` alone, to be transposed (`Linearize`) or
    /// evaluated forward (`Forward`).
    fn linearize_one(
        &self,
        y: &TracedTensor,
        x: &TracedTensor,
        mode: JvpMode,
    ) -> Result<Linearized> {
        let lowered = lower(&[y], &[x], LowerMode::Dependent)?;
        linearize_mode(&lowered.function, self.rules(), &lowered.params, 1, mode)
    }

    /// Forward-mode Jacobian of `y` with respect to `x`, of shape `shape(y) ++ shape(x)`
    /// (see the [module docs](crate::jacobian) for the layout): one JVP per element of
    /// `x`, stacked. Zeros when `y` does not depend on `x`. Real values only.
    pub fn jacfwd(&self, y: &TracedTensor, x: &TracedTensor) -> Result<TracedTensor> {
        Ok(self.jacfwd_many(y, &[x])?.remove(0))
    }

    /// [`AdContext::jacfwd`] with respect to each of `xs`.
    pub fn jacfwd_many(&self, y: &TracedTensor, xs: &[&TracedTensor]) -> Result<Vec<TracedTensor>> {
        let yt = check_real("jacfwd", "the output", y)?;
        let mut out = Vec::with_capacity(xs.len());
        for (i, x) in xs.iter().enumerate() {
            let xt = check_real("jacfwd", &format!("input #{i}"), x)?;
            let shape = jac_shape(&yt, &xt);
            let lin = self.linearize_one(y, x, JvpMode::Forward)?;
            let Some(k) = lin.output_map[0] else {
                out.push(TracedTensor::zeros(&TensorType::new(yt.dtype, shape)));
                continue;
            };
            let mut cols = Vec::with_capacity(xt.numel());
            for j in 0..xt.numel() {
                let mut args = vec![one_hot(&xt, j)];
                args.extend(lin.residuals.iter().cloned());
                let refs: Vec<&TracedTensor> = args.iter().collect();
                cols.push(TracedTensor::call(&lin.linear, &refs)?.swap_remove(k));
            }
            out.push(stack_reshape(&cols, -1, &shape, &yt)?);
        }
        Ok(out)
    }

    /// Reverse-mode Jacobian of `y` with respect to `x`, of shape `shape(y) ++ shape(x)`:
    /// one VJP per element of `y`, stacked. Equal to [`AdContext::jacfwd`]; cheaper when
    /// `y` has fewer elements than `x`. Zeros when `y` does not depend on `x`.
    pub fn jacrev(&self, y: &TracedTensor, x: &TracedTensor) -> Result<TracedTensor> {
        Ok(self.jacrev_many(y, &[x])?.remove(0))
    }

    /// [`AdContext::jacrev`] with respect to each of `xs`.
    pub fn jacrev_many(&self, y: &TracedTensor, xs: &[&TracedTensor]) -> Result<Vec<TracedTensor>> {
        let yt = check_real("jacrev", "the output", y)?;
        let mut out = Vec::with_capacity(xs.len());
        for (i, x) in xs.iter().enumerate() {
            let xt = check_real("jacrev", &format!("input #{i}"), x)?;
            let shape = jac_shape(&yt, &xt);
            let lin = self.linearize_one(y, x, JvpMode::Linearize)?;
            if lin.output_map[0].is_none() {
                out.push(TracedTensor::zeros(&TensorType::new(yt.dtype, shape)));
                continue;
            }
            let mut rows = Vec::with_capacity(yt.numel());
            for j in 0..yt.numel() {
                let ct = lin.transpose(self.rules(), &[Some(one_hot(&yt, j))])?;
                let row = match ct.into_iter().next().flatten() {
                    Some(r) => r,
                    None => TracedTensor::zeros(&xt),
                };
                rows.push(row);
            }
            out.push(stack_reshape(&rows, 0, &shape, &yt)?);
        }
        Ok(out)
    }

    /// Hessian of a scalar `y` with respect to `x`: `jacfwd(jacrev(y))`, of shape
    /// `shape(x) ++ shape(x)`. For a non-scalar `y` the result is the second-derivative
    /// tensor of shape `shape(y) ++ shape(x) ++ shape(x)`.
    pub fn hessian(&self, y: &TracedTensor, x: &TracedTensor) -> Result<TracedTensor> {
        let g = self.jacrev(y, x)?;
        self.jacfwd(&g, x)
    }

    /// All second-derivative blocks: `h[i][j] = ∂²y / ∂xs[i] ∂xs[j]`, of shape
    /// `shape(y) ++ shape(xs[i]) ++ shape(xs[j])` (as JAX's `hessian(f, argnums=(..))`).
    pub fn hessian_many(
        &self,
        y: &TracedTensor,
        xs: &[&TracedTensor],
    ) -> Result<Vec<Vec<TracedTensor>>> {
        let gs = self.jacrev_many(y, xs)?;
        gs.iter().map(|g| self.jacfwd_many(g, xs)).collect()
    }
}

/// Stacks `parts` along a new axis (`0` or `-1`) and reshapes the result to `shape`.
fn stack_reshape(
    parts: &[TracedTensor],
    axis: isize,
    shape: &[usize],
    yt: &TensorType,
) -> Result<TracedTensor> {
    if parts.is_empty() {
        // An empty input or output: the Jacobian has no elements.
        return Ok(TracedTensor::zeros(&TensorType::new(
            yt.dtype,
            shape.to_vec(),
        )));
    }
    let refs: Vec<&TracedTensor> = parts.iter().collect();
    Ok(TracedTensor::stack(&refs, axis)?.reshape(shape)?)
}
