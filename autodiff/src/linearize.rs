//! Linearization with partial evaluation, and vjp = linearize + transpose.
//!
//! [`linearize`] runs [`crate::jvp_function`] with each differentiated input's tangent a fresh
//! placeholder, then lowers the tangent outputs with those placeholders as the cut
//! ([`LowerMode::Dependent`]). That is partial evaluation: the linear function holds only
//! the instructions that depend on the tangents; every primal value they use (a
//! residual) becomes a parameter bound to the traced primal computation.

use crate::custom::JvpMode;
use crate::error::{AdError, Result};
use crate::jvp::jvp_function_mode;
use crate::rules::Rules;
use crate::transpose::transpose_function;
use tenferro_ir::Function;
use tenferro_runtime::{lower, LowerMode, TracedTensor};

/// The linearization of a function at a primal point.
#[derive(Clone, Debug)]
pub struct Linearized {
    /// The function's outputs at the primal point (traced).
    pub primals: Vec<TracedTensor>,
    /// The linear map: its first parameters are the tangents of the differentiated
    /// inputs (in order), the others are residuals bound to [`Linearized::residuals`];
    /// its outputs are the tangents of the outputs that are not symbolic zeros.
    pub linear: Function,
    /// Primal values bound to the linear function's parameters after the tangents.
    pub residuals: Vec<TracedTensor>,
    /// For each output of the original function, its index among `linear`'s outputs, or
    /// `None` if its tangent is identically zero.
    pub output_map: Vec<Option<usize>>,
    /// Number of differentiated inputs (the linear function's linear parameters).
    pub num_linear: usize,
}

/// Linearizes `f` at `primals` (one per parameter) with respect to its first `n_wrt`
/// parameters, which must be float or complex.
pub fn linearize(
    f: &Function,
    rules: &Rules,
    primals: &[TracedTensor],
    n_wrt: usize,
) -> Result<Linearized> {
    linearize_mode(f, rules, primals, n_wrt, JvpMode::Linearize)
}

/// [`linearize`] whose linear function is meant to be transposed (`JvpMode::Linearize`)
/// or evaluated forward (`JvpMode::Forward`, as `jacfwd` does: custom_vjp functions are
/// then an error, checkpoints are differentiated inline).
pub(crate) fn linearize_mode(
    f: &Function,
    rules: &Rules,
    primals: &[TracedTensor],
    n_wrt: usize,
    mode: JvpMode,
) -> Result<Linearized> {
    if n_wrt > f.params().len() {
        return Err(AdError::BadArgument {
            transform: "linearize",
            message: format!(
                "{n_wrt} inputs to differentiate but function `{}` has {} parameters",
                f.name,
                f.params().len()
            ),
        });
    }
    let mut tangents: Vec<Option<TracedTensor>> = Vec::with_capacity(f.params().len());
    let mut placeholders = Vec::with_capacity(n_wrt);
    for (i, &p) in f.params().iter().enumerate() {
        if i < n_wrt {
            let ty = f.ty(p);
            if !ty.dtype.is_float() {
                return Err(AdError::NotDifferentiable(format!(
                    "linearize: input #{i} has type {ty}; only f32, f64, c32, c64 values are differentiable"
                )));
            }
            let t = TracedTensor::input(ty.dtype, &ty.shape);
            placeholders.push(t.clone());
            tangents.push(Some(t));
        } else {
            tangents.push(None);
        }
    }
    let out = jvp_function_mode(f, rules, primals, &tangents, mode)?;
    let mut output_map = Vec::with_capacity(out.tangents.len());
    let mut nonzero = Vec::new();
    for t in &out.tangents {
        match t {
            Some(t) => {
                output_map.push(Some(nonzero.len()));
                nonzero.push(t);
            }
            None => output_map.push(None),
        }
    }
    let cut: Vec<&TracedTensor> = placeholders.iter().collect();
    let mut lowered = lower(&nonzero, &cut, LowerMode::Dependent)?;
    lowered.function.name = format!("{}_linear", f.name);
    let residuals = lowered.params.split_off(n_wrt);
    Ok(Linearized {
        primals: out.primals,
        linear: lowered.function,
        residuals,
        output_map,
        num_linear: n_wrt,
    })
}

impl Linearized {
    /// Applies the adjoint of the linear map to `cotangents` (one per output of the
    /// original function, `None` for zero): the cotangent of each differentiated input.
    pub fn transpose(
        &self,
        rules: &Rules,
        cotangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        if cotangents.len() != self.output_map.len() {
            return Err(AdError::BadArgument {
                transform: "vjp",
                message: format!(
                    "{} cotangents for {} outputs",
                    cotangents.len(),
                    self.output_map.len()
                ),
            });
        }
        let mut cts = vec![None; self.linear.outputs().len()];
        for (m, c) in self.output_map.iter().zip(cotangents) {
            if let Some(k) = m {
                cts[*k] = c.clone();
            }
        }
        transpose_function(&self.linear, rules, self.num_linear, &self.residuals, &cts)
    }
}

/// Reverse mode on a function: the primal outputs of `f` at `primals`, and the cotangent
/// of each of its first `n_wrt` parameters given the outputs' `cotangents` (`None` for
/// zero, in both).
pub fn vjp_function(
    f: &Function,
    rules: &Rules,
    primals: &[TracedTensor],
    n_wrt: usize,
    cotangents: &[Option<TracedTensor>],
) -> Result<(Vec<TracedTensor>, Vec<Option<TracedTensor>>)> {
    let lin = linearize(f, rules, primals, n_wrt)?;
    let cts = lin.transpose(rules, cotangents)?;
    Ok((lin.primals, cts))
}

/// Reverse mode split into two functions that do not depend on any particular values, so
/// a caller (eager mode) can cache them by the structure of `f` and run them on new
/// values: `forward` computes the outputs and the residuals, `backward` maps residuals
/// and output cotangents to input cotangents.
#[derive(Clone, Debug)]
pub struct VjpFunctions {
    /// Parameters: those of `f`. Outputs: the outputs of `f`, then the residuals.
    pub forward: Function,
    /// Parameters: the residuals, then one cotangent per output of `f` (of its type).
    /// Outputs: the cotangent of each of the first `n_wrt` parameters of `f` (zeros where
    /// the outputs do not depend on it).
    pub backward: Function,
    /// Number of residuals passed from `forward` to `backward`.
    pub num_residuals: usize,
}

/// Splits reverse mode of `f` with respect to its first `n_wrt` parameters into
/// [`VjpFunctions`].
pub fn vjp_functions(f: &Function, rules: &Rules, n_wrt: usize) -> Result<VjpFunctions> {
    let primals: Vec<TracedTensor> = f
        .param_types()
        .iter()
        .map(|t| TracedTensor::input(t.dtype, &t.shape))
        .collect();
    let lin = linearize(f, rules, &primals, n_wrt)?;
    let mut fwd_outs: Vec<&TracedTensor> = lin.primals.iter().collect();
    fwd_outs.extend(lin.residuals.iter());
    let cut: Vec<&TracedTensor> = primals.iter().collect();
    let mut forward = lower(&fwd_outs, &cut, LowerMode::Program)?.function;
    forward.name = format!("{}_forward", f.name);

    let res_in: Vec<TracedTensor> = lin
        .residuals
        .iter()
        .map(|r| r.ty().map(|t| TracedTensor::input(t.dtype, &t.shape)))
        .collect::<std::result::Result<_, _>>()?;
    let ct_in: Vec<TracedTensor> = f
        .output_types()
        .iter()
        .map(|t| TracedTensor::input(t.dtype, &t.shape))
        .collect();
    let cts: Vec<Option<TracedTensor>> = ct_in.iter().cloned().map(Some).collect();
    let lin_at = Linearized {
        residuals: res_in.clone(),
        ..lin
    };
    let grads = lin_at.transpose(rules, &cts)?;
    let grads: Vec<TracedTensor> = grads
        .into_iter()
        .zip(f.param_types())
        .map(|(g, t)| g.unwrap_or_else(|| TracedTensor::zeros(&t)))
        .collect();
    let outs: Vec<&TracedTensor> = grads.iter().collect();
    let mut bcut: Vec<&TracedTensor> = res_in.iter().collect();
    bcut.extend(ct_in.iter());
    let mut backward = lower(&outs, &bcut, LowerMode::Program)?.function;
    backward.name = format!("{}_backward", f.name);
    Ok(VjpFunctions {
        forward,
        backward,
        num_residuals: res_in.len(),
    })
}
